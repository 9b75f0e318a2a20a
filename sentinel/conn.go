package sentinel

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/shardproxy/shardproxy/codec/resp"
)

// keepAlive is TCP keepalive on the connections to the Sentinels; the
// subscription's PINGs (subscribe.go) find a silent Sentinel sooner.
var keepAlive = net.KeepAliveConfig{Enable: true, Idle: 10 * time.Second, Interval: 5 * time.Second, Count: 3}

// longAgo is a deadline in the past: setting it makes a blocked read or
// write on a connection return at once.
var longAgo = time.Unix(1, 0)

// conn is one connection to a Sentinel.
type conn struct {
	addr    string
	nc      net.Conn
	r       *resp.Reader
	timeout time.Duration // for each exchange of commands and replies
	buf     []byte
}

// dial connects to the Sentinel at addr and sends AUTH when opt has a
// password, each within opt.Timeout and while ctx lasts.
func dial(ctx context.Context, addr string, opt *Options) (*conn, error) {
	d := net.Dialer{Timeout: opt.Timeout, KeepAliveConfig: keepAlive}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	c := &conn{addr: addr, nc: nc, r: resp.NewReader(nc, maxReply), timeout: opt.Timeout}
	if opt.Password == "" {
		return c, nil
	}
	auth := []string{"AUTH", opt.Password}
	if opt.Username != "" {
		auth = []string{"AUTH", opt.Username, opt.Password}
	}
	r, err := c.do(ctx, auth)
	if err == nil {
		if e, ok := r[0].(replyError); ok {
			err = fmt.Errorf("AUTH: %w", e)
		}
	}
	if err != nil {
		nc.Close()
		return nil, err
	}
	return c, nil
}

// close closes the connection.
func (c *conn) close() { c.nc.Close() }

// do sends cmds in one write and reads one reply to each, within c.timeout
// and while ctx lasts; an error reply is a replyError among the replies.
// It leaves the deadline set: a caller that goes on reading without one
// clears it.
func (c *conn) do(ctx context.Context, cmds ...[]string) ([]any, error) {
	deadline := time.Now().Add(c.timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	c.nc.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { c.nc.SetDeadline(longAgo) })
	defer stop()
	c.buf = c.buf[:0]
	for _, cmd := range cmds {
		args := make([][]byte, len(cmd))
		for i, a := range cmd {
			args[i] = []byte(a)
		}
		c.buf = resp.AppendCommand(c.buf, args...)
	}
	replies := make([]any, len(cmds))
	_, err := c.nc.Write(c.buf)
	for i := 0; i < len(replies) && err == nil; i++ {
		replies[i], err = readReply(c.r)
	}
	if err != nil {
		if cerr := contextErr(ctx); cerr != nil {
			return nil, cerr
		}
		return nil, err
	}
	return replies, nil
}

// maxReply bounds one reply from a Sentinel, whose replies are small: a
// longer one is a protocol error rather than memory spent on a broken or
// hostile peer. The codec bounds the nesting (resp.MaxReplyDepth).
const maxReply = 1 << 24

// replyError is an error reply ("-ERR ...") from a Sentinel. It is a value
// of the reply, not a failure of the connection, which stays usable.
type replyError string

func (e replyError) Error() string { return string(e) }

// errProtocol marks a reply that is not valid RESP2; the connection is
// then out of step and must be closed.
var errProtocol = errors.New("sentinel: protocol error")

// readReply reads one RESP2 reply from r: a string for a simple or bulk
// string, int64 for an integer, nil for a null bulk string or array, []any
// for an array, and a replyError for an error reply. An error return is a
// read failure (io.EOF between replies, io.ErrUnexpectedEOF inside one),
// or malformed input or a reply of a RESP3 type (wrapping errProtocol);
// after it the connection is no longer in step.
func readReply(r *resp.Reader) (any, error) {
	v, err := r.ReadValue()
	var malformed *resp.Error
	if errors.As(err, &malformed) {
		return nil, fmt.Errorf("%w: %v", errProtocol, err)
	}
	if err != nil {
		return nil, err
	}
	return plain(v)
}

// plain turns a reply into the values readReply returns.
func plain(v resp.Value) (any, error) {
	if v.Attrs != nil {
		return nil, fmt.Errorf("%w: RESP3 attribute", errProtocol)
	}
	switch v.Kind {
	case resp.KindSimple:
		return string(v.Str), nil
	case resp.KindError:
		return replyError(v.Str), nil
	case resp.KindInteger:
		return v.Int, nil
	case resp.KindBulk:
		if v.Null {
			return nil, nil
		}
		return string(v.Str), nil
	case resp.KindArray:
		if v.Null {
			return nil, nil
		}
		a := make([]any, len(v.Elems))
		for i, e := range v.Elems {
			var err error
			if a[i], err = plain(e); err != nil {
				return nil, err
			}
		}
		return a, nil
	}
	return nil, fmt.Errorf("%w: unexpected reply type %q", errProtocol, byte(v.Kind))
}

// contextErr is ctx.Err(), or context.DeadlineExceeded as soon as ctx's
// deadline has passed: a connection given the same deadline may notice it
// before ctx does.
func contextErr(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) {
		return context.DeadlineExceeded
	}
	return nil
}

// answer is what a Sentinel said a master's address is.
type answer struct {
	addr  string // ip:port
	epoch int64  // the master's config-epoch at that Sentinel; -1 if unknown
}

// masterAddr asks for master's address (SENTINEL GET-MASTER-ADDR-BY-NAME)
// and, in the same round trip, its config-epoch (from SENTINEL MASTER),
// which tells a newer answer from an older one. The address is the one
// GET-MASTER-ADDR-BY-NAME gives, because during a failover it names the
// promoted replica before SENTINEL MASTER does.
func (c *conn) masterAddr(ctx context.Context, master string) (answer, error) {
	r, err := c.do(ctx, []string{"SENTINEL", "GET-MASTER-ADDR-BY-NAME", master}, []string{"SENTINEL", "MASTER", master})
	if err != nil {
		return answer{}, err
	}
	addr, err := parseMasterAddr(r[0])
	if err != nil {
		return answer{}, err
	}
	epoch := int64(-1)
	if f, ok := fields(r[1]); ok {
		if n, err := strconv.ParseInt(f["config-epoch"], 10, 64); err == nil {
			epoch = n
		}
	}
	return answer{addr: addr, epoch: epoch}, nil
}

// ErrUnknownMaster is the error, among those of a failed Resolve or
// Replicas, of a Sentinel that does not monitor the master asked for.
var ErrUnknownMaster = errors.New("unknown master")

// parseMasterAddr reads the reply to SENTINEL GET-MASTER-ADDR-BY-NAME.
func parseMasterAddr(v any) (string, error) {
	switch v := v.(type) {
	case nil:
		return "", ErrUnknownMaster
	case replyError:
		return "", v
	case []any:
		if len(v) == 2 {
			ip, ok1 := v[0].(string)
			port, ok2 := v[1].(string)
			if ok1 && ok2 && ip != "" && port != "" {
				return net.JoinHostPort(ip, port), nil
			}
		}
	}
	return "", fmt.Errorf("%w: reply %v to GET-MASTER-ADDR-BY-NAME", errProtocol, v)
}

// replicas asks for master's replicas (SENTINEL REPLICAS, or SENTINEL
// SLAVES of a Sentinel older than Redis 5) and returns those fit to
// serve reads.
func (c *conn) replicas(ctx context.Context, master string) ([]string, error) {
	r, err := c.do(ctx, []string{"SENTINEL", "REPLICAS", master})
	if err != nil {
		return nil, err
	}
	if e, ok := r[0].(replyError); ok && strings.Contains(strings.ToLower(string(e)), "subcommand") {
		if r, err = c.do(ctx, []string{"SENTINEL", "SLAVES", master}); err != nil {
			return nil, err
		}
	}
	return parseReplicas(r[0])
}

// parseReplicas reads the reply to SENTINEL REPLICAS: the address of
// each replica not flagged down or disconnected.
func parseReplicas(v any) ([]string, error) {
	if e, ok := v.(replyError); ok {
		if strings.Contains(string(e), "No such master") {
			return nil, fmt.Errorf("%w (%v)", ErrUnknownMaster, e)
		}
		return nil, e
	}
	list, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("%w: reply %v to SENTINEL REPLICAS", errProtocol, v)
	}
	addrs := []string{}
	for _, item := range list {
		f, ok := fields(item)
		if !ok || f["ip"] == "" || f["port"] == "" {
			return nil, fmt.Errorf("%w: replica %v in SENTINEL REPLICAS", errProtocol, item)
		}
		if !usable(f["flags"]) {
			continue
		}
		addrs = append(addrs, net.JoinHostPort(f["ip"], f["port"]))
	}
	return addrs, nil
}

// usable tells whether a replica with these Sentinel flags can serve.
func usable(flags string) bool {
	for _, f := range strings.Split(flags, ",") {
		switch f {
		case "s_down", "o_down", "disconnected":
			return false
		}
	}
	return true
}

// fields reads a flat array of field names and values, as SENTINEL MASTER
// and each element of SENTINEL REPLICAS give.
func fields(v any) (map[string]string, bool) {
	a, ok := v.([]any)
	if !ok || len(a)%2 != 0 {
		return nil, false
	}
	m := make(map[string]string, len(a)/2)
	for i := 0; i < len(a); i += 2 {
		k, ok1 := a[i].(string)
		val, ok2 := a[i+1].(string)
		if !ok1 || !ok2 {
			return nil, false
		}
		m[k] = val
	}
	return m, true
}
