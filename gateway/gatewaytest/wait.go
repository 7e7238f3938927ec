package gatewaytest

import (
	"testing"
	"time"
)

// WaitFor polls cond until it holds, failing the test with what if it
// does not within timeout. It polls every millisecond at first, backing
// off to every 100 ms, so a condition that holds soon is seen at once and
// one that is slow to check (a metrics scrape) is not checked in a busy
// loop. Call it from the test's goroutine: it may call t.Fatalf.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for pause := time.Millisecond; !cond(); pause = min(2*pause, 100*time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(pause) // the poll interval: cond has no event to wait on
	}
}
