package hashring_test

import (
	"fmt"
	"testing"

	"github.com/shardproxy/shardproxy/hashring"
)

func benchPick(b *testing.B, c hashring.Config) {
	p, err := hashring.New(c)
	if err != nil {
		b.Fatal(err)
	}
	keys := make([][]byte, 1024)
	for i := range keys {
		keys[i] = []byte(fmt.Sprintf("user:{%d}:session:%08d", i%97, i))
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		p.Pick(keys[i&1023])
	}
}

func BenchmarkPickKetama50(b *testing.B) {
	benchPick(b, hashring.Config{Hash: "fnv1a_64", Distribution: "ketama", Servers: servers(make50()...)})
}

func BenchmarkPickKetamaMD5Tagged(b *testing.B) {
	benchPick(b, hashring.Config{Hash: "md5", HashTag: "{}", Distribution: "ketama", Servers: servers(make50()...)})
}

func BenchmarkPickModula50(b *testing.B) {
	benchPick(b, hashring.Config{Hash: "murmur", Distribution: "modula", Servers: servers(make50()...)})
}

func BenchmarkPickJump50(b *testing.B) {
	benchPick(b, hashring.Config{Distribution: "jump", Servers: servers(make50()...)})
}

func BenchmarkPickRandom50(b *testing.B) {
	benchPick(b, hashring.Config{Distribution: "random", Servers: servers(make50()...)})
}

func make50() []int {
	w := make([]int, 50)
	for i := range w {
		w[i] = 1
	}
	return w
}

// BenchmarkDefaultSlotTable256 derives the largest default table, as a
// reload or an ejection of such a jump pool does.
func BenchmarkDefaultSlotTable256(b *testing.B) {
	s := servers(equal(256)...)
	b.ReportAllocs()
	for b.Loop() {
		hashring.DefaultSlotTable(s)
	}
}
