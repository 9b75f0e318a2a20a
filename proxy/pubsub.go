package proxy

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/shardproxy/shardproxy/codec/resp"
	"github.com/shardproxy/shardproxy/commands"
	"github.com/shardproxy/shardproxy/pools"
)

// Pub/sub. A channel lives on one server, the one a key of the same name
// lives on, so that PUBLISH and SUBSCRIBE of a channel meet; a pattern is
// subscribed on every server (in a cluster pool, which sends every
// message to every node, on one: see cluster_pubsub.go). A subscribed client has a session connection
// (pools.Server.Session) of its own to each server it subscribed on, and a
// reader goroutine per connection that writes the messages to the client
// as the server sent them (in the client's protocol: the connection said
// HELLO 3 for a RESP3 client). The client's goroutine sends each
// subscription command to the servers concerned, waits for their
// confirmations, and writes Redis's confirmations itself, with the
// client's own counts, in the order of the command's arguments; messages
// that come meanwhile wait until they are written.

// confirmWait bounds the wait for a server's confirmation.
const confirmWait = 10 * time.Second

// confirm is a reply other than a message on a subscription connection:
// a confirmation, an error, or RESET's.
type confirm struct {
	srv *pools.Server
	rep []byte
}

// errSubsLost: a subscription command did not end as it does on Redis
// (a server's connection failed, or one server refused what another
// made), so what the servers hold for the client is not known.
var errSubsLost = errors.New("the subscriptions are lost")

// pubsubRequest answers a subscription command or PUBSUB, and any
// request of a RESP2 client while it is subscribed (RESP3 clients may send
// any command then).
func (r *redisProto) pubsubRequest(cl *client, bt *batch, cmd *commands.Command, args [][]byte) {
	sb := cl.sub.Load()
	switch {
	case cmd.Subscription == commands.SubInfo && (sb == nil || cl.resp3):
		r.pubsubInfo(cl, bt, args)
		return
	case cmd.Subscription != commands.SubNone && cmd.Subscription != commands.SubInfo:
	case cmd.Name == "PING" && len(args) > 2:
		r.write(cl, bt, resp.AppendError(nil, commands.ArityError(args[0])))
		return
	case cmd.Name == "PING":
		// RESP2's subscribed PING: ["pong", message].
		dst := resp.AppendArray(nil, 2)
		dst = resp.AppendBulkString(dst, "pong")
		msg := []byte{}
		if len(args) == 2 {
			msg = args[1]
		}
		r.write(cl, bt, resp.AppendBulk(dst, msg))
		return
	default:
		r.write(cl, bt, resp.AppendError(nil, fmt.Sprintf("ERR Can't execute '%s': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context", fullName(cmd, args))))
		return
	}
	if bt.rt.slots != nil && cmd.Subscription&commands.SubShard != 0 && !sameSlot(args[1:]) {
		// Shard channels of several slots: a node's answer.
		r.write(cl, bt, resp.AppendError(nil, crossSlot))
		return
	}
	if sb == nil {
		if cmd.Subscription&commands.SubEnd != 0 {
			// Subscribed to nothing: each name is confirmed (none: a
			// null), with a count of 0, as Redis does.
			var out []byte
			for _, t := range args[1:] {
				out = r.confirmation(out, cl, cmd, t, 0)
			}
			if len(args) == 1 {
				out = r.confirmation(out, cl, cmd, nil, 0)
			}
			r.write(cl, bt, out)
			return
		}
		sb = newSubscriber(cl)
		cl.sub.Store(sb)
	}
	cur := bt.holdServed()
	r.flushAnswers(cl, bt)
	out, err := r.subscribe(cl, sb, bt.rt, cmd, args[1:])
	if bt.rt.slots != nil {
		out, err = r.followSubscribe(cl, sb, bt, cmd, args[1:], out, err)
	}
	sb.mu.Lock()
	if err != nil {
		out = resp.AppendError(out, "ERR "+err.Error())
	}
	out = append(out, sb.held...)
	sb.held, sb.holding = nil, false // an idle subscriber holds no buffer
	empty := sb.count(commands.SubChannel)+sb.count(commands.SubShard) == 0
	ok := cl.sendNow(out, nil)
	sb.mu.Unlock()
	bt.putServed(cur, err != nil)
	if !ok || errors.Is(err, errSubsLost) {
		// What the servers hold for the client is not known: it is
		// closed, and subscribes again as after a lost connection.
		cl.leaving = true
		cl.closeConn()
	}
	if empty {
		cl.endSubscriptions()
	}
}

// containers are the commands with subcommands, which Redis names
// "command|subcommand" in its errors.
var containers = map[string]bool{"ACL": true, "CLIENT": true, "CLUSTER": true, "COMMAND": true, "CONFIG": true,
	"FUNCTION": true, "LATENCY": true, "MEMORY": true, "MODULE": true, "OBJECT": true, "PUBSUB": true, "SCRIPT": true,
	"SLOWLOG": true, "XGROUP": true, "XINFO": true}

// fullName is a command's name as Redis's errors give it: "client|id".
func fullName(cmd *commands.Command, args [][]byte) string {
	if containers[cmd.Name] && len(args) > 1 {
		return strings.ToLower(cmd.Name + "|" + string(args[1]))
	}
	return strings.ToLower(cmd.Name)
}

// write writes a reply of the proxy's own to a subscribed client, after
// the replies before it.
func (r *redisProto) write(cl *client, bt *batch, reply []byte) {
	cur := bt.holdServed()
	r.flushAnswers(cl, bt)
	if !cl.send(reply, nil) {
		cl.leaving = true
	}
	bt.putServed(cur, resp.IsError(reply))
}

// flushAnswers writes the replies the batch holds so far: they come
// before what is written now. The batch holds no calls (a subscription
// command starts a batch of its own) but local answers.
func (r *redisProto) flushAnswers(cl *client, bt *batch) {
	if len(bt.answers) == 0 {
		return
	}
	cl.p.stats.requests.Add(int64(len(bt.answers)))
	if !cl.writeReplies(bt, r) {
		cl.leaving = true
	}
	bt.answers = bt.answers[:0]
	bt.local = bt.local[:0]
}

// subscribe runs one subscription command for targets (channels or
// patterns; none: all of the kind, for an UN- form) and returns Redis's
// confirmations, one per target. It leaves sb holding: the caller writes
// the confirmations, then the messages held.
func (r *redisProto) subscribe(cl *client, sb *subscriber, rt *routing, cmd *commands.Command, targets [][]byte) ([]byte, error) {
	kind, end := cmd.Subscription&^commands.SubEnd, cmd.Subscription&commands.SubEnd != 0
	sb.mu.Lock()
	sb.holding = true
	if end && len(targets) == 0 {
		for _, t := range sb.names(kind) {
			targets = append(targets, []byte(t))
		}
	}
	// Which servers each target concerns, for the targets that change.
	send := map[*pools.Server][][]byte{}
	seen := map[string]bool{}
	for _, t := range targets {
		name := string(t)
		if seen[name] || sb.has(kind, name) != end {
			continue
		}
		seen[name] = true
		for _, srv := range sb.servers(kind, name, rt) {
			send[srv] = append(send[srv], t)
		}
		if kind == commands.SubShard && end {
			sb.leaving[name] = true
		}
	}
	sb.mu.Unlock()
	defer func() {
		sb.mu.Lock()
		clear(sb.leaving)
		sb.mu.Unlock()
	}()
	if end && len(targets) == 0 {
		return r.confirmation(nil, cl, cmd, nil, sb.count(kind)), nil
	}
	if err := r.sendSubscriptions(cl, sb, cmd, send); err != nil {
		return nil, err
	}
	expect := make(map[*pools.Server]int, len(send))
	for srv, ts := range send {
		expect[srv] = len(ts)
	}
	if err := sb.awaitConfirmations(expect); err != nil {
		return nil, err
	}
	var out []byte
	sb.mu.Lock()
	defer sb.mu.Unlock()
	for _, t := range targets {
		name := string(t)
		if end {
			sb.remove(kind, name)
		} else {
			sb.add(kind, name, rt)
		}
		out = r.confirmation(out, cl, cmd, t, sb.count(kind))
	}
	return out, nil
}

// sendSubscriptions sends the command, with its targets, to each server.
// It first opens the subscriber's connection to each server it has none
// to yet, so that a refusal (server_sessions) comes before any server
// was sent anything: the subscriptions are then as they were.
func (r *redisProto) sendSubscriptions(cl *client, sb *subscriber, cmd *commands.Command, send map[*pools.Server][][]byte) error {
	conns := make(map[*pools.Server]*pools.SessionConn, len(send))
	for srv := range send {
		sb.mu.Lock()
		conn := sb.conns[srv]
		sb.mu.Unlock()
		if conn == nil {
			var err error
			if conn, err = srv.Session(cl.resp3); err != nil {
				return err
			}
			sb.mu.Lock()
			sb.conns[srv] = conn
			sb.mu.Unlock()
			sb.wg.Add(1)
			go sb.read(srv, conn)
		}
		conns[srv] = conn
	}
	for srv, ts := range send {
		frame := resp.AppendCommand(nil, append([][]byte{[]byte(cmd.Name)}, ts...)...)
		if err := conns[srv].Write(frame); err != nil {
			return fmt.Errorf("%w: %w", errSubsLost, err)
		}
	}
	return nil
}

// awaitConfirmations waits for the confirmations each server owes (a
// confirmation per target, or one error for them all). A server's error
// fails the command, which leaves the subscriptions as they were only
// when no other server confirmed; else they are lost (errSubsLost), as
// they are when a server does not answer.
func (sb *subscriber) awaitConfirmations(expect map[*pools.Server]int) error {
	timer := time.NewTimer(confirmWait)
	defer timer.Stop()
	left, confirmed := 0, false
	for _, n := range expect {
		left += n
	}
	var refused []byte
	for left > 0 {
		select {
		case c := <-sb.confirms:
			if expect[c.srv] == 0 {
				return fmt.Errorf("%w: unexpected reply from %s: %s", errSubsLost, c.srv.Name(), resp.Clip(c.rep))
			}
			if resp.IsError(c.rep) {
				left -= expect[c.srv]
				expect[c.srv] = 0
				refused = c.rep
				continue
			}
			expect[c.srv]--
			left--
			confirmed = true
		case <-sb.done:
			return fmt.Errorf("%w: a server connection failed", errSubsLost)
		case <-sb.lost:
			return fmt.Errorf("%w: a server connection failed", errSubsLost)
		case <-timer.C:
			return fmt.Errorf("%w: no confirmation from the servers within %v", errSubsLost, confirmWait)
		}
	}
	switch {
	case refused != nil && confirmed:
		return fmt.Errorf("%w: a server refused the subscription: %s", errSubsLost, resp.Clip(refused))
	case refused != nil:
		return refusal{refused}
	}
	return nil
}

// refusal is the error of a subscription command that every server
// concerned refused, with the (last) refusal: the subscriptions are as
// they were.
type refusal struct{ rep []byte }

func (e refusal) Error() string {
	return "a server refused the subscription: " + resp.Clip(e.rep)
}

// confirmation appends Redis's confirmation of cmd for target (nil: none)
// with the client's count.
func (r *redisProto) confirmation(dst []byte, cl *client, cmd *commands.Command, target []byte, count int) []byte {
	if cl.resp3 {
		dst = resp.AppendPush(dst, 3)
	} else {
		dst = resp.AppendArray(dst, 3)
	}
	dst = resp.AppendBulkString(dst, strings.ToLower(cmd.Name))
	if target == nil {
		dst = appendNull(dst, cl.resp3)
	} else {
		dst = resp.AppendBulk(dst, target)
	}
	return resp.AppendInt(dst, int64(count))
}
