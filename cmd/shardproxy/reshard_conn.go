package main

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/shardproxy/shardproxy/codec/resp"
	"github.com/shardproxy/shardproxy/config"
)

// respConn is a connection to a Redis server that sends pipelines of
// commands and reads their replies whole.
type respConn struct {
	c net.Conn
	r *resp.Reader
}

// maxReply bounds one reply from a server: far above a SCAN reply of
// COUNT 1000 keys, each at most Redis's proto-max-bulk-len (512 MiB) by
// default.
const maxReply = 1 << 30

// dialRedis connects to s as pool p does: TLS when server_tls is on, then
// AUTH and SELECT.
func dialRedis(p *config.Pool, s config.Server) (*respConn, error) {
	timeout := p.Timeout
	if timeout <= 0 || timeout > 5*time.Second {
		timeout = 5 * time.Second
	}
	c, err := net.DialTimeout(s.Network, s.Addr, timeout)
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(sampleDeadline))
	if p.ServerTLS.Enabled {
		roots, err := p.ServerRoots()
		if err != nil {
			c.Close()
			return nil, err
		}
		c = tls.Client(c, p.ServerTLSConfig(s, roots))
	}
	rc := &respConn{c: c, r: resp.NewReader(c, maxReply)}
	var hello [][]string
	if p.RedisAuth != "" {
		auth := []string{"AUTH", p.RedisAuth}
		if p.RedisUsername != "" {
			auth = []string{"AUTH", p.RedisUsername, p.RedisAuth}
		}
		hello = append(hello, auth)
	}
	if p.RedisDB != 0 {
		hello = append(hello, []string{"SELECT", strconv.Itoa(p.RedisDB)})
	}
	if len(hello) > 0 {
		if _, err := rc.call(hello...); err != nil {
			c.Close()
			return nil, err
		}
	}
	return rc, nil
}

// call sends cmds in one write and returns their replies; an error reply
// to any of them is returned as an error naming the command.
func (rc *respConn) call(cmds ...[]string) ([]resp.Value, error) {
	var out []byte
	for _, cmd := range cmds {
		args := make([][]byte, len(cmd))
		for i, a := range cmd {
			args[i] = []byte(a)
		}
		out = resp.AppendCommand(out, args...)
	}
	replies, err := rc.pipeline(out, len(cmds))
	if err != nil {
		return nil, err
	}
	for i, r := range replies {
		if r.IsError() {
			return nil, fmt.Errorf("%s: %s", cmds[i][0], bytes.TrimSpace(r.Str))
		}
	}
	return replies, nil
}

// pipeline writes req and reads n replies.
func (rc *respConn) pipeline(req []byte, n int) ([]resp.Value, error) {
	if _, err := rc.c.Write(req); err != nil {
		return nil, err
	}
	replies := make([]resp.Value, n)
	for i := range replies {
		var err error
		if replies[i], err = rc.r.ReadValue(); err != nil {
			return nil, err
		}
	}
	return replies, nil
}

// scanAll reads keys with SCAN until the cursor comes back to 0 or limit
// keys are read; all tells which.
func (rc *respConn) scanAll(limit int) (keys [][]byte, all bool, err error) {
	seen := map[string]bool{}
	cursor := "0"
	for {
		r, err := rc.call([]string{"SCAN", cursor, "COUNT", "1000"})
		if err != nil {
			return nil, false, err
		}
		next, batch, err := resp.ParseScan(r[0])
		if err != nil {
			return nil, false, errors.New("SCAN: unexpected reply")
		}
		for _, k := range batch {
			if !seen[string(k)] && len(keys) < limit {
				seen[string(k)] = true
				keys = append(keys, k)
			}
		}
		if cursor = string(next); cursor == "0" || len(keys) >= limit {
			return keys, cursor == "0", nil
		}
	}
}

// randomKeys asks RANDOMKEY limit times in one pipeline: a sample with
// replacement.
func (rc *respConn) randomKeys(limit int) ([][]byte, error) {
	cmds := make([][]string, limit)
	for i := range cmds {
		cmds[i] = []string{"RANDOMKEY"}
	}
	r, err := rc.call(cmds...)
	if err != nil {
		return nil, err
	}
	var keys [][]byte
	for _, reply := range r {
		if k, ok := reply.Bulk(); ok {
			keys = append(keys, k)
		}
	}
	return keys, nil
}

// memoryUsage returns MEMORY USAGE of each key (0 for a key gone since),
// or nil when the server refuses the command.
func (rc *respConn) memoryUsage(keys [][]byte) []int64 {
	if len(keys) == 0 {
		return []int64{}
	}
	var req []byte
	for _, k := range keys {
		req = resp.AppendCommand(req, []byte("MEMORY"), []byte("USAGE"), k)
	}
	r, err := rc.pipeline(req, len(keys))
	if err != nil {
		return nil
	}
	sizes := make([]int64, len(keys))
	for i, reply := range r {
		if reply.IsError() {
			return nil
		}
		sizes[i], _ = reply.Integer() // a null: the key went away
	}
	return sizes
}
