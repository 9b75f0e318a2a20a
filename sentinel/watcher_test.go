package sentinel

import (
	"errors"
	"reflect"
	"testing"
)

// TestKnownUpdate checks which answers change the address reported for a
// master, starting from old, reported gen times.
func TestKnownUpdate(t *testing.T) {
	p := known{addr: "10.0.0.1:6379", epoch: 3, gen: 1}
	for _, tc := range []struct {
		name          string
		old           known
		ans           answer
		src           source
		since         uint64
		changed, stal bool
		want          known
	}{
		{"first is reported", known{}, answer{"10.0.0.1:6379", 3}, fromRequery, 0, true, false, p},
		{"first without epoch", known{}, answer{"10.0.0.1:6379", -1}, fromRequery, 0, true, false,
			known{"10.0.0.1:6379", -1, 1}},
		{"first by switch", known{}, answer{"10.0.0.1:6379", -1}, fromSwitch, 0, true, false,
			known{"10.0.0.1:6379", -1, 1}},
		{"same address", p, answer{"10.0.0.1:6379", 3}, fromRequery, 1, false, false, p},
		{"same address, newer epoch", p, answer{"10.0.0.1:6379", 5}, fromRequery, 1, false, false,
			known{"10.0.0.1:6379", 5, 1}},
		{"same address, older epoch", p, answer{"10.0.0.1:6379", 1}, fromRequery, 1, false, false, p},
		{"switch", p, answer{"10.0.0.2:6379", -1}, fromSwitch, 0, true, false, known{"10.0.0.2:6379", 4, 2}},
		{"switch, epoch unknown", known{"10.0.0.1:6379", -1, 1}, answer{"10.0.0.2:6379", -1}, fromSwitch, 0,
			true, false, known{"10.0.0.2:6379", -1, 2}},
		{"newer answer", p, answer{"10.0.0.2:6379", 4}, fromRequery, 1, true, false, known{"10.0.0.2:6379", 4, 2}},
		{"answer, epoch unknown", p, answer{"10.0.0.2:6379", -1}, fromRequery, 1, true, false,
			known{"10.0.0.2:6379", -1, 2}},
		{"requery, nothing reported meanwhile, epoch started over", p, answer{"10.0.0.3:6379", 0},
			fromRequery, 1, true, false, known{"10.0.0.3:6379", 0, 2}},
		{"requery, a switch reported meanwhile", known{"10.0.0.2:6379", 4, 2}, answer{"10.0.0.1:6379", 3},
			fromRequery, 1, false, true, known{"10.0.0.2:6379", 4, 2}},
		{"newer requery", p, answer{"10.0.0.2:6379", 9}, fromRequery, 0, true, false, known{"10.0.0.2:6379", 9, 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := tc.old
			changed, stale := k.update(tc.ans, tc.src, tc.since)
			if changed != tc.changed || stale != tc.stal || k != tc.want {
				t.Fatalf("update(%+v, %v, %d) from %+v: changed %v, stale %v, %+v; want %v, %v, %+v",
					tc.ans, tc.src, tc.since, tc.old, changed, stale, k, tc.changed, tc.stal, tc.want)
			}
		})
	}
}

func TestParseSwitch(t *testing.T) {
	for _, tc := range []struct {
		name, payload     string
		master, old, new_ string
		wantErr           bool
	}{
		{"ipv4", "shard1 127.0.0.1 6379 127.0.0.1 6380", "shard1", "127.0.0.1:6379", "127.0.0.1:6380", false},
		{"ipv6", "m ::1 6379 fe80::2 7000", "m", "[::1]:6379", "[fe80::2]:7000", false},
		{"too few", "m 127.0.0.1 6379 127.0.0.1", "", "", "", true},
		{"too many", "m 1 2 3 4 5", "", "", "", true},
		{"empty", "", "", "", "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, o, n, err := parseSwitch(tc.payload)
			if (err != nil) != tc.wantErr || m != tc.master || o != tc.old || n != tc.new_ {
				t.Fatalf("parseSwitch(%q) = %q, %q, %q, %v", tc.payload, m, o, n, err)
			}
		})
	}
}

func TestParsePromoted(t *testing.T) {
	m, o, n, err := parsePromoted("slave 127.0.0.1:6380 127.0.0.1 6380 @ shard1 127.0.0.1 6379")
	if err != nil || m != "shard1" || o != "127.0.0.1:6379" || n != "127.0.0.1:6380" {
		t.Fatalf("parsePromoted = %q, %q, %q, %v", m, o, n, err)
	}
	m, _, n, err = parsePromoted("slave [::1]:7000 ::1 7000 @ m ::1 6379")
	if err != nil || m != "m" || n != "[::1]:7000" {
		t.Fatalf("parsePromoted ipv6 = %q, %q, %v", m, n, err)
	}
	for _, bad := range []string{"", "slave a b c", "sentinel 1:2 1 2 @ m 1 3", "slave 1:2 1 2 # m 1 3"} {
		if _, _, _, err := parsePromoted(bad); err == nil {
			t.Errorf("parsePromoted(%q) accepted", bad)
		}
	}
}

func TestParseMasterAddr(t *testing.T) {
	for _, tc := range []struct {
		name    string
		reply   any
		want    string
		wantErr error
	}{
		{"ipv4", []any{"10.0.0.1", "6379"}, "10.0.0.1:6379", nil},
		{"ipv6", []any{"::1", "6379"}, "[::1]:6379", nil},
		{"unknown master", nil, "", ErrUnknownMaster},
		{"error reply", replyError("NOAUTH Authentication required."), "", replyError("NOAUTH Authentication required.")},
		{"short", []any{"10.0.0.1"}, "", errProtocol},
		{"not strings", []any{int64(1), int64(2)}, "", errProtocol},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseMasterAddr(tc.reply)
			if got != tc.want || !errors.Is(err, tc.wantErr) {
				t.Fatalf("parseMasterAddr(%#v) = %q, %v; want %q, %v", tc.reply, got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestParseReplicas(t *testing.T) {
	replica := func(ip, port, flags string) any {
		return []any{"name", ip + ":" + port, "ip", ip, "port", port, "runid", "x", "flags", flags}
	}
	for _, tc := range []struct {
		name    string
		reply   any
		want    []string
		wantErr error
	}{
		{"none", []any{}, []string{}, nil},
		{"up and down", []any{
			replica("10.0.0.2", "6379", "slave"),
			replica("10.0.0.3", "6379", "s_down,slave"),
			replica("10.0.0.4", "6379", "slave,o_down"),
			replica("10.0.0.5", "6379", "slave,disconnected"),
			replica("::1", "7000", "slave"),
		}, []string{"10.0.0.2:6379", "[::1]:7000"}, nil},
		{"unknown master", replyError("ERR No such master with that name"), nil, ErrUnknownMaster},
		{"other error", replyError("NOPERM"), nil, replyError("NOPERM")},
		{"not an array", "x", nil, errProtocol},
		{"replica without port", []any{[]any{"ip", "10.0.0.2"}}, nil, errProtocol},
		{"odd fields", []any{[]any{"ip"}}, nil, errProtocol},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseReplicas(tc.reply)
			if !reflect.DeepEqual(got, tc.want) || !errors.Is(err, tc.wantErr) {
				t.Fatalf("parseReplicas(%#v) = %q, %v; want %q, %v", tc.reply, got, err, tc.want, tc.wantErr)
			}
		})
	}
}
