package h1

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"
)

// admitHarness serves requests whose handler records the order requests
// start in (by their path, /0, /1, ...) and blocks until the test lets
// them go, behind an admission of limit places.
type admitHarness struct {
	t       *testing.T
	s       *Server
	addr    string
	mu      sync.Mutex
	started []int
	running int
	most    int
	release chan struct{} // closed: every handler returns at once
	each    chan struct{} // one token: one handler returns
	onStart func(w http.ResponseWriter, r *http.Request)
	// ended counts the handler calls returned (guarded by mu): a test
	// waits for all of them (done) before it ends.
	ended int
}

// done lets every handler return and waits until they have.
func (h *admitHarness) done() {
	select {
	case <-h.release:
	default:
		close(h.release)
	}
	waitFor(h.t, "the handlers to return", func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		return h.ended == len(h.started)
	})
}

func newAdmitHarness(t *testing.T, limit int, steal, wait time.Duration, onStart func(http.ResponseWriter, *http.Request)) *admitHarness {
	h := &admitHarness{t: t, release: make(chan struct{}), each: make(chan struct{}, 1000), onStart: onStart}
	h.s = &Server{AdmitLimit: func() int { return limit }}
	h.s.workers.steal, h.s.workers.wait = steal, wait
	h.addr = startServer(t, h.s, func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Path[1:])
		h.mu.Lock()
		h.started = append(h.started, n)
		h.running++
		h.most = max(h.most, h.running)
		h.mu.Unlock()
		if h.onStart != nil {
			h.onStart(w, r)
		}
		select {
		case <-h.release:
		case <-h.each:
		case <-time.After(20 * time.Second):
			t.Errorf("request %d was never let go", n)
		}
		h.mu.Lock()
		h.running--
		h.mu.Unlock()
		io.WriteString(w, "ok")
		h.mu.Lock()
		h.ended++
		h.mu.Unlock()
	})
	t.Cleanup(h.done)
	return h
}

// send sends GET /n on a new connection and returns a channel that gets
// its response's status (0 when it failed).
func (h *admitHarness) send(n int) <-chan int {
	c, br := dial(h.t, h.addr)
	fmt.Fprintf(c, "GET /%d HTTP/1.1\r\nHost: h\r\n\r\n", n)
	return h.answer(c, br)
}

func (h *admitHarness) answer(c net.Conn, br *bufio.Reader) <-chan int {
	got := make(chan int, 1)
	go func() {
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			got <- 0
			return
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		got <- res.StatusCode
	}()
	return got
}

// waitFor polls cond until it holds, failing the test after 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func (h *admitHarness) startedCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.started)
}

// TestAdmissionLimitAndOrder: no more requests run at once than the
// limit; the others wait, counted by Waiting, and start in the order they
// came as places free.
func TestAdmissionLimitAndOrder(t *testing.T) {
	const limit, extra = minAdmitted, 8
	h := newAdmitHarness(t, limit, time.Hour, time.Hour, nil)
	var answers []<-chan int
	for i := range limit {
		answers = append(answers, h.send(i))
	}
	waitFor(t, "the first requests to start", func() bool { return h.startedCount() == limit })
	for i := limit; i < limit+extra; i++ {
		answers = append(answers, h.send(i))
		waitFor(t, fmt.Sprintf("request %d to wait", i), func() bool { return h.s.Waiting() == i-limit+1 })
	}
	if n := h.startedCount(); n != limit {
		t.Fatalf("%d requests started with %d places", n, limit)
	}
	// One at a time, so that the order they start in is the order
	// they were let in.
	for i := range extra {
		h.each <- struct{}{}
		waitFor(t, "a waiting request to start", func() bool { return h.startedCount() == limit+i+1 })
	}
	h.done()
	for i, a := range answers {
		if st := <-a; st != http.StatusOK {
			t.Errorf("request %d: status %d", i, st)
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.most > limit {
		t.Errorf("%d requests ran at once, limit %d", h.most, limit)
	}
	for i, n := range h.started[limit:] {
		if n != limit+i {
			t.Errorf("waiting requests started in order %v, want %d.. in order", h.started[limit:], limit)
			break
		}
	}
	if w := h.s.Waiting(); w != 0 {
		t.Errorf("Waiting = %d after all were served", w)
	}
}

// TestAdmissionHijackLetsNextIn: a hijacked connection (a tunnel) gives
// its request's place to the next one.
func TestAdmissionHijackLetsNextIn(t *testing.T) {
	const limit = minAdmitted
	var hijacked sync.WaitGroup
	tunnelEnd := make(chan struct{})
	h := newAdmitHarness(t, limit, time.Hour, time.Hour, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/0" {
			return
		}
		c, _, err := w.(http.Hijacker).Hijack()
		if err != nil {
			t.Errorf("hijack: %v", err)
			return
		}
		hijacked.Go(func() {
			<-tunnelEnd
			c.Close()
		})
	})
	var answers []<-chan int
	for i := range limit + 1 {
		answers = append(answers, h.send(i))
		if i == 0 {
			waitFor(t, "the hijacking request to start", func() bool { return h.startedCount() == 1 })
		}
	}
	// Request 0 hijacked and then blocks in its handler: the others
	// all have places.
	waitFor(t, "every request to start", func() bool { return h.startedCount() == limit+1 })
	h.done()
	for i, a := range answers[1:] {
		if st := <-a; st != http.StatusOK {
			t.Errorf("request %d: status %d", i+1, st)
		}
	}
	close(tunnelEnd)
	hijacked.Wait()
}

// TestAdmissionStealsLongPlaces: places held longer than the steal time
// go to the requests waiting, so long requests hold none up for longer.
func TestAdmissionStealsLongPlaces(t *testing.T) {
	const limit = minAdmitted
	h := newAdmitHarness(t, limit, 100*time.Millisecond, time.Hour, nil)
	var answers []<-chan int
	for i := range limit {
		answers = append(answers, h.send(i))
	}
	waitFor(t, "the first requests to start", func() bool { return h.startedCount() == limit })
	// No place is given back: the timer lets it in, while the first
	// requests still run.
	answers = append(answers, h.send(limit))
	waitFor(t, "the waiting request to start", func() bool { return h.startedCount() == limit+1 })
	h.done()
	for i, a := range answers {
		if st := <-a; st != http.StatusOK {
			t.Errorf("request %d: status %d", i, st)
		}
	}
}

// TestAdmissionMaxWait: a request that has waited maxWait goes on without
// a place (to its backend's queue, whose bounds then apply), while the
// places are all held.
func TestAdmissionMaxWait(t *testing.T) {
	const limit = minAdmitted
	h := newAdmitHarness(t, limit, time.Hour, 100*time.Millisecond, nil)
	var answers []<-chan int
	for i := range limit {
		answers = append(answers, h.send(i))
	}
	waitFor(t, "the first requests to start", func() bool { return h.startedCount() == limit })
	answers = append(answers, h.send(limit), h.send(limit+1))
	waitFor(t, "the waiting requests to start", func() bool { return h.startedCount() == limit+2 })
	if w := h.s.Waiting(); w != 0 {
		t.Errorf("Waiting = %d, want 0", w)
	}
	h.done()
	for i, a := range answers {
		if st := <-a; st != http.StatusOK {
			t.Errorf("request %d: status %d", i, st)
		}
	}
}

// TestAdmissionShutdownServesWaiting: requests waiting for a place when
// a shutdown begins are served, not dropped with their connection.
func TestAdmissionShutdownServesWaiting(t *testing.T) {
	const limit, extra = minAdmitted, 4
	h := newAdmitHarness(t, limit, time.Hour, time.Hour, nil)
	var answers []<-chan int
	for i := range limit + extra {
		answers = append(answers, h.send(i))
	}
	waitFor(t, "requests to wait", func() bool { return h.s.Waiting() == extra })
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		done <- h.s.Shutdown(ctx)
	}()
	waitFor(t, "the shutdown to begin", h.s.shuttingDown)
	h.done()
	for i, a := range answers {
		if st := <-a; st != http.StatusOK {
			t.Errorf("request %d: status %d", i, st)
		}
	}
	if err := <-done; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
}

// TestAdmissionWatchesWaitingClients: a client that leaves while its
// request waits for a place holds up nothing: the requests behind it are
// served.
func TestAdmissionWatchesWaitingClients(t *testing.T) {
	const limit = minAdmitted
	h := newAdmitHarness(t, limit, time.Hour, time.Hour, nil)
	var answers []<-chan int
	for i := range limit {
		answers = append(answers, h.send(i))
	}
	waitFor(t, "the first requests to start", func() bool { return h.startedCount() == limit })
	c, _ := dial(t, h.addr)
	fmt.Fprintf(c, "GET /%d HTTP/1.1\r\nHost: h\r\n\r\n", limit)
	waitFor(t, "the request to wait", func() bool { return h.s.Waiting() == 1 })
	c.Close()
	next := h.send(limit + 1)
	waitFor(t, "the next request to wait", func() bool { return h.s.Waiting() == 2 })
	h.done()
	if st := <-next; st != http.StatusOK {
		t.Errorf("the request after the one whose client left: status %d", st)
	}
	for i, a := range answers {
		if st := <-a; st != http.StatusOK {
			t.Errorf("request %d: status %d", i, st)
		}
	}
}
