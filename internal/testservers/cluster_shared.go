package testservers

import (
	"fmt"
	"os"
	"sync"
	"testing"
)

// shared is the cluster SharedCluster makes once per test binary.
var shared struct {
	once  sync.Once
	owner *packageTB
	c     *Cluster
	err   error
}

// SharedCluster returns a Redis Cluster with the default ClusterOptions,
// made on the first call and shared by every test of the package after it:
// a cluster takes seconds to form, so it is made once per package, not per
// test. Its tests must leave its nodes alone (Kill, Restart, Stop and
// Continue panic on it) and use keys of their own; a test that breaks nodes
// makes its own with NewCluster. The package's TestMain stops it:
//
//	func TestMain(m *testing.M) {
//		code := m.Run()
//		testservers.CloseSharedCluster()
//		os.Exit(code)
//	}
//
// Without that, its processes still die with the test binary (on Linux),
// but its temporary directories stay.
func SharedCluster(tb testing.TB) *Cluster {
	tb.Helper()
	shared.once.Do(func() {
		shared.owner = &packageTB{}
		shared.c, shared.err = shared.owner.run(func() *Cluster { return NewCluster(shared.owner, ClusterOptions{}) })
	})
	if shared.err != nil {
		tb.Fatalf("shared cluster: %v", shared.err)
	}
	return shared.c
}

// CloseSharedCluster stops the cluster SharedCluster made, if any, and
// removes its files. Call it from TestMain after m.Run.
func CloseSharedCluster() {
	if shared.owner != nil {
		shared.owner.close()
	}
}

// packageTB stands in for a testing.TB that lives as long as the test
// binary: it collects cleanups and temporary directories for
// CloseSharedCluster, and turns a failure into a panic that run recovers.
// Any other testing.TB method is not meant to be called on it.
type packageTB struct {
	testing.TB
	mu       sync.Mutex
	cleanups []func()
}

// packageFailure is the panic of packageTB's Fatal.
type packageFailure struct{ msg string }

// run calls make and returns its cluster, or the failure it reported.
func (p *packageTB) run(make func() *Cluster) (c *Cluster, err error) {
	defer func() {
		if r := recover(); r != nil {
			f, ok := r.(packageFailure)
			if !ok {
				panic(r)
			}
			p.close()
			c, err = nil, fmt.Errorf("%s", f.msg)
		}
	}()
	return make(), nil
}

func (p *packageTB) close() {
	p.mu.Lock()
	cs := p.cleanups
	p.cleanups = nil
	p.mu.Unlock()
	for i := len(cs) - 1; i >= 0; i-- {
		cs[i]()
	}
}

func (p *packageTB) Helper() {}

func (p *packageTB) Name() string { return "SharedCluster" }

func (p *packageTB) Cleanup(f func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cleanups = append(p.cleanups, f)
}

func (p *packageTB) TempDir() string {
	dir, err := os.MkdirTemp("", "shared-cluster-")
	if err != nil {
		p.Fatal(err)
	}
	p.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func (p *packageTB) Fatal(args ...any) { panic(packageFailure{fmt.Sprint(args...)}) }

func (p *packageTB) Fatalf(format string, args ...any) {
	panic(packageFailure{fmt.Sprintf(format, args...)})
}

func (p *packageTB) Skip(args ...any) { p.Fatal(args...) }

func (p *packageTB) Logf(string, ...any) {}
