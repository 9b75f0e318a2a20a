package proxytest

import (
	"fmt"
	"io"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/internal/testservers"
)

// memcacheFixture is a proxy in front of real memcached servers, and one
// more memcached to compare with.
type memcacheFixture struct {
	*Fixture
	Direct *testservers.Server
}

// NewMemcacheFixture starts n backends behind a ketama/md5 proxy pool and
// one direct memcached. extra are further memcached arguments for all of
// them. md5, not fnv1a_64: nutcracker's fnv1a_64 is 32-bit with a small
// prime, so keys that differ only in their last bytes ("multi:1",
// "multi:2") hash to nearby points and can miss some servers altogether.
func NewMemcacheFixture(t *testing.T, n int, extra ...string) *memcacheFixture {
	t.Helper()
	direct := testservers.Memcached(t, extra...)
	backends := StartMemcacheBackends(t, n, extra...)
	p := Pool{Memcache: true, Hash: "md5", Distribution: "ketama"}
	return &memcacheFixture{Fixture: StartFixture(t, p, backends), Direct: direct}
}

// Count returns how many of keys backend i holds.
func (f *memcacheFixture) Count(t *testing.T, i int, keys []string) int {
	t.Helper()
	c := Dial(t, f.Backends[i].Addr)
	defer c.Net.Close()
	return strings.Count(c.RoundTrip("get "+strings.Join(keys, " ")+"\r\n"), "VALUE ")
}

// CheckSpread checks that every key is on exactly one backend and that the
// keys span several backends, so multi-key requests really are split.
// Placement depends on the servers' names, which hold run-time ports: with
// few keys one backend may get none, so only two are required.
func (f *memcacheFixture) CheckSpread(t *testing.T, keys []string) {
	t.Helper()
	total, holding := 0, 0
	for i := range f.Backends {
		n := f.Count(t, i, keys)
		if n > 0 {
			holding++
		}
		total += n
	}
	if holding < 2 {
		t.Errorf("%d keys are all on one backend: they are not spread", len(keys))
	}
	if total != len(keys) {
		t.Errorf("backends hold %d keys in all, want %d", total, len(keys))
	}
}

// NumberedKeys returns n distinct keys "<prefix>:<i>".
func NumberedKeys(prefix string, n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("%s:%d", prefix, i)
	}
	return keys
}

// writeAsync sends raw bytes from a goroutine, so that a large request and
// its replies cannot deadlock on full socket buffers; the returned channel
// yields the write's error.
func (c *Conn) writeAsync(s string) <-chan error {
	done := make(chan error, 1)
	go func() {
		c.Net.SetWriteDeadline(time.Now().Add(30 * time.Second))
		_, err := io.WriteString(c.Net, s)
		done <- err
	}()
	return done
}

// noOp ends a memcache pipeline: memcached and the proxy both answer "mn"
// with "MN".
const noOp = "mn\r\n"

// RoundTrip sends req followed by "mn" and returns every byte answered
// before that "MN" (req may hold "mn" requests of its own, but no value that
// contains "mn\r\n"), with VERSION lines and cas uniques normalised.
func (c *Conn) RoundTrip(req string) string {
	c.tb.Helper()
	s, err := c.TryRoundTrip(req)
	if err != nil {
		c.tb.Fatal(err)
	}
	return s
}

// TryRoundTrip is roundTrip returning its error.
func (c *Conn) TryRoundTrip(req string) (string, error) {
	werr := c.writeAsync(req + noOp)
	c.Net.SetReadDeadline(time.Now().Add(30 * time.Second))
	var b strings.Builder
	for left := strings.Count(req, noOp) + 1; left > 0; {
		line, err := c.R.ReadString('\n')
		b.WriteString(line)
		if err != nil {
			return "", fmt.Errorf("%s: reading replies to %.200q: %w; got %.500q", c.Net.RemoteAddr(), req, err, b.String())
		}
		if line == "MN\r\n" {
			left--
		}
	}
	if err := <-werr; err != nil {
		return "", fmt.Errorf("%s: write: %w", c.Net.RemoteAddr(), err)
	}
	return normalizeMemcache(strings.TrimSuffix(b.String(), "MN\r\n")), nil
}

// RoundTripNoMn sends req, which must be answered by n one-line replies, and
// returns them. nutcracker does not know the meta no-op "mn".
func (c *Conn) RoundTripNoMn(req string, n int) string {
	c.tb.Helper()
	werr := c.writeAsync(req)
	var b strings.Builder
	for range n {
		line, err := c.R.ReadString('\n')
		b.WriteString(line)
		if err != nil {
			c.tb.Fatalf("%s: reply %d of %d: %v; got %.300q", c.Net.RemoteAddr(), b.Len(), n, err, b.String())
		}
	}
	if err := <-werr; err != nil {
		c.tb.Fatalf("%s: write: %v", c.Net.RemoteAddr(), err)
	}
	return b.String()
}

var (
	versionLine = regexp.MustCompile(`(?m)^VERSION [^\r\n]*\r$`)
	casField    = regexp.MustCompile(`(?m)^(VALUE \S+ \d+ \d+) \d+\r$`)
)

// normalizeMemcache hides what legitimately differs between two memcached
// servers: the VERSION text (see anyVersion) and the cas unique of gets
// and gats.
func normalizeMemcache(s string) string {
	s = versionLine.ReplaceAllString(s, strings.TrimSuffix(AnyVersion, "\n"))
	return casField.ReplaceAllString(s, "$1 CAS\r")
}
