package main

import "os"

// sameFile: there is no journald on Windows.
func sameFile(*os.File, uint64, uint64) bool { return false }
