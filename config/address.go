package config

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
)

// parseListen parses a listen value: "host:port", "[ipv6]:port",
// "ipv6:port", or "/path/to.sock [octal permissions]".
func parseListen(s string) (Listen, error) {
	if strings.HasPrefix(s, "/") {
		return parseUnixListen(s)
	}
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return Listen{}, badValue(s, "bad listen address %q: want host:port or /path/to.sock", s)
	}
	host, err := parseHost(s[:i])
	if err != nil {
		return Listen{}, badValue(s, "bad listen address %q: %v", s, err)
	}
	port, err := parsePort(s[i+1:])
	if err != nil {
		return Listen{}, badValue(s, "bad listen address %q: %v", s, err)
	}
	return Listen{Network: "tcp", Addr: net.JoinHostPort(host, strconv.Itoa(port))}, nil
}

// parseUnixListen parses "/path/to.sock" with optional octal permissions
// after the last space, such as "/tmp/x.sock 0666".
func parseUnixListen(s string) (Listen, error) {
	l := Listen{Network: "unix", Addr: s}
	i := strings.LastIndexByte(s, ' ')
	if i < 0 {
		return l, nil
	}
	l.Addr = s[:i]
	perm, err := strconv.ParseUint(s[i+1:], 8, 32)
	if err != nil || perm > 0o777 || !isDigits(s[i+1:]) {
		return Listen{}, badValue(s, "bad socket permissions %q in %q: want octal 0 to 0777, such as 0666", s[i+1:], s)
	}
	l.Perm = os.FileMode(perm)
	return l, nil
}

// parseServer parses one server line: "host:port:weight [name]" or
// "/path/to.sock:weight [name]". Like nutcracker it reads from the end: the
// name after the last space, the weight after the last colon, then the port.
func parseServer(line string) (Server, error) {
	var s Server
	rest := line
	if i := strings.LastIndexByte(rest, ' '); i >= 0 {
		rest, s.Name = rest[:i], rest[i+1:]
		if s.Name == "" {
			return Server{}, badValue(line, "bad server %q: empty name after the space", line)
		}
	}
	i := strings.LastIndexByte(rest, ':')
	if i < 0 {
		return Server{}, badValue(line, "bad server %q: want host:port:weight [name] or /path/to.sock:weight [name]", line)
	}
	addr, weight := rest[:i], rest[i+1:]
	w, err := parseNumber(weight, 1)
	if err != nil {
		return Server{}, badValue(line, "bad server %q: bad weight %q: want a whole number >= 1", line, weight)
	}
	s.Weight = w
	if strings.HasPrefix(addr, "/") {
		s.Network, s.Addr = "unix", addr
		s.Ident = addr + ":" // nutcracker keeps the colon before the weight
	} else if err := parseServerAddr(&s, addr); err != nil {
		return Server{}, badValue(line, "bad server %q: %v", line, err)
	}
	if s.Name != "" {
		s.Ident = s.Name
	}
	return s, nil
}

// parseServerAddr fills s from "host:port" and sets its nutcracker identity:
// the text as written, or the host alone when the port is 11211.
func parseServerAddr(s *Server, addr string) error {
	i := strings.LastIndexByte(addr, ':')
	if i < 0 {
		return fmt.Errorf("want host:port:weight")
	}
	host, err := parseHost(addr[:i])
	if err != nil {
		return err
	}
	port, err := parsePort(addr[i+1:])
	if err != nil {
		return err
	}
	s.Network, s.Host, s.Port = "tcp", host, port
	s.Addr = net.JoinHostPort(host, strconv.Itoa(port))
	s.Ident = addr
	if port == 11211 {
		s.Ident = addr[:i]
	}
	return nil
}

// parseHost checks a host: a name or IPv4 address, an IPv6 address, or an
// IPv6 address in brackets. It returns the host without brackets.
func parseHost(h string) (string, error) {
	if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
		inner := h[1 : len(h)-1]
		if a, err := netip.ParseAddr(inner); err != nil || !a.Is6() {
			return "", fmt.Errorf("bad IPv6 address %q", h)
		}
		return inner, nil
	}
	if strings.Contains(h, ":") {
		if a, err := netip.ParseAddr(h); err != nil || !a.Is6() {
			return "", fmt.Errorf("bad host %q: only an IPv6 address may contain a colon", h)
		}
		return h, nil
	}
	if h == "" {
		return "", fmt.Errorf("empty host")
	}
	if len(h) > 253 {
		return "", fmt.Errorf("host name longer than 253 characters")
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_'
		if !ok {
			return "", fmt.Errorf("bad host %q: character %q is not allowed in a host name", h, c)
		}
	}
	return h, nil
}

// parsePort parses a TCP port, 1 to 65535.
func parsePort(p string) (int, error) {
	if !isDigits(p) {
		return 0, fmt.Errorf("bad port %q: want a number from 1 to 65535", p)
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("bad port %q: want a number from 1 to 65535", p)
	}
	return n, nil
}

// isDigits reports whether s is one or more decimal digits.
func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
