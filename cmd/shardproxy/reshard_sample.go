package main

import (
	"fmt"
	"io"
	"sync"
	"time"
)

// ownerSample is what the keys sampled on one old owner say.
type ownerSample struct {
	name    int // index into poolPlan.names
	err     error
	dbsize  int64
	sampled int           // keys read
	all     bool          // SCAN read every key (DBSIZE within the limit)
	stray   int           // sampled keys the old placement puts elsewhere: they stay
	moves   map[int]int   // new owner -> sampled keys moving there
	bytes   map[int]int64 // new owner -> their MEMORY USAGE
	sized   bool          // MEMORY USAGE answered
}

// sampleDeadline bounds the whole sampling of one server.
const sampleDeadline = 20 * time.Second

// samplePool samples at most limit keys on each old owner of pl, all
// owners at once.
func samplePool(pl *poolPlan, limit int) []*ownerSample {
	out := make([]*ownerSample, len(pl.fromIdx))
	var wg sync.WaitGroup
	for i, idx := range pl.fromIdx {
		out[i] = &ownerSample{name: idx, moves: map[int]int{}, bytes: map[int]int64{}}
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i].err = out[i].sample(pl, limit)
		}()
	}
	wg.Wait()
	return out
}

// sample reads keys from the old owner and counts where they go.
func (o *ownerSample) sample(pl *poolPlan, limit int) error {
	rc, err := dialRedis(pl.pool, pl.addrs[o.name])
	if err != nil {
		return err
	}
	defer rc.c.Close()
	r, err := rc.call([]string{"DBSIZE"})
	if err != nil {
		return err
	}
	var ok bool
	if o.dbsize, ok = r[0].Integer(); !ok {
		return fmt.Errorf("DBSIZE: unexpected reply %q", r[0].Str)
	}
	var keys [][]byte
	if o.dbsize <= int64(limit) {
		keys, o.all, err = rc.scanAll(limit)
	} else {
		keys, err = rc.randomKeys(limit)
	}
	if err != nil {
		return err
	}
	sizes := rc.memoryUsage(keys)
	o.sized = sizes != nil
	o.sampled = len(keys)
	for i, k := range keys {
		if pl.fromIdx[pl.from.Pick(k)] != o.name {
			o.stray++
			continue
		}
		if n := pl.toIdx[pl.to.Pick(k)]; n != o.name {
			o.moves[n]++
			if sizes != nil {
				o.bytes[n] += sizes[i]
			}
		}
	}
	return nil
}

// printSamples writes what the samples say, and the keys and bytes each
// pair is estimated to move.
func printSamples(w io.Writer, pl *poolPlan, samples []*ownerSample) {
	fmt.Fprintf(w, "  keys on the old owners (SCAN when DBSIZE is within the sample, else RANDOMKEY):\n")
	keys, size := map[[2]int]float64{}, map[[2]int]float64{}
	sized, read := true, false
	for _, o := range samples {
		if !o.print(w, pl) {
			continue
		}
		read = true
		sized = sized && o.sized
		scale := float64(o.dbsize) / float64(o.sampled)
		for n, c := range o.moves {
			keys[[2]int{o.name, n}] += float64(c) * scale
			size[[2]int{o.name, n}] += float64(o.bytes[n]) * scale
		}
	}
	if !read {
		return
	}
	note := "bytes from MEMORY USAGE of the sampled keys"
	if !sized {
		note = "bytes unknown: MEMORY USAGE was refused"
	}
	fmt.Fprintf(w, "  estimated to move (DBSIZE x the sample's moving share; %s):\n", note)
	var tk, tb float64
	for _, k := range sortedPairs(keys) {
		line := fmt.Sprintf("    %s -> %s  ~%.0f keys", pl.names[k[0]], pl.names[k[1]], keys[k])
		if sized {
			line += "  ~" + humanBytes(size[k])
		}
		fmt.Fprintln(w, line)
		tk, tb = tk+keys[k], tb+size[k]
	}
	if sized {
		fmt.Fprintf(w, "    total  ~%.0f keys  ~%s\n", tk, humanBytes(tb))
	} else {
		fmt.Fprintf(w, "    total  ~%.0f keys\n", tk)
	}
}

// print writes the old owner's line, and a warning when many of its keys
// are not where migrate_from places them; it reports whether keys were
// sampled.
func (o *ownerSample) print(w io.Writer, pl *poolPlan) bool {
	name, addr := pl.names[o.name], pl.addrs[o.name].Addr
	if o.err != nil {
		fmt.Fprintf(w, "    %s (%s): not sampled: %v\n", name, addr, o.err)
		return false
	}
	moving := 0
	for _, n := range o.moves {
		moving += n
	}
	how := fmt.Sprintf("%d sampled", o.sampled)
	if o.all {
		how = fmt.Sprintf("all %d read", o.sampled)
	}
	fmt.Fprintf(w, "    %s (%s): DBSIZE %d, %s: %d move (%s), %d placed elsewhere stay\n",
		name, addr, o.dbsize, how, moving, percent(moving, o.sampled), o.stray)
	if o.stray*10 > o.sampled {
		fmt.Fprintf(w, "    warning: %s of the keys on %s are not where migrate_from places them: "+
			"is migrate_from the placement the data is in? Such keys stay where they are\n", percent(o.stray, o.sampled), name)
	}
	return o.sampled > 0
}

// percent formats n of total as a percentage.
func percent(n, total int) string {
	if total == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f%%", 100*float64(n)/float64(total))
}

// humanBytes formats a byte count with a binary unit.
func humanBytes(b float64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	i := 0
	for b >= 1024 && i < len(units)-1 {
		b /= 1024
		i++
	}
	if i == 0 {
		return fmt.Sprintf("%.0f B", b)
	}
	return fmt.Sprintf("%.1f %s", b, units[i])
}
