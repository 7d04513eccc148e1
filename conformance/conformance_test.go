package conformance_test

import (
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/deadletter/deadletter/adapters/memory"
	"github.com/deadletter/deadletter/conformance"
	"github.com/deadletter/deadletter/core"
)

// newMemoryAdapter returns an empty in-memory adapter closed at cleanup.
func newMemoryAdapter(t testing.TB) core.Adapter {
	t.Helper()
	// Watermill's suite expects a message's context to end within 15 s
	// of closing a subscriber that never settled it.
	a, err := memory.New(memory.Config{CloseTimeout: 2 * time.Second})
	if err != nil {
		t.Fatalf("create memory adapter: %v", err)
	}
	t.Cleanup(func() {
		if err := a.Close(); err != nil {
			t.Errorf("close memory adapter: %v", err)
		}
	})
	return a
}

func TestMemoryAdapter(t *testing.T) {
	conformance.Run(t, conformance.Config{NewAdapter: newMemoryAdapter})
}

// TestMain fails the run if a contract leaves goroutines behind, such as a
// bus it did not stop.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
