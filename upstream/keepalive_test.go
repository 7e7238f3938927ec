package upstream

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sluice-gw/sluice/gateway/gatewaytest"
)

type connInfoKey struct{}

// connInfo numbers a server-side connection and counts its requests
// (requests on one connection run one after another).
type connInfo struct{ n, reqs int64 }

// TestH1ReplacementDialledAhead: when a response ends its connection's
// keep-alive, the pool dials the replacement at once, not when the next
// request finds no connection. The server holds each spent response's body
// until the replacement connection has arrived, which it can only do if the
// dial started on the response head; a request that would have to wait for
// that dial instead finds the server stuck (counted in late).
func TestH1ReplacementDialledAhead(t *testing.T) {
	const perConn = 3 // requests per connection, as Tomcat's maxKeepAliveRequests
	for _, tc := range []struct {
		name  string
		spent func(h http.Header, req int64) bool // sets the header; reports the response that retires the connection
	}{
		{"connection_close", func(h http.Header, req int64) bool {
			if req == perConn {
				h.Set("Connection", "close")
				return true
			}
			return false
		}},
		{"keep_alive_max_1", func(h http.Header, req int64) bool {
			// Apache's countdown: max=1 means one more request may come.
			h.Set("Keep-Alive", "timeout=5, max="+string(rune('0'+perConn-req)))
			return perConn-req <= 1
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkNoLeak(t)
			var conns, spent, late atomic.Int64
			opened := make(chan int64, 64) // numbers of accepted connections
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				ci := r.Context().Value(connInfoKey{}).(*connInfo)
				ci.reqs++
				if !tc.spent(w.Header(), ci.reqs) {
					io.WriteString(w, "ok")
					return
				}
				spent.Add(1)
				w.WriteHeader(http.StatusOK)
				w.(http.Flusher).Flush()
				if late.Load() > 0 {
					io.WriteString(w, "ok") // failed already; do not wait again
					return
				}
				timeout := time.After(5 * time.Second)
				for {
					select {
					case n := <-opened:
						if n <= ci.n {
							continue
						}
					case <-timeout:
						late.Add(1)
					}
					io.WriteString(w, "ok")
					return
				}
			}))
			srv.Config.ConnContext = func(ctx context.Context, _ net.Conn) context.Context {
				n := conns.Add(1)
				opened <- n
				return context.WithValue(ctx, connInfoKey{}, &connInfo{n: n})
			}
			srv.Start()
			t.Cleanup(srv.Close)
			addr := srv.Listener.Addr().String()

			m := NewMetrics(nil)
			b, err := New(Config{
				Name:     "test",
				Protocol: H1,
				Servers:  []ServerConfig{{Address: addr}},
				H1:       H1Config{ConnsPerServer: 1},
				Queue:    QueueConfig{MaxPending: 10},
			}, m, quietLog())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(b.Close)

			const requests = 4 * perConn
			for i := range requests {
				if _, body, err := get(context.Background(), b, "/", nil); err != nil || body != "ok" {
					t.Fatalf("request %d: %q %v", i, body, err)
				}
			}
			if n := late.Load(); n != 0 {
				t.Errorf("%d of %d spent responses waited for a replacement connection that was not being dialled", n, spent.Load())
			}
			closes := testutil.ToFloat64(m.kaCloses.WithLabelValues("test", addr))
			if closes != float64(spent.Load()) || closes < 3 {
				t.Errorf("sluice_upstream_keepalive_closes_total = %v, want %d (spent responses, >= 3)", closes, spent.Load())
			}
			// Each spent connection was replaced once: the first plus one per
			// close (the last replacement may still be completing its dial).
			openedTotal := func() float64 { return testutil.ToFloat64(m.opened.WithLabelValues("test", addr, H1)) }
			gatewaytest.WaitFor(t, 5*time.Second, "the last replacement dial", func() bool { return openedTotal() == closes+1 })
			if n := conns.Load(); float64(n) != closes+1 {
				t.Errorf("server saw %d connections, want %v (1 + one per keep-alive close)", n, closes+1)
			}
			gatewaytest.WaitFor(t, 5*time.Second, "spent connections closed", func() bool { return b.Stats().Servers[0].Conns <= 1 })
		})
	}
}

// TestH1RetiredConnClosedWhenDone: net/http counts a response that ended
// keep-alive as in flight until its reader goroutine closes the
// connection, which on a loaded machine can come after the replacement
// connection's own keep-alive has ended. The fake connections keep their
// slot the same way (nothing releases it); the pool must close the retired
// connection when its request is done, or the 2x cap refuses the second
// replacement dial.
func TestH1RetiredConnClosedWhenDone(t *testing.T) {
	checkNoLeak(t)
	dialled := make(chan *fakeConn, 4)
	p := newPool(poolConfig{
		protocol: H1, addr: "fake", mru: true, onChange: func() {},
		obs:    NewMetrics(nil).forServer("test", "fake"),
		limits: poolLimits{maxConns: 1, maxStreams: 1, connectTimeout: time.Second},
		dial: func(context.Context, *pconn) (clientConn, func(func()), error) {
			fc := &fakeConn{status: http.StatusOK, limit: 1}
			dialled <- fc
			return fc, fc.watch, nil
		},
	})
	t.Cleanup(p.close)
	if err := p.grow(); err != nil {
		t.Fatal(err)
	}
	prev := <-dialled
	for i := range 3 {
		var c *pconn
		gatewaytest.WaitFor(t, 5*time.Second, "a free connection", func() bool { c = p.tryAcquire(false); return c != nil })
		c.keepAliveSpent() // what h1Conn.RoundTrip does on Connection: close
		c.done()           // what tracker.finish does once the body is read
		if err := prev.Err(); err == nil {
			t.Errorf("retirement %d: the retired connection is still open after its request", i)
		}
		select {
		case prev = <-dialled:
		case <-time.After(5 * time.Second):
			t.Fatalf("retirement %d: no replacement dialled", i)
		}
	}
}

// TestRetireTakesReplacementPlace: retiring a connection takes the place
// it gave up for its replacement before returning, so a queue woken
// meanwhile finds no room to open a connection and leaves the dial to the
// pool, instead of a queued request dialling on its own path. With one P
// the replacement's goroutine cannot run before the check, so the check
// sees what retire itself did. Both protocols retire the same way (an
// HTTP/1.1 keep-alive close, an h2c GOAWAY).
func TestRetireTakesReplacementPlace(t *testing.T) {
	for _, tc := range []struct {
		name string
		mru  bool
	}{{"h1", true}, {"h2c", false}} {
		t.Run(tc.name, func(t *testing.T) {
			checkNoLeak(t)
			release := make(chan struct{})
			var dials atomic.Int64
			p := newPool(poolConfig{
				protocol: H1, addr: "fake", mru: tc.mru, onChange: func() {},
				obs:    NewMetrics(nil).forServer("test", "fake"),
				limits: poolLimits{maxConns: 1, maxStreams: 1, connectTimeout: 5 * time.Second},
				dial: func(context.Context, *pconn) (clientConn, func(func()), error) {
					if dials.Add(1) > 1 {
						<-release // the replacement's dial, held until checked
					}
					fc := &fakeConn{status: http.StatusOK, limit: 1}
					return fc, fc.watch, nil
				},
			})
			if err := p.grow(); err != nil {
				t.Fatal(err)
			}
			c := p.tryAcquire(false)
			if c == nil {
				t.Fatal("no connection")
			}
			procs := runtime.GOMAXPROCS(1)
			c.keepAliveSpent()
			canGrow := p.canGrow()
			runtime.GOMAXPROCS(procs)
			close(release)
			if canGrow {
				t.Error("after retire the pool still has room for a dial: a woken request would open the replacement itself")
			}
			gatewaytest.WaitFor(t, 5*time.Second, "replacement dialled", func() bool { return dials.Load() == 2 })
			c.release()
			p.close()
		})
	}
}
