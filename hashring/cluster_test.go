package hashring_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/codec/resp"
	"github.com/shardproxy/shardproxy/hashring"
	"github.com/shardproxy/shardproxy/internal/testservers"
)

// crc16Bitwise is CRC-16/XMODEM computed bit by bit, without a table: an
// independent reference for the table-driven ClusterSlot.
func crc16Bitwise(b []byte) uint16 {
	var crc uint16
	for _, c := range b {
		crc ^= uint16(c) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}

// slotEdgeCase is one key whose hash tag handling is worth a name, with
// the bytes Redis hashes for it.
type slotEdgeCase struct {
	name, key, hashed string
}

func slotEdgeCases() []slotEdgeCase {
	return []slotEdgeCase{
		{"empty key", "", ""},
		{"no tag", "user1000", "user1000"},
		{"tag", "{user1000}.following", "user1000"},
		{"tag shared", "{user1000}.followers", "user1000"},
		{"tag in middle", "foo{bar}baz", "bar"},
		{"tag at end", "foo{bar}", "bar"},
		{"empty tag", "{}", "{}"},
		{"empty tag first", "{}x", "{}x"},
		{"empty tag then tag", "foo{}{bar}", "foo{}{bar}"},
		{"nested open", "{{a}}", "{a"},
		{"nested open inside", "foo{{bar}}zap", "{bar"},
		{"first tag wins", "a{b}{c}", "b"},
		{"first close after first open", "foo{bar}{zap}", "bar"},
		{"close before open", "}a{b}", "b"},
		{"only close", "a}b", "a}b"},
		{"open unterminated", "{a", "{a"},
		{"close only first", "}a{", "}a{"},
		{"only open", "{", "{"},
		{"only close brace", "}", "}"},
		{"open close reversed", "}{", "}{"},
		{"single byte tag", "{x}", "x"},
		{"space tag", "{ }", " "},
		{"binary tag", "\x00{\xff\x00\x80}\x01", "\xff\x00\x80"},
		{"binary no tag", "\x00\x01\xfe\xff", "\x00\x01\xfe\xff"},
		{"crlf in tag", "k{\r\n}v", "\r\n"},
		{"check string", "123456789", "123456789"},
	}
}

func TestClusterSlotCheckValue(t *testing.T) {
	// 0x31C3 is the published check value of CRC-16/XMODEM; it is below
	// 16384, so it is the slot itself.
	if got := hashring.ClusterSlot([]byte("123456789")); got != 0x31C3 {
		t.Errorf("ClusterSlot(123456789) = %#x, want 0x31c3", got)
	}
	if hashring.ClusterSlots != 16384 {
		t.Errorf("ClusterSlots = %d, want 16384", hashring.ClusterSlots)
	}
}

func TestClusterSlotHashTags(t *testing.T) {
	for _, c := range slotEdgeCases() {
		t.Run(c.name, func(t *testing.T) {
			want := int(crc16Bitwise([]byte(c.hashed)) % hashring.ClusterSlots)
			if got := hashring.ClusterSlot([]byte(c.key)); got != want {
				t.Errorf("ClusterSlot(%q) = %d, want %d (the slot of %q)", c.key, got, want, c.hashed)
			}
		})
	}
}

func TestClusterSlotMatchesBitwiseCRC(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		key := randomSlotKey(rng)
		if hasBrace(key) {
			continue // tagged keys are covered by the edge cases and the server test
		}
		want := int(crc16Bitwise(key) % hashring.ClusterSlots)
		if got := hashring.ClusterSlot(key); got != want {
			t.Fatalf("ClusterSlot(%q) = %d, want %d", key, got, want)
		}
	}
}

// hasBrace reports whether key holds a brace, so may have a hash tag.
func hasBrace(key []byte) bool {
	for _, c := range key {
		if c == '{' || c == '}' {
			return true
		}
	}
	return false
}

func TestClusterSlotDoesNotAllocate(t *testing.T) {
	key := []byte("user{42}:name\xff")
	var got int
	allocs := testing.AllocsPerRun(100, func() { got = hashring.ClusterSlot(key) })
	if allocs != 0 || got != hashring.ClusterSlot([]byte("42")) {
		t.Errorf("ClusterSlot: %v allocations, slot %d", allocs, got)
	}
}

// randomSlotKey returns a key of 0 to 40 bytes: some printable with hash
// tags, some binary, with braces frequent enough to make tags of every shape.
func randomSlotKey(rng *rand.Rand) []byte {
	key := make([]byte, rng.IntN(41))
	binary := rng.IntN(2) == 0
	for i := range key {
		switch r := rng.IntN(10); {
		case r == 0:
			key[i] = '{'
		case r == 1:
			key[i] = '}'
		case binary:
			key[i] = byte(rng.IntN(256))
		default:
			key[i] = byte('a' + rng.IntN(26))
		}
	}
	return key
}

// TestClusterSlotMatchesRedis asks a real redis-server in cluster mode for
// CLUSTER KEYSLOT of random keys and of every edge case. A node answers
// CLUSTER KEYSLOT before any slot is assigned to it.
func TestClusterSlotMatchesRedis(t *testing.T) {
	dir := t.TempDir()
	srv := testservers.Redis(t, "--cluster-enabled", "yes",
		"--cluster-config-file", filepath.Join(dir, "nodes.conf"),
		"--cluster-port", strconv.Itoa(testservers.FreePort(t, "127.0.0.1")))
	keys := make([][]byte, 0, 10000+len(slotEdgeCases()))
	for _, c := range slotEdgeCases() {
		keys = append(keys, []byte(c.key))
	}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 21))
	tagged, binary := 0, 0
	for range 10000 {
		k := randomSlotKey(rng)
		if string(hashring.HashKey(k, "{}")) != string(k) {
			tagged++
		}
		for _, c := range k {
			if c >= 0x80 || c < 0x20 {
				binary++
				break
			}
		}
		keys = append(keys, k)
	}
	start := time.Now()
	slots, err := clusterKeySlots(srv.Addr, keys)
	if err != nil {
		t.Fatal(err)
	}
	mismatches := 0
	for i, k := range keys {
		if got := hashring.ClusterSlot(k); got != slots[i] {
			mismatches++
			if mismatches <= 10 {
				t.Errorf("ClusterSlot(%q) = %d, CLUSTER KEYSLOT = %d", k, got, slots[i])
			}
		}
	}
	t.Logf("%d keys (%d edge cases, %d random: %d with a hash tag, %d with binary bytes), %d mismatches, asked in %v",
		len(keys), len(slotEdgeCases()), len(keys)-len(slotEdgeCases()), tagged, binary, mismatches,
		time.Since(start).Round(time.Millisecond))
}

// clusterKeySlots sends CLUSTER KEYSLOT for every key, pipelined in
// batches, and returns the slots in key order.
func clusterKeySlots(addr string, keys [][]byte) ([]int, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(30 * time.Second)); err != nil {
		return nil, err
	}
	slots := make([]int, 0, len(keys))
	var out []byte
	in := make([]byte, 0, 64<<10)
	for len(keys) > 0 {
		batch := keys[:min(len(keys), 1000)]
		keys = keys[len(batch):]
		out = out[:0]
		for _, k := range batch {
			out = resp.AppendCommand(out, []byte("CLUSTER"), []byte("KEYSLOT"), k)
		}
		if _, err := c.Write(out); err != nil {
			return nil, err
		}
		if in, err = readSlots(c, in, len(batch), &slots); err != nil {
			return nil, err
		}
	}
	return slots, nil
}

// readSlots reads n integer replies from c into slots; in holds bytes
// already read and is returned with the bytes left over.
func readSlots(c net.Conn, in []byte, n int, slots *[]int) ([]byte, error) {
	buf := make([]byte, 64<<10)
	for n > 0 {
		m, err := resp.ReadReply(in)
		if err != nil {
			return nil, fmt.Errorf("reply: %w", err)
		}
		if m == 0 {
			r, err := c.Read(buf)
			if err != nil {
				return nil, fmt.Errorf("read: %w", err)
			}
			in = append(in, buf[:r]...)
			continue
		}
		if resp.IsError(in[:m]) {
			return nil, errors.New(string(in[:m-2]))
		}
		v, _, err := resp.ReadInteger(in[:m])
		if err != nil {
			return nil, fmt.Errorf("CLUSTER KEYSLOT: %w", err)
		}
		*slots = append(*slots, int(v))
		in = append(in[:0], in[m:]...)
		n--
	}
	return in, nil
}

func BenchmarkClusterSlot(b *testing.B) {
	keys := make([][]byte, 1024)
	for i := range keys {
		if i%2 == 0 {
			keys[i] = []byte(fmt.Sprintf("user:{%d}:session:%08d", i%97, i))
		} else {
			keys[i] = []byte(fmt.Sprintf("user:%d:session:%08d", i%97, i))
		}
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		hashring.ClusterSlot(keys[i&1023])
	}
}
