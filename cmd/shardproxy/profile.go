package main

import (
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
)

// startProfiles writes a CPU profile to cpuPath, when not empty, until the
// returned function is called, and a heap profile to heapPath, when not
// empty, when it is called. They are debugging aids, switched on by
// SHARDPROXY_CPUPROFILE and SHARDPROXY_HEAPPROFILE.
func startProfiles(cpuPath, heapPath string) (func(), error) {
	stopCPU := func() {}
	if cpuPath != "" {
		f, err := os.Create(cpuPath)
		if err != nil {
			return nil, fmt.Errorf("cpu profile: %w", err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return nil, fmt.Errorf("cpu profile: %w", err)
		}
		stopCPU = func() {
			pprof.StopCPUProfile()
			f.Close()
		}
	}
	return func() {
		stopCPU()
		if heapPath == "" {
			return
		}
		f, err := os.Create(heapPath)
		if err != nil {
			return
		}
		defer f.Close()
		runtime.GC()
		pprof.Lookup("heap").WriteTo(f, 0)
	}, nil
}
