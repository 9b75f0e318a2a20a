package hashring_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/shardproxy/shardproxy/hashring"
)

func TestNewRejectsBadConfig(t *testing.T) {
	cases := []struct {
		name    string
		config  hashring.Config
		errPart string
	}{
		{"unknown hash", hashring.Config{Hash: "sha1", Servers: servers(1)}, `"sha1"`},
		{"unknown distribution", hashring.Config{Distribution: "rendezvous", Servers: servers(1)}, `"rendezvous"`},
		{"one-byte hash tag", hashring.Config{HashTag: "{", Servers: servers(1)}, "hash tag"},
		{"three-byte hash tag", hashring.Config{HashTag: "{}}", Servers: servers(1)}, "hash tag"},
		{"zero weight", hashring.Config{Servers: servers(1, 0)}, "weight 0"},
		{"negative weight", hashring.Config{Servers: servers(-2)}, "weight -2"},
		{"empty name", hashring.Config{Servers: []hashring.Server{{Weight: 1}}}, "empty name"},
		{"duplicate name", hashring.Config{Servers: []hashring.Server{{"a", 1}, {"b", 1}, {"a", 2}}}, `same name "a"`},
		{"total weight too large", hashring.Config{Servers: servers(1<<30, 1<<30)}, "total weight"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := hashring.New(c.config)
			if err == nil || !strings.Contains(err.Error(), c.errPart) {
				t.Errorf("New: err = %v, want one containing %s", err, c.errPart)
			}
		})
	}
}

func TestNewDefaultsAreNutcrackers(t *testing.T) {
	srv := servers(1, 1, 1, 1, 1)
	def, err := hashring.New(hashring.Config{Servers: srv})
	if err != nil {
		t.Fatal(err)
	}
	explicit, err := hashring.New(hashring.Config{Hash: "fnv1a_64", Distribution: "ketama", Servers: srv})
	if err != nil {
		t.Fatal(err)
	}
	other, err := hashring.New(hashring.Config{Hash: "md5", Distribution: "ketama", Servers: srv})
	if err != nil {
		t.Fatal(err)
	}
	differ := 0
	for i := 0; i < 500; i++ {
		key := []byte(fmt.Sprintf("k%d", i))
		if def.Pick(key) != explicit.Pick(key) {
			t.Fatalf("default and fnv1a_64/ketama disagree on %q", key)
		}
		if def.Pick(key) != other.Pick(key) {
			differ++
		}
	}
	if differ == 0 {
		t.Error("md5 and fnv1a_64 placed all keys alike; the comparison proves nothing")
	}
}

func TestPickServerCounts(t *testing.T) {
	for _, dist := range hashring.DistributionNames {
		t.Run(dist, func(t *testing.T) {
			none, err := hashring.New(hashring.Config{Distribution: dist})
			if err != nil {
				t.Fatal(err)
			}
			if got := none.Pick([]byte("k")); got != -1 {
				t.Errorf("no servers: Pick = %d, want -1", got)
			}
			one, err := hashring.New(hashring.Config{Distribution: dist, Servers: servers(3)})
			if err != nil {
				t.Fatal(err)
			}
			if got := one.Pick([]byte("k")); got != 0 {
				t.Errorf("one server: Pick = %d, want 0", got)
			}
			many, err := hashring.New(hashring.Config{Distribution: dist, Servers: servers(1, 1, 1, 1)})
			if err != nil {
				t.Fatal(err)
			}
			seen := map[int]bool{}
			for i := 0; i < 400; i++ {
				got := many.Pick([]byte(fmt.Sprint(i)))
				if got < 0 || got > 3 {
					t.Fatalf("Pick = %d, want 0..3", got)
				}
				seen[got] = true
			}
			if len(seen) != 4 {
				t.Errorf("400 keys reached only servers %v", seen)
			}
		})
	}
}

func TestPickMatchesRing(t *testing.T) {
	srv := servers(1, 2, 3, 5, 1, 1, 1)
	rings := map[string]hashring.Ring{"ketama": hashring.NewKetama(srv), "modula": hashring.NewModula(srv)}
	for dist, ring := range rings {
		for _, hashName := range hashring.HashNames {
			t.Run(dist+"/"+hashName, func(t *testing.T) {
				p, err := hashring.New(hashring.Config{Hash: hashName, HashTag: "{}", Distribution: dist, Servers: srv})
				if err != nil {
					t.Fatal(err)
				}
				hash, _ := hashring.Hash(hashName)
				if got, want := p.Pick(nil), ring.Lookup(0); got != want {
					t.Errorf("empty key: Pick = %d, want Lookup(0) = %d", got, want)
				}
				for i := 0; i < 300; i++ {
					key := []byte(fmt.Sprintf("obj{%d}:%d", i%50, i))
					want := ring.Lookup(hash(hashring.HashKey(key, "{}")))
					if got := p.Pick(key); got != want {
						t.Fatalf("Pick(%q) = %d, want %d", key, got, want)
					}
				}
			})
		}
	}
}

func TestSlotOutsideJump(t *testing.T) {
	p, err := hashring.New(hashring.Config{Servers: servers(1, 1)})
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Slot([]byte("k")); got != -1 {
		t.Errorf("Slot = %d, want -1 for ketama", got)
	}
	if got := p.SlotTable(); got != nil {
		t.Errorf("SlotTable = %v, want nil for ketama", got)
	}
}

func TestPickDoesNotAllocate(t *testing.T) {
	srv := servers(1, 2, 3, 1, 1)
	key := []byte("user{1234}:profile:\xff\x80")
	for _, dist := range hashring.DistributionNames {
		for _, hashName := range hashring.HashNames {
			p, err := hashring.New(hashring.Config{Hash: hashName, HashTag: "{}", Distribution: dist, Servers: srv})
			if err != nil {
				t.Fatal(err)
			}
			if allocs := testing.AllocsPerRun(50, func() { p.Pick(key) }); allocs != 0 {
				t.Errorf("%s/%s: Pick allocates %v times", dist, hashName, allocs)
			}
		}
	}
}
