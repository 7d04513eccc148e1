// Command deadletter-bench measures deadletter next to go-redis,
// watermill-redisstream and nats.go in one process, against the Redis at
// REDIS_URL (default 127.0.0.1:6379) and the NATS at NATS_URL (default
// 127.0.0.1:4222), and prints a Markdown table with the goals.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"

	"github.com/deadletter/deadletter/internal/bench"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "deadletter-bench:", err)
		os.Exit(1)
	}
}

func run() error {
	var cfg bench.Config
	cases := flag.String("cases", "", "comma-separated cases to run; empty runs all: "+
		strings.Join(bench.CaseNames(), ", "))
	flag.IntVar(&cfg.Events, "events", bench.DefaultEvents, "events per throughput case")
	flag.IntVar(&cfg.PayloadSize, "payload", bench.DefaultPayloadSize, "size of each event's JSON form, in bytes")
	flag.IntVar(&cfg.BatchSize, "batch", bench.DefaultBatchSize, "events per publish call")
	flag.IntVar(&cfg.Window, "window", bench.DefaultWindow, "most events published and not yet handled")
	flag.IntVar(&cfg.MemoryEvents, "memory-events", bench.DefaultMemoryEvents,
		"events the memory-events case passes through the bus")
	flag.IntVar(&cfg.DLQEntries, "dlq-entries", bench.DefaultDLQEntries,
		"DLQ size for the replay and memory-dlq-list cases")
	flag.IntVar(&cfg.ReplayWorkers, "replay-workers", bench.DefaultReplayWorkers,
		"goroutines replaying entries in the replay-parallel case")
	flag.IntVar(&cfg.FailEvery, "fail-every", bench.DefaultFailEvery,
		"one event in this many fails for good in the head-of-line case")
	flag.IntVar(&cfg.Rounds, "rounds", 1, "runs of each throughput case; each reports its median round by rate")
	flag.DurationVar(&cfg.CaseTimeout, "case-timeout", bench.DefaultCaseTimeout, "time limit of each case")
	adapterLogs := flag.Bool("adapter-logs", false, "print the warnings and errors of the adapters under test")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	flag.Parse()

	var names []string
	if *cases != "" {
		names = strings.Split(*cases, ",")
	}
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	if *adapterLogs {
		cfg.AdapterLogger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}

	if *cpuProfile != "" {
		stopProfile, err := startCPUProfile(*cpuProfile)
		if err != nil {
			return err
		}
		defer stopProfile()
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	results, err := bench.Run(ctx, cfg, names, nil)

	bench.WriteTable(os.Stdout, results)
	fmt.Println()
	bench.WriteGoals(os.Stdout, bench.Goals(results), bench.Ratios(results))
	return err
}

func startCPUProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("create cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("start cpu profile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		_ = f.Close()
	}, nil
}
