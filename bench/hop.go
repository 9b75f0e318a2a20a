//go:build linux

package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"time"
)

// hopCommand is the argument that makes the bench binary run as a bare
// forwarder: bench hop LISTEN TARGET.
const hopCommand = "hop"

// runHop forwards every connection accepted on listen to target, copying
// bytes both ways with io.Copy, which between TCP sockets on Linux is
// splice: no parsing, no copy in user space, nothing but the hop itself.
// It is the reference for what any proxy in the path costs at least. It
// returns only when listening fails.
func runHop(listen, target string) error {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go forward(c, target)
	}
}

// forward relays one client connection until either side closes.
func forward(c net.Conn, target string) {
	defer c.Close()
	s, err := net.DialTimeout("tcp", target, 10*time.Second)
	if err != nil {
		fmt.Fprintln(os.Stderr, "hop:", err)
		return
	}
	defer s.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = io.Copy(s, c)
		_ = s.(*net.TCPConn).CloseWrite()
	}()
	_, _ = io.Copy(c, s)
	_ = c.(*net.TCPConn).CloseWrite()
	<-done
}

// startHop starts the bench binary as a bare forwarder in front of target
// and returns its pid and address.
func startHop(p *procs, target string) (int, string, error) {
	exe, err := os.Executable()
	if err != nil {
		return 0, "", fmt.Errorf("bare hop: %w", err)
	}
	port, err := p.freePort()
	if err != nil {
		return 0, "", err
	}
	addr := addrOf(port)
	cmd, err := p.start("hop.out", exe, hopCommand, addr, target)
	if err != nil {
		return 0, "", err
	}
	if err := waitListening(cmd, addr, 10*time.Second); err != nil {
		return 0, "", fmt.Errorf("bare hop: %w", err)
	}
	return cmd.Process.Pid, addr, nil
}
