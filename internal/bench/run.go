package bench

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
)

// Names of the cases, in the order Run runs them.
const (
	CaseRedisRaw              = "redis-raw"
	CaseRedisWatermill        = "redis-watermill"
	CaseRedisAdapter          = "redis-adapter"
	CaseRedisDeadletter       = "redis-deadletter"
	CaseRedisDeadletterSingle = "redis-deadletter-single"
	CaseNATSRaw               = "nats-raw"
	CaseNATSDeadletter        = "nats-deadletter"
	CaseHeadOfLine            = "head-of-line"
	CaseReplay                = "replay"
	CaseReplayParallel        = "replay-parallel"
	CaseMemoryEvents          = "memory-events"
	CaseMemoryDLQList         = "memory-dlq-list"
)

// benchCase is one measurement. run gets a key prefix of its own, which Run
// deletes afterwards on Redis and NATS alike.
type benchCase struct {
	name  string
	title string
	nats  bool
	// repeat is true for the throughput cases, which Config.Rounds repeats.
	repeat bool
	run    func(ctx context.Context, r *runner, prefix string) (Result, error)
}

var cases = []benchCase{
	{CaseRedisRaw, "go-redis alone: pipelined XADD, XREADGROUP COUNT 100, pipelined XACK", false, true,
		runRedisRaw},
	{CaseRedisWatermill, "watermill-redisstream v1.4.5 under a Watermill router", false, true, runRedisWatermill},
	{CaseRedisAdapter, "adapters/redisstream alone: its publisher and subscriber, no router, no middleware",
		false, true, runRedisAdapter},
	{CaseRedisDeadletter, "deadletter Bus on adapters/redisstream, batched Publish", false, true,
		runRedisDeadletter},
	{CaseRedisDeadletterSingle, "deadletter Bus on adapters/redisstream, one event per Publish", false, true,
		runRedisDeadletterSingle},
	{CaseNATSRaw, "nats.go alone: async publish, pull consumer, one ack per 100", true, true, runNATSRaw},
	{CaseNATSDeadletter, "deadletter Bus on adapters/nats, batched Publish", true, true, runNATSDeadletter},
	{CaseHeadOfLine, "deadletter on Redis, some events failing for good; healthy events only", false, false,
		runHeadOfLine},
	{CaseReplay, "replay a full DLQ, page by page, one goroutine", false, false, runReplay},
	{CaseReplayParallel, "replay a full DLQ, page by page, several goroutines", false, false, runReplayParallel},
	{CaseMemoryEvents, "deadletter on Redis, many events, memory sampled per quarter", false, false,
		runMemoryEvents},
	{CaseMemoryDLQList, "list a full DLQ in pages, memory sampled per quarter", false, false, runMemoryDLQList},
}

// CaseNames returns the names of all cases in the order Run runs them.
func CaseNames() []string {
	names := make([]string, len(cases))
	for i, c := range cases {
		names[i] = c.name
	}
	return names
}

// runner holds what the cases of one run share.
type runner struct {
	cfg    Config
	redis  *redis.Client
	source *eventSource
	log    *slog.Logger
	// natsSkip is the reason the NATS cases cannot run, or "" when they can.
	natsSkip string
}

// Run runs the named cases, all of them when names is empty, one after the
// other, and returns their results in run order. onResult, when not nil,
// receives each result once all rounds are done. A case that fails does not
// stop the others; the errors are joined.
func Run(ctx context.Context, cfg Config, names []string, onResult func(Result)) ([]Result, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	selected, err := selectCases(names)
	if err != nil {
		return nil, err
	}

	r, err := newRunner(ctx, cfg, selected)
	if err != nil {
		return nil, err
	}
	defer r.redis.Close()

	// Each round runs every selected case once, so that noise from other
	// processes on the machine spreads over all cases alike. The cases
	// that do not repeat run in the first round only.
	runID := uuid.NewString()[:8]
	rounds := map[string][]Result{}
	var errs []error
	for round := range cfg.Rounds {
		for _, c := range selected {
			if round > 0 && !c.repeat {
				continue
			}
			prefix := fmt.Sprintf("bench-%s-%d-%s", runID, round, c.name)
			res, err := r.runCase(ctx, c, prefix)
			if err != nil {
				errs = append(errs, fmt.Errorf("case %s, round %d: %w", c.name, round+1, err))
				continue
			}
			rounds[c.name] = append(rounds[c.name], res)
		}
	}

	var results []Result
	for _, c := range selected {
		if len(rounds[c.name]) == 0 {
			continue
		}
		res := medianByRate(rounds[c.name])
		results = append(results, res)
		if onResult != nil {
			onResult(res)
		}
	}
	return results, errors.Join(errs...)
}

// medianByRate returns the result with the median rate, noting the range
// of rates when there were several rounds.
func medianByRate(results []Result) Result {
	if len(results) == 1 {
		return results[0]
	}
	sorted := slices.Clone(results)
	slices.SortFunc(sorted, func(a, b Result) int { return cmp.Compare(a.Rate(), b.Rate()) })
	median := sorted[len(sorted)/2]
	median.Notes = append(slices.Clone(median.Notes), fmt.Sprintf("median of %d rounds by rate; rates %s to %s per second",
		len(sorted), formatRate(sorted[0].Rate()), formatRate(sorted[len(sorted)-1].Rate())))
	return median
}

func selectCases(names []string) ([]benchCase, error) {
	if len(names) == 0 {
		return cases, nil
	}
	var selected []benchCase
	for _, c := range cases {
		if slices.Contains(names, c.name) {
			selected = append(selected, c)
		}
	}
	for _, name := range names {
		if !slices.Contains(CaseNames(), name) {
			return nil, fmt.Errorf("unknown case %q; the cases are %s", name, strings.Join(CaseNames(), ", "))
		}
	}
	return selected, nil
}

func newRunner(ctx context.Context, cfg Config, selected []benchCase) (*runner, error) {
	opts, err := redis.ParseURL(cfg.RedisURL)
	if err != nil {
		return nil, fmt.Errorf("parse redis url: %w", err)
	}
	client := redis.NewClient(opts)
	if err := client.Ping(ctx).Err(); err != nil {
		_ = client.Close()
		return nil, fmt.Errorf("connect to redis at %s: %w; start redis-server or set REDIS_URL", opts.Addr, err)
	}

	r := &runner{cfg: cfg, redis: client, source: newEventSource(cfg.PayloadSize), log: cfg.Logger}
	if slices.ContainsFunc(selected, func(c benchCase) bool { return c.nats }) {
		if err := pingNATS(ctx, cfg.NATSURL); err != nil {
			r.natsSkip = err.Error()
		}
	}
	return r, nil
}

func (r *runner) runCase(ctx context.Context, c benchCase, prefix string) (Result, error) {
	if c.nats && r.natsSkip != "" {
		return Result{Case: c.name, Title: c.title, Skipped: r.natsSkip}, nil
	}
	r.log.Info("case started", slog.String("case", c.name), slog.String("prefix", prefix))

	caseCtx, cancel := context.WithTimeout(ctx, r.cfg.CaseTimeout)
	defer cancel()
	res, err := c.run(caseCtx, r, prefix)

	// Clean up with a context of its own, since the case's may have ended.
	cleanupCtx, cleanupCancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cleanupCancel()
	cleanupErr := deleteRedisKeys(cleanupCtx, r.redis, prefix)
	if c.nats {
		cleanupErr = errors.Join(cleanupErr, deleteNATSStreams(cleanupCtx, r.cfg.NATSURL, prefix))
	}
	if err != nil {
		return Result{}, errors.Join(err, cleanupErr)
	}
	if cleanupErr != nil {
		return Result{}, cleanupErr
	}

	res.Case, res.Title = c.name, c.title
	r.log.Info("case finished", slog.String("case", c.name), slog.Int("count", res.Count),
		slog.Float64("per_second", res.Rate()), slog.Duration("p99", res.P99))
	return res, nil
}
