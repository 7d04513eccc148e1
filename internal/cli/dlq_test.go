package cli

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/deadletter/deadletter/adapters/nats"
	"github.com/deadletter/deadletter/adapters/redisstream"
	"github.com/deadletter/deadletter/core"
	"github.com/deadletter/deadletter/internal/testredis"
)

// payloadSecret is in every seeded entry's event data.
const payloadSecret = "Ana Souza"

// seeded is a Redis DLQ under a fresh prefix with the flags to reach it.
type seeded struct {
	dlq   core.DLQ
	flags []string
	ids   []string
}

// seed writes n entries of handler and event type to a fresh prefix.
func seed(t *testing.T, counts map[string]int) *seeded {
	t.Helper()
	prefix := testredis.Prefix()
	adapter, err := redisstream.NewAdapter(redisstream.Config{URL: testredis.URL(t), Prefix: prefix})
	require.NoError(t, err)
	t.Cleanup(func() { _ = adapter.Close() })

	s := &seeded{dlq: adapter.DLQ(), flags: []string{"--redis-url", testredis.URL(t), "--prefix", prefix}}
	for key, n := range counts {
		handler, eventType, _ := strings.Cut(key, "/")
		for i := range n {
			id, err := adapter.DLQ().Add(context.Background(), core.Entry{
				EventData:     []byte(`{"event_type":"` + eventType + `","data":{"name":"` + payloadSecret + `"}}`),
				Handler:       handler,
				Error:         fmt.Sprintf("upstream refused record %d", i),
				FailedAt:      time.Now().UTC().Add(-time.Duration(n-i) * time.Minute),
				EventType:     eventType,
				EventID:       uuid.NewString(),
				AggregateType: "patient",
				AggregateID:   uuid.NewString(),
				Attempts:      4,
			})
			require.NoError(t, err)
			s.ids = append(s.ids, id)
		}
	}
	return s
}

// runCLI runs the command with args and no terminal on stdin.
func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(context.Background(), args, strings.NewReader(""), &out, &errOut)
	return code, out.String(), errOut.String()
}

// requireOneLineError checks a failed run that printed one line on stderr.
func requireOneLineError(t *testing.T, code int, stderr, contains string) {
	t.Helper()
	require.Equal(t, 1, code)
	require.Equal(t, 1, strings.Count(stderr, "\n"), "one line, no usage dump: %q", stderr)
	require.True(t, strings.HasPrefix(stderr, "deadletter: "), stderr)
	require.Contains(t, stderr, contains)
}

func TestDLQStats(t *testing.T) {
	s := seed(t, map[string]int{"sync_to_legacy/patient.registered": 7, "send_email/appointment.booked": 2})

	code, out, stderr := runCLI(t, append([]string{"dlq", "stats"}, s.flags...)...)
	require.Equal(t, 0, code, stderr)
	require.Contains(t, out, ":dlq: 9 entries, 0 dropped at the size cap")
	require.Regexp(t, `patient.registered\s+7`, out)
	require.Regexp(t, `send_email\s+2`, out)
	require.Regexp(t, `sync_to_legacy\s+7\s+patient.registered\s+upstream refused record <n>`, out,
		"seven errors that differ in a number form one group")
	require.NotContains(t, out, payloadSecret)

	code, out, stderr = runCLI(t, append([]string{"dlq", "stats", "--json"}, s.flags...)...)
	require.Equal(t, 0, code, stderr)
	var stats struct {
		Total     int `json:"total"`
		ByHandler []struct {
			Name  string `json:"name"`
			Count int    `json:"count"`
		} `json:"by_handler"`
		ErrorGroups []struct {
			Key string `json:"key"`
		} `json:"error_groups"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &stats))
	require.Equal(t, 9, stats.Total)
	require.Equal(t, "sync_to_legacy", stats.ByHandler[0].Name)
	require.Len(t, stats.ErrorGroups, 2)
}

func TestDLQListAndShow(t *testing.T) {
	s := seed(t, map[string]int{"sync_to_legacy/patient.registered": 5})

	code, out, stderr := runCLI(t, append([]string{"dlq", "list", "--limit", "2"}, s.flags...)...)
	require.Equal(t, 0, code, stderr)
	require.Contains(t, out, "ID")
	require.Contains(t, out, s.ids[4], "newest first")
	require.Contains(t, out, s.ids[3])
	require.NotContains(t, out, s.ids[2])
	require.Contains(t, out, "more: deadletter dlq list --limit 2 ")
	require.Contains(t, out, " --before "+s.ids[3]+"\n")
	require.NotContains(t, out, payloadSecret, "list never prints event data")

	code, out, stderr = runCLI(t, append([]string{"dlq", "list", "--json", "--before", s.ids[3]}, s.flags...)...)
	require.Equal(t, 0, code, stderr)
	var listed []map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &listed))
	require.Len(t, listed, 3)
	require.Equal(t, s.ids[2], listed[0]["id"])
	require.NotContains(t, listed[0], "event_data")

	code, out, stderr = runCLI(t, append([]string{"dlq", "show", s.ids[0]}, s.flags...)...)
	require.Equal(t, 0, code, stderr)
	require.Contains(t, out, "handler")
	require.Contains(t, out, "sync_to_legacy")
	require.Contains(t, out, payloadSecret, "show prints the whole entry")
	require.Contains(t, out, "upstream refused record 0")

	code, out, stderr = runCLI(t, append([]string{"dlq", "show", "--json", s.ids[0]}, s.flags...)...)
	require.Equal(t, 0, code, stderr)
	var shown map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &shown))
	require.Equal(t, "patient.registered", shown["event_data"].(map[string]any)["event_type"])
}

func TestDLQErrors(t *testing.T) {
	s := seed(t, map[string]int{"h/a.b": 1})

	t.Run("UnknownID", func(t *testing.T) {
		code, _, stderr := runCLI(t, append([]string{"dlq", "show", "1-1"}, s.flags...)...)
		requireOneLineError(t, code, stderr, `no entry "1-1"`)
	})
	t.Run("MalformedID", func(t *testing.T) {
		code, _, stderr := runCLI(t, append([]string{"dlq", "show", "nope"}, s.flags...)...)
		requireOneLineError(t, code, stderr, `no entry "nope"`)
	})
	t.Run("MissingID", func(t *testing.T) {
		code, _, stderr := runCLI(t, append([]string{"dlq", "show"}, s.flags...)...)
		requireOneLineError(t, code, stderr, "takes 1 entry id")
	})
	t.Run("UnknownFlag", func(t *testing.T) {
		code, _, stderr := runCLI(t, "dlq", "list", "--bogus")
		requireOneLineError(t, code, stderr, "unknown flag: --bogus")
	})
	t.Run("BadLimit", func(t *testing.T) {
		code, _, stderr := runCLI(t, append([]string{"dlq", "list", "--limit", "0"}, s.flags...)...)
		requireOneLineError(t, code, stderr, "invalid --limit 0")
	})
	t.Run("UnreachableRedis", func(t *testing.T) {
		code, _, stderr := runCLI(t, "dlq", "stats", "--redis-url", "redis://:hunter2@127.0.0.1:1/0")
		requireOneLineError(t, code, stderr, "connect to redis at 127.0.0.1:1")
		require.NotContains(t, stderr, "hunter2")
	})
	t.Run("ReplayWithoutSelection", func(t *testing.T) {
		code, _, stderr := runCLI(t, append([]string{"dlq", "replay"}, s.flags...)...)
		requireOneLineError(t, code, stderr, "no entries selected")
	})
	t.Run("AllWithSelection", func(t *testing.T) {
		code, _, stderr := runCLI(t, append([]string{"dlq", "delete", "--all", "--handler", "h"}, s.flags...)...)
		requireOneLineError(t, code, stderr, "--all cannot be combined")
	})
	t.Run("BadAge", func(t *testing.T) {
		code, _, stderr := runCLI(t, append([]string{"dlq", "replay", "--older-than", "soon"}, s.flags...)...)
		requireOneLineError(t, code, stderr, `invalid --older-than "soon"`)
	})
	t.Run("BadRate", func(t *testing.T) {
		code, _, stderr := runCLI(t, append([]string{"dlq", "replay", "--all", "--rate", "0"}, s.flags...)...)
		requireOneLineError(t, code, stderr, "invalid --rate 0")
	})
}

func TestDLQDelete(t *testing.T) {
	s := seed(t, map[string]int{"sync_to_legacy/patient.registered": 4, "send_email/appointment.booked": 3})
	ctx := context.Background()

	code, out, stderr := runCLI(t, append([]string{"dlq", "delete", "--handler", "send_email", "--dry-run"}, s.flags...)...)
	require.Equal(t, 0, code, stderr)
	require.Contains(t, out, "dry run: would delete 3 entries")

	code, _, stderr = runCLI(t, append([]string{"dlq", "delete", "--handler", "send_email"}, s.flags...)...)
	requireOneLineError(t, code, stderr, "no terminal to confirm on; pass --yes")
	count, err := s.dlq.Len(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 7, count, "nothing is deleted without a confirmation")

	code, out, stderr = runCLI(t, append([]string{"dlq", "delete", "--handler", "send_email", "--yes"}, s.flags...)...)
	require.Equal(t, 0, code, stderr)
	require.Contains(t, out, "deleted 3 entries")
	count, err = s.dlq.Len(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 4, count)

	left, err := s.dlq.List(ctx, core.ListOptions{})
	require.NoError(t, err)
	code, out, stderr = runCLI(t, append([]string{"dlq", "delete", "--yes", "--json", left[0].ID, "1-1"}, s.flags...)...)
	requireOneLineError(t, code, stderr, "no entries with ids 1-1")
	var res struct {
		Deleted int      `json:"deleted"`
		Missing []string `json:"missing"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &res))
	require.Equal(t, 1, res.Deleted)
	require.Equal(t, []string{"1-1"}, res.Missing)
}

func TestDLQReplayDryRun(t *testing.T) {
	s := seed(t, map[string]int{"sync_to_legacy/patient.registered": 3})
	code, out, stderr := runCLI(t, append([]string{"dlq", "replay", "--all", "--dry-run", "--limit", "2"}, s.flags...)...)
	require.Equal(t, 0, code, stderr)
	require.Contains(t, out, "dry run: would replay 2 entries")
	require.Contains(t, out, s.ids[0], "oldest first")
	require.NotContains(t, out, s.ids[2])
	count, err := s.dlq.Len(context.Background())
	require.NoError(t, err)
	require.EqualValues(t, 3, count)
}

func TestDLQExitCodes(t *testing.T) {
	s := seed(t, map[string]int{"h/a.b": 2})

	t.Run("UnknownSubcommand", func(t *testing.T) {
		code, out, stderr := runCLI(t, "dlq", "bogus")
		requireOneLineError(t, code, stderr, `unknown command "bogus" for "deadletter dlq"`)
		require.Empty(t, out)
	})
	t.Run("DeleteUnknownIDs", func(t *testing.T) {
		code, out, stderr := runCLI(t, append([]string{"dlq", "delete", "nope", "0-1", "--yes"}, s.flags...)...)
		requireOneLineError(t, code, stderr, "no entries with ids nope, 0-1 in ")
		require.NotContains(t, out+stderr, "meanwhile")
	})
	t.Run("ReplayUnknownID", func(t *testing.T) {
		code, out, stderr := runCLI(t, append([]string{"dlq", "replay", "nope", "--dry-run"}, s.flags...)...)
		requireOneLineError(t, code, stderr, "no entries with ids nope in ")
		require.NotContains(t, out+stderr, "meanwhile")
	})
	t.Run("ShowOutOfRangeID", func(t *testing.T) {
		code, _, stderr := runCLI(t, append([]string{"dlq", "show", "99999999999999999999-0"}, s.flags...)...)
		requireOneLineError(t, code, stderr, `no entry "99999999999999999999-0"`)
	})
	t.Run("ReplayAllRefused", func(t *testing.T) {
		looping := seed(t, nil)
		for range 2 {
			_, err := looping.dlq.Add(context.Background(), core.Entry{
				EventData: []byte(`{}`), Handler: "h", Error: "fails again", FailedAt: time.Now().UTC(),
				EventType: "a.b", EventID: uuid.NewString(), Attempts: 4, ReplayCount: 3,
			})
			require.NoError(t, err)
		}
		code, out, stderr := runCLI(t, append([]string{"dlq", "replay", "--all"}, looping.flags...)...)
		require.Equal(t, 0, code, stderr)
		require.NotContains(t, out, "replayed 0 of 0")
		require.Contains(t, out, "replayed none of")
		require.Contains(t, out, "2 entries were refused by --max-replays")
	})
}

func TestDLQListNextPageHint(t *testing.T) {
	s := seed(t, map[string]int{"sync_to_legacy/patient.registered": 3, "send_email/appointment.booked": 3})

	code, out, stderr := runCLI(t, append([]string{"dlq", "list", "--handler", "sync_to_legacy", "--limit", "1"}, s.flags...)...)
	require.Equal(t, 0, code, stderr)
	_, hint, found := strings.Cut(out, "more: deadletter ")
	require.True(t, found, out)
	hint = strings.TrimSpace(hint)
	require.Contains(t, hint, "--handler sync_to_legacy")
	require.Contains(t, hint, "--limit 1")
	require.Contains(t, hint, s.flags[1], "the hint names the Redis server")
	require.Contains(t, hint, "--prefix "+s.flags[3], "the hint names the prefix")

	// Pasting the hint lists the next page of the same selection.
	code, out, stderr = runCLI(t, strings.Fields(hint)...)
	require.Equal(t, 0, code, stderr)
	require.Contains(t, out, "sync_to_legacy")
	require.NotContains(t, out, "send_email")
	require.Contains(t, out, "more: deadletter dlq list")
}

func TestNextPageHintHidesPasswords(t *testing.T) {
	cmd := newRoot(io.Discard, io.Discard)
	cmd.SetArgs([]string{"dlq", "list", "--redis-url", "redis://app:hunter2@127.0.0.1:1/0", "--replayed",
		"--event-type", "a b"})
	list, _, err := cmd.Find([]string{"dlq", "list"})
	require.NoError(t, err)
	require.NoError(t, list.ParseFlags([]string{"--redis-url", "redis://app:hunter2@127.0.0.1:1/0", "--replayed",
		"--event-type", "a b"}))

	hint := nextPageHint(list, "1-1")
	require.NotContains(t, hint, "hunter2")
	require.Contains(t, hint, "--redis-url redis://app:xxxxx@127.0.0.1:1/0")
	require.Contains(t, hint, "--replayed")
	require.Contains(t, hint, "--event-type 'a b'")
	require.True(t, strings.HasSuffix(hint, "--before 1-1"), hint)
}

func TestHelpShowsOneDefault(t *testing.T) {
	for _, args := range [][]string{{"dlq", "list", "--help"}, {"monitor", "--help"}, {"serve", "--help"}} {
		code, out, stderr := runCLI(t, args...)
		require.Equal(t, 0, code, stderr)
		for line := range strings.Lines(out) {
			require.LessOrEqual(t, strings.Count(line, "(default"), 1, "%v: %s", args, line)
		}
		require.Contains(t, out, `(env REDIS_URL) (default "redis://127.0.0.1:6379/0")`)
	}
}

func TestDLQShowBinaryAndLargeData(t *testing.T) {
	s := seed(t, nil)
	add := func(data []byte) string {
		id, err := s.dlq.Add(context.Background(), core.Entry{
			EventData: data, Handler: "h", Error: "bad\x00byte", FailedAt: time.Now().UTC(),
			EventType: "a.b", EventID: uuid.NewString(), Attempts: 1,
		})
		require.NoError(t, err)
		return id
	}

	binary := []byte("{\"name\":\"\xff\"}")
	id := add(binary)
	code, out, stderr := runCLI(t, append([]string{"dlq", "show", "--json", id}, s.flags...)...)
	require.Equal(t, 0, code, stderr)
	require.True(t, utf8.ValidString(out), "JSON output is valid UTF-8")
	var shown map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &shown))
	require.Equal(t, base64.StdEncoding.EncodeToString(binary), shown["event_data_base64"])
	require.IsType(t, "", shown["event_data"])

	code, out, stderr = runCLI(t, append([]string{"dlq", "show", id}, s.flags...)...)
	require.Equal(t, 0, code, stderr)
	require.NotContains(t, out, "\x00")
	require.NotContains(t, out, "\xff")
	require.Contains(t, out, `"name": "\xff"`)
	require.Contains(t, out, `bad\x00byte`)

	large := bytes.Repeat([]byte("a"), 5<<20)
	id = add(large)
	code, out, stderr = runCLI(t, append([]string{"dlq", "show", id}, s.flags...)...)
	require.Equal(t, 0, code, stderr)
	require.Less(t, len(out), 100<<10, "the text form cuts large values")
	require.Contains(t, out, "cut at 65536 of 5242880 bytes")
	require.Contains(t, out, "--json")

	code, out, stderr = runCLI(t, append([]string{"dlq", "show", "--json", id}, s.flags...)...)
	require.Equal(t, 0, code, stderr)
	require.Greater(t, len(out), 5<<20, "--json prints the whole value")
}

func TestDLQReplaySkipsUndecodable(t *testing.T) {
	s := seed(t, map[string]int{"h/a.b": 1})
	_, err := s.dlq.Add(context.Background(), core.Entry{
		EventData: []byte("\xff not an event"), Handler: "h", Error: "decode event", FailedAt: time.Now().UTC(),
		ErrorType: core.ErrorTypeDecode, Attempts: 1,
	})
	require.NoError(t, err)

	code, out, stderr := runCLI(t, append([]string{"dlq", "replay", "--all", "--dry-run"}, s.flags...)...)
	require.Equal(t, 0, code, stderr)
	require.Contains(t, out, "dry run: would replay 1 entries")
	require.Contains(t, out, "1 undecodable entries skipped; delete them or use --include-undecodable")

	code, out, stderr = runCLI(t, append([]string{"dlq", "replay", "--all", "--dry-run", "--include-undecodable"}, s.flags...)...)
	require.Equal(t, 0, code, stderr)
	require.Contains(t, out, "dry run: would replay 2 entries")
}

func TestTablesEscapeControlCharacters(t *testing.T) {
	s := seed(t, nil)
	_, err := s.dlq.Add(context.Background(), core.Entry{
		EventData: []byte(`{}`), Handler: "h", Error: "bad\x1b[31mred", FailedAt: time.Now().UTC(),
		EventType: "a.b", EventID: uuid.NewString(), Attempts: 1,
	})
	require.NoError(t, err)

	for _, command := range [][]string{{"dlq", "list"}, {"dlq", "stats"}, {"dlq", "replay", "--all", "--dry-run"}} {
		code, out, stderr := runCLI(t, append(command, s.flags...)...)
		require.Equal(t, 0, code, "%v: %s", command, stderr)
		require.NotContains(t, out, "\x1b", "%v must not print a raw escape character", command)
		require.Contains(t, out, `\x1b`, "%v must show the escape character escaped", command)
	}
}

func TestMalformedEntryDoesNotBlockTheDLQ(t *testing.T) {
	s := seed(t, map[string]int{"sync_to_legacy/patient.registered": 2})
	prefix := s.flags[3]
	client := testredis.Client(t)
	// Entries that other tools might add to the DLQ stream.
	malformed := map[string][]any{
		"BadTime":         {"event_data", "a\x01b\xff", "failed_at", "yesterday"},
		"UnknownFields":   {"", "", "x", "y"},
		"HugeNumbers":     {"handler", "h", "attempts", "99999999999999999999", "replay_count", "-1e9"},
		"InvalidUTF8":     {"handler", "h\xc3\x28", "error", "\xff\x1b[31m", "event_type", "\xfe"},
		"YearOutOfRange":  {"handler", "h", "failed_at", "9999-12-31T23:00:00-05:00"},
		"EmptyEventData":  {"event_data", "", "error_type", "decode"},
		"LargeEventData":  {"event_data", strings.Repeat("\x00", 200<<10), "handler", "h"},
		"OnlyEventDataOK": {"event_data", `{"event_type":"a.b"}`},
	}
	ids := map[string]string{}
	for name, values := range malformed {
		id, err := client.XAdd(context.Background(), &redis.XAddArgs{Stream: prefix + ":dlq", Values: values}).Result()
		require.NoError(t, err)
		ids[name] = id
	}

	code, out, stderr := runCLI(t, append([]string{"dlq", "list", "--limit", "100"}, s.flags...)...)
	require.Equal(t, 0, code, stderr)
	require.True(t, utf8.ValidString(out), "the table must be valid UTF-8")
	require.NotContains(t, out, "\x1b", "the table must not print a raw escape character")
	for name, id := range ids {
		require.Contains(t, out, id, "malformed entry %s must still be listed", name)
	}
	code, out, stderr = runCLI(t, append([]string{"dlq", "list", "--json", "--limit", "100"}, s.flags...)...)
	require.Equal(t, 0, code, stderr)
	require.True(t, json.Valid([]byte(out)), "the JSON listing must be valid JSON")
	code, _, stderr = runCLI(t, append([]string{"dlq", "stats"}, s.flags...)...)
	require.Equal(t, 0, code, stderr)
	code, _, stderr = runCLI(t, append([]string{"dlq", "replay", "--all", "--dry-run"}, s.flags...)...)
	require.Equal(t, 0, code, "a dry run must go past malformed entries: %s", stderr)

	for name, id := range ids {
		code, out, stderr := runCLI(t, append([]string{"dlq", "show", id}, s.flags...)...)
		require.Equal(t, 0, code, "malformed entry %s must be shown: %s", name, stderr)
		require.True(t, utf8.ValidString(out), "entry %s must be shown as valid UTF-8", name)
		require.NotContains(t, out, "\x1b", "entry %s must not print a raw escape character", name)
		code, out, stderr = runCLI(t, append([]string{"dlq", "show", "--json", id}, s.flags...)...)
		require.Equal(t, 0, code, "malformed entry %s must be shown as JSON: %s", name, stderr)
		require.True(t, json.Valid([]byte(out)), "entry %s must be shown as valid JSON", name)
	}

	deleteArgs := []string{"dlq", "delete", "--yes"}
	for _, id := range ids {
		deleteArgs = append(deleteArgs, id)
	}
	code, _, stderr = runCLI(t, append(deleteArgs, s.flags...)...)
	require.Equal(t, 0, code, "malformed entries must be deletable: %s", stderr)
	n, err := s.dlq.Len(context.Background())
	require.NoError(t, err)
	require.EqualValues(t, 2, n)
}

func TestMalformedNATSEntryDoesNotBlockTheDLQ(t *testing.T) {
	url := natsURL(t)
	prefix := "malformed-" + uuid.NewString()[:8]
	t.Cleanup(func() { deleteNATSStreams(t, url, prefix) })
	adapter, err := nats.NewAdapter(nats.Config{URL: url, Prefix: prefix})
	require.NoError(t, err)
	t.Cleanup(func() { _ = adapter.Close() })
	flags := []string{"--broker", "nats", "--nats-url", url, "--prefix", prefix}

	conn, err := natsgo.Connect(url)
	require.NoError(t, err)
	t.Cleanup(conn.Close)
	js, err := jetstream.New(conn)
	require.NoError(t, err)
	// Messages that other tools might publish on the DLQ subject.
	malformed := map[string]*natsgo.Msg{
		"NoHeaders": {Data: []byte("\x00\xff binary")},
		"BadEscapes": {Header: natsgo.Header{"handler": {`broken\q`}, "error": {`ends\`}, "event_id": {`\x4`}},
			Data: []byte(`{}`)},
		"WrongTypes": {Header: natsgo.Header{"failed_at": {"yesterday"}, "attempts": {"99999999999999999999"},
			"replay_count": {"four"}}},
		"InvalidUTF8": {Header: natsgo.Header{"handler": {"h\xc3\x28"}, "error": {"\xff\\x1b[31m"}}},
	}
	ids := map[string]string{}
	for name, msg := range malformed {
		msg.Subject = prefix + ".dlq"
		ack, err := js.PublishMsg(context.Background(), msg)
		require.NoError(t, err)
		ids[name] = fmt.Sprint(ack.Sequence)
	}

	code, out, stderr := runCLI(t, append([]string{"dlq", "list"}, flags...)...)
	require.Equal(t, 0, code, stderr)
	require.NotContains(t, out, "\x1b", "the table must not print a raw escape character")
	for name, id := range ids {
		require.Contains(t, out, id, "malformed entry %s must still be listed", name)
	}
	code, _, stderr = runCLI(t, append([]string{"dlq", "stats"}, flags...)...)
	require.Equal(t, 0, code, stderr)
	for name, id := range ids {
		code, out, stderr := runCLI(t, append([]string{"dlq", "show", id}, flags...)...)
		require.Equal(t, 0, code, "malformed entry %s must be shown: %s", name, stderr)
		require.True(t, utf8.ValidString(out), "entry %s must be shown as valid UTF-8", name)
		code, out, stderr = runCLI(t, append([]string{"dlq", "show", "--json", id}, flags...)...)
		require.Equal(t, 0, code, "malformed entry %s must be shown as JSON: %s", name, stderr)
		require.True(t, json.Valid([]byte(out)), "entry %s must be shown as valid JSON", name)
	}

	deleteArgs := []string{"dlq", "delete", "--yes"}
	for _, id := range ids {
		deleteArgs = append(deleteArgs, id)
	}
	code, _, stderr = runCLI(t, append(deleteArgs, flags...)...)
	require.Equal(t, 0, code, "malformed entries must be deletable: %s", stderr)
	n, err := adapter.DLQ().Len(context.Background())
	require.NoError(t, err)
	require.Zero(t, n)
}
