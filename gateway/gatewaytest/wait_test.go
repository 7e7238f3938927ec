package gatewaytest

import (
	"fmt"
	"testing"
	"testing/synctest"
	"time"
)

// fatalRecorder is a testing.TB whose Fatalf records the message and ends
// the goroutine, as the real one does.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (r *fatalRecorder) Helper() {}

func (r *fatalRecorder) Fatalf(format string, args ...any) {
	r.msg = fmt.Sprintf(format, args...)
	panic(r)
}

// waitFor runs WaitFor and returns its failure message, "" if it returned.
func waitFor(t *testing.T, timeout time.Duration, cond func() bool) (msg string) {
	r := &fatalRecorder{TB: t}
	defer func() {
		if p := recover(); p != nil && p != any(r) {
			panic(p)
		}
		msg = r.msg
	}()
	WaitFor(r, timeout, "the thing", cond)
	return ""
}

func TestWaitFor(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		calls := 0
		if msg := waitFor(t, time.Second, func() bool { calls++; return time.Since(start) >= 300*time.Millisecond }); msg != "" {
			t.Fatalf("condition that holds after 300ms, timeout 1s: %s", msg)
		}
		// 1+2+...+64 ms, then 100 ms steps: seen within one 100 ms poll.
		if d := time.Since(start); d > 400*time.Millisecond {
			t.Errorf("returned %v after the start, want within 100ms of the condition holding at 300ms", d)
		}
		if calls > 12 {
			t.Errorf("condition checked %d times in 300ms, want the back-off to keep it under 12", calls)
		}

		start = time.Now()
		msg := waitFor(t, time.Second, func() bool { return false })
		if want := "timed out after 1s waiting for the thing"; msg != want {
			t.Errorf("never-true condition: failure %q, want %q", msg, want)
		}
		if d := time.Since(start); d < time.Second || d > 1100*time.Millisecond {
			t.Errorf("never-true condition failed after %v, want 1s to 1.1s", d)
		}
	})
}
