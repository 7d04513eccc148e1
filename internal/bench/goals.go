package bench

import (
	"fmt"
	"io"
)

// Goal compares a measured ratio or rate with its target.
type Goal struct {
	// Name describes what is compared, such as "deadletter / go-redis alone".
	Name string
	// Got is the measured value and Want the target, in the same unit.
	Got, Want float64
	// AtMost is true when Got must not exceed Want, false when it must
	// reach it.
	AtMost bool
	// Unit follows the numbers, such as "x" or "/s".
	Unit string
}

// Met reports whether the goal is reached.
func (g Goal) Met() bool {
	if g.AtMost {
		return g.Got <= g.Want
	}
	return g.Got >= g.Want
}

// Goals returns the goals that the results allow to check. A goal whose
// cases did not all run is left out.
func Goals(results []Result) []Goal {
	byCase := map[string]Result{}
	for _, r := range results {
		if r.Skipped == "" && r.Count > 0 {
			byCase[r.Case] = r
		}
	}
	var goals []Goal
	add := func(need []string, goal func() Goal) {
		for _, name := range need {
			if _, ok := byCase[name]; !ok {
				return
			}
		}
		goals = append(goals, goal())
	}

	add([]string{CaseRedisDeadletter, CaseRedisRaw}, func() Goal {
		return Goal{Name: "deadletter on Redis / go-redis alone, events per second",
			Got: byCase[CaseRedisDeadletter].Rate() / byCase[CaseRedisRaw].Rate(), Want: 0.5, Unit: "x"}
	})
	add([]string{CaseRedisDeadletter, CaseRedisWatermill}, func() Goal {
		return Goal{Name: "deadletter on Redis / watermill-redisstream, events per second",
			Got: byCase[CaseRedisDeadletter].Rate() / byCase[CaseRedisWatermill].Rate(), Want: 3, Unit: "x"}
	})
	add([]string{CaseHeadOfLine, CaseRedisDeadletter}, func() Goal {
		return Goal{Name: "head-of-line p99 / deadletter on Redis p99",
			Got: float64(byCase[CaseHeadOfLine].P99) / float64(byCase[CaseRedisDeadletter].P99), Want: 2,
			AtMost: true, Unit: "x"}
	})
	add([]string{CaseReplay}, func() Goal {
		return Goal{Name: "replay from one goroutine, entries per second", Got: byCase[CaseReplay].Rate(),
			Want: 5000, Unit: "/s"}
	})
	add([]string{CaseReplayParallel}, func() Goal {
		return Goal{Name: "replay from several goroutines, entries per second",
			Got: byCase[CaseReplayParallel].Rate(), Want: 5000, Unit: "/s"}
	})
	add([]string{CaseMemoryEvents, CaseRedisDeadletter}, func() Goal {
		return Goal{Name: "peak heap with memory-events / with redis-deadletter (more events, same heap)",
			Got:  float64(byCase[CaseMemoryEvents].PeakHeap) / float64(byCase[CaseRedisDeadletter].PeakHeap),
			Want: 1.5, AtMost: true, Unit: "x"}
	})
	for _, name := range []string{CaseMemoryEvents, CaseMemoryDLQList} {
		quarters := byCase[name].QuarterHeap
		if len(quarters) == 4 && quarters[0] > 0 {
			goals = append(goals, Goal{Name: name + ": peak heap in the last quarter / in the first",
				Got: float64(quarters[3]) / float64(quarters[0]), Want: 1.5, AtMost: true, Unit: "x"})
		}
	}
	return goals
}

// Ratios returns further ratios between cases that have no target.
func Ratios(results []Result) []Goal {
	byCase := map[string]Result{}
	for _, r := range results {
		if r.Skipped == "" && r.Count > 0 {
			byCase[r.Case] = r
		}
	}
	var ratios []Goal
	pairs := [][2]string{
		{CaseRedisAdapter, CaseRedisRaw},
		{CaseRedisDeadletter, CaseRedisAdapter},
		{CaseRedisDeadletterSingle, CaseRedisDeadletter},
		{CaseNATSDeadletter, CaseNATSRaw},
		{CaseNATSDeadletter, CaseRedisDeadletter},
		{CaseRedisWatermill, CaseRedisRaw},
	}
	for _, pair := range pairs {
		a, okA := byCase[pair[0]]
		b, okB := byCase[pair[1]]
		if okA && okB {
			ratios = append(ratios, Goal{Name: pair[0] + " / " + pair[1] + ", events per second",
				Got: a.Rate() / b.Rate(), Unit: "x"})
		}
	}
	return ratios
}

// WriteGoals writes the goals and ratios as a Markdown list.
func WriteGoals(w io.Writer, goals, ratios []Goal) {
	for _, g := range goals {
		verdict, relation := "met", ">="
		if g.AtMost {
			relation = "<="
		}
		if !g.Met() {
			verdict = "MISSED"
		}
		fmt.Fprintf(w, "- %s: %s (goal %s %s%s): %s\n", g.Name, formatValue(g.Got, g.Unit), relation,
			formatValue(g.Want, ""), g.Unit, verdict)
	}
	for _, r := range ratios {
		fmt.Fprintf(w, "- %s: %s\n", r.Name, formatValue(r.Got, r.Unit))
	}
}

func formatValue(v float64, unit string) string {
	if v >= 100 {
		return fmt.Sprintf("%.0f%s", v, unit)
	}
	return fmt.Sprintf("%.2f%s", v, unit)
}
