package config

import (
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestDocsListEveryKey keeps docs/configuration.md in step with the keys.
func TestDocsListEveryKey(t *testing.T) {
	data, err := os.ReadFile("../docs/configuration.md")
	require.NoError(t, err)
	doc := string(data)
	for _, k := range Keys() {
		row := "| `" + k.Name + "` |"
		require.Contains(t, doc, row, "docs/configuration.md has no row for %s", k.Name)
		line := doc[strings.Index(doc, row):]
		line = line[:strings.Index(line, "\n")]
		if k.Env != "" {
			require.Contains(t, line, "`"+k.Env+"`", "row of %s names its variable", k.Name)
		}
		if k.Flag != "" {
			require.Contains(t, line, "`--"+k.Flag+"`", "row of %s names its flag", k.Name)
		}
	}
}

// TestDocsFileLoads checks that the full file in docs/configuration.md is
// valid, apart from the files it names, which do not exist here.
func TestDocsFileLoads(t *testing.T) {
	data, err := os.ReadFile("../docs/configuration.md")
	require.NoError(t, err)
	_, rest, ok := strings.Cut(string(data), "## A full file\n\n```yaml\n")
	require.True(t, ok, "the page has a full file")
	yaml, _, _ := strings.Cut(rest, "```")

	var kept []string
	for line := range strings.SplitSeq(yaml, "\n") {
		if !strings.Contains(line, "_file:") && !strings.Contains(line, "tls:") {
			kept = append(kept, line)
		}
	}
	cfg, err := Load(Sources{File: writeFile(t, strings.Join(kept, "\n")), LookupEnv: env(nil)})
	require.NoError(t, err)
	require.Equal(t, 4, cfg.Policy("send_welcome_email").MaxRetries)
	require.Equal(t, 9, cfg.Policy("call_insurer_api").MaxRetries)
}
