package freeport

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

func TestPick(t *testing.T) {
	low := EphemeralLow()
	seen := map[int]bool{}
	for range 50 {
		p, err := Pick("127.0.0.1", func(p int) bool { return seen[p] })
		if err != nil {
			t.Fatal(err)
		}
		if p < First || p >= low || seen[p] {
			t.Fatalf("port %d: want a new one in [%d, %d)", p, First, low)
		}
		seen[p] = true
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			t.Fatalf("listen on the picked port %d: %v", p, err)
		}
		ln.Close()
	}
	if _, err := Pick("127.0.0.1", func(int) bool { return true }); err == nil {
		t.Error("Pick found a port when every one is skipped")
	}
}

// TestClaimAcrossProcesses: a port this process has picked cannot be
// claimed by another process (a child running this test binary), and one
// it has not picked can.
func TestClaimAcrossProcesses(t *testing.T) {
	if port := os.Getenv("FREEPORT_CLAIM_CHILD"); port != "" {
		p, _ := strconv.Atoi(port)
		if Claim(p) {
			fmt.Print("claimed")
		} else {
			fmt.Print("refused")
		}
		return
	}
	if runtime.GOOS == "windows" {
		t.Skip("no record locks")
	}
	picked, err := Pick("127.0.0.1", nil)
	if err != nil {
		t.Fatal(err)
	}
	other := picked + 1
	if other >= EphemeralLow() {
		other = picked - 1
	}
	for _, tc := range []struct {
		port int
		want string
	}{{picked, "refused"}, {other, "claimed"}} {
		cmd := exec.Command(os.Args[0], "-test.run", "^TestClaimAcrossProcesses$")
		cmd.Env = append(os.Environ(), "FREEPORT_CLAIM_CHILD="+strconv.Itoa(tc.port))
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("child: %v", err)
		}
		if !strings.HasPrefix(string(out), tc.want) {
			t.Errorf("another process claiming port %d: %q, want %s", tc.port, out, tc.want)
		}
	}
}
