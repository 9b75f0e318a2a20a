package proxy_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/internal/proxytest"
	"github.com/shardproxy/shardproxy/internal/testservers"
)

// appTimeout bounds one run of an application's script: a script that
// hangs (a reply that never comes) is killed and the test fails.
const appTimeout = 60 * time.Second

// bullmqJobs is how many plain jobs the BullMQ script adds.
const bullmqJobs = 200

// bullmqResult is what testdata/bullmq/jobs.mjs prints.
type bullmqResult struct {
	OK              bool           `json:"ok"`
	Stage           string         `json:"stage"`
	Why             string         `json:"why"`
	Errors          []string       `json:"errors"`
	Completed       int            `json:"completed"`
	Failed          int            `json:"failed"`
	FailedAttempts  int            `json:"failedAttempts"`
	Retried         int            `json:"retried"`
	Checksum        int64          `json:"checksum"`
	EventsCompleted int            `json:"eventsCompleted"`
	EventsFailed    int            `json:"eventsFailed"`
	Progress        int            `json:"progress"`
	Counts          map[string]int `json:"counts"`
	FailedReasons   []string       `json:"failedReasons"`
	Logs            []string       `json:"logs"`
	Seconds         float64        `json:"seconds"`
}

// TestAppBullMQ runs BullMQ 5 (testdata/bullmq, installed by test.sh with
// npm) as an application does: a Queue gets 200 jobs (some delayed, some
// prioritized), a job that fails once and is retried, one that fails both
// its attempts and a flow of a parent and three children (a MULTI); a
// Worker of concurrency 5 runs them (BZPOPMIN on the queue's marker, Lua
// scripts of up to 14 keys through EVALSHA) while a QueueEvents follows
// the queue's event stream (XREAD BLOCK). First straight to a redis-server,
// which validates the script, then through a pool of one server and
// through a pool of three with hash_tag "{}" and BullMQ's prefix "{bull}",
// where every key of the queue, those the scripts make up from their
// arguments included, lives on one server. Through a pool of three
// without the hash tag in the prefix, BullMQ's scripts name keys on
// several servers: the run must fail at once with the proxy's reason.
// Only a machine without node skips it.
func TestAppBullMQ(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed (test.sh installs it)")
	}
	dir, err := filepath.Abs(filepath.Join("testdata", "bullmq"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "bullmq", "package.json")); err != nil {
		t.Fatalf("BullMQ is not installed: run ./test.sh, or npm ci --prefix %s (%v)", dir, err)
	}
	direct := t.Run("redis", func(t *testing.T) {
		s := testservers.Redis(t)
		checkBullMQ(t, runBullMQ(t, node, dir, s.Addr, "bull"))
	})
	if !direct {
		t.Fatal("the BullMQ script fails against redis-server itself: fix the script first")
	}
	t.Run("pool_of_1", func(t *testing.T) {
		f := proxytest.StartFixture(t, proxytest.Pool{}, proxytest.StartRedisBackends(t, 1))
		checkBullMQ(t, runBullMQ(t, node, dir, f.Addr, "bull"))
	})
	t.Run("pool_of_3_hash_tag", func(t *testing.T) {
		f := proxytest.StartFixture(t, proxytest.Pool{HashTag: "{}"}, proxytest.StartRedisBackends(t, 3))
		checkBullMQ(t, runBullMQ(t, node, dir, f.Addr, "{bull}"))
		// Every key of the queue hashes on "bull": one server holds them.
		var sizes []int
		holders := 0
		for _, b := range f.Backends {
			n := proxytest.Dbsize(t, b.Addr)
			sizes = append(sizes, n)
			if n > 0 {
				holders++
			}
		}
		t.Logf("keys per server: %v", sizes)
		if holders != 1 {
			t.Errorf("keys per server %v: want every key of prefix {bull} on one server", sizes)
		}
	})
	t.Run("pool_of_3_no_hash_tag_refused", func(t *testing.T) {
		f := proxytest.StartFixture(t, proxytest.Pool{HashTag: "{}"}, proxytest.StartRedisBackends(t, 3))
		res, err := tryBullMQ(t, node, dir, f.Addr, "bull")
		t.Logf("BullMQ through a pool of three, prefix bull: %v", err)
		if err == nil {
			t.Fatalf("BullMQ with keys on three servers ran its %d jobs; want its scripts refused", res.Completed)
		}
		if !slices.ContainsFunc(res.Errors, crossServer.MatchString) {
			t.Errorf("BullMQ with keys on three servers failed with %q; want the proxy's reason, keys on different servers", res.Errors)
		}
	})
}

// runBullMQ runs testdata/bullmq/jobs.mjs against addr with BullMQ's key
// prefix and returns what it printed; a run that fails, or prints no
// result, fails the test with the script's output.
func runBullMQ(t *testing.T, node, dir, addr, prefix string) bullmqResult {
	t.Helper()
	start := time.Now()
	res, err := tryBullMQ(t, node, dir, addr, prefix)
	elapsed := time.Since(start).Round(time.Millisecond)
	if err != nil {
		t.Fatalf("BullMQ against %s failed after %v: %v", addr, elapsed, err)
	}
	t.Logf("BullMQ against %s: %d jobs completed, %d failed, in %v (script: %.3f s)",
		addr, res.Completed, res.Failed, elapsed, res.Seconds)
	return res
}

// tryBullMQ runs testdata/bullmq/jobs.mjs against addr with BullMQ's key
// prefix and returns what it printed, and an error that says why and
// where a run failed; a run that prints no result fails the test.
func tryBullMQ(t *testing.T, node, dir, addr, prefix string) (bullmqResult, error) {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	env := []string{"REDIS_HOST=" + host, "REDIS_PORT=" + port, "BULL_PREFIX=" + prefix,
		"JOBS=" + strconv.Itoa(bullmqJobs), "DEADLINE_MS=40000"}
	var res bullmqResult
	stdout, stderr, runErr := runApp(t, dir, env, node, filepath.Join(dir, "jobs.mjs"))
	if err := decodeLastLine(stdout, &res); err != nil {
		t.Fatalf("BullMQ against %s (%v): %v\nstdout: %s\nstderr: %s", addr, runErr, err, stdout, lastLines(stderr, 20))
	}
	if runErr != nil || !res.OK {
		return res, fmt.Errorf("%v at stage %q: %s (%d jobs completed, %d failed)\nerrors:\n  %s\nstderr: %s",
			runErr, res.Stage, res.Why, res.Completed, res.Failed, strings.Join(res.Errors, "\n  "), lastLines(stderr, 10))
	}
	return res, nil
}

// checkBullMQ compares a run's counts with what the jobs of the script
// must give.
func checkBullMQ(t *testing.T, got bullmqResult) {
	t.Helper()
	completed := bullmqJobs + 5 // the flaky job, the flow's parent and its three children
	var checksum int64
	for n := range int64(bullmqJobs) {
		checksum += n * n
	}
	children := int64(2000*2000 + 2001*2001 + 2002*2002)
	checksum += 1000*1000 + 2*children // the flaky job; the children and their parent's sum
	want := bullmqResult{OK: true, Completed: completed, Failed: 1, FailedAttempts: 3, Retried: 1, Checksum: checksum,
		EventsCompleted: completed, EventsFailed: 1,
		Counts:        map[string]int{"completed": completed, "failed": 1, "delayed": 0, "wait": 0, "active": 0, "prioritized": 0},
		FailedReasons: []string{"doomed: every attempt fails"}, Logs: []string{"job 0 half done"}}
	got.Seconds, got.Progress, got.Stage = 0, 0, ""
	if !reflect.DeepEqual(got, want) {
		t.Errorf("BullMQ results:\n got %+v\nwant %+v", got, want)
	}
}

// runApp runs an application's script (name and args) in dir with env
// added to the test's environment, killed after appTimeout; it returns
// the script's output and the error of its run.
func runApp(t *testing.T, dir string, env []string, name string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), appTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.WaitDelay = 5 * time.Second
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("killed after %v: %w", appTimeout, err)
	}
	return out.String(), errOut.String(), err
}

// decodeLastLine decodes the last line of out, a JSON object, into v.
func decodeLastLine(out string, v any) error {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	last := lines[len(lines)-1]
	if err := json.Unmarshal([]byte(last), v); err != nil {
		return fmt.Errorf("no JSON result printed: %w", err)
	}
	return nil
}

// lastLines returns the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
