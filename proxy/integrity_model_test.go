package proxy_test

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/shardproxy/shardproxy/internal/proxytest"
)

// keyModel is what one integrity client knows about one of its keys. A value
// is certain when it was confirmed under the shard epoch the current
// pipeline started in, and no kill happened while the pipeline ran.
type keyModel struct {
	name    string
	shard   int
	counter bool
	known   bool
	exists  bool
	val     string // string value, or the counter in decimal
	epoch   uint64 // shard epoch under which val was confirmed
}

// integrityCmd is one command of a pipeline and the keys it touches.
type integrityCmd struct {
	op   string // SET, GET, MSET, MGET, DEL, INCR
	keys []*keyModel
	vals []string // values written by SET and MSET
}

// args returns the command's RESP arguments.
func (c *integrityCmd) args() []string {
	a := []string{c.op}
	for i, k := range c.keys {
		a = append(a, k.name)
		if c.vals != nil {
			a = append(a, c.vals[i])
		}
	}
	return a
}

// integrityStats are the integrity run's totals, shared by all clients.
type integrityStats struct {
	pipelines, replies, errs     atomic.Int64
	exact, relaxed, kills, mixed atomic.Int64
	mu                           sync.Mutex
	errKinds                     map[string]int
	violations                   []string
}

// violation records a reply that contradicts the model.
func (st *integrityStats) violation(format string, args ...any) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if len(st.violations) < 20 {
		st.violations = append(st.violations, fmt.Sprintf(format, args...))
	}
}

// faultErrors are the error replies a client may get while a backend is
// killed and restarted.
var faultErrors = []string{"ERR server unavailable: ", "ERR timeout: "}

// noteError counts an error reply and reports whether it is one a backend
// fault explains.
func (st *integrityStats) noteError(msg string) bool {
	st.errs.Add(1)
	kind := ""
	for _, k := range faultErrors {
		if strings.HasPrefix(msg, k) {
			kind = strings.TrimSuffix(k, ": ")
		}
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if kind == "" {
		return false
	}
	if i := strings.LastIndex(msg, ": "); i >= 0 {
		kind += " (" + causeClass(msg[i+2:]) + ")"
	}
	st.errKinds[kind]++
	return true
}

// causeClass drops addresses from an error cause.
func causeClass(cause string) string {
	for _, c := range []string{"connection refused", "connection reset by peer", "broken pipe", "EOF", "no reply within"} {
		if strings.Contains(cause, c) {
			return c
		}
	}
	return cause
}

// checkValue checks one read value of k against the model: exactly when
// certain, else nil or a value this client could have written to k. It
// returns the value to adopt, and false on a violation.
func (cl *integrityClient) checkValue(k *keyModel, rep proxytest.Reply, certain bool) (string, bool, bool) {
	st := cl.st
	if rep.Kind != '$' {
		st.violation("client %d GET %s: got %v, want a bulk string", cl.id, k.name, rep)
		return "", false, false
	}
	if !rep.Null && !cl.ownValue(k, rep.Str) {
		st.violation("client %d GET %s: got %q, a value this client never wrote to it", cl.id, k.name, rep.Str)
		return "", false, false
	}
	if !certain {
		st.relaxed.Add(1)
		return rep.Str, !rep.Null, true
	}
	st.exact.Add(1)
	if rep.Null == k.exists || (k.exists && rep.Str != k.val) {
		st.violation("client %d GET %s: got %v, want exists=%v %q", cl.id, k.name, rep, k.exists, k.val)
		return "", false, false
	}
	return rep.Str, !rep.Null, true
}

// ownValue reports whether v is a value this client writes to k.
func (cl *integrityClient) ownValue(k *keyModel, v string) bool {
	if k.counter {
		_, err := strconv.ParseInt(v, 10, 64)
		return err == nil
	}
	return strings.HasPrefix(v, cl.valuePrefix(k))
}

func (cl *integrityClient) valuePrefix(k *keyModel) string {
	return fmt.Sprintf("c%d:%s:", cl.id, k.name)
}

// learn sets k's model after a successful command: known only when no kill
// happened on its shard while the pipeline ran.
func learn(k *keyModel, exists bool, val string, pre, post []uint64) {
	k.known = pre[k.shard] == post[k.shard]
	k.exists, k.val, k.epoch = exists, val, pre[k.shard]
}

// certain reports whether k's model is exact for a pipeline that ran
// between the epoch snapshots pre and post.
func certain(k *keyModel, pre, post []uint64) bool {
	return k.known && k.epoch == pre[k.shard] && pre[k.shard] == post[k.shard]
}
