// The cache workload of tools/bench/cache_bench.cc, in Go with sync.Mutex:
// readers (Get) and writers (Set, one operation in ten) on one map of 1024
// short strings, random keys. Runs it with the runtime's mutex and block
// profiles at three settings and prints one line per run:
//
//	go/cache/<setting>/threads:<n> ns_per_op=<aggregate ns per op> ops_per_s=<...> handoffs=<...>
//
// Settings (what "default" means matters: Go's own default is both profiles
// off, which is the "off" row):
//
//	off      SetMutexProfileFraction(0), SetBlockProfileRate(0)
//	default  lockprof's defaults applied to Go: fraction 10, block rate 10000 ns
//	all_1    SetMutexProfileFraction(1), SetBlockProfileRate(1)
//
// Repetitions are interleaved (off, default, all_1, off, ...) so that drift
// in the machine's load affects every setting alike. Standard library only:
//
//	GOCACHE=/tmp/lockprof-gocache GOFLAGS=-mod=mod GOPROXY=off go run cache_bench.go -threads 2
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

const (
	keys       = 1024
	writeOneIn = 10
)

type cache struct {
	mu        sync.Mutex
	lastOwner *worker // Written under mu: counts hand-offs between workers.
	data      map[string]string
}

type worker struct {
	ops      int64
	handoffs int64
}

func (c *cache) Get(w *worker, k string) string {
	c.mu.Lock()
	if c.lastOwner != w {
		c.lastOwner = w
		w.handoffs++
	}
	v := c.data[k]
	c.mu.Unlock()
	return v
}

func (c *cache) Set(w *worker, k, v string) {
	c.mu.Lock()
	if c.lastOwner != w {
		c.lastOwner = w
		w.handoffs++
	}
	c.data[k] = v
	c.mu.Unlock()
}

type setting struct {
	name     string
	fraction int
	blockNs  int
}

var settings = []setting{{"off", 0, 0}, {"default", 10, 10000}, {"all_1", 1, 1}}

var sink atomic.Value

// run measures `threads` goroutines for `d` and returns aggregate ns per op
// and hand-offs per op.
func run(keyNames []string, threads int, d time.Duration) (float64, float64) {
	c := &cache{data: make(map[string]string, keys)}
	for _, k := range keyNames {
		c.data[k] = "value"
	}
	var stop int32
	var start, done sync.WaitGroup
	workers := make([]worker, threads)
	start.Add(1)
	for t := 0; t < threads; t++ {
		done.Add(1)
		go func(w *worker, seed uint64) {
			defer done.Done()
			x := seed
			got := ""
			start.Wait()
			for atomic.LoadInt32(&stop) == 0 {
				for i := 0; i < 256; i++ {
					x ^= x << 13
					x ^= x >> 7
					x ^= x << 17
					k := keyNames[(x>>8)%keys]
					if x%writeOneIn == 0 {
						c.Set(w, k, "value-2")
					} else {
						got = c.Get(w, k)
					}
				}
				w.ops += 256
			}
			sink.Store(got)
		}(&workers[t], 0x9E3779B97F4A7C15*uint64(t+1))
	}
	t0 := time.Now()
	start.Done()
	time.Sleep(d)
	atomic.StoreInt32(&stop, 1)
	done.Wait()
	elapsed := time.Since(t0)
	var ops, handoffs int64
	for i := range workers {
		ops += workers[i].ops
		handoffs += workers[i].handoffs
	}
	return float64(elapsed.Nanoseconds()) / float64(ops), float64(handoffs) / float64(ops)
}

// The middle value, or the mean of the two middle ones (as report.py's).
func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// The values in run order, comma-separated: repetition r of every setting
// ran in round r, one after another, so report.py pairs them by round.
func joined(v []float64) string {
	parts := make([]string, len(v))
	for i, x := range v {
		parts[i] = strconv.FormatFloat(x, 'f', 2, 64)
	}
	return strings.Join(parts, ",")
}

func main() {
	threadsFlag := flag.String("threads", strconv.Itoa(runtime.NumCPU()), "comma-separated goroutine counts")
	duration := flag.Duration("duration", time.Second, "measurement time per run")
	reps := flag.Int("reps", 3, "repetitions per setting (median reported)")
	flag.Parse()
	keyNames := make([]string, keys)
	for i := range keyNames {
		keyNames[i] = "key-" + strconv.Itoa(i)
	}
	for _, ts := range strings.Split(*threadsFlag, ",") {
		threads, err := strconv.Atoi(strings.TrimSpace(ts))
		if err != nil || threads < 1 {
			fmt.Fprintf(os.Stderr, "bad -threads value %q\n", ts)
			os.Exit(2)
		}
		nsPerOp := make([][]float64, len(settings))
		handoffs := make([][]float64, len(settings))
		run(keyNames, threads, *duration/2) // Warm-up (heap, scheduler), not reported.
		for r := 0; r < *reps; r++ {
			for i, s := range settings {
				runtime.SetMutexProfileFraction(s.fraction)
				runtime.SetBlockProfileRate(s.blockNs)
				ns, h := run(keyNames, threads, *duration)
				nsPerOp[i] = append(nsPerOp[i], ns)
				handoffs[i] = append(handoffs[i], h)
			}
		}
		runtime.SetMutexProfileFraction(0)
		runtime.SetBlockProfileRate(0)
		for i, s := range settings {
			ns := median(nsPerOp[i])
			fmt.Printf("go/cache/%s/threads:%d ns_per_op=%.2f ops_per_s=%.0f handoffs=%.4g rounds_ns=%s\n",
				s.name, threads, ns, 1e9/ns, median(handoffs[i]), joined(nsPerOp[i]))
		}
	}
}
