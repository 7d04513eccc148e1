package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestMonitorOnceExitCodes(t *testing.T) {
	cases := []struct {
		name    string
		entries int
		code    int
		level   string
	}{
		{"Ok", 2, 0, "ok"},
		{"Warning", 12, 2, "warning"},
		{"Critical", 60, 3, "critical"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := seed(t, map[string]int{"h/a.b": tc.entries})
			args := append([]string{"monitor", "--once", "--log-level", "error"}, s.flags...)

			code, out, stderr := runCLI(t, args...)
			require.Equal(t, tc.code, code, stderr)
			require.Contains(t, out, ": "+tc.level+", ")
			require.NotContains(t, stderr, "deadletter:", "a level is not an error")

			code, out, stderr = runCLI(t, append(args, "--json")...)
			require.Equal(t, tc.code, code, stderr)
			var check map[string]any
			require.NoError(t, json.Unmarshal([]byte(out), &check))
			require.Equal(t, tc.level, check["level"])
			require.EqualValues(t, tc.entries, check["entries"])
		})
	}
}

func TestMonitorOnceUnreachableExitsOne(t *testing.T) {
	code, _, stderr := runCLI(t, "monitor", "--once", "--broker", "redis", "--redis-url", "redis://127.0.0.1:1/0")
	requireOneLineError(t, code, stderr, "127.0.0.1:1")
}

func TestMonitorJSONPrintsEachCheck(t *testing.T) {
	s := seed(t, map[string]int{"h/a.b": 3})
	ctx, cancel := context.WithCancel(context.Background())
	reader, writer := io.Pipe()
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, append([]string{"monitor", "--json", "--interval", "10ms", "--log-level", "error"}, s.flags...),
			strings.NewReader(""), writer, io.Discard)
		writer.Close()
	}()

	lines := bufio.NewScanner(reader)
	for range 3 {
		require.True(t, lines.Scan(), "one line per check")
		var check map[string]any
		require.NoError(t, json.Unmarshal(lines.Bytes(), &check), lines.Text())
		require.Equal(t, "ok", check["level"])
		require.EqualValues(t, 3, check["entries"])
	}
	cancel()
	go func() { _, _ = io.Copy(io.Discard, reader) }()
	require.Equal(t, 0, <-done)
}
