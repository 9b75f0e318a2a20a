package proxy_test

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/internal/proxytest"
	"github.com/shardproxy/shardproxy/internal/testservers"
)

// crossServer matches the proxy's reason for refusing a command whose keys
// live on another server than the rest of its request or transaction's
// ("the keys of 'eval' live on different servers"): any reason that names
// the servers, not "not supported".
var crossServer = regexp.MustCompile(`(?i)\bservers?\b`)

// rqJobs is how many jobs of tasks.add the RQ script enqueues before its
// burst worker runs.
const rqJobs = 50

// rqResult is what testdata/rq/jobs.py prints.
type rqResult struct {
	OK        bool           `json:"ok"`
	Stage     string         `json:"stage"`
	Error     string         `json:"error"`
	Trace     []string       `json:"trace"`
	Enqueued  int            `json:"enqueued"`
	Queued    int            `json:"queued"`
	Worked    bool           `json:"worked"`
	Statuses  map[string]int `json:"statuses"`
	Finished  int            `json:"finished"`
	Failed    int            `json:"failed"`
	Results   int            `json:"results"`
	Dependent int            `json:"dependent"`
	Failure   []string       `json:"failure"`
	Left      int            `json:"left"`
	Seconds   float64        `json:"seconds"`
}

// TestAppRQ runs RQ (Debian's python3-rq, installed by test.sh) as an
// application does: 50 jobs, one that fails and one that depends on three
// others (RQ WATCHes their keys) are enqueued, each enqueue a MULTI/EXEC;
// a burst worker (LPOP, a MULTI/EXEC per job's start and end, a SUBSCRIBE
// for its commands, a stream of results with XADD) runs them, then a
// worker that waits with BLPOP gets three more jobs enqueued while it
// waits. First straight to a redis-server, which validates the script,
// then through a pool of one server.
//
// RQ cannot use a pool of several servers: its transactions name keys that
// share no hash tag (an enqueue: SADD rq:queues, HSET rq:job:<id>, RPUSH
// rq:queue:<name>; a job's end: rq:worker:<name>, rq:job:<id>,
// rq:results:<id>, rq:finished:<name>, rq:wip:<name>), and its key
// prefixes are fixed. Through a pool of three the first transaction whose
// keys live on two servers must fail cleanly: the key on another server
// refused, EXEC answering EXECABORT, and nothing of the transaction run,
// so that the queue holds exactly the jobs whose enqueue succeeded.
func TestAppRQ(t *testing.T) {
	python := rqPython(t)
	dir, err := filepath.Abs(filepath.Join("testdata", "rq"))
	if err != nil {
		t.Fatal(err)
	}
	direct := t.Run("redis", func(t *testing.T) {
		s := testservers.Redis(t)
		checkRQ(t, runRQ(t, python, dir, s.Addr))
	})
	if !direct {
		t.Fatal("the RQ script fails against redis-server itself: fix the script first")
	}
	t.Run("pool_of_1", func(t *testing.T) {
		f := proxytest.StartFixture(t, proxytest.Pool{}, proxytest.StartRedisBackends(t, 1))
		checkRQ(t, runRQ(t, python, dir, f.Addr))
	})
	t.Run("pool_of_3_refused", func(t *testing.T) {
		f := proxytest.StartFixture(t, proxytest.Pool{HashTag: "{}"}, proxytest.StartRedisBackends(t, 3))
		res := runRQScript(t, python, dir, f.Addr)
		if res.OK || res.Stage != "enqueue" {
			t.Fatalf("RQ through a pool of three: ok %v at stage %q (%s); want its enqueue refused, keys on different servers",
				res.OK, res.Stage, res.Error)
		}
		if !crossServer.MatchString(res.Error) {
			t.Errorf("RQ's enqueue through a pool of three failed with %q; want the proxy's reason, keys on different servers", res.Error)
		}
		// Nothing of the refused transaction ran: the queue and the job
		// hashes are exactly those of the enqueues that succeeded.
		queued, jobs := 0, 0
		for _, b := range f.Backends {
			q, j := rqKeys(t, b.Addr)
			queued, jobs = queued+q, jobs+j
		}
		t.Logf("RQ through a pool of three: %d enqueued, then %q; %d ids queued, %d job hashes on the servers",
			res.Enqueued, res.Error, queued, jobs)
		if queued != res.Enqueued || jobs != res.Enqueued {
			t.Errorf("after %d enqueues succeeded the servers hold %d queued ids and %d job hashes: a refused transaction ran in part",
				res.Enqueued, queued, jobs)
		}
	})
}

// rqPython returns a python3 that imports rq: the one on PATH, else the
// one Debian's rq command runs with (its first line). A machine without
// python3 skips the test; one without RQ fails it.
func rqPython(t *testing.T) string {
	t.Helper()
	var candidates []string
	if p, err := exec.LookPath("python3"); err == nil {
		candidates = append(candidates, p)
	}
	if rq, err := exec.LookPath("rq"); err == nil {
		if p := interpreter(rq); p != "" {
			candidates = append(candidates, p)
		}
	}
	if len(candidates) == 0 {
		t.Skip("python3 is not installed (test.sh installs python3-rq)")
	}
	for _, p := range candidates {
		if exec.Command(p, "-c", "import rq").Run() == nil {
			return p
		}
	}
	t.Fatalf("RQ is not installed for %v: run ./test.sh, or apt-get install python3-rq", candidates)
	return ""
}

// interpreter returns the program of a script's "#!" line, or "".
func interpreter(script string) string {
	f, err := os.Open(script)
	if err != nil {
		return ""
	}
	defer f.Close()
	line, _ := bufio.NewReader(f).ReadString('\n')
	fields := strings.Fields(strings.TrimPrefix(line, "#!"))
	if !strings.HasPrefix(line, "#!") || len(fields) == 0 || !strings.Contains(fields[0], "python") {
		return ""
	}
	return fields[0]
}

// runRQ runs testdata/rq/jobs.py against addr and returns what it
// printed; a run that fails fails the test with the script's output.
func runRQ(t *testing.T, python, dir, addr string) rqResult {
	t.Helper()
	start := time.Now()
	res := runRQScript(t, python, dir, addr)
	if !res.OK {
		t.Fatalf("RQ against %s failed after %v at stage %q, %d jobs enqueued: %s\n  %s",
			addr, time.Since(start).Round(time.Millisecond), res.Stage, res.Enqueued, res.Error, strings.Join(res.Trace, "\n  "))
	}
	t.Logf("RQ against %s: %d jobs finished, %d failed, in %v (script: %.3f s)",
		addr, res.Finished, res.Failed, time.Since(start).Round(time.Millisecond), res.Seconds)
	return res
}

// runRQScript runs testdata/rq/jobs.py against addr and returns what it
// printed, failing the test only when it printed no result.
func runRQScript(t *testing.T, python, dir, addr string) rqResult {
	t.Helper()
	env := []string{"REDIS_URL=redis://" + addr, "JOBS=" + strconv.Itoa(rqJobs), "PYTHONDONTWRITEBYTECODE=1"}
	stdout, stderr, runErr := runApp(t, dir, env, python, filepath.Join(dir, "jobs.py"))
	var res rqResult
	if err := decodeLastLine(stdout, &res); err != nil {
		t.Fatalf("RQ against %s (%v): %v\nstdout: %s\nstderr: %s", addr, runErr, err, stdout, lastLines(stderr, 20))
	}
	if res.OK && runErr != nil {
		t.Fatalf("RQ against %s printed a result but its run failed: %v\nstderr: %s", addr, runErr, lastLines(stderr, 20))
	}
	return res
}

// checkRQ compares a run's results with what the jobs of the script must
// give.
func checkRQ(t *testing.T, got rqResult) {
	t.Helper()
	sum := 0
	for n := range rqJobs + 3 { // the burst worker's jobs and the blocking worker's
		sum += 2 * n
	}
	finished := rqJobs + 3 + 1 // and the dependent job
	want := rqResult{OK: true, Stage: "results", Enqueued: rqJobs, Queued: rqJobs + 1, Worked: true,
		Statuses: map[string]int{"finished": finished, "failed": 1}, Finished: finished, Failed: 1,
		Results: sum, Dependent: 0 + 2 + 4, Failure: []string{"ValueError: job meant to fail"}}
	got.Seconds = 0
	if !reflect.DeepEqual(got, want) {
		t.Errorf("RQ results:\n got %+v\nwant %+v", got, want)
	}
}

// rqKeys returns the length of RQ's queue "default" on a redis-server and
// how many job hashes (rq:job:<id>) it holds.
func rqKeys(t *testing.T, addr string) (queued, jobs int) {
	t.Helper()
	c := proxytest.Dial(t, addr)
	defer c.Net.Close()
	llen, err := c.TryDo(5*time.Second, "LLEN", "rq:queue:default")
	if err != nil || llen.Kind != ':' {
		t.Fatalf("LLEN on %s: %v %v", addr, llen, err)
	}
	keys, err := c.TryDo(5*time.Second, "KEYS", "rq:job:*")
	if err != nil || keys.Kind != '*' {
		t.Fatalf("KEYS on %s: %v %v", addr, keys, err)
	}
	for _, k := range keys.Elems {
		if strings.Count(k.Str, ":") == 2 { // not rq:job:<id>:dependents
			jobs++
		}
	}
	return int(llen.Num), jobs
}
