package proxy_test

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"
)

// model is what one client expects its keys to hold; it generates random
// commands together with their exact expected replies.
type model struct {
	rng      *rand.Rand
	prefix   string
	nkeys    int
	strings  map[string]string
	counters map[string]int
}

func newModel(seed uint64, prefix string, nkeys int) *model {
	return &model{rng: rand.New(rand.NewPCG(seed, 1)), prefix: prefix, nkeys: nkeys,
		strings: map[string]string{}, counters: map[string]int{}}
}

// key returns one of the client's keys. The varying part comes first: with
// nutcracker's fnv1a_64, keys that differ only in their last bytes hash
// close together and may all land on one server.
func (m *model) key() string { return fmt.Sprintf("k%d:%s", m.rng.IntN(m.nkeys), m.prefix) }

func (m *model) get(k string) string {
	if v, ok := m.strings[k]; ok {
		return bulk(v)
	}
	return nilBulk
}

// next returns a random command and the reply it must get. kinds limits
// the choice to the first kinds command kinds (3: SET, GET, MGET).
func (m *model) next(kinds int) ([]string, string) {
	switch m.rng.IntN(kinds) {
	case 0:
		k, v := m.key(), strconv.Itoa(m.rng.IntN(1e6))
		m.strings[k] = v
		return []string{"SET", k, v}, "+OK\r\n"
	case 1:
		k := m.key()
		return []string{"GET", k}, m.get(k)
	case 2:
		args, elems := []string{"MGET"}, []string{}
		for n := 1 + m.rng.IntN(8); n > 0; n-- {
			k := m.key()
			args, elems = append(args, k), append(elems, m.get(k))
		}
		return args, array(elems...)
	case 3:
		args := []string{"MSET"}
		for n := 1 + m.rng.IntN(5); n > 0; n-- {
			k, v := m.key(), fmt.Sprintf("m%d", m.rng.IntN(1000))
			args = append(args, k, v)
			m.strings[k] = v
		}
		return args, "+OK\r\n"
	case 4:
		args, n := []string{"DEL"}, 0
		for i := 1 + m.rng.IntN(4); i > 0; i-- {
			k := m.key()
			args = append(args, k)
			if _, ok := m.strings[k]; ok {
				delete(m.strings, k)
				n++
			}
		}
		return args, fmt.Sprintf(":%d\r\n", n)
	case 5:
		args, n := []string{"EXISTS"}, 0
		for i := 1 + m.rng.IntN(6); i > 0; i-- {
			k := m.key()
			args = append(args, k)
			if _, ok := m.strings[k]; ok {
				n++
			}
		}
		return args, fmt.Sprintf(":%d\r\n", n)
	case 6:
		k := fmt.Sprintf("c%d:%s", m.rng.IntN(4), m.prefix)
		m.counters[k]++
		return []string{"INCR", k}, fmt.Sprintf(":%d\r\n", m.counters[k])
	default:
		k, v := m.key(), "+x"
		m.strings[k] += v
		return []string{"APPEND", k, v}, fmt.Sprintf(":%d\r\n", len(m.strings[k]))
	}
}

// script returns n commands and their expected replies.
func (m *model) script(n, kinds int) ([][]string, []string) {
	cmds, want := make([][]string, n), make([]string, n)
	for i := range cmds {
		cmds[i], want[i] = m.next(kinds)
	}
	return cmds, want
}

// TestPipelineTenThousand writes 10,000 SET/GET/MGET commands across the
// shards in one write and checks every reply.
func TestPipelineTenThousand(t *testing.T) {
	f := newRedisFixture(t, 4, pool{})
	m := newModel(1, "big", 500)
	cmds, want := m.script(10000, 3)
	got := pipeline(t, f.addr, cmds)
	bad := 0
	for i := range want {
		if got[i] != want[i] {
			if bad++; bad <= 5 {
				t.Errorf("command %d %q: %q, want %q", i, cmds[i], got[i], want[i])
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d replies wrong", bad, len(want))
	}
	for _, b := range f.backends {
		if dbsize(t, b.Addr) == 0 {
			t.Errorf("server %s got no keys", b.Addr)
		}
	}
}

// TestPipelineConcurrentClients runs 50 clients at once, each pipelining
// rounds of random commands on keys of its own, and checks every reply
// against what that client wrote.
func TestPipelineConcurrentClients(t *testing.T) {
	f := newRedisFixture(t, 4, pool{serverConnections: 2})
	const clients, rounds, perRound = 50, 4, 250
	var wg sync.WaitGroup
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m := newModel(uint64(c), fmt.Sprintf("cl%d", c), 40)
			for r := 0; r < rounds; r++ {
				cmds, want := m.script(perRound, 8)
				got, err := pipelineErr(f.addr, cmds)
				if err != nil {
					t.Errorf("client %d round %d: %v", c, r, err)
					return
				}
				for i := range want {
					if got[i] != want[i] {
						t.Errorf("client %d round %d command %q: %q, want %q", c, r, cmds[i], got[i], want[i])
						return
					}
				}
			}
		}()
	}
	wg.Wait()
}
