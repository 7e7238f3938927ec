package upstream

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sluice-gw/sluice/gateway/gatewaytest"
)

// serverSeries counts the exported series that name the upstream server
// addr, or any server if addr is "".
func serverSeries(t *testing.T, reg *prometheus.Registry, addr string) int {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "server" && (addr == "" || l.GetValue() == addr) {
					n++
				}
			}
		}
	}
	return n
}

// TestReloadSwapsDoNotLeak: servers removed by a reload used to stay until
// the backend closed, with their HTTP/1.1 reaper goroutine and metric
// series. Fifty reloads that each swap a server's address must leave
// goroutines, upstream connections and series where they were.
func TestReloadSwapsDoNotLeak(t *testing.T) {
	for _, proto := range []string{H2C, H1} {
		t.Run(proto, func(t *testing.T) {
			checkNoLeak(t)
			stable := newFakeServer(t, true, 0)
			cur := newFakeServer(t, true, 0)
			reg := prometheus.NewRegistry()
			m := NewMetrics(reg)
			cfg := Config{
				Name: "b", Protocol: proto,
				Servers: []ServerConfig{{Address: stable.addr()}, {Address: cur.addr()}},
				Queue:   QueueConfig{MaxPending: 100},
				H2C:     H2CConfig{ConnsPerServer: 1},
				H1:      H1Config{ConnsPerServer: 1},
			}
			b, err := New(cfg, m, quietLog())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(b.Close)
			b.Start()
			conns := func() float64 { return testutil.ToFloat64(m.conns.WithLabelValues("b", stable.addr(), proto)) }
			var goroutines, series int
			for i := range 51 {
				if i > 0 {
					old := cur
					cur = newFakeServer(t, true, 0)
					cfg.Servers[1].Address = cur.addr()
					if err := b.Update(cfg); err != nil {
						t.Fatal(err)
					}
					gatewaytest.WaitFor(t, 5*time.Second, "removed server's connections closed", func() bool { return old.open.Load() == 0 })
					old.Close()
				}
				for range 10 {
					if _, _, err := get(context.Background(), b, "/", nil); err != nil {
						t.Fatal(err)
					}
				}
				if i == 1 {
					goroutines, series = runtime.NumGoroutine(), serverSeries(t, reg, "")
				}
			}
			// A leak grows with the swaps (one reaper or pool per removed
			// server: +50); a few goroutines come and go by themselves
			// (a coalescer's flusher while bytes are pending, a warm-up).
			const slack = 3
			gatewaytest.WaitFor(t, 5*time.Second,
				fmt.Sprintf("at most %d goroutines (%d after the first swap, +%d) and %d server series after 50 swaps", goroutines+slack, goroutines, slack, series),
				func() bool { return runtime.NumGoroutine() <= goroutines+slack && serverSeries(t, reg, "") <= series })
			if n := cur.open.Load() + stable.open.Load(); n > 2 {
				t.Errorf("%d upstream connections open, want at most one per server", n)
			}
			if conns() != float64(stable.open.Load()) {
				t.Errorf("connection gauge %v, server sees %d", conns(), stable.open.Load())
			}
			// The last removed server's retire goroutine releases its
			// series before it leaves b.retired.
			waitRetired(t, b)
		})
	}
}

// TestRemovedServerDrains: a removed server finishes the request it
// carries, and is cut once the drain timeout has passed.
func TestRemovedServerDrains(t *testing.T) {
	for _, tt := range []struct {
		name    string
		timeout time.Duration
		release bool // the blocked request finishes before the timeout
	}{
		{"finishes", time.Minute, true},
		{"cut after the drain timeout", 100 * time.Millisecond, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			checkNoLeak(t)
			old, next := newFakeServer(t, true, 0), newFakeServer(t, true, 0)
			old.release = make(chan struct{})
			t.Cleanup(func() { close(old.release) })
			cfg := Config{Name: "b", Protocol: H2C, Servers: []ServerConfig{{Address: old.addr()}}, DrainTimeout: tt.timeout}
			b := newTestBackend(t, cfg)
			errc := make(chan error, 1)
			go func() {
				_, _, err := get(context.Background(), b, "/block", nil)
				errc <- err
			}()
			gatewaytest.WaitFor(t, 5*time.Second, "request at the server", func() bool { return old.inflight.Load() == 1 })
			cfg.Servers = []ServerConfig{{Address: next.addr()}}
			if err := b.Update(cfg); err != nil {
				t.Fatal(err)
			}
			if _, _, err := get(context.Background(), b, "/", nil); err != nil {
				t.Fatal(err)
			}
			if tt.release {
				if n := old.open.Load(); n != 1 {
					t.Fatalf("removed server has %d connections while it carries a request", n)
				}
				old.release <- struct{}{}
				if err := <-errc; err != nil {
					t.Fatalf("request on the removed server: %v", err)
				}
			} else if err := <-errc; err == nil || errors.Is(err, ErrClosed) {
				t.Fatalf("request on the removed server after the drain timeout: %v, want the connection cut", err)
			}
			gatewaytest.WaitFor(t, 5*time.Second, "removed server closed", func() bool {
				b.updateMu.Lock()
				defer b.updateMu.Unlock()
				return len(b.retired) == 0 && old.open.Load() == 0
			})
		})
	}
}

// TestReaddedServerKeepsSeries: an address removed and added back while
// its old server still drains shares the series; the old one closing must
// not delete them under the new one.
func TestReaddedServerKeepsSeries(t *testing.T) {
	checkNoLeak(t)
	a, c := newFakeServer(t, true, 0), newFakeServer(t, true, 0)
	a.release = make(chan struct{})
	t.Cleanup(func() { close(a.release) })
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	// The queue lets the request after the swaps wait while the warm-up
	// of the re-added server holds its only connection slot.
	cfg := Config{Name: "b", Protocol: H2C, Servers: []ServerConfig{{Address: a.addr()}}, H2C: H2CConfig{ConnsPerServer: 1},
		Queue: QueueConfig{MaxPending: 10}}
	b, err := New(cfg, m, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	errc := make(chan error, 1)
	go func() {
		_, _, err := get(context.Background(), b, "/block", nil)
		errc <- err
	}()
	gatewaytest.WaitFor(t, 5*time.Second, "request at the server", func() bool { return a.inflight.Load() == 1 })
	for _, addr := range []string{c.addr(), a.addr()} {
		cfg.Servers = []ServerConfig{{Address: addr}}
		if err := b.Update(cfg); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := get(context.Background(), b, "/", nil); err != nil {
		t.Fatal(err)
	}
	a.release <- struct{}{}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	waitRetired(t, b)
	if n := testutil.CollectAndCount(m.conns, "sluice_upstream_connections"); n != 2 {
		t.Errorf("%d connection series, want the re-added server's two", n)
	}
	if got := testutil.ToFloat64(m.conns.WithLabelValues("b", a.addr(), H2C)); got != 1 {
		t.Errorf("re-added server's connection gauge %v, want 1", got)
	}
}
