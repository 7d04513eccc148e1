package redisstream

import (
	"context"
	"log/slog"
	"strconv"
	"strings"

	"github.com/deadletter/deadletter/core"
)

// checkTrimmed reports events that the stream's trim removed before this
// handler's group read them. Trimming keeps about Config.StreamMaxLen
// entries whatever the groups have read, so a handler that falls further
// behind, or stays stopped while that many events arrive, never receives the
// oldest. Redis gives no signal of it; the check compares the group's last
// delivered id with the stream's first entry, at start and at every sweep.
//
// TODO: a handler that falls behind and catches up between two sweeps is
// not reported; only a trim before the group's position is seen.
func (sub *subscription) checkTrimmed(ctx context.Context) {
	groups, err := sub.client.XInfoGroups(ctx, sub.keys.stream).Result()
	if err != nil {
		return
	}
	info, err := sub.client.XInfoStream(ctx, sub.keys.stream).Result()
	if err != nil || info.FirstEntry.ID == "" {
		return
	}

	for _, group := range groups {
		if group.Name != sub.keys.group {
			continue
		}
		if group.LastDeliveredID == "0-0" || !idBefore(group.LastDeliveredID, info.FirstEntry.ID) {
			return
		}
		// Every entry still in the stream is after the group's position,
		// so the entries never read are those in the stream and those
		// trimmed away.
		lost := info.EntriesAdded - group.EntriesRead - info.Length
		if lost <= sub.reportedLost {
			return
		}
		sub.log.LogAttrs(ctx, core.LevelCritical,
			"events were trimmed from the stream before this handler read them; raise StreamMaxLen",
			slog.Int64("trimmed_unread", lost-sub.reportedLost),
			slog.String("last_delivered_id", group.LastDeliveredID),
			slog.String("first_entry_id", info.FirstEntry.ID),
			slog.Int64("stream_max_len", sub.cfg.StreamMaxLen))
		sub.reportedLost = lost
		return
	}
}

// idBefore reports whether stream id a sorts before b.
func idBefore(a, b string) bool {
	aMs, aSeq := splitID(a)
	bMs, bSeq := splitID(b)
	return aMs < bMs || (aMs == bMs && aSeq < bSeq)
}

func splitID(id string) (ms, seq uint64) {
	msPart, seqPart, _ := strings.Cut(id, "-")
	ms, _ = strconv.ParseUint(msPart, 10, 64)
	seq, _ = strconv.ParseUint(seqPart, 10, 64)
	return ms, seq
}
