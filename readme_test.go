package deadletter_test

import (
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestReadme keeps the README's quickstart identical to the compiled
// program it shows, and its test command identical to the one CI runs.
func TestReadme(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	require.NoError(t, err)
	quickstart, err := os.ReadFile("examples/quickstart/main.go")
	require.NoError(t, err)
	ci, err := os.ReadFile(".ci/run")
	require.NoError(t, err)

	t.Run("QuickstartMatchesExample", func(t *testing.T) {
		require.Contains(t, string(readme), "```go\n"+string(quickstart)+"```",
			"README's quickstart must be examples/quickstart/main.go verbatim")
	})
	t.Run("CIRunsTheTestCommand", func(t *testing.T) {
		require.Contains(t, string(readme), "bash scripts/test ")
		require.True(t, strings.Contains(string(ci), "bash scripts/test"), ".ci/run must run the README's test command")
	})
}
