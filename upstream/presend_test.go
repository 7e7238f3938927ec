package upstream

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/gateway/gatewaytest"
)

// TestQueueSendsEarlyRequest: a slot handed to a waiter with an early
// request has that request sent by the goroutine running wake, before the
// waiter's token, while the waiter is already out of the queue (it can
// no longer time out or be removed); a waiter without one is only
// signalled.
func TestQueueSendsEarlyRequest(t *testing.T) {
	for _, tt := range []struct {
		name  string
		early bool
	}{
		{name: "early request", early: true},
		{name: "no early request", early: false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var q queue
			slot := &pconn{}
			q.take = func(*backendState, *Server, bool) (*pconn, bool) { return slot, false }
			q.max.Store(10)
			w := &waiter{ch: make(chan struct{}, 1), deadline: time.Now().Add(time.Hour)}
			req, _ := http.NewRequest("GET", "http://x/", nil)
			info := &RequestInfo{}
			if tt.early {
				w.early, w.info = req, info
			}
			sent := 0
			q.send = func(c *pconn, r *http.Request, i *RequestInfo) {
				sent++
				if c != slot || r != req || i != info {
					t.Errorf("send(%p, %p, %p), want the slot, the waiter's request and info", c, r, i)
				}
				if len(w.ch) != 0 || w.queued || q.len() != 0 {
					t.Errorf("at send: token %d, queued %v, queue length %d; want 0, false, 0", len(w.ch), w.queued, q.len())
				}
				if q.remove(w) {
					t.Error("the waiter could be removed while its request was sent")
				}
			}
			if _, err := q.enqueue(w); err != nil {
				t.Fatal(err)
			}
			q.wake()
			want := 0
			if tt.early {
				want = 1
			}
			if sent != want {
				t.Errorf("send called %d times, want %d", sent, want)
			}
			if len(w.ch) != 1 || w.c != slot || w.err != nil || w.queued {
				t.Errorf("after wake: token %d, slot %v, err %v, queued %v", len(w.ch), w.c == slot, w.err, w.queued)
			}
			q.timer.Stop()
		})
	}
}

// TestH1QueuedRequestsSentEarly: requests queued for a busy HTTP/1.1
// connection are each sent by the goroutine that frees it, in queue
// order, on the one connection, and each gets its own answer.
func TestH1QueuedRequestsSentEarly(t *testing.T) {
	fs, b := newOneConn(t, H1)
	const queued = 5
	errs := make(chan error, queued+1)
	send := func(seq int, path string) {
		hdr := http.Header{"X-Seq": {strconv.Itoa(seq)}}
		resp, body, err := get(context.Background(), b, path, hdr)
		if err == nil && (resp.StatusCode != 200 || body != "ok") {
			err = fmt.Errorf("request %d: %d %q, want 200 ok", seq, resp.StatusCode, body)
		}
		errs <- err
	}
	go send(0, "/block")
	if got := <-fs.arrivals; got != "0" {
		t.Fatalf("first arrival %q, want 0", got)
	}
	for i := 1; i <= queued; i++ {
		go send(i, "/")
		gatewaytest.WaitFor(t, 5*time.Second, "request queued", func() bool { return b.q.len() == i })
	}
	close(fs.release)
	for i := 1; i <= queued; i++ {
		if got := <-fs.arrivals; got != strconv.Itoa(i) {
			t.Fatalf("arrival %d: %q, want queue order", i, got)
		}
	}
	for range queued + 1 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if n := fs.conns.Load(); n != 1 {
		t.Errorf("server saw %d connections, want 1", n)
	}
}

// TestH1PresendClientGoneKeepsConn: a queued request whose head was
// written early (presend) and whose client then leaves has its answer
// read and dropped; the connection is not closed, and the next request
// uses it.
func TestH1PresendClientGoneKeepsConn(t *testing.T) {
	fs, b := newOneConn(t, H1)
	errs := make(chan error, 2)
	go func() {
		_, _, err := get(context.Background(), b, "/block", http.Header{"X-Seq": {"0"}})
		errs <- err
	}()
	if got := <-fs.arrivals; got != "0" {
		t.Fatalf("first arrival %q, want 0", got)
	}
	// The client of the queued request leaves right after its head is
	// written, before its goroutine runs.
	ctx, leave := context.WithCancel(context.Background())
	defer leave()
	presend := b.q.send
	b.q.send = func(c *pconn, r *http.Request, i *RequestInfo) {
		presend(c, r, i)
		leave()
	}
	go func() {
		_, _, err := get(ctx, b, "/", http.Header{"X-Seq": {"1"}})
		errs <- err
	}()
	gatewaytest.WaitFor(t, 5*time.Second, "request queued", func() bool { return b.q.len() == 1 })
	close(fs.release)
	if got := <-fs.arrivals; got != "1" {
		t.Fatalf("second arrival %q, want 1 (written early)", got)
	}
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	if err := <-errs; !errors.Is(err, ErrClientGone) {
		t.Fatalf("the request whose client left: %v, want ErrClientGone", err)
	}
	b.q.send = presend
	_, body, err := get(context.Background(), b, "/", http.Header{"X-Seq": {"2"}})
	if err != nil || body != "ok" {
		t.Fatalf("next request: %q, %v", body, err)
	}
	<-fs.arrivals
	if n := fs.conns.Load(); n != 1 {
		t.Errorf("server saw %d connections, want 1: the connection of the dropped answer was closed", n)
	}
}

// newOneConn is a backend of one connection (HTTP/1.1, or h2c carrying
// one stream) to a fake server whose /block waits for fs.release and
// which reports arrivals.
func newOneConn(t *testing.T, proto string) (*fakeServer, *Backend) {
	checkNoLeak(t)
	fs := newFakeServer(t, proto == H2C, 0)
	fs.release = make(chan struct{})
	fs.arrivals = make(chan string, 16)
	b := newTestBackend(t, Config{
		Protocol: proto,
		Servers:  []ServerConfig{{Address: fs.addr()}},
		H1:       H1Config{ConnsPerServer: 1},
		H2C:      H2CConfig{ConnsPerServer: 1, MaxStreamsPerConn: 1},
		Queue:    QueueConfig{MaxPending: 10, Timeout: 10 * time.Second},
	})
	return fs, b
}

// TestQueueNoEarlyRequestForTryingWaiter: a waiter told to try for itself
// is back at the queue's head while it tries, and may get a slot from the
// try and one from the queue. The queue must hand it the slot without
// writing its request, which the waiter would otherwise send a second
// time on the slot its try got.
func TestQueueNoEarlyRequestForTryingWaiter(t *testing.T) {
	var q queue
	slot := &pconn{}
	var give *pconn
	q.take = func(*backendState, *Server, bool) (*pconn, bool) { return give, give == nil }
	q.max.Store(10)
	sent := 0
	q.send = func(*pconn, *http.Request, *RequestInfo) { sent++ }
	w := &waiter{ch: make(chan struct{}, 1), deadline: time.Now().Add(time.Hour)}
	w.early, _ = http.NewRequest("POST", "http://x/", nil)
	if _, err := q.enqueue(w); err != nil {
		t.Fatal(err)
	}
	q.wake() // no slot to take: w is told to try for itself
	<-w.ch
	if w.c != nil || w.err != nil || w.queued {
		t.Fatalf("told to try: slot %v, err %v, queued %v; want none, nil, false", w.c != nil, w.err, w.queued)
	}
	if !q.requeue(w) {
		t.Fatal("requeue failed")
	}
	give = slot
	q.wake() // a slot frees while w tries
	if sent != 0 {
		t.Errorf("the queue wrote the request of a waiter trying for itself (%d sends)", sent)
	}
	if len(w.ch) != 1 || w.c != slot {
		t.Errorf("after wake: token %d, slot handed %v; want 1, true", len(w.ch), w.c == slot)
	}
	q.timer.Stop()
}

// TestHandOverYields: the request whose answer's end hands its HTTP/1.1
// connection to a queued request, with that request's head written on
// it, yields once as its body closes; a request whose connection goes
// back idle does not, nor does one on h2c (no head is written for the
// waiter there).
func TestHandOverYields(t *testing.T) {
	for _, tt := range []struct {
		name   string
		proto  string
		queued int
		want   int64
	}{
		{name: "h1, one queued", proto: H1, queued: 1, want: 1},
		{name: "h1, none queued", proto: H1, queued: 0, want: 0},
		{name: "h2c, one queued", proto: H2C, queued: 1, want: 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var yields atomic.Int64
			yieldAfterHandOver = func() { yields.Add(1) }
			t.Cleanup(func() { yieldAfterHandOver = runtime.Gosched })
			fs, b := newOneConn(t, tt.proto)
			errs := make(chan error, tt.queued+1)
			send := func(seq int, path string) {
				_, body, err := get(context.Background(), b, path, http.Header{"X-Seq": {strconv.Itoa(seq)}})
				if err == nil && body != "ok" {
					err = fmt.Errorf("request %d: body %q, want ok", seq, body)
				}
				errs <- err
			}
			go send(0, "/block")
			<-fs.arrivals
			for i := 1; i <= tt.queued; i++ {
				go send(i, "/")
				gatewaytest.WaitFor(t, 5*time.Second, "request queued", func() bool { return b.q.len() == i })
			}
			close(fs.release)
			for range tt.queued + 1 {
				if err := <-errs; err != nil {
					t.Fatal(err)
				}
			}
			for range tt.queued {
				<-fs.arrivals
			}
			if got := yields.Load(); got != tt.want {
				t.Errorf("yields %d, want %d", got, tt.want)
			}
		})
	}
}
