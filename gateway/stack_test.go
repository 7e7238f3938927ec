package gateway

import (
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/sluice-gw/sluice/gateway/gatewaytest"
)

// h2StackBudget is the stack, in bytes, that an HTTP/2 request's whole
// path through the gateway (routing, the upstream attempt, the h2c
// stream, the response copy into Go's HTTP/2 server) must fit in, counted
// from the top of the goroutine: the starting stack the runtime gives
// net/http's per-stream handler goroutines under h2c load (its adaptive
// /gc/stack/starting-size:bytes, see BENCHMARKS.md). A path that needs more
// copies every handler's stack once or more per request.
const h2StackBudget = 4096

// h2StackBudgetRace is h2StackBudget under the race detector, whose
// instrumentation enlarges the frames: the path's need there, with room
// to spare, and less than it needed before its frames were kept small.
const h2StackBudgetRace = 6144

// h2HandlerFrames is the stack net/http's HTTP/2 handler goroutine uses
// above Gateway.ServeHTTP (goexit's return address, runHandler and
// unencryptedHTTP2Request.ServeHTTP), which the test's own goroutine does
// not have: it is left out of the budget.
const h2HandlerFrames = 192

// TestH2RequestStack runs the gateway's HTTP/2 request path on fresh
// goroutines with h2StackBudget bytes of stack and fails when the stack
// had to grow: a frame added to the path (a big struct on the stack, a
// rarely taken branch inlined into a hot function) shows here before it
// shows as runtime.newstack in a profile. The budget is that of a build
// without instrumentation; the race detector has its own.
func TestH2RequestStack(t *testing.T) {
	if testing.CoverMode() != "" {
		t.Skip("coverage counters enlarge the frames")
	}
	budget := h2StackBudget
	if raceEnabled {
		budget = h2StackBudgetRace
	}
	start := raiseStartingStack(t, 2*budget)
	big := strings.Repeat("b", 64<<10)
	g := benchGatewayAt(t, newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/big" {
			io.WriteString(w, big)
			return
		}
		io.WriteString(w, "ok")
	}))
	avail := make(chan int, 1) // stack given to the next request's path
	grew := make(chan bool, 1)
	front := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := <-avail
		done := make(chan bool)
		go func() { done <- gatewaytest.GrowsStack(start, n, func() { g.ServeHTTP(w, r) }) }()
		grew <- <-done
	}))
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	front.Config.Protocols = &p
	front.Start()
	t.Cleanup(front.Close)
	tr := &http.Transport{Protocols: &p}
	t.Cleanup(tr.CloseIdleConnections)
	for _, tc := range []struct{ path, body string }{{"/", "ok"}, {"/big", big}} {
		get := func(n int) bool {
			avail <- n
			res, err := tr.RoundTrip(httptest.NewRequest("GET", front.URL+tc.path, nil))
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(res.Body)
			res.Body.Close()
			if err != nil || res.StatusCode != 200 || string(body) != tc.body {
				t.Fatalf("GET %s: status %d, %d bytes, err %v", tc.path, res.StatusCode, len(body), err)
			}
			return <-grew
		}
		// Warm up: pools filled, upstream connection open.
		for range 3 {
			get(start - 256)
		}
		// The path's need, to 64 bytes, for the log.
		lo, hi := 1024, start-256
		for hi-lo > 64 {
			mid := (lo + hi) / 2
			if get(mid) {
				lo = mid
			} else {
				hi = mid
			}
		}
		t.Logf("GET %s (%d bytes): the HTTP/2 request path runs on %d bytes of stack without growing it (budget %d)", tc.path, len(tc.body), hi+h2HandlerFrames, budget)
		// A path over budget grows the stack every time; the runtime's
		// rarer deep paths (a span refill in malloc) may grow it once.
		grown := 0
		for range 3 {
			if get(budget - h2HandlerFrames) {
				grown++
			}
		}
		if grown == 3 {
			t.Errorf("GET %s: the HTTP/2 request path grew a %d-byte stack: keep its frames small (see proxy.serve)", tc.path, budget)
		}
	}
}

// raiseStartingStack makes the runtime start new goroutines with at
// least min bytes of stack, and keeps that until the test ends, by
// stopping the GC after one collection that sees many deep stacks (the
// starting size is the average stack depth the last collection scanned).
// It returns the starting size.
func raiseStartingStack(t *testing.T, min int) int {
	t.Helper()
	prev := debug.SetGCPercent(-1)
	t.Cleanup(func() { debug.SetGCPercent(prev) })
	release := make(chan struct{})
	parked := make(chan struct{})
	const n = 200
	for range n {
		go func() {
			var top byte
			gatewaytest.PadTo(&top, min, func() {
				parked <- struct{}{}
				<-release
			})
		}()
	}
	for range n {
		<-parked
	}
	runtime.GC()
	close(release)
	got := gatewaytest.StartingStack()
	if got < min {
		t.Fatalf("starting stack %d bytes after parking %d goroutines %d bytes deep, want at least %d", got, n, min, min)
	}
	return got
}
