package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/shardproxy/shardproxy/codec/resp"
	"github.com/shardproxy/shardproxy/config"
)

// respConn is a connection to a Redis server that sends pipelines of
// commands and reads their replies whole.
type respConn struct {
	c   net.Conn
	buf []byte // read, not yet returned
}

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
		tc, err := serverTLSConfig(p, s)
		if err != nil {
			c.Close()
			return nil, err
		}
		c = tls.Client(c, tc)
	}
	rc := &respConn{c: c}
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

// serverTLSConfig is the TLS configuration the pool uses towards s.
func serverTLSConfig(p *config.Pool, s config.Server) (*tls.Config, error) {
	st := p.ServerTLS
	tc := &tls.Config{ServerName: st.ServerName, InsecureSkipVerify: st.Insecure}
	if tc.ServerName == "" {
		tc.ServerName = s.Host
	}
	if st.CAFile != "" {
		pem, err := os.ReadFile(st.CAFile)
		if err != nil {
			return nil, fmt.Errorf("server_tls_ca_file: %w", err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("server_tls_ca_file %s: no certificate", st.CAFile)
		}
	}
	return tc, nil
}

// call sends cmds in one write and returns their replies; an error reply
// to any of them is returned as an error naming the command.
func (rc *respConn) call(cmds ...[]string) ([][]byte, error) {
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
		if resp.IsError(r) {
			return nil, fmt.Errorf("%s: %s", cmds[i][0], bytes.TrimSpace(r[1:]))
		}
	}
	return replies, nil
}

// pipeline writes req and reads n replies.
func (rc *respConn) pipeline(req []byte, n int) ([][]byte, error) {
	if _, err := rc.c.Write(req); err != nil {
		return nil, err
	}
	replies := make([][]byte, 0, n)
	chunk := make([]byte, 64<<10)
	for len(replies) < n {
		m, err := resp.ReadReply(rc.buf)
		if err != nil {
			return nil, err
		}
		if m > 0 {
			replies = append(replies, rc.buf[:m:m])
			rc.buf = rc.buf[m:]
			continue
		}
		k, err := rc.c.Read(chunk)
		if k == 0 && err != nil {
			return nil, err
		}
		rc.buf = append(rc.buf, chunk[:k]...)
	}
	return replies, nil
}

// bulk returns the content of a bulk string reply; ok is false for a null
// or any other reply.
func bulk(r []byte) (b []byte, ok bool) {
	if len(r) < 4 || r[0] != '$' {
		return nil, false
	}
	nl := bytes.IndexByte(r, '\n')
	size, err := strconv.Atoi(string(r[1 : nl-1]))
	if err != nil || size < 0 || nl+1+size > len(r) {
		return nil, false
	}
	return r[nl+1 : nl+1+size], true
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
		next, batch, err := scanReply(r[0])
		if err != nil {
			return nil, false, err
		}
		for _, k := range batch {
			if !seen[string(k)] && len(keys) < limit {
				seen[string(k)] = true
				keys = append(keys, k)
			}
		}
		if cursor = next; cursor == "0" || len(keys) >= limit {
			return keys, cursor == "0", nil
		}
	}
}

// scanReply splits a SCAN reply into the next cursor and the keys.
func scanReply(r []byte) (cursor string, keys [][]byte, err error) {
	bad := errors.New("SCAN: unexpected reply")
	if c, n, err := resp.ReadArrayHeader(r); err != nil || c != 2 {
		return "", nil, bad
	} else {
		r = r[n:]
	}
	m, err := resp.ReadReply(r)
	cur, ok := bulk(r[:m])
	if err != nil || !ok {
		return "", nil, bad
	}
	r = r[m:]
	count, n, err := resp.ReadArrayHeader(r)
	if err != nil {
		return "", nil, bad
	}
	r = r[n:]
	for range count {
		m, err := resp.ReadReply(r)
		k, ok := bulk(r[:m])
		if err != nil || !ok {
			return "", nil, bad
		}
		keys = append(keys, k)
		r = r[m:]
	}
	return string(cur), keys, nil
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
		if k, ok := bulk(reply); ok {
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
		if resp.IsError(reply) {
			return nil
		}
		sizes[i], _, _ = resp.ReadInteger(reply) // a null: the key went away
	}
	return sizes
}
