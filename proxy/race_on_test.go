//go:build race

package proxy_test

// raceDetector says the tests run with -race, whose instrumentation makes
// the proxy several times slower: a test that holds it to a latency bound
// (a pool's timeout of a few hundred milliseconds) only reports misses.
const raceDetector = true
