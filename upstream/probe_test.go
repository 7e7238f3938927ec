package upstream

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sluice-gw/sluice/gateway/gatewaytest"
)

// Tests for background probing: auto detection off the request path, and
// probing ejected or down servers so that they return early.

// p99 runs clients concurrent requests to /sleep (20 ms at the server) for
// d and returns the 99th percentile latency (nearest rank).
func p99(t *testing.T, b *Backend, clients int, d time.Duration) time.Duration {
	t.Helper()
	var mu sync.Mutex
	var lat []time.Duration
	var failed atomic.Int64
	end := time.Now().Add(d)
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			for time.Now().Before(end) {
				start := time.Now()
				if _, _, err := get(context.Background(), b, "/sleep", nil); err != nil {
					failed.Add(1)
					continue
				}
				mu.Lock()
				lat = append(lat, time.Since(start))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if n := failed.Load(); n > 0 {
		t.Errorf("%d requests failed", n)
	}
	if len(lat) == 0 {
		t.Fatal("no request completed")
	}
	slices.Sort(lat)
	return lat[(len(lat)*99+99)/100-1]
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// Issue 9 item 1: auto detection of a blackholed server used to run under
// a mutex with the request's context, so requests queued behind serial
// connect-timeout probes, and the server was never reported down.
func TestBlackholedAutoServerDoesNotSlowRequests(t *testing.T) {
	checkNoLeak(t)
	fs := newFakeServer(t, true, 0)
	hole := gatewaytest.Listen(t, nil).String() // never answers
	newB := func(servers ...string) (*Backend, *Metrics) {
		cfg := Config{Name: "test", Protocol: Auto, Queue: QueueConfig{MaxPending: 1000}, ConnectTimeout: time.Second}
		for _, a := range servers {
			cfg.Servers = append(cfg.Servers, ServerConfig{Address: a})
		}
		m := NewMetrics(nil)
		b, err := New(cfg, m, quietLog())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(b.Close)
		b.Start()
		return b, m
	}
	base, _ := newB(fs.addr())
	mixed, m := newB(fs.addr(), hole)

	// Interleaved rounds; the medians are compared, so one round disturbed
	// by another process on the machine does not decide, and a failed
	// comparison is measured again: requests held behind probes cost
	// connect timeouts (1 s here) in every measurement, noise does not.
	const attempts, rounds, clients, span = 3, 5, 8, 300 * time.Millisecond
	for attempt := 1; ; attempt++ {
		var baseP, mixedP []time.Duration
		for range rounds {
			baseP = append(baseP, p99(t, base, clients, span))
			mixedP = append(mixedP, p99(t, mixed, clients, span))
		}
		bm, mm := median(baseP), median(mixedP)
		t.Logf("p99 healthy only %v (median of %v); with a blackholed server %v (median of %v)", bm, baseP, mm, mixedP)
		if mm <= 2*bm {
			break
		}
		if attempt == attempts {
			t.Errorf("p99 with a blackholed server %v, more than twice the healthy-only %v, in %d measurements", mm, bm, attempts)
			break
		}
	}

	gatewaytest.WaitFor(t, 5*time.Second, "blackholed server reported down", func() bool {
		st := mixed.Stats()
		return st.Servers[1].State == "down" && st.Servers[0].State == "up"
	})
	if up := testutil.ToFloat64(m.up.WithLabelValues("test", hole)); up != 0 {
		t.Errorf("sluice_server_up for the blackholed server = %v, want 0", up)
	}
	if up := testutil.ToFloat64(m.up.WithLabelValues("test", fs.addr())); up != 1 {
		t.Errorf("sluice_server_up for the healthy server = %v, want 1", up)
	}
	if n := testutil.ToFloat64(m.probes.WithLabelValues("test", hole, "fail")); n < 1 {
		t.Errorf("sluice_upstream_probes_total{result=fail} = %v for the blackholed server", n)
	}
}

// A failed probe counts as a failure for passive health: a server that
// cannot be reached is ejected like one that fails requests.
func TestFailedProbeCountsForEjection(t *testing.T) {
	checkNoLeak(t)
	fs := newFakeServer(t, true, 0)
	dead := newFakeServer(t, true, 0)
	deadAddr := dead.addr()
	dead.Close()
	m := NewMetrics(nil)
	b, err := New(Config{
		Name: "test", Protocol: Auto,
		Servers: []ServerConfig{{Address: fs.addr()}, {Address: deadAddr}},
		Queue:   QueueConfig{MaxPending: 100},
		Passive: PassiveConfig{ConsecutiveFailures: 3, EjectFor: time.Hour, MaxEjectedPercent: 50, ProbeInterval: 10 * time.Millisecond},
	}, m, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	b.Start()
	gatewaytest.WaitFor(t, 5*time.Second, "unreachable server ejected", func() bool {
		return testutil.ToFloat64(m.ejected.WithLabelValues("test", deadAddr)) == 1
	})
	if st := b.Stats().Servers[1].State; st != "ejected" {
		t.Errorf("state %q, want ejected", st)
	}
	for range 10 {
		if resp, _, err := get(context.Background(), b, "/", nil); err != nil || resp.StatusCode != 200 {
			t.Fatalf("request with one server unreachable: %v %v", resp, err)
		}
	}
}

// restartable is an h2c server on a fixed address that a test can kill
// (listener and connections closed, so dials are refused) and start again.
type restartable struct {
	t    *testing.T
	addr string
	h    http.Handler
	mu   sync.Mutex
	srv  *http.Server
}

func newRestartable(t *testing.T, h http.Handler) *restartable {
	r := &restartable{t: t, addr: "127.0.0.1:0", h: h}
	r.start()
	t.Cleanup(r.kill)
	return r
}

func (r *restartable) start() {
	ln, err := net.Listen("tcp", r.addr)
	if err != nil {
		r.t.Fatal(err)
	}
	r.addr = ln.Addr().String()
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	srv := &http.Server{Handler: r.h, Protocols: &p}
	go srv.Serve(ln)
	r.mu.Lock()
	r.srv = srv
	r.mu.Unlock()
}

func (r *restartable) kill() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.srv != nil {
		r.srv.Close()
		r.srv = nil
	}
}

// Issue 16: an ejected server is probed in the background and returns as
// soon as rise probes pass, not when its ejection runs out; an ejection
// for bad answers is ended early only by a health check, which a connect
// cannot stand in for.
func TestProbeBringsEjectedServerBackEarly(t *testing.T) {
	tests := []struct {
		name     string
		health   bool
		answer   bool // fail by answering 503, not by dying
		wantBack bool
	}{
		{"refused, connect probe", false, false, true},
		{"refused, health probe", true, false, true},
		{"503 answers, connect probe", false, true, false},
		{"503 answers, health probe", true, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkNoLeak(t)
			var sick atomic.Bool
			srv := newRestartable(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if sick.Load() && r.URL.Path != "/health" {
					w.WriteHeader(http.StatusServiceUnavailable)
					return
				}
				io.WriteString(w, "ok")
			}))
			reg := prometheus.NewRegistry()
			m := NewMetrics(reg)
			cfg := Config{
				Name: "b", Protocol: H2C,
				Servers: []ServerConfig{{Address: srv.addr}},
				H2C:     H2CConfig{ConnsPerServer: 1},
				Queue:   QueueConfig{MaxPending: 10},
				Passive: PassiveConfig{ConsecutiveFailures: 2, EjectFor: time.Hour, MaxEjectedPercent: 100, ProbeInterval: 20 * time.Millisecond},
			}
			if tt.health {
				cfg.Health = HealthConfig{Enabled: true, Path: "/health", Rise: 3}
			}
			b, err := New(cfg, m, quietLog())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(b.Close)
			if _, _, err := get(context.Background(), b, "/", nil); err != nil {
				t.Fatal(err)
			}
			s := b.Servers()[0]
			if tt.answer {
				sick.Store(true)
			} else {
				srv.kill()
			}
			// Failed requests eject it, or, once it is known down and
			// takes none, failed probes do.
			gatewaytest.WaitFor(t, 5*time.Second, "ejection", func() bool {
				get(context.Background(), b, "/", nil)
				return s.ejected(time.Now().UnixNano())
			})
			if tt.answer {
				sick.Store(false)
			} else {
				srv.start()
			}
			back := func() bool { return s.usable() }
			if !tt.wantBack {
				// Fifteen probe intervals later it is still out.
				time.Sleep(15 * cfg.Passive.ProbeInterval) // the period under test: nothing may happen in it
				if back() {
					t.Fatal("an ejection for 503 answers was ended by a connect probe")
				}
				return
			}
			gatewaytest.WaitFor(t, 5*time.Second, "server back in rotation", back)
			if _, body, err := get(context.Background(), b, "/", nil); err != nil || body != "ok" {
				t.Fatalf("after return: %q %v", body, err)
			}
			if n := testutil.ToFloat64(m.probes.WithLabelValues("b", srv.addr, "pass")); n < 2 {
				t.Errorf("%v probes passed, want at least 2", n)
			}
			if h := gathered(t, reg, "sluice_ejection_duration_seconds").GetHistogram(); h.GetSampleCount() != 1 || h.GetSampleSum() > 60 {
				t.Errorf("ejection duration: %d samples, sum %vs; want 1 short one", h.GetSampleCount(), h.GetSampleSum())
			}
			if s.healthySince.Load() == 0 {
				t.Error("a returning server starts without slow start")
			}
		})
	}
}

// The ejection multiplier doubles on each ejection and halves for every
// eject_for the server then spends in rotation (Envoy's decay), instead of
// only ever growing.
func TestEjectionMultiplierDecays(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := New(Config{
			Name: "d", Protocol: H2C,
			Servers: []ServerConfig{{Address: "127.0.0.1:1"}},
			// Probes never fire within the test: only time ends ejections.
			Passive: PassiveConfig{ConsecutiveFailures: 1, EjectFor: 10 * time.Second, MaxEjectFor: 160 * time.Second,
				MaxEjectedPercent: 100, ProbeInterval: time.Hour},
		}, NewMetrics(nil), quietLog())
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		s, st := b.Servers()[0], b.cur()
		steps := []struct {
			inRotation time.Duration // after the last ejection ran out
			want       time.Duration
		}{
			{0, 10 * time.Second},
			{0, 20 * time.Second},
			{0, 40 * time.Second},
			{10 * time.Second, 40 * time.Second}, // one eject_for in rotation: halved, then doubled
			{25 * time.Second, 20 * time.Second}, // two: quartered, then doubled
			{0, 40 * time.Second},
			{0, 80 * time.Second},
			{0, 160 * time.Second},
			{0, 160 * time.Second}, // max_eject_for
			{10 * time.Minute, 10 * time.Second},
		}
		for i, step := range steps {
			time.Sleep(time.Until(time.Unix(0, s.ejectedUntil.Load())) + step.inRotation)
			s.failed(st)
			got := time.Duration(s.ejectedUntil.Load() - time.Now().UnixNano())
			if got != step.want {
				t.Fatalf("ejection %d, %v after the last one ended: %v, want %v", i+1, step.inRotation, got, step.want)
			}
		}
	})
}

func TestProbeBackoff(t *testing.T) {
	for _, tt := range []struct {
		fails int
		want  time.Duration
	}{{1, time.Second}, {2, 2 * time.Second}, {3, 2 * time.Second}, {50, 2 * time.Second}} {
		t.Run(fmt.Sprint(tt.fails), func(t *testing.T) {
			if got := probeBackoff(time.Second, tt.fails); got != tt.want {
				t.Errorf("probeBackoff(1s, %d) = %v, want %v", tt.fails, got, tt.want)
			}
		})
	}
}
