package cluster

import (
	"errors"
	"strconv"
	"testing"

	"github.com/shardproxy/shardproxy/codec/resp"
	"github.com/shardproxy/shardproxy/hashring"
)

// node encodes a CLUSTER SLOTS node as Redis 7 writes it: host, port, id
// and a (here empty) map of further names.
func node(host string, port int, id string) []byte {
	b := resp.AppendArray(nil, 4)
	b = resp.AppendBulkString(b, host)
	b = resp.AppendInt(b, int64(port))
	b = resp.AppendBulkString(b, id)
	return resp.AppendArray(b, 0)
}

// slotRange encodes [start, end, nodes...].
func slotRange(start, end int, nodes ...[]byte) []byte {
	b := resp.AppendArray(nil, 2+len(nodes))
	b = resp.AppendInt(b, int64(start))
	b = resp.AppendInt(b, int64(end))
	for _, n := range nodes {
		b = append(b, n...)
	}
	return b
}

func reply(ranges ...[]byte) resp.Value {
	b := resp.AppendArray(nil, len(ranges))
	for _, r := range ranges {
		b = append(b, r...)
	}
	v, n, err := resp.ParseValue(b)
	if err != nil || n != len(b) {
		panic("test reply does not parse: " + strconv.Quote(string(b)))
	}
	return v
}

func TestParseSlotsCovered(t *testing.T) {
	v := reply(
		slotRange(0, 5460, node("127.0.0.1", 7000, "a"), node("127.0.0.1", 7003, "d")),
		slotRange(5461, 10922, node("127.0.0.1", 7001, "b"), node("127.0.0.1", 7004, "e")),
		slotRange(10923, 16383, node("", 7002, "c")),
	)
	m, err := ParseSlots(v, "10.0.0.9")
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Shards) != 3 || !m.Covered() || m.Uncovered() != 0 {
		t.Fatalf("shards %d, covered %v, uncovered %d", len(m.Shards), m.Covered(), m.Uncovered())
	}
	if s := m.Shards[0]; s.Primary != (Node{"127.0.0.1:7000", "a"}) || len(s.Replicas) != 1 || s.Replicas[0].Addr != "127.0.0.1:7003" {
		t.Errorf("shard 0: %+v", s)
	}
	if got := m.Shards[2].Primary.Addr; got != "10.0.0.9:7002" {
		t.Errorf("an empty host is the answering node's: %s", got)
	}
	for _, k := range []string{"a", "foo", "{user:1}:name", "123456789"} {
		slot := hashring.ClusterSlot([]byte(k))
		want := 0
		switch {
		case slot > 10922:
			want = 2
		case slot > 5460:
			want = 1
		}
		if got := m.Owner([]byte(k)); got != &m.Shards[want] {
			t.Errorf("key %q (slot %d): owner %+v, want shard %d", k, slot, got, want)
		}
	}
}

func TestParseSlotsSeveralRangesOneShard(t *testing.T) {
	v := reply(
		slotRange(0, 99, node("h", 1, "a")),
		slotRange(100, 199, node("h", 2, "b")),
		slotRange(200, 16383, node("h", 1, "a")),
	)
	m, err := ParseSlots(v, "h")
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Shards) != 2 || m.Slots[0] != m.Slots[200] || m.Slots[100] == m.Slots[0] || !m.Covered() {
		t.Fatalf("shards %+v; slot 0 -> %d, 100 -> %d, 200 -> %d", m.Shards, m.Slots[0], m.Slots[100], m.Slots[200])
	}
}

func TestParseSlotsUncovered(t *testing.T) {
	m, err := ParseSlots(reply(slotRange(0, 8191, node("h", 1, "a"))), "h")
	if err != nil {
		t.Fatal(err)
	}
	if m.Covered() || m.Uncovered() != 8192 || m.Slots[8192] != Uncovered {
		t.Fatalf("covered %v, uncovered %d", m.Covered(), m.Uncovered())
	}
	if m.Owner([]byte("123456789")) != nil { // slot 12739
		t.Error("an uncovered slot has an owner")
	}
	empty, err := ParseSlots(reply(), "h")
	if err != nil || empty.Uncovered() != hashring.ClusterSlots {
		t.Fatalf("an empty map: %v, uncovered %d", err, empty.Uncovered())
	}
}

func TestParseSlotsMalformed(t *testing.T) {
	bad := map[string]resp.Value{
		"error":          {Kind: resp.KindError, Str: []byte("ERR This instance has cluster support disabled")},
		"not an array":   {Kind: resp.KindInteger, Int: 1},
		"short range":    reply(slotRange(0, 1)),
		"end past slots": reply(slotRange(0, 16384, node("h", 1, "a"))),
		"reversed range": reply(slotRange(10, 5, node("h", 1, "a"))),
		"no port":        reply(append(resp.AppendInt(resp.AppendInt(resp.AppendArray(nil, 3), 0), 5), resp.AppendBulkString(resp.AppendArray(nil, 1), "h")...)),
		"port zero":      reply(slotRange(0, 5, node("h", 0, "a"))),
	}
	for name, v := range bad {
		if _, err := ParseSlots(v, "h"); !errors.Is(err, ErrNotSlots) {
			t.Errorf("%s: %v, want ErrNotSlots", name, err)
		}
	}
}
