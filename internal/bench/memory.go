package bench

import (
	"bytes"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"sync"
	"time"
)

// heapMetric is the memory occupied by heap objects, live or not yet swept:
// the heap in use. Reading it does not stop the world, unlike
// runtime.ReadMemStats.
const heapMetric = "/memory/classes/heap/objects:bytes"

// memorySampler records the peak heap in use and the peak resident set size
// (RSS) of the process while a case runs.
type memorySampler struct {
	stop chan struct{}
	done chan struct{}

	mu       sync.Mutex
	peakHeap uint64
	peakRSS  uint64
	// phaseHeap is the peak heap since the last call to phase.
	phaseHeap uint64
}

// startSampler collects garbage and returns freed memory to the system, so
// that a case does not see what the one before it left, then samples memory
// every interval until stopped.
func startSampler(interval time.Duration) *memorySampler {
	runtime.GC()
	debug.FreeOSMemory()

	s := &memorySampler{stop: make(chan struct{}), done: make(chan struct{})}
	s.sample()
	go s.loop(interval)
	return s
}

func (s *memorySampler) loop(interval time.Duration) {
	defer close(s.done)
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-ticker.C:
			s.sample()
		}
	}
}

func (s *memorySampler) sample() {
	heap := readHeap()
	rss := readRSS()

	s.mu.Lock()
	defer s.mu.Unlock()
	s.peakHeap = max(s.peakHeap, heap)
	s.peakRSS = max(s.peakRSS, rss)
	s.phaseHeap = max(s.phaseHeap, heap)
}

// phase returns the peak heap since the previous call and starts a new
// phase.
func (s *memorySampler) phase() uint64 {
	s.sample()
	s.mu.Lock()
	defer s.mu.Unlock()
	peak := s.phaseHeap
	s.phaseHeap = 0
	return peak
}

// finish stops sampling and returns the peak heap in use and peak RSS, in
// bytes. The RSS is 0 where /proc/self/statm does not exist.
func (s *memorySampler) finish() (heap, rss uint64) {
	close(s.stop)
	<-s.done
	s.sample()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peakHeap, s.peakRSS
}

func readHeap() uint64 {
	sample := []metrics.Sample{{Name: heapMetric}}
	metrics.Read(sample)
	if sample[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return sample[0].Value.Uint64()
}

// readRSS returns the resident set size from /proc/self/statm, whose second
// field counts resident pages, or 0 when that file cannot be read.
func readRSS() uint64 {
	raw, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	fields := bytes.Fields(raw)
	if len(fields) < 2 {
		return 0
	}
	pages, err := strconv.ParseUint(string(fields[1]), 10, 64)
	if err != nil {
		return 0
	}
	return pages * uint64(os.Getpagesize())
}
