package main

import (
	"bufio"
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/config"
	"github.com/shardproxy/shardproxy/hashring"
	"github.com/shardproxy/shardproxy/internal/testservers"
)

// runReshardCmd runs "shardproxy reshard args..." as main does.
func runReshardCmd(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = run(append([]string{"reshard"}, args...), &out, &errb)
	return code, out.String(), errb.String()
}

// poolYAML writes a redis pool named alpha listening on listen.
func poolYAML(listen string, servers []string, extra ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "alpha:\n  listen: %s\n  redis: true\n", listen)
	for _, e := range extra {
		fmt.Fprintf(&b, "  %s\n", e)
	}
	b.WriteString("  servers:\n")
	for _, s := range servers {
		fmt.Fprintf(&b, "    - %s\n", s)
	}
	return b.String()
}

// namedLines returns server lines "addr:1 sN" for addrs.
func namedLines(addrs []string) []string {
	lines := make([]string, len(addrs))
	for i, a := range addrs {
		lines[i] = fmt.Sprintf("%s:1 s%d", a, i)
	}
	return lines
}

// refPlacement builds a placement with hashring directly, for checking
// the command's numbers.
func refPlacement(t *testing.T, dist string, n int) *hashring.Placement {
	t.Helper()
	hc := hashring.Config{Distribution: dist}
	for i := range n {
		hc.Servers = append(hc.Servers, hashring.Server{Name: fmt.Sprintf("s%d", i), Weight: 1})
	}
	p, err := hashring.New(hc)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// refShares places keys of its own (not the command's) with both
// placements: each server's share before and after, and each moving pair's
// share, keyed "s0 -> s3".
func refShares(from, to *hashring.Placement, keys int) (before, after []float64, moves map[string]float64) {
	before, after, moves = make([]float64, 8), make([]float64, 8), map[string]float64{}
	rng := rand.New(rand.NewPCG(99, 7))
	for range keys {
		k := []byte(fmt.Sprintf("ref/%d/%x", rng.Uint32(), rng.Uint64()))
		o, n := from.Pick(k), to.Pick(k)
		before[o] += 1 / float64(keys)
		after[n] += 1 / float64(keys)
		if o != n {
			moves[fmt.Sprintf("s%d -> s%d", o, n)] += 1 / float64(keys)
		}
	}
	return before, after, moves
}

var (
	sharesLine = regexp.MustCompile(`(?m)^    (s\d+) +([\d.]+)% +([\d.]+)%$`)
	pairLine   = regexp.MustCompile(`(?m)^    (s\d+ -> s\d+)  ([\d.]+)%$`)
	movesLine  = regexp.MustCompile(`(?m)^  moves ([\d.]+)% of the keyspace:$`)
	keysLine   = regexp.MustCompile(`(?m)^    (s\d+ -> s\d+)  ~(\d+) keys  ~[\d.]+ (B|KiB|MiB)$`)
)

// checkShares compares the plan's printed shares with the reference
// within tol (an absolute share).
func checkShares(t *testing.T, out string, before, after []float64, moves map[string]float64, tol float64) {
	t.Helper()
	rows := sharesLine.FindAllStringSubmatch(out, -1)
	if len(rows) == 0 {
		t.Fatalf("no share per server in:\n%s", out)
	}
	for _, r := range rows {
		i, _ := strconv.Atoi(r[1][1:])
		b, _ := strconv.ParseFloat(r[2], 64)
		a, _ := strconv.ParseFloat(r[3], 64)
		if math.Abs(b/100-before[i]) > tol || math.Abs(a/100-after[i]) > tol {
			t.Errorf("%s: before %.2f%% after %.2f%%, hashring says %.2f%% and %.2f%%", r[1], b, a, 100*before[i], 100*after[i])
		}
	}
	pairs := pairLine.FindAllStringSubmatch(out, -1)
	if len(pairs) != len(moves) {
		t.Errorf("%d moving pairs printed, hashring finds %d: %v\n%s", len(pairs), len(moves), moves, out)
	}
	var total float64
	for _, p := range pairs {
		f, _ := strconv.ParseFloat(p[2], 64)
		if math.Abs(f/100-moves[p[1]]) > tol {
			t.Errorf("%s moves %.2f%%, hashring says %.2f%%", p[1], f, 100*moves[p[1]])
		}
		total += moves[p[1]]
	}
	m := movesLine.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no moved share in:\n%s", out)
	}
	if f, _ := strconv.ParseFloat(m[1], 64); math.Abs(f/100-total) > tol {
		t.Errorf("moves %.2f%% of the keyspace, hashring says %.2f%%", f, 100*total)
	}
}

// setKeys writes keys (value: the key) to the Redis server at addr in one
// pipeline.
func setKeys(t *testing.T, addr string, keys []string) { setKeysIn(t, addr, "", 0, keys) }

// setKeysIn writes keys as setKeys does, after AUTH password (unless "")
// and SELECT db.
func setKeysIn(t *testing.T, addr, password string, db int, keys []string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	var req []byte
	replies := len(keys)
	if password != "" {
		req = fmt.Appendf(req, "*2\r\n$4\r\nAUTH\r\n$%d\r\n%s\r\n", len(password), password)
		replies++
	}
	if db != 0 {
		req = fmt.Appendf(req, "*2\r\n$6\r\nSELECT\r\n$1\r\n%d\r\n", db)
		replies++
	}
	for _, k := range keys {
		req = fmt.Appendf(req, "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", len(k), k, len(k), k)
	}
	if _, err := c.Write(req); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(c)
	for range replies {
		if line, err := r.ReadString('\n'); err != nil || line != "+OK\r\n" {
			t.Fatalf("SET on %s: %q %v", addr, line, err)
		}
	}
}

// TestReshardPlanKetamaGrow plans growing a ketama pool from 3 servers to
// 4 holding keys: the printed shares match hashring's own placement of
// other keys, and the keys to move per pair are exact when every key is
// read (SCAN) and close when sampled (RANDOMKEY).
func TestReshardPlanKetamaGrow(t *testing.T) {
	var addrs []string
	for range 4 {
		addrs = append(addrs, testservers.Redis(t).Addr)
	}
	lines := namedLines(addrs)
	conf := writeConf(t, poolYAML("127.0.0.1:1", lines,
		"migrate_from: {servers: ["+strings.Join(lines[:3], ", ")+"]}"))
	from, to := refPlacement(t, "ketama", 3), refPlacement(t, "ketama", 4)

	// 6000 keys, each on its owner of the 3-server ring; count the movers.
	perServer := make([][]string, 3)
	want := map[string]int{}
	for i := range 6000 {
		k := fmt.Sprintf("user:%d:%d", i*7919, i)
		o, n := from.Pick([]byte(k)), to.Pick([]byte(k))
		perServer[o] = append(perServer[o], k)
		if o != n {
			want[fmt.Sprintf("s%d -> s%d", o, n)]++
		}
	}
	for i, keys := range perServer {
		setKeys(t, addrs[i], keys)
	}

	code, out, errOut := runReshardCmd("--plan", "-c", conf, "--sample-keys", "5000")
	if code != 0 {
		t.Fatalf("exit %d: %s\n%s", code, errOut, out)
	}
	t.Logf("plan:\n%s", out)
	before, after, moves := refShares(from, to, 200000)
	checkShares(t, out, before, after, moves, 0.01)
	if n := strings.Count(out, "read: "); n != 3 {
		t.Errorf("%d old owners read whole, want 3", n)
	}
	got := map[string]int{}
	for _, m := range keysLine.FindAllStringSubmatch(out, -1) {
		got[m[1]], _ = strconv.Atoi(m[2])
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("keys to move per pair %v, want %v", got, want)
	}

	// Sampled: 300 keys per server of about 2000, with replacement.
	code, out, errOut = runReshardCmd("--plan", "-c", conf, "--sample-keys", "300")
	if code != 0 {
		t.Fatalf("exit %d: %s\n%s", code, errOut, out)
	}
	var wantTotal, gotTotal int
	for _, n := range want {
		wantTotal += n
	}
	m := regexp.MustCompile(`(?m)^    total  ~(\d+) keys  ~`).FindStringSubmatch(out)
	if m == nil || strings.Count(out, "300 sampled") != 3 {
		t.Fatalf("no sampled estimate in:\n%s", out)
	}
	gotTotal, _ = strconv.Atoi(m[1])
	// The moving share of 900 draws has a standard deviation of about
	// 0.015; 0.08 of 6000 keys is over 5 of them.
	if math.Abs(float64(gotTotal-wantTotal)) > 0.08*6000 {
		t.Errorf("sampled estimate ~%d keys to move, %d do", gotTotal, wantTotal)
	}

	// A migrate_from that is not where the data is (modula, not ketama)
	// leaves most keys where they are: each old owner is warned about.
	wrong := writeConf(t, poolYAML("127.0.0.1:1", lines,
		"migrate_from: {distribution: modula, servers: ["+strings.Join(lines[:3], ", ")+"]}"))
	code, out, errOut = runReshardCmd("--plan", "-c", wrong, "--sample-keys", "5000")
	if code != 0 || strings.Count(out, "are not where migrate_from places them") != 3 {
		t.Errorf("exit %d, want a warning per old owner: %s\n%s", code, errOut, out)
	}
}

// TestReshardPlanSlots plans moves onto distribution jump: from ketama
// (the shares checked against hashring) and from a smaller jump pool (exact:
// the new server's 64 slots), and the printed slot tables read back through
// config.Parse as the same explicit table.
func TestReshardPlanSlots(t *testing.T) {
	addrs := []string{"127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3", "127.0.0.1:4"} // nobody listens
	lines := namedLines(addrs)
	t.Run("ketama to jump", func(t *testing.T) {
		conf := writeConf(t, poolYAML("127.0.0.1:9", lines[:3], "distribution: jump", "migrate_from: {distribution: ketama}"))
		code, out, errOut := runReshardCmd("--plan", "-c", conf)
		if code != 0 {
			t.Fatalf("exit %d: %s\n%s", code, errOut, out)
		}
		t.Logf("plan:\n%s", out)
		before, after, moves := refShares(refPlacement(t, "ketama", 3), refPlacement(t, "jump", 3), 200000)
		checkShares(t, out, before, after, moves, 0.01)
		if strings.Contains(out, "slot table before") {
			t.Error("a slot table printed for the ketama placement")
		}
		if strings.Count(out, "not sampled: ") != 3 {
			t.Errorf("want 3 servers not sampled (nobody listens):\n%s", out)
		}
		checkSlotsRoundTrip(t, out, "slot table after", lines[:3], refPlacement(t, "jump", 3).SlotTable())
	})
	t.Run("jump 3 to 4", func(t *testing.T) {
		conf := writeConf(t, poolYAML("127.0.0.1:9", lines, "distribution: jump",
			"migrate_from: {servers: ["+strings.Join(lines[:3], ", ")+"]}"))
		code, out, errOut := runReshardCmd("--plan", "-c", conf, "--sample=false")
		if code != 0 {
			t.Fatalf("exit %d: %s\n%s", code, errOut, out)
		}
		t.Logf("plan:\n%s", out)
		if !strings.Contains(out, "exact: each of the 256 slots") || !strings.Contains(out, "  moves 25.00% of the keyspace:") {
			t.Errorf("want an exact 25.00%% moved:\n%s", out)
		}
		if strings.Contains(out, "keys on the old owners") {
			t.Error("sampled with --sample=false")
		}
		checkSlotsRoundTrip(t, out, "slot table after", lines, refPlacement(t, "jump", 4).SlotTable())
		checkSlotsRoundTrip(t, out, "slot table before", lines[:3], refPlacement(t, "jump", 3).SlotTable())
	})
}

// checkSlotsRoundTrip reads the slots: block printed after heading and
// parses it as an explicit table of a pool of servers: it must be want.
func checkSlotsRoundTrip(t *testing.T, out, heading string, servers []string, want []int) {
	t.Helper()
	_, rest, ok := strings.Cut(out, heading)
	if !ok {
		t.Fatalf("no %q in:\n%s", heading, out)
	}
	var block []string
	for _, l := range strings.Split(rest, "\n")[1:] {
		if !strings.HasPrefix(l, "    ") {
			break
		}
		block = append(block, strings.TrimPrefix(l, "  "))
	}
	doc := poolYAML("127.0.0.1:9", servers, "distribution: jump") + strings.Join(block, "\n") + "\n"
	cfg, err := config.Parse([]byte(doc))
	if err != nil {
		t.Fatalf("the printed table does not parse: %v\n%s", err, doc)
	}
	if got := cfg.Pools[0].Slots; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("%s parses as %v, want %v", heading, got, want)
	}
}

// TestReshardArgs: a bad file is the config's error and exit 1, a file
// without migration plans nothing, and bad flags exit 2.
func TestReshardArgs(t *testing.T) {
	bad := writeConf(t, "alpha:\n  listen: 127.0.0.1:22121\n  hash: fnv\n  servers:\n    - 127.0.0.1:6379:1\n")
	still := writeConf(t, poolYAML("127.0.0.1:9", []string{"127.0.0.1:1:1"}))
	tests := []struct {
		name     string
		args     []string
		code     int
		out, err string
	}{
		{"bad file", []string{"--plan", "-c", bad}, 1, "", `pool "alpha": key "hash": unknown hash "fnv"`},
		{"no migration", []string{"--plan", "-c", still}, 0, "no pool has migrate_from: nothing to move", ""},
		{"unknown pool", []string{"--plan", "-c", still, "--pool", "beta"}, 1, "", `has no pool "beta"`},
		{"pool without migration", []string{"--plan", "-c", still, "--pool", "alpha"}, 1, "", "has no migrate_from"},
		{"neither", []string{"-c", still}, 2, "", "give either --plan or --stats"},
		{"both", []string{"--plan", "--stats", "127.0.0.1:1", "-c", still}, 2, "", "give either --plan or --stats"},
		{"plan without file", []string{"--plan"}, 2, "", "--plan needs the configuration file"},
		{"unknown flag", []string{"--bogus"}, 2, "", "flag provided but not defined"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runReshardCmd(tc.args...)
			if code != tc.code || !strings.Contains(out, tc.out) || !strings.Contains(errOut, tc.err) {
				t.Fatalf("exit %d stdout %q stderr %q; want %d, %q, %q", code, out, errOut, tc.code, tc.out, tc.err)
			}
		})
	}
}

// TestReshardPlanAuthDB samples a pool whose servers want a password and
// whose keys are in database 1: the plan authenticates and selects as the
// pool does, and counts exactly the keys that move.
func TestReshardPlanAuthDB(t *testing.T) {
	addrs := []string{testservers.Redis(t, "--requirepass", "pw").Addr, testservers.Redis(t, "--requirepass", "pw").Addr}
	lines := namedLines(addrs)
	conf := writeConf(t, poolYAML("127.0.0.1:1", lines, "redis_auth: pw", "redis_db: 1",
		"migrate_from: {servers: ["+lines[0]+"]}"))
	to := refPlacement(t, "ketama", 2)
	var keys []string
	want := 0
	for i := range 800 {
		k := fmt.Sprintf("order:%d", i)
		keys = append(keys, k)
		if to.Pick([]byte(k)) == 1 {
			want++
		}
	}
	setKeysIn(t, addrs[0], "pw", 1, keys)
	code, out, errOut := runReshardCmd("--plan", "-c", conf)
	if code != 0 {
		t.Fatalf("exit %d: %s\n%s", code, errOut, out)
	}
	if !strings.Contains(out, "DBSIZE 800, all 800 read: ") ||
		!strings.Contains(out, fmt.Sprintf("    s0 -> s1  ~%d keys  ~", want)) {
		t.Errorf("want all 800 keys of database 1 read and %d moving to s1:\n%s", want, out)
	}
}
