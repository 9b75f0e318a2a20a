package proxy

import (
	"bytes"
	"encoding/base64"

	"github.com/shardproxy/shardproxy/codec/memcache"
	"github.com/shardproxy/shardproxy/codec/resp"
	"github.com/shardproxy/shardproxy/commands"
	"github.com/shardproxy/shardproxy/config"
	"github.com/shardproxy/shardproxy/pools"
)

// Merges of split memcache requests.
const (
	mergeValues uint8 = iota + 10 // get/gets/gat/gats: VALUE blocks in key order, one END
	mergeAllOK                    // flush_all: OK once every server said OK
)

// memcacheProto serves memcache text-protocol clients (a pool with
// redis: false, nutcracker's default).
type memcacheProto struct {
	p *pool
}

// maxMemcacheValue bounds a value the proxy accepts: memcached's default
// item limit is 1 MB, but servers run with -I up to 1 GB; the request size
// limit bounds it further.
const maxMemcacheValue = 128 << 20

func newMemcacheProto(p *pool) *memcacheProto {
	return &memcacheProto{p: p}
}

// quietKind marks a call whose frame ends with an added "mn": a quiet meta
// request may or may not be answered, so the proxy sends a no-op after it
// and its reply is whatever comes before the "MN".
const quietKind = 0x80

var mnReply = []byte("MN\r\n")

// memcacheServers is the memcache text protocol towards a pool's servers.
type memcacheServers struct{}

func (memcacheServers) framer() pools.Framer {
	return func(b []byte, kind uint8) (int, error) {
		cmd := memcache.Command(kind &^ quietKind)
		if kind&quietKind == 0 {
			return memcache.ReadReply(b, cmd)
		}
		off := 0
		for {
			if bytes.HasPrefix(b[off:], mnReply) {
				return off + len(mnReply), nil
			}
			n, err := memcache.ReadReply(b[off:], cmd)
			if err != nil || n == 0 {
				return 0, err
			}
			off += n
		}
	}
}

func (memcacheServers) isError(reply []byte) bool {
	return bytes.HasPrefix(reply, []byte("ERROR")) || bytes.HasPrefix(reply, []byte("CLIENT_ERROR")) ||
		bytes.HasPrefix(reply, []byte("SERVER_ERROR"))
}

func (memcacheServers) handshake(*config.Pool) [][]byte { return nil }

func (memcacheServers) ping() []byte { return []byte("version\r\n") }

func (memcacheServers) hello3() []byte { return nil }

func (memcacheServers) isPush([]byte) bool { return false }

func (m *memcacheProto) refuse(dst []byte) []byte {
	return append(dst, "SERVER_ERROR max number of clients reached\r\n"...)
}

func (m *memcacheProto) tooLarge(dst []byte) []byte {
	return append(dst, "SERVER_ERROR object too large for cache\r\n"...)
}

// noServer answers a request whose key has no server in the ring (every
// server ejected): a forwarding error, as nutcracker counts it.
func (m *memcacheProto) noServer(bt *batch) {
	m.p.stats.forwardError.Add(1)
	mcLine(bt, "SERVER_ERROR no server available in pool "+bt.rt.cfg.Name)
}

func mcLine(bt *batch, line string) {
	start := bt.localStart()
	bt.local = append(bt.local, line...)
	bt.local = append(bt.local, "\r\n"...)
	bt.localEnd(start)
}

func (m *memcacheProto) parse(cl *client, b []byte, bt *batch) (int, bool) {
	req := &bt.mreq
	n, err := memcache.ReadRequest(b, req, bt.rt.lim.memcache)
	if err != nil {
		e, ok := err.(*memcache.Error)
		if !ok {
			cl.countEnd(&m.p.stats.clientErr) // closed below: a client error
			mcLine(bt, "CLIENT_ERROR "+err.Error())
			return len(b), true
		}
		if !e.NoReply {
			mcLine(bt, e.Reply)
		}
		if e.Close || n == 0 {
			// The stream cannot be read further and the client is
			// closed: a client error, as nutcracker counts a parse
			// error. An error answered without closing is not one.
			cl.countEnd(&m.p.stats.clientErr)
			return len(b), true
		}
		bt.countCommand(&m.p.stats, uint16(req.Cmd))
		if e.NoReply {
			bt.failedSilently()
		}
		if e.Swallow > 0 && req.Cmd == memcache.CmdSet && len(req.Keys) == 1 {
			m.dropStale(cl, bt, req)
		}
		cl.swallow = e.Swallow
		return n, false
	}
	if n == 0 {
		return 0, false
	}
	bt.countCommand(&m.p.stats, uint16(req.Cmd))
	frame := b[:n]
	switch req.Cmd {
	case memcache.CmdQuit:
		cl.countEnd(&m.p.stats.clientEOF) // the client leaves, as nutcracker counts it
		return n, true
	case memcache.CmdVersion:
		mcLine(bt, "VERSION "+Version)
	case memcache.CmdVerbosity:
		if !req.NoReply {
			mcLine(bt, "OK")
		}
	case memcache.CmdMn:
		mcLine(bt, "MN")
	case memcache.CmdStats:
		mcLine(bt, "SERVER_ERROR stats is not served by the proxy: read the stats port")
	case memcache.CmdFlushAll:
		m.broadcast(cl, bt, frame, req)
	case memcache.CmdUnknown:
		mcLine(bt, "ERROR")
	default:
		if req.Cmd.Retrieval() && len(req.Keys) > 1 {
			m.splitGet(cl, bt, req, frame)
			break
		}
		if len(req.Keys) == 0 {
			if req.Cmd.Retrieval() {
				mcLine(bt, "END")
			} else {
				mcLine(bt, "ERROR")
			}
			break
		}
		srv := bt.rt.server(routingKey(req))
		if srv == nil {
			m.noServer(bt)
			break
		}
		kind := uint8(req.Cmd)
		if req.Quiet {
			start := len(bt.scratch)
			bt.scratch = append(bt.scratch, frame...)
			bt.scratch = append(bt.scratch, "mn\r\n"...)
			frame = bt.scratch[start:]
			kind |= quietKind
		}
		bt.forward(cl, srv, frame, kind, req.NoReply)
	}
	return n, false
}

// dropStale deletes the key of a set refused as too large, as memcached
// does so that the old value does not outlive a failed set: a "delete <key>
// noreply" goes to the key's server, in order with the client's requests.
func (m *memcacheProto) dropStale(cl *client, bt *batch, req *memcache.Request) {
	srv := bt.rt.server(routingKey(req))
	if srv == nil {
		return
	}
	start := len(bt.scratch)
	bt.scratch = append(bt.scratch, "delete "...)
	bt.scratch = append(bt.scratch, req.Keys[0]...)
	bt.scratch = append(bt.scratch, " noreply\r\n"...)
	bt.forward(cl, srv, bt.scratch[start:], uint8(memcache.CmdDelete), true)
}

// routingKey is the key a request is placed by: a meta request's base64
// key (flag b) is decoded first, so it lands where the plain key does.
func routingKey(req *memcache.Request) []byte {
	key := req.Keys[0]
	if !req.Base64Key {
		return key
	}
	var buf [memcache.MaxKeyLen]byte
	n, err := base64.StdEncoding.Decode(buf[:], key)
	if err != nil || n > len(buf) {
		return key
	}
	return append([]byte(nil), buf[:n]...)
}

// broadcast sends flush_all to every server of the pool.
func (m *memcacheProto) broadcast(cl *client, bt *batch, frame []byte, req *memcache.Request) {
	rt := bt.rt
	if len(rt.ring) == 0 {
		m.noServer(bt)
		return
	}
	bt.answers = append(bt.answers, answer{first: bt.ncalls, n: len(rt.ring), merge: mergeAllOK, noReply: req.NoReply})
	for _, srv := range rt.ring {
		bt.send(cl, srv, frame, uint8(req.Cmd), req.NoReply)
	}
}

// splitGet sends a multi-key retrieval as one request per server, or whole
// when all keys live on one server.
func (m *memcacheProto) splitGet(cl *client, bt *batch, req *memcache.Request, frame []byte) {
	rt := bt.rt
	frags, orderStart, ok := bt.group(req.Keys, 1)
	if !ok {
		m.noServer(bt)
		return
	}
	if len(frags) == 1 {
		bt.ungroup(orderStart)
		bt.forward(cl, rt.ring[frags[0]], frame, uint8(req.Cmd), false)
		return
	}
	order := bt.order[orderStart:]
	bt.answers = append(bt.answers, answer{first: bt.ncalls, n: len(frags), merge: mergeValues, order: [2]int{orderStart, len(bt.order)}})
	m.p.stats.fragments.Add(int64(len(frags)))
	keys := bt.keys
	for f, si := range frags {
		keys = keys[:0]
		for k, o := range order {
			if o == f {
				keys = append(keys, req.Keys[k])
			}
		}
		start := len(bt.scratch)
		bt.scratch = memcache.AppendRetrieval(bt.scratch, req.Cmd, req.Exptime, keys)
		bt.send(cl, rt.ring[si], bt.scratch[start:], uint8(req.Cmd), false)
	}
	clear(keys)
	bt.keys = keys[:0]
}

func (m *memcacheProto) reply(dst []byte, bt *batch, s *answer) []byte {
	calls := bt.calls[s.first : s.first+s.n]
	for _, c := range calls {
		if c.Err != nil {
			m.p.stats.forwardError.Add(1)
			dst = append(dst, "SERVER_ERROR "...)
			dst = append(dst, resp.Clip([]byte(c.Err.Error()))...)
			return append(dst, "\r\n"...)
		}
	}
	switch s.merge {
	case commands.MergeNone:
		rep := calls[0].Reply
		if calls[0].Kind&quietKind != 0 {
			rep = rep[:len(rep)-len(mnReply)]
		}
		return append(dst, rep...)
	case mergeAllOK:
		for _, c := range calls {
			if !bytes.Equal(c.Reply, []byte("OK\r\n")) {
				return append(dst, c.Reply...)
			}
		}
		return append(dst, "OK\r\n"...)
	}
	return m.mergeValues(dst, bt, s, calls)
}

// mergeValues puts the VALUE blocks of get fragments back in key order,
// ending with a single END.
func (m *memcacheProto) mergeValues(dst []byte, bt *batch, s *answer, calls []*pools.Call) []byte {
	for _, c := range calls {
		if !bytes.HasPrefix(c.Reply, []byte("VALUE ")) && !bytes.Equal(c.Reply, []byte("END\r\n")) {
			return append(dst, c.Reply...)
		}
	}
	order := bt.order[s.order[0]:s.order[1]]
	keys := bt.okeys[s.order[0]:s.order[1]]
	cur := bt.cursors[:0]
	for range calls {
		cur = append(cur, 0)
	}
	bt.cursors = cur[:0]
	for k, f := range order {
		rep := calls[f].Reply[cur[f]:]
		key, n, ok, err := memcache.ReadValue(rep)
		if err != nil {
			return append(dst, "SERVER_ERROR unexpected reply from server\r\n"...)
		}
		if ok && bytes.Equal(key, keys[k]) {
			dst = append(dst, rep[:n]...)
			cur[f] += n
		}
	}
	return memcache.AppendEnd(dst)
}

func (m *memcacheProto) requestNeed([]byte) int { return 0 }

func (memcacheServers) replyNeed([]byte) int { return 0 }

func (m *memcacheProto) direct(bt *batch, s *answer) []byte {
	if s.n != 1 || s.merge != commands.MergeNone {
		return nil
	}
	c := bt.calls[s.first]
	if c.Err != nil {
		return nil
	}
	if c.Kind&quietKind != 0 {
		return c.Reply[:len(c.Reply)-len(mnReply)]
	}
	return c.Reply
}
