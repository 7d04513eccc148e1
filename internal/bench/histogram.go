package bench

import (
	"math/bits"
	"sync/atomic"
	"time"
)

// histogram counts latencies in microseconds in log-linear buckets: exact
// below 64 µs, then 32 buckets per power of two, so a quantile is off by at
// most about 3 %. Its size is fixed, so recording a million latencies costs
// no memory, and it is safe for concurrent use.
// bucketCount covers latencies up to about 2^48 µs, nine years.
const bucketCount = 64 + 48*32

type histogram struct {
	counts [bucketCount]atomic.Uint64
	total  atomic.Uint64
}

func bucketOf(us uint64) int {
	if us < 64 {
		return int(us)
	}
	shift := bits.Len64(us) - 6
	index := 64 + (shift-1)*32 + int(us>>shift) - 32
	return min(index, bucketCount-1)
}

// bucketValue returns the middle of a bucket, in microseconds.
func bucketValue(index int) uint64 {
	if index < 64 {
		return uint64(index)
	}
	shift := (index-64)/32 + 1
	mantissa := uint64((index-64)%32 + 32)
	return mantissa<<shift + (1<<shift)/2
}

func (h *histogram) record(d time.Duration) {
	us := uint64(max(d, 0) / time.Microsecond)
	h.counts[bucketOf(us)].Add(1)
	h.total.Add(1)
}

// quantile returns the latency below which the fraction q of the recorded
// ones lie, or 0 when none was recorded.
func (h *histogram) quantile(q float64) time.Duration {
	total := h.total.Load()
	if total == 0 {
		return 0
	}
	rank := uint64(q * float64(total))
	rank = max(rank, 1)
	var seen uint64
	for i := range h.counts {
		seen += h.counts[i].Load()
		if seen >= rank {
			return time.Duration(bucketValue(i)) * time.Microsecond
		}
	}
	return time.Duration(bucketValue(bucketCount-1)) * time.Microsecond
}
