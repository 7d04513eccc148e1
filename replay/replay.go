package replay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/deadletter/deadletter/core"
	"github.com/deadletter/deadletter/inspect"
)

// Defaults of Config.
const (
	DefaultRate           = 50
	DefaultMaxReplayCount = 3
	DefaultWorkers        = 4
)

// Config selects the entries to replay and sets the pace.
type Config struct {
	// DLQ holds the entries. It must implement core.Replayer unless DryRun
	// is set. Required.
	DLQ core.DLQ

	// Filter selects the entries; the zero Filter selects every entry.
	Filter inspect.Filter

	// Limit caps the number of entries replayed, the oldest first. 0 means
	// no limit.
	Limit int

	// DryRun selects and returns the entries without replaying any.
	DryRun bool

	// Rate is the number of entries replayed per second. 0 means
	// DefaultRate (50); -1 means no limit.
	Rate float64

	// MaxReplayCount is how often an event may be replayed: an entry whose
	// replay_count has reached it is refused. 0 means DefaultMaxReplayCount
	// (3); -1 turns the guard off.
	MaxReplayCount int

	// IncludeUndecodable selects entries of messages that could not be
	// decoded (error type decode) too. They are skipped by default, since
	// their replay fails straight back into the DLQ.
	IncludeUndecodable bool

	// Workers is the number of entries replayed at once. Replays run in
	// parallel to hide the broker's round trips; the rate applies to them
	// all. 0 means DefaultWorkers (4); 1 replays strictly oldest first.
	Workers int

	// PageSize is the number of entries read per call to DLQ.List. 0 means
	// inspect.DefaultPageSize (200).
	PageSize int

	// Progress, when set, is called after each entry with the number done
	// and the number selected.
	Progress func(done, total int)

	// Logger receives one line per replayed entry at debug level. nil means
	// slog.Default().
	Logger *slog.Logger
}

// Result reports what Run selected and did.
type Result struct {
	// Selected lists the entries to replay, oldest first, without their
	// payloads. Refused ones are not among them.
	Selected []core.Entry

	// Replayed counts the entries replayed; 0 in a dry run.
	Replayed int

	// Refused lists the entries the loop guard kept back.
	Refused []core.Entry

	// Undecodable lists the entries skipped because their message could
	// not be decoded; see Config.IncludeUndecodable.
	Undecodable []core.Entry

	// Missing lists the ids of Filter.IDs that the DLQ does not hold:
	// mistyped, or replayed or deleted before Run.
	Missing []string

	// Vanished lists the selected entries that left the DLQ before their
	// turn came: replayed or deleted by someone else meanwhile.
	Vanished []string

	// DryRun is set when nothing was replayed on purpose.
	DryRun bool
}

// Run selects entries and replays them, the oldest first. It stops at the
// first error other than a missing entry and returns the result so far with
// that error. Running it again replays what is left.
func Run(ctx context.Context, cfg Config) (Result, error) {
	cfg, limiter, err := prepare(cfg)
	if err != nil {
		return Result{}, err
	}
	replayer, canReplay := cfg.DLQ.(core.Replayer)
	if !canReplay && !cfg.DryRun {
		return Result{}, fmt.Errorf("replay dlq entries: %w", core.ErrNotSupported)
	}

	sel, err := inspect.Select(ctx, cfg.DLQ, cfg.Filter, cfg.Limit, cfg.PageSize)
	if err != nil {
		return Result{}, fmt.Errorf("replay dlq entries: %w", err)
	}
	res := Result{Missing: sel.Missing, DryRun: cfg.DryRun}
	for _, e := range sel.Entries {
		if e.ErrorType == core.ErrorTypeDecode && !cfg.IncludeUndecodable {
			res.Undecodable = append(res.Undecodable, e)
			continue
		}
		if cfg.MaxReplayCount >= 0 && e.ReplayCount >= cfg.MaxReplayCount {
			res.Refused = append(res.Refused, e)
			continue
		}
		res.Selected = append(res.Selected, e)
	}
	if cfg.DryRun {
		return res, nil
	}

	err = replayAll(ctx, cfg, limiter, replayer, &res)
	return res, err
}

// replayAll replays res.Selected from cfg.Workers goroutines, which take
// the entries oldest first and share the rate limit. It stops at the first
// error other than a missing entry.
func replayAll(ctx context.Context, cfg Config, limiter *rate.Limiter, replayer core.Replayer, res *Result) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	next := make(chan core.Entry)
	var (
		mu       sync.Mutex
		done     int
		firstErr error
		wg       sync.WaitGroup
	)
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		if firstErr == nil {
			firstErr = fmt.Errorf("replay dlq entries: %d of %d done: %w", res.Replayed, len(res.Selected), err)
		}
		cancel()
	}

	for range cfg.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for e := range next {
				if err := limiter.Wait(ctx); err != nil {
					fail(err)
					return
				}
				err := replayer.Replay(ctx, e.ID, time.Now().UTC())
				if err != nil && !errors.Is(err, core.ErrEntryNotFound) {
					fail(err)
					return
				}

				mu.Lock()
				if err != nil {
					res.Vanished = append(res.Vanished, e.ID)
				} else {
					res.Replayed++
				}
				done++
				if cfg.Progress != nil {
					cfg.Progress(done, len(res.Selected))
				}
				mu.Unlock()
				if err == nil {
					cfg.Logger.LogAttrs(ctx, slog.LevelDebug, "dlq entry replayed",
						slog.String("dlq_id", e.ID), slog.String(core.LogHandler, e.Handler),
						slog.String(core.LogEventType, e.EventType), slog.String(core.LogEventID, e.EventID))
				}
			}
		}()
	}

feed:
	for _, e := range res.Selected {
		select {
		case next <- e:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()

	// fail sets firstErr before it cancels, so a context that ended with no
	// error recorded was ended by the caller.
	if firstErr == nil && ctx.Err() != nil {
		firstErr = fmt.Errorf("replay dlq entries: %d of %d done: %w", res.Replayed, len(res.Selected), ctx.Err())
	}
	return firstErr
}

func prepare(cfg Config) (Config, *rate.Limiter, error) {
	switch {
	case cfg.DLQ == nil:
		return cfg, nil, fmt.Errorf("%w: replay: DLQ is missing", core.ErrInvalidConfig)
	case cfg.Limit < 0:
		return cfg, nil, fmt.Errorf("%w: replay: Limit %d is negative", core.ErrInvalidConfig, cfg.Limit)
	case cfg.Rate < 0 && cfg.Rate != -1:
		return cfg, nil, fmt.Errorf("%w: replay: Rate %g must be positive, 0 or -1", core.ErrInvalidConfig, cfg.Rate)
	case cfg.Workers < 0:
		return cfg, nil, fmt.Errorf("%w: replay: Workers %d is negative", core.ErrInvalidConfig, cfg.Workers)
	case cfg.MaxReplayCount < -1:
		return cfg, nil, fmt.Errorf("%w: replay: MaxReplayCount %d must be positive, 0 or -1",
			core.ErrInvalidConfig, cfg.MaxReplayCount)
	}
	if cfg.Rate == 0 {
		cfg.Rate = DefaultRate
	}
	if cfg.MaxReplayCount == 0 {
		cfg.MaxReplayCount = DefaultMaxReplayCount
	}
	if cfg.Workers == 0 {
		cfg.Workers = DefaultWorkers
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}

	limiter := rate.NewLimiter(rate.Inf, 1)
	if cfg.Rate > 0 {
		limiter = rate.NewLimiter(rate.Limit(cfg.Rate), 1)
	}
	return cfg, limiter, nil
}
