package main

import (
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// rssWatcher samples the peak RSS (VmHWM) of a process and all its
// descendants from /proc. rusage's ru_maxrss cannot be used for this: Go
// starts children with vfork semantics (CLONE_VM), so the kernel charges the
// parent's (this bench's) RSS at exec time to the child's maxrss.
type rssWatcher struct {
	root  int
	mu    sync.Mutex
	peaks map[int]int64 // pid -> VmHWM KiB
	stopc chan struct{}
	done  chan struct{}
}

func watchRSS(pid int) *rssWatcher {
	w := &rssWatcher{root: pid, peaks: map[int]int64{}, stopc: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for {
			w.sample()
			select {
			case <-w.stopc:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	return w
}

// stop ends sampling and returns the sum of each process's peak, in KiB (an
// upper bound of the tree's simultaneous RSS; one process per side for
// zcloud and mbuffer, plus cat and sshd's helpers where they exist).
func (w *rssWatcher) stop() int64 {
	close(w.stopc)
	<-w.done
	var sum int64
	for _, kib := range w.peaks {
		sum += kib
	}
	return sum
}

func (w *rssWatcher) sample() {
	w.mu.Lock()
	defer w.mu.Unlock()
	var walk func(pid, depth int)
	walk = func(pid, depth int) {
		if kib := vmHWM(pid); kib > w.peaks[pid] {
			w.peaks[pid] = kib
		}
		if depth > 8 {
			return
		}
		b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/task/" + strconv.Itoa(pid) + "/children")
		for _, f := range strings.Fields(string(b)) {
			if child, err := strconv.Atoi(f); err == nil {
				walk(child, depth+1)
			}
		}
	}
	walk(w.root, 0)
}

func vmHWM(pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kib, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kib
		}
	}
	return 0
}
