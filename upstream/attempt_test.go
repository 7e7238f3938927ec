package upstream

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sluice-gw/sluice/gateway/gatewaytest"
	h1client "github.com/sluice-gw/sluice/h1compat/client"
)

// TestEarlyCloseOverH2CDoesNotWait: closing an h2c response body before
// its end returns at once (the connection's reader drops the rest), and
// the server, still writing, sees no reset within abortGrace. A blocking
// drain would hold Close until the server finished or abortGrace ran out.
func TestEarlyCloseOverH2CDoesNotWait(t *testing.T) {
	checkNoLeak(t)
	release := make(chan struct{})
	result := make(chan error, 1)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "first")
		w.(http.Flusher).Flush()
		<-release
		chunk := make([]byte, 1024)
		for range 20 {
			if _, err := w.Write(chunk); err != nil {
				result <- err
				return
			}
			w.(http.Flusher).Flush()
		}
		result <- r.Context().Err()
	}))
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	srv.Config.Protocols = &p
	srv.Start()
	t.Cleanup(srv.Close)
	b := newTestBackend(t, Config{Protocol: H2C, Servers: []ServerConfig{{Address: srv.Listener.Addr().String()}}})

	req, _ := http.NewRequestWithContext(context.Background(), "GET", "http://backend/", nil)
	resp, err := b.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(resp.Body, buf); err != nil {
		t.Fatal(err)
	}
	closed := make(chan struct{})
	go func() {
		resp.Body.Close()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(abortGrace / 2):
		// The server is still held: only a drain waits here.
		close(release)
		<-closed
		t.Fatal("Close waited for the rest of the response")
	}
	close(release)
	if err := <-result; err != nil {
		t.Errorf("the server saw %v while finishing its response", err)
	}
	// The stream ended, so the connection's slot is free again.
	pl := b.cur().servers[0].cur.Load()
	gatewaytest.WaitFor(t, 5*time.Second, "stream slot freed", func() bool {
		pl.mu.Lock()
		defer pl.mu.Unlock()
		return len(pl.conns) == 1 && pl.conns[0].cc.InFlight() == 0
	})
}

// TestTrackerTimers runs an attempt's timeouts on synctest's clock: when
// its context ends, and why, for each way an attempt can end. The sweep
// fires them up to two sweeps late, never early.
func TestTrackerTimers(t *testing.T) {
	const (
		header = 10 * time.Second
		idle   = 2 * time.Second
	)
	read := func(tr *tracker) {
		if _, err := tr.body.Read(make([]byte, 1)); err != nil {
			t.Errorf("read: %v", err)
		}
	}
	tests := []struct {
		name  string
		idle  time.Duration
		total time.Duration // zero: no total timeout
		// act runs when the attempt starts; leave makes the client go.
		act   func(tr *tracker, leave context.CancelFunc)
		never bool          // the context stays open for an hour
		at    time.Duration // when the context ends
		err   error         // ctx.Err()
		cause error
	}{
		{name: "no response headers", idle: idle, at: header, err: context.Canceled, cause: ErrResponseHeaderTimeout},
		{
			name: "headers in, then the body idles", idle: idle,
			act: func(tr *tracker, _ context.CancelFunc) { time.Sleep(time.Second); tr.bodyPhase() },
			at:  time.Second + idle, err: context.Canceled, cause: ErrIdleTimeout,
		},
		{
			name: "each read restarts the idle timeout", idle: idle,
			act: func(tr *tracker, _ context.CancelFunc) {
				tr.bodyPhase()
				for range 3 {
					time.Sleep(idle - time.Millisecond)
					read(tr)
				}
			},
			at: 3*(idle-time.Millisecond) + idle, err: context.Canceled, cause: ErrIdleTimeout,
		},
		{
			name: "no idle timeout: a body may stall", idle: 0,
			act:   func(tr *tracker, _ context.CancelFunc) { tr.bodyPhase() },
			never: true,
		},
		{name: "total timeout first", idle: idle, total: 3 * time.Second, at: 3 * time.Second, err: context.DeadlineExceeded, cause: ErrTotalTimeout},
		{
			name: "total timeout while the body streams", idle: idle, total: 5 * time.Second,
			act: func(tr *tracker, _ context.CancelFunc) {
				tr.bodyPhase()
				for range 5 {
					time.Sleep(idle/2 - 100*time.Millisecond)
					read(tr)
				}
			},
			at: 5 * time.Second, err: context.DeadlineExceeded, cause: ErrTotalTimeout,
		},
		{
			name: "client leaves: abortGrace to finish", idle: idle,
			act: func(_ *tracker, leave context.CancelFunc) { time.Sleep(time.Second); leave() },
			at:  time.Second + abortGrace, err: context.Canceled, cause: errClientLeft,
		},
		{
			name: "client leaves while the body drains", idle: idle,
			act: func(tr *tracker, leave context.CancelFunc) { tr.bodyPhase(); tr.phase.Store(phaseDraining); leave() },
			at:  0, err: context.Canceled, cause: ErrIdleTimeout,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := &Server{addr: "a:1"}
				p := newPool(poolConfig{server: s})
				defer p.close()
				p.inflight.Store(1)
				s.active.Store(1)
				clientCtx, leave := context.WithCancel(context.Background())
				defer leave()
				start := time.Now()
				var deadline time.Time
				if tt.total > 0 {
					deadline = start.Add(tt.total)
				}
				var set attempts
				tr := newTracker(&set, clientCtx, httptrace.ContextClientTrace(clientCtx), &pconn{pool: p}, header, tt.idle, deadline)
				tr.body = body{rc: io.NopCloser(strings.NewReader("abcdef")), t: tr}
				if tt.act != nil {
					tt.act(tr, leave)
				}
				select {
				case <-(&tr.ctx).Done():
					if tt.never {
						t.Fatalf("context ended after %v: %v", time.Since(start), context.Cause((&tr.ctx)))
					}
				case <-time.After(time.Hour):
					if !tt.never {
						t.Fatal("context still open after an hour")
					}
				}
				if !tt.never {
					if d := time.Since(start); d < tt.at || d > tt.at+2*sweepEvery {
						t.Errorf("context ended after %v, want %v (+ up to %v)", d, tt.at, 2*sweepEvery)
					}
					if err, cause := (&tr.ctx).Err(), tr.cause(); err != tt.err || cause != tt.cause {
						t.Errorf("context ended with %v (cause %v), want %v (cause %v)", err, cause, tt.err, tt.cause)
					}
				}
				tr.finish()
				tr.finish() // ends once
				if tr.cause() == nil {
					t.Error("finish left the context open")
				}
				if a, n := s.active.Load(), p.inflight.Load(); a != 0 || n != 0 {
					t.Errorf("after finish: %d active, %d in flight; want the slot given back once", a, n)
				}
				if set.head != nil {
					t.Error("finish left the attempt in its backend's set")
				}
			})
		})
	}
}

// TestTrackerContext: an attempt's context keeps the client's values and
// trace hooks, learns of the written headers itself (HeadersWritten, which
// the clients call), and does not end when the client leaves
// (abortGrace); finish ends it.
func TestTrackerContext(t *testing.T) {
	type key struct{}
	var got1xx, callerWrote bool
	caller := &httptrace.ClientTrace{
		Got1xxResponse: func(int, textproto.MIMEHeader) error { got1xx = true; return nil },
		WroteHeaders:   func() { callerWrote = true },
	}
	clientCtx, leave := context.WithCancel(context.WithValue(context.Background(), key{}, "v"))
	clientCtx = httptrace.WithClientTrace(clientCtx, caller)
	var set attempts
	s := &Server{addr: "a:1"}
	p := newPool(poolConfig{server: s})
	defer p.close()
	p.inflight.Store(1)
	s.active.Store(1)
	tr := newTracker(&set, clientCtx, httptrace.ContextClientTrace(clientCtx), &pconn{pool: p}, time.Minute, time.Minute, time.Time{})
	if v := (&tr.ctx).Value(key{}); v != "v" {
		t.Errorf("client's value: %v", v)
	}
	trace := httptrace.ContextClientTrace((&tr.ctx))
	if trace == nil || trace.Got1xxResponse == nil || trace.WroteHeaders == nil {
		t.Fatalf("attempt's trace %+v, want the caller's Got1xxResponse and WroteHeaders", trace)
	}
	if tr.ctx.wrote.Load() {
		t.Error("headers written before anyone said so")
	}
	var hn h1client.HeadersNotifier = &tr.ctx // as the HTTP clients see it
	hn.HeadersWritten()
	trace.WroteHeaders()
	trace.Got1xxResponse(103, nil)
	if !tr.ctx.wrote.Load() || !callerWrote || !got1xx {
		t.Errorf("hooks called: tracker's HeadersWritten %v, caller's WroteHeaders %v, Got1xxResponse %v", tr.ctx.wrote.Load(), callerWrote, got1xx)
	}
	leave()
	if err := (&tr.ctx).Err(); err != nil {
		t.Errorf("the attempt ended with its client: %v", err)
	}
	tr.finish()
	if (&tr.ctx).Err() == nil {
		t.Error("finish left the attempt's context open")
	}
}

// TestTrackerAllocs pins what an attempt's tracking costs: the tracker
// (its context is part of it; 1 more with a WroteHeaders closure, before
// the clients told the context itself), and the context's
// Done channel only when someone asks for it (the h2c client waits on it;
// the HTTP/1.1 client uses OnCancel); no timer, no context registered with
// the client's, no trace context (11 allocations with those, 5 with
// context.WithCancelCause's context).
func TestTrackerAllocs(t *testing.T) {
	for _, tt := range []struct {
		name string
		done bool
		want float64
	}{
		{"Done asked for", true, 2},
		{"OnCancel", false, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var set attempts
			s := &Server{addr: "a:1"}
			p := newPool(poolConfig{server: s})
			defer p.close()
			c := &pconn{pool: p}
			clientCtx, cancel := context.WithCancel(context.Background())
			defer cancel()
			clientCtx = httptrace.WithClientTrace(clientCtx, &httptrace.ClientTrace{Got1xxResponse: func(int, textproto.MIMEHeader) error { return nil }})
			var notify watcher
			allocs := testing.AllocsPerRun(100, func() {
				p.inflight.Add(1)
				s.active.Add(1)
				tr := newTracker(&set, clientCtx, httptrace.ContextClientTrace(clientCtx), c, time.Minute, time.Minute, time.Time{})
				if tt.done {
					tr.ctx.Done()
				} else {
					tr.ctx.OnCancel(&notify)
					tr.ctx.StopOnCancel()
				}
				tr.bodyPhase()
				tr.finish()
			})
			if allocs != tt.want {
				t.Errorf("an attempt's tracking: %v allocations, want %v", allocs, tt.want)
			}
		})
	}
}
