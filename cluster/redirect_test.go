package cluster

import "testing"

func TestClassify(t *testing.T) {
	for _, c := range []struct {
		reply      string
		kind, slot int
		addr       string
	}{
		{"-MOVED 3999 127.0.0.1:6381\r\n", Moved, 3999, "127.0.0.1:6381"},
		{"-ASK 16383 10.0.0.2:7000\r\n", Ask, 16383, "10.0.0.2:7000"},
		{"-MOVED 12 :7001\r\n", Moved, 12, "127.0.0.9:7001"},
		{"-MOVED 12 ?:7001\r\n", Moved, 12, "127.0.0.9:7001"},
		{"-MOVED 1 [::1]:7001\r\n", Moved, 1, "[::1]:7001"},
		{"-TRYAGAIN Multiple keys request during rehashing of slot\r\n", TryAgain, 0, ""},
		{"-CLUSTERDOWN The cluster is down\r\n", Down, 0, ""},
		{"-CLUSTERDOWN Hash slot not served\r\n", Down, 0, ""},
		{"-MOVED 16384 127.0.0.1:1\r\n", Served, 0, ""},
		{"-MOVED x 127.0.0.1:1\r\n", Served, 0, ""},
		{"-MOVED 1\r\n", Served, 0, ""},
		{"-ERR MOVED\r\n", Served, 0, ""},
		{"+MOVED 1 a:1\r\n", Served, 0, ""},
		{"$5\r\nMOVED\r\n", Served, 0, ""},
		{"", Served, 0, ""},
	} {
		kind, slot, addr := Classify([]byte(c.reply), "127.0.0.9")
		if kind != c.kind || slot != c.slot || addr != c.addr {
			t.Errorf("%q: %d %d %q, want %d %d %q", c.reply, kind, slot, addr, c.kind, c.slot, c.addr)
		}
	}
}
