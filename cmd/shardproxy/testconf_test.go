package main

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/internal/proxytest"
	"github.com/shardproxy/shardproxy/internal/testservers"
)

// TestTestConfLikeStart runs our -t and the real nutcracker -t on the same
// files, for what only a start used to find: a listen host that does not
// resolve, and a unix listen path that cannot be taken. Host names are
// under .invalid, which never resolves, or localhost, which resolves
// without a network. Where we differ from nutcracker on purpose, differs
// says why.
func TestTestConfLikeStart(t *testing.T) {
	bin := testservers.Need(t, "nutcracker")
	dir := t.TempDir()
	port := strconv.Itoa(testservers.FreePort(t, "127.0.0.1"))
	inUse := filepath.Join(dir, "in-use.sock")
	testservers.Redis(t, "--unixsocket", inUse, "--unixsocketperm", "700")
	file := filepath.Join(dir, "file.sock")
	if err := os.WriteFile(file, []byte("keep me"), 0o644); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(dir, "stale.sock")
	proxytest.StaleSocket(t, stale)
	pool := func(listen, server string) string {
		return "alpha:\n  listen: " + listen + "\n  redis: true\n  servers:\n    - " + server + "\n"
	}
	tests := []struct {
		name, yml string
		ours      string // "" when we accept, else what our error contains
		differs   string // why we differ from nutcracker on purpose, or ""
	}{
		{"listen host does not resolve", pool("nosuch.invalid:"+port, "127.0.0.1:7001:1"),
			`pool "alpha": key "listen": host "nosuch.invalid" of nosuch.invalid:` + port + ` does not resolve`, ""},
		{"listen localhost", pool("localhost:"+port, "127.0.0.1:7001:1"), "", ""},
		{"server host does not resolve", pool("127.0.0.1:"+port, "nosuch.invalid:7001:1"), "", ""},
		{"unix listen in use", pool(inUse, "127.0.0.1:7001:1"),
			`pool "alpha": key "listen": ` + inUse + `: another process is listening on it`,
			"nutcracker takes the socket over at start"},
		{"unix listen is a file", pool(file, "127.0.0.1:7001:1"),
			`pool "alpha": key "listen": ` + file + ` is not a socket`, "nutcracker deletes the file at start"},
		{"unix listen stale socket", pool(stale, "127.0.0.1:7001:1"), "", ""},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			conf := filepath.Join(dir, "case"+strconv.Itoa(i)+".yml")
			if err := os.WriteFile(conf, []byte(tc.yml), 0o644); err != nil {
				t.Fatal(err)
			}
			var out, errb bytes.Buffer
			code := run([]string{"-t", "-c", conf}, &out, &errb)
			ours := code == 0
			switch {
			case tc.ours == "" && (!ours || !strings.Contains(out.String(), "syntax is ok")):
				t.Errorf("exit %d, stdout %q, stderr %q; want syntax is ok", code, out.String(), errb.String())
			case tc.ours != "" && (ours || !strings.Contains(errb.String(), "syntax is invalid: "+tc.ours)):
				t.Errorf("exit %d, stderr %q; want syntax is invalid: %s", code, errb.String(), tc.ours)
			}
			theirs := testservers.NutcrackerAccepts(t, bin, conf)
			if agree := ours == theirs; agree == (tc.differs != "") {
				t.Errorf("nutcracker accepts: %v, we accept: %v; listed difference: %q", theirs, ours, tc.differs)
			}
		})
	}
	if b, err := os.ReadFile(file); err != nil || string(b) != "keep me" {
		t.Errorf("%s holds %q, %v; want it untouched", file, b, err)
	}
	if nc, err := net.DialTimeout("unix", inUse, 5*time.Second); err != nil {
		t.Errorf("redis-server no longer reachable at %s: %v", inUse, err)
	} else {
		nc.Close()
	}
}
