package proxy

import (
	"bytes"
	"maps"

	"github.com/shardproxy/shardproxy/codec/resp"
	"github.com/shardproxy/shardproxy/pools"
)

// The subscriptions' readers (each reads one session connection of a
// subscriber and writes its messages to the client), and the end of a
// client's subscriptions. See pubsub.go.

// read forwards what a server sends on a subscription connection:
// messages to the client, confirmations to the client's goroutine. A
// connection that fails ends the client, which Redis's would have lost
// too: it reconnects and subscribes again; so does a client over
// client_output_limit, as Redis's pubsub output buffer limit ends it.
func (sb *subscriber) read(srv *pools.Server, conn *pools.SessionConn) {
	defer sb.wg.Done()
	var out []byte // messages read together, written in one write
	for {
		rep, err := conn.ReadReply()
		if err != nil {
			sb.fail()
			return
		}
		if isMessage(rep) {
			out = append(out, rep...)
			if conn.Buffered() && len(out) < 64<<10 {
				continue
			}
			if !sb.forward(out) {
				sb.fail()
				return
			}
			out = out[:0]
			if cap(out) > 256<<10 {
				out = nil
			}
			continue
		}
		if sb.shardMoved(srv, conn, rep) {
			continue
		}
		select {
		case sb.confirms <- confirm{srv, append([]byte(nil), rep...)}:
		case <-sb.done:
			return
		}
	}
}

// forward writes messages (whole, one after another) to the client, or
// holds them while the client's goroutine confirms a command. It returns
// false when the client must be ended.
func (sb *subscriber) forward(msgs []byte) bool {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	if sb.failed {
		return false
	}
	if sb.resp2 && msgs[0] == '>' {
		// A RESP3 connection's pushes, to a client that said HELLO 2
		// since: the same messages as RESP2 arrays.
		for at := 0; at < len(msgs); {
			n, err := resp.ReadReply(msgs[at:])
			if err != nil || n == 0 {
				break
			}
			msgs[at] = '*'
			at += n
		}
	}
	msg := msgs
	if sb.holding {
		sb.held = append(sb.held, msg...)
		return true
	}
	return sb.cl.sendNow(msg, nil)
}

// subscriptionProtocol records the protocol a subscribed client speaks
// from now on (HELLO): its messages are written in it.
func (cl *client) subscriptionProtocol(resp3 bool) {
	if sb := cl.sub.Load(); sb != nil {
		sb.mu.Lock()
		sb.resp2 = !resp3
		sb.mu.Unlock()
	}
}

// fail ends the client from a reader, unless its subscriptions are
// ending anyway. Its socket is shut down, not closed: whoever waits on
// it, the client's goroutine or, while the client is parked, the parker,
// sees the end and ends the client as one that left, subscriptions and
// all. (A closed socket would leave the epoll set unseen, and the parked
// client, its readers and its session connections, never ended.)
func (sb *subscriber) fail() {
	sb.mu.Lock()
	first := !sb.closing && !sb.failed
	sb.failed = true
	sb.mu.Unlock()
	if first {
		close(sb.lost)
		sb.cl.shutdown()
	}
}

// Messages as servers send them, RESP2 and RESP3: each starts so.
var messagePrefixes = [][]byte{
	[]byte("*3\r\n$7\r\nmessage\r\n"), []byte(">3\r\n$7\r\nmessage\r\n"),
	[]byte("*4\r\n$8\r\npmessage\r\n"), []byte(">4\r\n$8\r\npmessage\r\n"),
	[]byte("*3\r\n$8\r\nsmessage\r\n"), []byte(">3\r\n$8\r\nsmessage\r\n"),
}

// isMessage reports whether a reply on a subscription connection is a
// message (message, pmessage, smessage) rather than a confirmation: by
// its first bytes, without decoding it.
func isMessage(rep []byte) bool {
	for _, p := range messagePrefixes {
		if bytes.HasPrefix(rep, p) {
			return true
		}
	}
	return false
}

var resetFrame = resp.AppendCommand(nil, []byte("RESET"))

// resetSubscriptions ends the client's subscriptions for its RESET. Each
// connection is reset first, and its +RESET awaited, so that the servers
// have forgotten the subscriptions when the client reads its +RESET (a
// PUBLISH then reaches nobody, as on Redis); the messages that come
// before are written to the client first.
func (cl *client) resetSubscriptions() {
	sb := cl.sub.Load()
	if sb == nil {
		return
	}
	sb.mu.Lock()
	conns := maps.Clone(sb.conns)
	sb.mu.Unlock()
	expect := make(map[*pools.Server]int, len(conns))
	for srv, c := range conns {
		if c.Write(resetFrame) == nil {
			expect[srv] = 1
		}
	}
	if err := sb.awaitConfirmations(expect); err != nil {
		cl.p.log.Debug("RESET of a subscriber", "err", err)
	}
	cl.endSubscriptions()
}

// endSubscriptions ends the client's subscriptions: their connections
// are closed, their readers stopped.
func (cl *client) endSubscriptions() {
	sb := cl.sub.Load()
	if sb == nil {
		return
	}
	sb.mu.Lock()
	sb.closing = true
	conns := sb.conns
	sb.conns = nil
	sb.mu.Unlock()
	close(sb.done)
	for _, c := range conns {
		c.Interrupt()
	}
	sb.wg.Wait()
	for _, c := range conns {
		c.Close()
	}
	cl.sub.Store(nil)
}
