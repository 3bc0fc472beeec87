package ami

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package when a goroutine outlives its tests: every
// Source.Run a test starts must have returned, and every fake AMI server
// and its connections must be closed, by the time it ends.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
