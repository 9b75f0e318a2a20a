package hashring_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// This file holds the tiny RESP and memcache text clients the nutcracker
// comparison uses, so that the check depends on nothing under test.

// wireConn is one client connection with buffered reads and writes.
type wireConn struct {
	c net.Conn
	r *bufio.Reader
	w *bufio.Writer
}

func dialWire(addr string) (*wireConn, error) {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return nil, err
	}
	return &wireConn{c: c, r: bufio.NewReaderSize(c, 64<<10), w: bufio.NewWriterSize(c, 64<<10)}, nil
}

func (c *wireConn) Close() error { return c.c.Close() }

// deadline bounds the next exchange, so that a silent server fails the test
// instead of hanging it.
func (c *wireConn) deadline() { c.c.SetDeadline(time.Now().Add(10 * time.Second)) }

// command buffers one RESP command.
func (c *wireConn) command(args ...[]byte) {
	fmt.Fprintf(c.w, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(c.w, "$%d\r\n", len(a))
		c.w.Write(a)
		c.w.WriteString("\r\n")
	}
}

// reply reads one RESP reply: simple strings and errors keep their type
// byte ("+OK", "-ERR ..."), bulk strings are returned bare with ok true, a
// null bulk string as ok false.
func (c *wireConn) reply() (s string, ok bool, err error) {
	line, err := c.line()
	if err != nil {
		return "", false, err
	}
	if line == "" {
		return "", false, errors.New("empty reply line")
	}
	switch line[0] {
	case '+', '-', ':':
		return line, true, nil
	case '$':
		n, err := strconv.Atoi(line[1:])
		if err != nil || n < 0 {
			return "", false, err
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(c.r, buf); err != nil {
			return "", false, err
		}
		return string(buf[:n]), true, nil
	}
	return "", false, fmt.Errorf("unexpected reply %q", line)
}

func (c *wireConn) line() (string, error) {
	line, err := c.r.ReadString('\n')
	return strings.TrimSuffix(line, "\r\n"), err
}

// redisPipeline sends one command per key, built by mk, in batches, and
// returns the replies in order.
func (c *wireConn) redisPipeline(keys [][]byte, mk func(i int, key []byte) [][]byte) ([]string, []bool, error) {
	out, found := make([]string, len(keys)), make([]bool, len(keys))
	const batch = 200
	for lo := 0; lo < len(keys); lo += batch {
		hi := min(lo+batch, len(keys))
		c.deadline()
		for i := lo; i < hi; i++ {
			c.command(mk(i, keys[i])...)
		}
		if err := c.w.Flush(); err != nil {
			return nil, nil, err
		}
		for i := lo; i < hi; i++ {
			s, ok, err := c.reply()
			if err != nil {
				return nil, nil, fmt.Errorf("reply %d: %w", i, err)
			}
			out[i], found[i] = s, ok
		}
	}
	return out, found, nil
}

// mcSet stores key=value with the memcache text protocol.
func (c *wireConn) mcSet(key, value string) error {
	c.deadline()
	fmt.Fprintf(c.w, "set %s 0 0 %d\r\n%s\r\n", key, len(value), value)
	if err := c.w.Flush(); err != nil {
		return err
	}
	line, err := c.line()
	if err != nil {
		return err
	}
	if line != "STORED" {
		return fmt.Errorf("set %q: %q", key, line)
	}
	return nil
}

// mcGet returns key's value, with ok false when the server has none.
func (c *wireConn) mcGet(key string) (value string, ok bool, err error) {
	c.deadline()
	fmt.Fprintf(c.w, "get %s\r\n", key)
	if err := c.w.Flush(); err != nil {
		return "", false, err
	}
	line, err := c.line()
	if err != nil || line == "END" {
		return "", false, err
	}
	f := strings.Split(line, " ")
	if len(f) != 4 || f[0] != "VALUE" {
		return "", false, fmt.Errorf("get %q: %q", key, line)
	}
	n, err := strconv.Atoi(f[3])
	if err != nil {
		return "", false, err
	}
	buf := make([]byte, n+2)
	if _, err := io.ReadFull(c.r, buf); err != nil {
		return "", false, err
	}
	if end, err := c.line(); err != nil || end != "END" {
		return "", false, fmt.Errorf("get %q: no END (%q, %v)", key, end, err)
	}
	return string(buf[:n]), true, nil
}

// mcCommand sends one memcache line and returns the reply line.
func (c *wireConn) mcCommand(cmd string) (string, error) {
	c.deadline()
	c.w.WriteString(cmd + "\r\n")
	if err := c.w.Flush(); err != nil {
		return "", err
	}
	return c.line()
}
