package inspect

import (
	"context"
	"fmt"

	"github.com/deadletter/deadletter/core"
)

// DefaultPageSize is the number of entries read per call to DLQ.List.
const DefaultPageSize = 200

// Walk calls fn for each entry of the DLQ, newest first, reading one page
// per call to List. opts.Limit is the page size (0 means DefaultPageSize),
// opts.Before where to start, and opts.Replayed walks the replayed store.
// Walk stops after the oldest entry, when fn returns false, or at the first
// error, which it returns. Entries removed while Walk runs are skipped
// without error, since each page starts below the last id seen.
func Walk(ctx context.Context, dlq core.DLQ, opts core.ListOptions, fn func(core.Entry) (bool, error)) error {
	if opts.Limit <= 0 {
		opts.Limit = DefaultPageSize
	}

	for {
		page, err := dlq.List(ctx, opts)
		if err != nil {
			return fmt.Errorf("read dlq page: %w", err)
		}
		for _, e := range page {
			more, err := fn(e)
			if err != nil || !more {
				return err
			}
		}
		if len(page) < opts.Limit {
			return nil
		}
		opts.Before = page[len(page)-1].ID
	}
}
