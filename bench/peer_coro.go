// peer_coro.go — Go's goroutines, a peer of weft's coroutines in bench/bench_coro.c.
//
// Usage:
//
//	peer_coro_go switch N
//	peer_coro_go spawn TOTAL BATCH
//	peer_coro_go memory N
//	peer_coro_go parked N
//
// switch: two goroutines ping-pong a token over two unbuffered channels, N round trips;
// every hand-over is one goroutine switch. Prints "ns per switch: <x>".
// spawn: TOTAL goroutines in batches of BATCH: the batch is started (wg.Add, go) and then
// waited for (sync.WaitGroup.Wait). Prints "ns per spawn+join: <x>".
// memory: N goroutines each parked receiving from one channel; prints the growth of the
// runtime's memory from the OS (MemStats.Sys) and of the resident set (/proc/self/statm)
// over N: "bytes per goroutine Sys: <x>" and "bytes per goroutine RSS: <y>".
//
// parked: N goroutines started at once, each blocking on one channel (a WaitGroup counts them
// in), then the channel is closed and all are waited for (a second WaitGroup). Prints the whole
// time, start to the last goroutine's end: "seconds for all: <x>".
//
// GOMAXPROCS comes from the environment (bench_coro.c sets it). Each mode warms up first and
// times itself, so process start-up is not counted. Standard library only: bench_coro.c's
// CMake rule builds it with `go build` into the build directory, offline.
package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func arg(i int) int {
	v, err := strconv.Atoi(os.Args[i])
	if err != nil || v <= 0 {
		fmt.Fprintf(os.Stderr, "peer_coro_go: bad argument %q\n", os.Args[i])
		os.Exit(2)
	}
	return v
}

// pingPong runs n round trips between two goroutines and returns the elapsed time.
func pingPong(n int) time.Duration {
	ping, pong := make(chan int), make(chan int)
	var wg sync.WaitGroup
	wg.Add(2)
	start := make(chan struct{})
	go func() {
		defer wg.Done()
		<-start
		for i := 0; i < n; i++ {
			ping <- i
			<-pong
		}
	}()
	go func() {
		defer wg.Done()
		for i := 0; i < n; i++ {
			v := <-ping
			pong <- v
		}
	}()
	t0 := time.Now()
	close(start)
	wg.Wait()
	return time.Since(t0)
}

// spawnJoin starts total goroutines in batches and waits for each batch.
func spawnJoin(total, batch int) time.Duration {
	var wg sync.WaitGroup
	var ran int64
	t0 := time.Now()
	for done := 0; done < total; done += batch {
		wg.Add(batch)
		for i := 0; i < batch; i++ {
			go func() {
				atomic.AddInt64(&ran, 1)
				wg.Done()
			}()
		}
		wg.Wait()
	}
	elapsed := time.Since(t0)
	if atomic.LoadInt64(&ran) != int64((total+batch-1)/batch*batch) {
		fmt.Fprintln(os.Stderr, "peer_coro_go: goroutines lost")
		os.Exit(1)
	}
	return elapsed
}

// rssBytes reads the resident set size from /proc/self/statm.
func rssBytes() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return -1
	}
	f := strings.Fields(string(b))
	pages, _ := strconv.ParseInt(f[1], 10, 64)
	return pages * int64(os.Getpagesize())
}

func memory(n int) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	rss0 := rssBytes()
	park := make(chan struct{})
	var started, ended sync.WaitGroup
	started.Add(n)
	ended.Add(n)
	for i := 0; i < n; i++ {
		go func() {
			started.Done()
			<-park
			ended.Done()
		}()
	}
	started.Wait()
	for i := 0; i < 10; i++ {
		runtime.Gosched() // the last ones from Done to the receive
	}
	runtime.ReadMemStats(&after)
	rss1 := rssBytes()
	fmt.Printf("bytes per goroutine Sys: %.1f\n", float64(after.Sys-before.Sys)/float64(n))
	fmt.Printf("bytes per goroutine RSS: %.1f\n", float64(rss1-rss0)/float64(n))
	fmt.Printf("goroutines: %d\n", runtime.NumGoroutine())
	close(park)
	ended.Wait()
}

// spawnParked starts n goroutines that all block on one channel, then releases and joins them.
func spawnParked(n int) time.Duration {
	park := make(chan struct{})
	var started, ended sync.WaitGroup
	started.Add(n)
	ended.Add(n)
	t0 := time.Now()
	for i := 0; i < n; i++ {
		go func() {
			started.Done()
			<-park
			ended.Done()
		}()
	}
	started.Wait()
	close(park)
	ended.Wait()
	return time.Since(t0)
}

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: peer_coro_go switch N | spawn TOTAL BATCH | memory N | parked N")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "switch":
		n := arg(2)
		pingPong(n / 10) // warm-up
		d := pingPong(n)
		fmt.Printf("ns per switch: %.2f\n", float64(d.Nanoseconds())/float64(2*n))
	case "spawn":
		total, batch := arg(2), arg(3)
		spawnJoin(total/10+batch, batch) // warm-up
		d := spawnJoin(total, batch)
		fmt.Printf("ns per spawn+join: %.2f\n", float64(d.Nanoseconds())/float64(total))
	case "memory":
		memory(arg(2))
	case "parked":
		n := arg(2)
		spawnParked(1000) // warm-up: the runtime, not n goroutines' worth of free stacks
		d := spawnParked(n)
		fmt.Printf("seconds for all: %.3f\n", d.Seconds())
	default:
		fmt.Fprintf(os.Stderr, "peer_coro_go: unknown mode %q\n", os.Args[1])
		os.Exit(2)
	}
}
