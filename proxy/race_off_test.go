//go:build !race

package proxy_test

// raceDetector: see race_on_test.go.
const raceDetector = false
