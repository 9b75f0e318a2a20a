package proxy_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/internal/testservers"
)

// TestIntegrityAfterLargeWrite writes 2 MB values through a server
// connection that many clients use meanwhile, and checks that the requests
// which follow still reach the server intact and get their own replies. A request buffer over 1 MB once made the connection's two write
// buffers the same array, so frames queued during a write overwrote the
// bytes being written: the server saw torn frames and clients got each
// other's replies.
func TestIntegrityAfterLargeWrite(t *testing.T) {
	t.Parallel()
	b := ftRedisBackends(t, 1)
	f := ftStart(t, ftPool{timeoutMS: 2000, backends: b})
	rc := ftGoRedis(t, f.addr, 40)
	ctx := context.Background()
	var mu sync.Mutex
	var ops, errs int
	var wrong []string
	var wg sync.WaitGroup
	deadline := time.Now().Add(1500 * time.Millisecond)
	for g := 0; g < 32; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; time.Now().Before(deadline); i++ {
				key, val := fmt.Sprintf("ftlarge:%d", g), fmt.Sprintf("g%d:%d", g, i)
				err := rc.Set(ctx, key, val, 0).Err()
				got, gerr := "", error(nil)
				if err == nil {
					got, gerr = rc.Get(ctx, key).Result()
				}
				mu.Lock()
				ops++
				switch {
				case err != nil || gerr != nil:
					errs++
					if len(wrong) < 5 {
						wrong = append(wrong, fmt.Sprintf("SET/GET %s: %v %v", key, err, gerr))
					}
				case got != val:
					if len(wrong) < 5 {
						wrong = append(wrong, fmt.Sprintf("GET %s: got %q, want %q", key, got, val))
					}
					errs++
				}
				mu.Unlock()
			}
		}()
	}
	for i := 0; i < 3; i++ {
		time.Sleep(200 * time.Millisecond)
		if err := rc.Set(ctx, "ftlarge:big", strings.Repeat("x", 2<<20), 0).Err(); err != nil {
			t.Errorf("SET 2 MB: %v", err)
		}
		ftBurst(t, f, b[0], i)
	}
	wg.Wait()
	t.Logf("%d SET+GET pairs around three 2 MB writes, %d wrong or failed", ops, errs)
	for _, w := range wrong {
		t.Error(w)
	}
	if ops == 0 {
		t.Error("no request made")
	}
}

// ftBurst pauses the server while 8 clients each pipeline 400 SETs of 1 KB,
// so that more than 1 MB of small frames queues on the proxy's connection,
// then resumes it and checks every reply.
func ftBurst(t *testing.T, f *ftProxy, srv *testservers.Server, round int) {
	t.Helper()
	val := strings.Repeat("v", 1024)
	var req []byte
	for i := 0; i < 400; i++ {
		req = ftCommand(req, "SET", fmt.Sprintf("ftburst:%d:%d", round, i), val)
	}
	srv.Stop()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for c := 0; c < 8; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- ftPipelineOK(f.addr, req, 400)
		}()
	}
	time.Sleep(300 * time.Millisecond)
	srv.Continue()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("burst %d: %v", round, err)
		}
	}
}

// ftPipelineOK sends req and expects n +OK replies.
func ftPipelineOK(addr string, req []byte, n int) error {
	c, err := ftDial(addr)
	if err != nil {
		return err
	}
	defer c.nc.Close()
	c.nc.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.nc.Write(req); err != nil {
		return err
	}
	for i := 0; i < n; i++ {
		rep, err := ftRead(c.r)
		if err != nil || rep.kind != '+' {
			return fmt.Errorf("reply %d: %v %v", i, rep, err)
		}
	}
	return nil
}
