//go:build linux

package proxy_test

import (
	"crypto/tls"
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/internal/proxytest"
	"github.com/shardproxy/shardproxy/proxy"
)

// TestHandOverListeners hands every listener of a running proxy (a TCP
// pool, a unix socket pool made with permissions, a TLS pool, the stats
// listener) to a second proxy of the same configuration, as a binary
// upgrade does: the second starts on them while the first still holds
// them, without binding; the first then hands over and shuts down; the
// second answers on every one, the unix path included, and an inherited
// listener no pool takes is closed. Closing the second removes the unix
// path.
func TestHandOverListeners(t *testing.T) {
	backends := proxytest.StartRedisBackends(t, 1)
	pki := proxytest.NewPKI(t, "handover")
	sock := filepath.Join(t.TempDir(), "beta.sock")
	tcpAddr, tlsAddr, statsAddr := proxytest.FreeListen(t), proxytest.FreeListen(t), proxytest.FreeListen(t)
	server := "  redis: true\n  servers:\n    - " + backends[0].Addr + ":1\n"
	yml := "alpha:\n  listen: " + tcpAddr + "\n" + server +
		"beta:\n  listen: " + sock + " 0600\n" + server +
		"gamma:\n  listen: " + tlsAddr + "\n  tls_cert_file: " + pki.ServerCert + "\n  tls_key_file: " + pki.ServerKey + "\n" + server
	old := proxytest.StartProxyOpts(t, yml, proxy.Options{StatsAddr: statsAddr})
	files, err := old.ListenerFiles()
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	inherited := map[string]net.Listener{}
	for addr, f := range files {
		keys = append(keys, addr)
		ln, err := net.FileListener(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		inherited[addr] = ln
	}
	slices.Sort(keys)
	want := []string{sock, tcpAddr, tlsAddr, statsAddr}
	slices.Sort(want)
	if !slices.Equal(keys, want) {
		t.Fatalf("ListenerFiles: %v, want %v", keys, want)
	}
	stray, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	inherited[stray.Addr().String()] = stray
	// Binding any of the addresses again would fail: the old proxy holds them.
	niu := proxytest.StartProxyOpts(t, yml, proxy.Options{StatsAddr: statsAddr, Listeners: inherited})
	old.HandOver()
	if err := old.Shutdown(time.Second); err != nil {
		t.Fatal(err)
	}
	if got := proxytest.Dial(t, tcpAddr).Do("PING"); got != "+PONG\r\n" {
		t.Errorf("TCP pool: PING: %q", got)
	}
	if got := pingUnix(t, sock); got != "+PONG\r\n" {
		t.Errorf("unix pool: PING: %q", got)
	}
	if fi, err := os.Stat(sock); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("unix socket after the hand-over: %v %v, want mode 0600", fi, err)
	}
	tc, err := tls.Dial("tcp", tlsAddr, pki.ClientConfig(false))
	if err != nil {
		t.Fatalf("TLS pool: %v", err)
	}
	if got := proxytest.NewConn(t, tc).Do("PING"); got != "+PONG\r\n" {
		t.Errorf("TLS pool: PING: %q", got)
	}
	tc.Close()
	if c, err := net.Dial("tcp", statsAddr); err != nil {
		t.Errorf("stats: %v", err)
	} else {
		c.Close()
	}
	if _, err := net.Dial("tcp", stray.Addr().String()); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("the inherited listener no pool takes: dial %v, want connection refused", err)
	}
	if err := niu.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("unix socket after Close: %v, want it removed", err)
	}
}
