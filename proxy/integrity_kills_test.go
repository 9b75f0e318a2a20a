package proxy_test

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/internal/proxytest"
)

// integrityClient is one of the integrity test's clients: its own connection,
// its own keys on every shard, and its model of their values.
type integrityClient struct {
	id         int
	st         *integrityStats
	ep         []atomic.Uint64 // shard epochs, bumped before each kill
	c          *proxytest.Conn
	rnd        *rand.Rand
	strs, ctrs []*keyModel
	all        []*keyModel
	seq        int
	pause      time.Duration // the longest random pause between pipelines
}

func newIntegrityClient(f *proxytest.Fixture, id int, st *integrityStats, ep []atomic.Uint64) *integrityClient {
	cl := &integrityClient{id: id, st: st, ep: ep, rnd: rand.New(rand.NewPCG(uint64(id), 7))}
	for s := range f.Backends {
		for _, name := range f.KeysOn(s, fmt.Sprintf("i%d:s", id), 2) {
			cl.strs = append(cl.strs, &keyModel{name: name, shard: s})
		}
		for _, name := range f.KeysOn(s, fmt.Sprintf("i%d:c", id), 1) {
			cl.ctrs = append(cl.ctrs, &keyModel{name: name, shard: s, counter: true})
		}
	}
	cl.all = append(append(cl.all, cl.strs...), cl.ctrs...)
	return cl
}

// pick returns n distinct keys of keys.
func (cl *integrityClient) pick(keys []*keyModel, n int) []*keyModel {
	out := make([]*keyModel, n)
	for i, j := range cl.rnd.Perm(len(keys))[:n] {
		out[i] = keys[j]
	}
	return out
}

// randomCmd makes one command: SET, GET, MSET, MGET, DEL or INCR.
func (cl *integrityClient) randomCmd() *integrityCmd {
	r := cl.rnd.IntN(100)
	switch {
	case r < 25:
		return cl.write("SET", cl.pick(cl.strs, 1))
	case r < 50:
		return &integrityCmd{op: "GET", keys: cl.pick(cl.all, 1)}
	case r < 60:
		return cl.write("MSET", cl.pick(cl.strs, 2+cl.rnd.IntN(3)))
	case r < 75:
		return &integrityCmd{op: "MGET", keys: cl.pick(cl.all, 2+cl.rnd.IntN(3))}
	case r < 82:
		return &integrityCmd{op: "DEL", keys: cl.pick(cl.all, 1+cl.rnd.IntN(3))}
	}
	return &integrityCmd{op: "INCR", keys: cl.pick(cl.ctrs, 1)}
}

// write makes a SET or MSET of fresh values, each naming client and key.
func (cl *integrityClient) write(op string, keys []*keyModel) *integrityCmd {
	c := &integrityCmd{op: op, keys: keys}
	for _, k := range keys {
		cl.seq++
		c.vals = append(c.vals, cl.valuePrefix(k)+strconv.Itoa(cl.seq))
	}
	return c
}

func (cl *integrityClient) epochs() []uint64 {
	out := make([]uint64, len(cl.ep))
	for i := range cl.ep {
		out[i] = cl.ep[i].Load()
	}
	return out
}

// run sends random pipelines of 1-20 commands until deadline and checks
// every reply against the model.
func (cl *integrityClient) run(stop *atomic.Bool) {
	for !stop.Load() {
		cmds := make([]*integrityCmd, 1+cl.rnd.IntN(20))
		var req []byte
		for i := range cmds {
			cmds[i] = cl.randomCmd()
			req = proxytest.EncodeCommand(req, cmds[i].args()...)
		}
		pre := cl.epochs()
		cl.c.Net.SetDeadline(time.Now().Add(20 * time.Second))
		if _, err := cl.c.Net.Write(req); err != nil {
			cl.st.violation("client %d: write: %v", cl.id, err)
			return
		}
		reps := make([]proxytest.Reply, len(cmds))
		for i := range reps {
			var err error
			if reps[i], err = proxytest.ReadReply(cl.c.R); err != nil {
				cl.st.violation("client %d: reply %d of %d: %v", cl.id, i+1, len(cmds), err)
				return
			}
		}
		post := cl.epochs()
		for i, c := range cmds {
			cl.apply(c, reps[i], pre, post)
		}
		cl.st.pipelines.Add(1)
		if cl.pause > 0 {
			time.Sleep(time.Duration(cl.rnd.Int64N(int64(cl.pause))))
		}
	}
}

// apply checks one reply and updates the model.
func (cl *integrityClient) apply(c *integrityCmd, rep proxytest.Reply, pre, post []uint64) {
	cl.st.replies.Add(1)
	if len(c.keys) > 1 {
		cl.st.mixed.Add(1)
	}
	if rep.Kind == '-' {
		if !cl.st.noteError(rep.Str) {
			cl.st.violation("client %d %v: unexpected error %q", cl.id, c.args(), rep.Str)
		}
		for _, k := range c.keys {
			k.known = false
		}
		return
	}
	ok := true
	switch c.op {
	case "SET", "MSET":
		ok = rep.Kind == '+' && rep.Str == "OK"
		for i, k := range c.keys {
			learn(k, true, c.vals[i], pre, post)
		}
	case "GET":
		cl.applyGet(c.keys[0], rep, pre, post)
	case "MGET":
		ok = rep.Kind == '*' && len(rep.Elems) == len(c.keys)
		for i := 0; ok && i < len(c.keys); i++ {
			cl.applyGet(c.keys[i], rep.Elems[i], pre, post)
		}
	case "DEL":
		ok = cl.applyDel(c, rep, pre, post)
	case "INCR":
		ok = cl.applyIncr(c.keys[0], rep, pre, post)
	}
	if !ok {
		cl.st.violation("client %d %v: got %v", cl.id, c.args(), rep)
		for _, k := range c.keys {
			k.known = false
		}
	}
}

func (cl *integrityClient) applyGet(k *keyModel, rep proxytest.Reply, pre, post []uint64) {
	val, exists, ok := cl.checkValue(k, rep, certain(k, pre, post))
	if !ok {
		k.known = false
		return
	}
	learn(k, exists, val, pre, post)
}

// applyDel checks DEL's count: exact when every key is certain, else
// within what the uncertain keys allow.
func (cl *integrityClient) applyDel(c *integrityCmd, rep proxytest.Reply, pre, post []uint64) bool {
	lo, hi := int64(0), int64(0)
	for _, k := range c.keys {
		switch {
		case !certain(k, pre, post):
			hi++
		case k.exists:
			lo++
			hi++
		}
	}
	if lo == hi {
		cl.st.exact.Add(1)
	} else {
		cl.st.relaxed.Add(1)
	}
	for _, k := range c.keys {
		learn(k, false, "", pre, post)
	}
	return rep.Kind == ':' && rep.Num >= lo && rep.Num <= hi
}

// applyIncr checks INCR's result: the model's counter plus one when
// certain.
func (cl *integrityClient) applyIncr(k *keyModel, rep proxytest.Reply, pre, post []uint64) bool {
	if rep.Kind != ':' {
		return false
	}
	ok := true
	if certain(k, pre, post) {
		cl.st.exact.Add(1)
		prev := int64(0)
		if k.exists {
			prev, _ = strconv.ParseInt(k.val, 10, 64)
		}
		ok = rep.Num == prev+1
	} else {
		cl.st.relaxed.Add(1)
	}
	learn(k, true, strconv.FormatInt(rep.Num, 10), pre, post)
	return ok
}

// fitClients raises the open file limit for n client connections (each
// also open in the proxy, in the same process) and returns how many
// clients fit.
func fitClients(t *testing.T, n int) int {
	need := uint64(2*n + 1000)
	if got := proxytest.RaiseFileLimit(t, need); got < need {
		n = int(got-1000) / 2
		t.Logf("open file limit %d: only %d clients", got, n)
	}
	return n
}

// TestIntegrityUnderKills runs 2,000 client connections, each sending
// random pipelines of SET/GET/MSET/MGET/DEL/INCR on its own keys across
// four shards, while one backend is killed and restarted every 2 s. Every
// reply that is not an error must match the client's model of its keys;
// no reply may carry another client's value.
func TestIntegrityUnderKills(t *testing.T) {
	integrityUnderKills(t, fitClients(t, 2000), []string{"timeout: 5000"}, 0, 10*time.Second)
}

// TestIntegrityParkingUnderKills is TestIntegrityUnderKills with clients
// that pause for up to 15 ms between pipelines and park after 5 ms idle,
// so that requests race with parking and resuming while shards die.
func TestIntegrityParkingUnderKills(t *testing.T) {
	integrityUnderKills(t, fitClients(t, 400), []string{"timeout: 5000", "client_park_after: 5"}, 15*time.Millisecond, 10*time.Second)
}

// integrityUnderKills runs n model-checked clients (pausing up to pause
// between pipelines) on a pool of four shards with the given keys for about
// d, killing and restarting a shard every 2 s, four times at least however
// slow the machine (a race build, a busy runner) makes the kills.
func integrityUnderKills(t *testing.T, n int, keys []string, pause, d time.Duration) {
	b := proxytest.StartRedisBackends(t, 4)
	f := proxytest.StartFixture(t, proxytest.Pool{Keys: keys}, b)
	ep := make([]atomic.Uint64, len(b))
	st := &integrityStats{errKinds: map[string]int{}}
	clients := connectAll(t, f, n, st, ep)
	for _, cl := range clients {
		cl.pause = pause
	}
	start := time.Now()
	var stop atomic.Bool
	var wg sync.WaitGroup
	for _, cl := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl.run(&stop)
		}()
	}
	for i := 0; i < 4 || time.Since(start) < d-2500*time.Millisecond; i++ {
		time.Sleep(2 * time.Second)
		s := i % len(b)
		ep[s].Add(1)
		b[s].Kill()
		time.Sleep(150 * time.Millisecond)
		b[s].Restart()
		st.kills.Add(1)
	}
	time.Sleep(500 * time.Millisecond) // requests after the last restart
	stop.Store(true)
	wg.Wait()
	checkStillServed(t, clients)
	t.Logf("%d clients, %d kills: %d pipelines, %d replies (%d multi-key), %d errors %v; %d exact checks, %d relaxed (key unknown after a fault)",
		n, st.kills.Load(), st.pipelines.Load(), st.replies.Load(), st.mixed.Load(), st.errs.Load(), st.errKinds,
		st.exact.Load(), st.relaxed.Load())
	for _, v := range st.violations {
		t.Error(v)
	}
	if st.kills.Load() < 3 || st.errs.Load() == 0 || st.exact.Load() == 0 {
		t.Errorf("the run did not exercise faults: %d kills, %d errors, %d exact checks", st.kills.Load(), st.errs.Load(), st.exact.Load())
	}
}

// connectAll connects n clients at once.
func connectAll(t *testing.T, f *proxytest.Fixture, n int, st *integrityStats, ep []atomic.Uint64) []*integrityClient {
	clients := make([]*integrityClient, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			clients[i] = newIntegrityClient(f, i, st, ep)
			clients[i].c, errs[i] = dialRetrying(t, f.Addr)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("client %d: dial: %v", i, err)
		}
		t.Cleanup(func() { clients[i].c.Net.Close() })
	}
	return clients
}

// dialRetrying connects to addr, retrying for a second while the listen
// queue is full.
func dialRetrying(t *testing.T, addr string) (*proxytest.Conn, error) {
	var err error
	for i := 0; i < 50; i++ {
		var c *proxytest.Conn
		if c, err = proxytest.TryDial(t, addr); err == nil {
			return c, nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil, err
}

// checkStillServed checks that every client connection still answers.
func checkStillServed(t *testing.T, clients []*integrityClient) {
	t.Helper()
	bad := 0
	for _, cl := range clients {
		if rep, err := cl.c.TryDo(5*time.Second, "PING"); err != nil || rep.Str != "PONG" {
			if bad++; bad <= 3 {
				t.Errorf("client %d: PING after the run: %v %v", cl.id, rep, err)
			}
		}
	}
}
