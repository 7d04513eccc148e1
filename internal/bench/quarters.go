package bench

import (
	"fmt"
	"strings"
)

// quarters records the peak heap during each quarter of a case's progress.
type quarters struct {
	total int
	mem   *memorySampler
	peaks []uint64
}

func newQuarters(total int, mem *memorySampler) *quarters {
	return &quarters{total: total, mem: mem}
}

// progress closes every quarter that done has reached.
func (q *quarters) progress(done int) {
	for len(q.peaks) < 3 && done*4 >= (len(q.peaks)+1)*q.total {
		q.peaks = append(q.peaks, q.mem.phase())
	}
}

// finish closes the last quarter and returns the four peaks.
func (q *quarters) finish() []uint64 {
	q.progress(q.total)
	if len(q.peaks) == 3 {
		q.peaks = append(q.peaks, q.mem.phase())
	}
	return q.peaks
}

func (q *quarters) note() string {
	parts := make([]string, len(q.peaks))
	for i, peak := range q.peaks {
		parts[i] = formatBytes(peak)
	}
	return fmt.Sprintf("peak heap per quarter of %d: %s", q.total, strings.Join(parts, ", "))
}
