package failover

import (
	"errors"
	"testing"
)

// TestVerifyRole checks the ROLE replies a primary's and a replica's
// connections accept, as redis-server 7 sends them.
func TestVerifyRole(t *testing.T) {
	primary := "*3\r\n$6\r\nmaster\r\n:1234\r\n*1\r\n*3\r\n$9\r\n127.0.0.1\r\n$4\r\n6380\r\n$4\r\n1234\r\n"
	replica := func(state string) string {
		return "*5\r\n$5\r\nslave\r\n$9\r\n127.0.0.1\r\n:6379\r\n$" + string(rune('0'+len(state))) + "\r\n" + state + "\r\n:1234\r\n"
	}
	for _, tc := range []struct {
		name              string
		reply             string
		primary, replicaE error
	}{
		{"primary", primary, nil, errRoleNotArray},
		{"replica connected", replica("connected"), errNotAPrimary, nil},
		{"replica loading", replica("sync"), errNotAPrimary, errReplicaNotSynced},
		{"replica connecting", replica("connect"), errNotAPrimary, errReplicaNotSynced},
		{"error reply", "-LOADING Redis is loading the dataset in memory\r\n", errRoleNotArray, errRoleNotArray},
		{"empty", "", errRoleNotArray, errRoleNotArray},
		{"short array", "*2\r\n$5\r\nslave\r\n$1\r\nx\r\n", errNotAPrimary, errRoleNotArray},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := verifyPrimary([]byte(tc.reply)); !errors.Is(err, tc.primary) {
				t.Errorf("verifyPrimary: %v, want %v", err, tc.primary)
			}
			if err := verifyReplica([]byte(tc.reply)); !errors.Is(err, tc.replicaE) {
				t.Errorf("verifyReplica: %v, want %v", err, tc.replicaE)
			}
		})
	}
}

// TestRefuses: the replies by which a replica refuses a read, and others.
func TestRefuses(t *testing.T) {
	for reply, want := range map[string]bool{
		"-LOADING Redis is loading the dataset in memory\r\n":                                   true,
		"-MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.\r\n": true,
		"-BUSY Redis is busy running a script.\r\n":                                             true,
		"-BUSYKEY Target key name already exists.\r\n":                                          false,
		"-ERR wrong number of arguments for 'get' command\r\n":                                  false,
		"$-1\r\n": false,
		"":        false,
	} {
		if got := Refuses([]byte(reply)); got != want {
			t.Errorf("Refuses(%q) = %v, want %v", reply, got, want)
		}
	}
}
