// Package freeport picks TCP ports for test and benchmark servers: free a
// moment ago, and below the system's ephemeral range, so that no outgoing
// connection can take one as its source port between the pick and the
// server's listen (which port 0 would hand out, and which then fails with
// "address already in use").
package freeport

import (
	"errors"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
)

// First is where Pick starts looking: above the ports of well-known
// services.
const First = 20000

// Pick returns a port of host between First and the system's ephemeral
// range that accepted a listen a moment ago, for which skip (nil: none) is
// false, and that no other process running now has picked (see Claim).
func Pick(host string, skip func(port int) bool) (int, error) {
	low := EphemeralLow()
	for range 1000 {
		p := First + rand.IntN(low-First)
		if skip != nil && skip(p) {
			continue
		}
		ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(p)))
		if err != nil {
			continue
		}
		ln.Close()
		if !claim(p) {
			continue
		}
		return p, nil
	}
	return 0, errors.New("no free port on " + host + " below " + strconv.Itoa(low))
}

// Claim claims port for this process until it exits, as Pick does with
// the ports it returns, and reports whether it could: false when another
// process running now has claimed it. (Off Unix it claims nothing and
// reports true.)
func Claim(port int) bool { return claim(port) }

// EphemeralLow is the first port of the system's ephemeral range (Linux:
// /proc/sys/net/ipv4/ip_local_port_range), 32768 where it cannot be read
// or leaves too little room below it.
func EphemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil && n >= First+2000 {
				return n
			}
		}
	}
	return 32768
}
