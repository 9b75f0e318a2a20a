package config

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

// migratePool is a redis pool of servers a, b, c whose line 3 on are
// extra; migrate_from's lines follow.
func migratePool(extra, migrate string) string {
	return "alpha:\n  listen: 127.0.0.1:22121\n  redis: true\n" + extra +
		"  servers:\n    - 127.0.0.1:7001:1 a\n    - 127.0.0.1:7002:1 b\n    - 127.0.0.1:7003:1 c\n" +
		"  migrate_from:\n" + migrate
}

func TestMigrateFrom(t *testing.T) {
	ab := []Server{
		{Network: "tcp", Addr: "127.0.0.1:7001", Host: "127.0.0.1", Port: 7001, Weight: 1, Name: "a", Ident: "a"},
		{Network: "tcp", Addr: "127.0.0.1:7002", Host: "127.0.0.1", Port: 7002, Weight: 1, Name: "b", Ident: "b"},
	}
	tests := []struct {
		name, yml string
		want      *Placement
	}{
		{"servers only: the rest from the pool",
			migratePool("  hash: murmur\n  hash_tag: \"{}\"\n", "    servers:\n      - 127.0.0.1:7001:1 a\n      - 127.0.0.1:7002:1 b\n"),
			&Placement{Servers: ab, Hash: "murmur", HashTag: "{}", Distribution: "ketama"}},
		{"ketama to jump: the servers from the pool",
			migratePool("  distribution: jump\n", "    distribution: ketama\n    hash: fnv1a_64\n"),
			&Placement{Servers: append(ab[:2:2], Server{Network: "tcp", Addr: "127.0.0.1:7003", Host: "127.0.0.1",
				Port: 7003, Weight: 1, Name: "c", Ident: "c"}), Hash: "fnv1a_64", Distribution: "ketama"}},
		{"flow style, explicit slots",
			migratePool("  distribution: jump\n", "    {servers: [127.0.0.1:7001:1 a, 127.0.0.1:7002:1 b], slots: {a: 0-99, b: 100-255}}\n"),
			&Placement{Servers: ab, Hash: "fnv1a_64", Distribution: "jump", Slots: slotsOf(100, 156)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := parsePool1(t, tc.yml)
			if !reflect.DeepEqual(p.MigrateFrom, tc.want) {
				t.Errorf("MigrateFrom\n got %+v\nwant %+v", p.MigrateFrom, tc.want)
			}
			cfg, _ := Parse([]byte(tc.yml))
			if w := cfg.Warnings(); len(w) != 1 || !strings.Contains(w[0], "migrate_from") {
				t.Errorf("warnings %q, want one about migrate_from", w)
			}
		})
	}
}

// slotsOf is a table giving the first a slots to server 0, the next b to 1.
func slotsOf(a, b int) []int {
	t := make([]int, 0, a+b)
	for range a {
		t = append(t, 0)
	}
	for range b {
		t = append(t, 1)
	}
	return t
}

func TestMigrateFromErrors(t *testing.T) {
	tests := []struct {
		name, yml, key string
		line           int
		contains       string
	}{
		{"memcache refused",
			"alpha:\n  listen: 127.0.0.1:22121\n  servers:\n    - 127.0.0.1:7001:1\n  migrate_from:\n    hash: md5\n",
			"migrate_from", 5, "re-maps keys"},
		{"unknown key", migratePool("", "    weight: 3\n"), "migrate_from", 9, `unknown key "weight"`},
		{"bad server line", migratePool("", "    servers:\n      - 127.0.0.1:7001\n"), "migrate_from.servers", 10, "127.0.0.1:7001"},
		{"bad hash", migratePool("", "    hash: fnv\n"), "migrate_from.hash", 9, `unknown hash "fnv"`},
		{"bad distribution", migratePool("", "    distribution: rings\n"), "migrate_from.distribution", 9, "unknown distribution"},
		{"servers not a list", migratePool("", "    servers: 127.0.0.1:7001:1\n"), "migrate_from.servers", 9, "want a list"},
		{"slots without jump", migratePool("", "    slots:\n      a: 0-255\n"), "migrate_from.slots", 9, "needs distribution: jump"},
		{"slots missing some", migratePool("", "    distribution: jump\n    slots:\n      a: 0-200\n"),
			"migrate_from.slots", 10, "201-255"},
		{"one name, two servers", migratePool("", "    servers:\n      - 127.0.0.1:7009:1 a\n"),
			"migrate_from.servers", 9, `server "a" is at 127.0.0.1:7001 in servers but at 127.0.0.1:7009`},
		{"unix socket", migratePool("", "    servers:\n      - /tmp/r.sock:1 u\n"),
			"migrate_from.servers", 9, "unix socket"},
		{"given twice", migratePool("", "    hash: md5\n    hash: md5\n"), "migrate_from.hash", 10, "twice"},
		{"not a mapping", migratePool("", "    - a\n"), "migrate_from", 8, "want a mapping"},
		{"from random", migratePool("", "    distribution: random\n"), "migrate_from.distribution", 9, "random"},
		{"to random", migratePool("  distribution: random\n", "    distribution: ketama\n"), "distribution", 4, "random"},
		{"rate zero", migratePool("  migrate_rate: 0\n", "    hash: md5\n"), "migrate_rate", 4, "at least 1"},
		{"start_at no time", migratePool("", "    start_at: tomorrow\n"), "migrate_from.start_at", 9, "RFC 3339"},
		{"start_at without zone", migratePool("", "    start_at: \"2026-11-30T10:30:00\"\n"),
			"migrate_from.start_at", 9, "RFC 3339"},
		{"start_at a list", migratePool("", "    start_at: [2026-11-30T10:30:00Z]\n"),
			"migrate_from.start_at", 9, "want a single value"},
		{"start_at twice", migratePool("", "    start_at: 2026-11-30T10:30:00Z\n    start_at: 2026-11-30T10:31:00Z\n"),
			"migrate_from.start_at", 10, "twice"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yml))
			wantError(t, err, "alpha", tc.key, tc.line, tc.contains)
		})
	}
}

func TestMigrateFromSame(t *testing.T) {
	a := parsePool1(t, migratePool("", "    hash: md5\n"))
	b := parsePool1(t, migratePool("", "    hash: md5\n"))
	c := parsePool1(t, migratePool("", "    hash: murmur\n"))
	d := parsePool1(t, onePool("  redis: true\n"))
	if !a.Same(b) || a.Same(c) || a.Same(d) {
		t.Errorf("Same: a~b %v (want true), a~c %v, a~d %v (want false)", a.Same(b), a.Same(c), a.Same(d))
	}
	if a.MigrateRate != 0 || parsePool1(t, migratePool("  migrate_rate: 50\n", "    hash: md5\n")).MigrateRate != 50 {
		t.Error("migrate_rate: want 0 when absent (DefaultMigrateRate), 50 when given")
	}
}

// TestMigrateStartAt reads start_at (quoted or not, any zone, kept in UTC;
// zero when absent) and checks what -t warns about it: a start_at more
// than a day past, or none, gets a hint for a fleet of proxies.
func TestMigrateStartAt(t *testing.T) {
	at := time.Date(2026, 11, 30, 10, 30, 0, 0, time.UTC)
	tests := []struct {
		name, migrate string
		want          time.Time
		now           time.Time
		hint          string // in the warning; "" for none beyond the usual
	}{
		{"none", "    hash: md5\n", time.Time{}, at, "it has no start_at"},
		{"plain", "    start_at: 2026-11-30T10:30:00Z\n", at, at.Add(-time.Hour), ""},
		{"quoted, other zone", "    start_at: \"2026-11-30T11:30:00+01:00\"\n", at, at.Add(time.Hour), ""},
		{"a day past at most", "    {start_at: 2026-11-30T10:30:00Z, hash: md5}\n", at, at.Add(24 * time.Hour), ""},
		{"stale", "    start_at: 2026-11-30T10:30:00Z\n", at, at.Add(25 * time.Hour), "more than a day past"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			yml := migratePool("", tc.migrate)
			p := parsePool1(t, yml)
			if got := p.MigrateFrom.StartAt; !got.Equal(tc.want) || got.Location() != time.UTC {
				t.Errorf("StartAt %v (%v), want %v in UTC", got, got.Location(), tc.want)
			}
			cfg, err := Parse([]byte(yml))
			if err != nil {
				t.Fatal(err)
			}
			w := cfg.warnings(tc.now)
			if len(w) != 1 || !strings.Contains(w[0], "a migration is configured") {
				t.Fatalf("warnings %q, want one about the migration", w)
			}
			for _, h := range []string{"it has no start_at", "more than a day past"} {
				if strings.Contains(w[0], h) != (h == tc.hint) {
					t.Errorf("warning %q: mentions %q: %v, want %v", w[0], h, !(h == tc.hint), h == tc.hint)
				}
			}
		})
	}
	// Two parses of one start_at are the same pool: a reload of the same
	// file leaves it untouched.
	yml := migratePool("", "    start_at: \"2026-11-30T11:30:00+01:00\"\n")
	if a, b := parsePool1(t, yml), parsePool1(t, yml); !a.Same(b) {
		t.Error("Same: one start_at parsed twice differs")
	}
	if a, b := parsePool1(t, yml), parsePool1(t, migratePool("", "    start_at: 2026-11-30T10:31:00Z\n")); a.Same(b) {
		t.Error("Same: two start_at values are the same")
	}
}
