package proxy_test

import (
	"testing"
	"github.com/shardproxy/shardproxy/internal/testservers"
)

func TestProbe(t *testing.T) {
	f := newRedisFixture(t, 4, redisPool{hashTag: "{}"})
	d := testservers.Redis(t)
	for _, a := range [][]string{{"PING"}, {"PING", "x"}, {"SELECT", "1"}, {"HELLO"}, {"HELLO", "3"}, {"HELLO", "4"}, {"COMMAND"}, {"COMMAND", "COUNT"}, {"CONFIG", "GET", "x"}, {"MULTI"}, {"SUBSCRIBE", "x"}, {"BLPOP", "l", "0"}, {"KEYS", "*"}, {"EVAL", "return 1", "8", "a", "b", "c", "d", "e", "f", "g", "h"}, {"EVAL", "return 1", "0"}, {"FOOBAR", "a", "b"}, {"GET"}, {"CLIENT", "SETINFO", "LIB-NAME", "x"}, {"CLIENT", "SETNAME", "a b"}, {"AUTH", "x"}, {"ECHO"}} {
		pc, rc := dialRESP(t, f.addr), dialRESP(t, d.Addr); pc.write(encodeCommand(nil, a...)); rc.write(encodeCommand(nil, a...)); p, _ := readReply(pc.r); r, _ := readReply(rc.r)
		t.Logf("%q\n  proxy %q\n  redis %q", a, p, r)
	}
	for _, in := range []string{"*2\r\n$3\r\nGET\r\n$x\r\n", "*x\r\n", "*1\r\nGET\r\n", "SET \"a\r\n", "*2\r\n$3\r\nGET\r\n$1\r\nab\r\n", "*-1\r\nPING\r\n", "*0\r\nPING\r\n", "\r\nPING\r\n"} {
		pc, rc := dialRESP(t, f.addr), dialRESP(t, d.Addr)
		pc.write([]byte(in)); rc.write([]byte(in))
		p, perr := readReply(pc.r)
		r, rerr := readReply(rc.r)
		t.Logf("%q\n  proxy %q %v\n  redis %q %v", in, p, perr, r, rerr)
		p, perr = readReply(pc.r)
		r, rerr = readReply(rc.r)
		t.Logf("   then proxy %q %v\n  redis %q %v", p, perr, r, rerr)
	}
}
