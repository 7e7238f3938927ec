package upstream

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sluice-gw/sluice/gateway/gatewaytest"
)

// statsOf is the Stats row of the server at addr.
func statsOf(t *testing.T, b *Backend, addr string) ServerStats {
	t.Helper()
	for _, ss := range b.Stats().Servers {
		if ss.Address == addr {
			return ss
		}
	}
	t.Fatalf("server %s not in stats", addr)
	return ServerStats{}
}

func twoServerBackend(t *testing.T) (*Backend, *fakeServer, *fakeServer, Config) {
	t.Helper()
	a := newFakeServer(t, true, 0)
	c := newFakeServer(t, true, 0)
	cfg := Config{
		Name: "b", Protocol: H2C,
		Servers:               []ServerConfig{{Address: a.addr()}, {Address: c.addr()}},
		Queue:                 QueueConfig{MaxPending: 10},
		ResponseHeaderTimeout: 5 * time.Second,
	}
	b := newTestBackend(t, cfg)
	b.Start()
	waitWarm(t, b)
	return b, a, c, cfg
}

func getN(t *testing.T, b *Backend, n int) {
	t.Helper()
	for range n {
		if _, _, err := get(context.Background(), b, "/", nil); err != nil {
			t.Fatal(err)
		}
	}
}

// A drained server gets no new request; the one it carries finishes on
// the connection it holds, which stays open; enabling brings it back.
func TestDrainedServerTakesNoNewRequestsInFlightFinish(t *testing.T) {
	checkNoLeak(t)
	b, a, c, _ := twoServerBackend(t)
	a.release = make(chan struct{})
	if _, err := b.SetDrain(c.addr(), true); err != nil {
		t.Fatal(err)
	}
	// The only server in rotation takes a request that blocks.
	done := make(chan error, 1)
	go func() {
		_, body, err := get(context.Background(), b, "/block", nil)
		if err == nil && body != "ok" {
			err = errors.New("body " + body)
		}
		done <- err
	}()
	gatewaytest.WaitFor(t, 5*time.Second, "request in flight on a", func() bool { return a.inflight.Load() == 1 })
	if _, err := b.SetDrain(c.addr(), false); err != nil {
		t.Fatal(err)
	}
	open := a.open.Load()
	ss, err := b.SetDrain(a.addr(), true)
	if err != nil {
		t.Fatal(err)
	}
	if ss.State != StateDrain || !ss.Drained || ss.Active != 1 || ss.Usable {
		t.Errorf("drained server with a request in flight: %+v", ss)
	}
	before := statsOf(t, b, a.addr()).Requests
	getN(t, b, 20)
	if got := statsOf(t, b, a.addr()).Requests - before; got != 0 {
		t.Errorf("drained server got %d new requests", got)
	}
	close(a.release)
	if err := <-done; err != nil {
		t.Errorf("request in flight on the drained server: %v", err)
	}
	if n := a.open.Load(); n != open {
		t.Errorf("drained server: %d connections open, %d before the drain; want them kept", n, open)
	}
	if v := testutil.ToFloat64(a.obsOf(b).drained); v != 1 {
		t.Errorf("sluice_server_drained %v, want 1", v)
	}
	if v := testutil.ToFloat64(a.obsOf(b).up); v != 1 {
		t.Errorf("sluice_server_up %v for a healthy drained server, want 1", v)
	}
	if _, err := b.SetDrain(a.addr(), false); err != nil {
		t.Fatal(err)
	}
	before = statsOf(t, b, a.addr()).Requests
	getN(t, b, 20)
	if got := statsOf(t, b, a.addr()).Requests - before; got != 10 {
		t.Errorf("enabled server got %d of 20 requests, want 10", got)
	}
	if ss := statsOf(t, b, a.addr()); ss.State != "up" || ss.Drained {
		t.Errorf("enabled server: %+v", ss)
	}
}

// obsOf is the observer of the server of b at fs's address.
func (fs *fakeServer) obsOf(b *Backend) *serverObserver { return b.server(fs.addr()).obs }

// Draining every server fails requests at once but leaves the backend
// ready: readiness follows health.
func TestAllDrainedFailsRequestsStaysReady(t *testing.T) {
	b, a, c, _ := twoServerBackend(t)
	getN(t, b, 2)
	for _, addr := range []string{a.addr(), c.addr()} {
		if _, err := b.SetDrain(addr, true); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := get(context.Background(), b, "/", nil); !errors.Is(err, ErrNoHealthyServer) {
		t.Errorf("request with every server drained: %v, want ErrNoHealthyServer", err)
	}
	if !b.Ready() {
		t.Error("backend with healthy drained servers not ready")
	}
}

func TestSetWeightRebalancesAtOnce(t *testing.T) {
	b, a, c, _ := twoServerBackend(t)
	ss, err := b.SetWeight(a.addr(), 3)
	if err != nil || ss.Weight != 3 {
		t.Fatalf("SetWeight: %+v, %v", ss, err)
	}
	getN(t, b, 40) // ten whole cycles of 3 + 1
	if ra, rc := statsOf(t, b, a.addr()).Requests, statsOf(t, b, c.addr()).Requests; ra != 30 || rc != 10 {
		t.Errorf("weights 3:1 gave %d:%d requests, want 30:10", ra, rc)
	}
	if v := testutil.ToFloat64(a.obsOf(b).weight); v != 3 {
		t.Errorf("sluice_server_weight %v, want 3", v)
	}
	for _, tc := range []struct {
		addr   string
		weight int
		want   error
	}{
		{a.addr(), 0, ErrWeightRange},
		{a.addr(), MaxWeight + 1, ErrWeightRange},
		{a.addr(), MaxWeight, nil},
		{"10.9.9.9:1", 5, ErrUnknownServer},
	} {
		if _, err := b.SetWeight(tc.addr, tc.weight); !errors.Is(err, tc.want) {
			t.Errorf("SetWeight(%s, %d): %v, want %v", tc.addr, tc.weight, err, tc.want)
		}
	}
	if _, err := b.SetDrain("10.9.9.9:1", true); !errors.Is(err, ErrUnknownServer) {
		t.Errorf("SetDrain of an unknown server: %v", err)
	}
}

// The runtime state survives a reload for the servers that stay, even one
// that rebuilds them (protocol change); a reload that changes a server's
// configured weight overrides the runtime weight.
func TestAdminStateSurvivesUpdate(t *testing.T) {
	checkNoLeak(t)
	b, a, c, cfg := twoServerBackend(t)
	if _, err := b.SetDrain(a.addr(), true); err != nil {
		t.Fatal(err)
	}
	if _, err := b.SetWeight(c.addr(), 5); err != nil {
		t.Fatal(err)
	}
	check := func(when string, cWeight int) {
		t.Helper()
		if ss := statsOf(t, b, a.addr()); ss.State != StateDrain {
			t.Errorf("%s: drained server is %s", when, ss.State)
		}
		if ss := statsOf(t, b, c.addr()); ss.Weight != cWeight || ss.Drained {
			t.Errorf("%s: other server %+v, want weight %d", when, ss, cWeight)
		}
	}
	cfg.ResponseHeaderTimeout = 6 * time.Second
	if err := b.Update(cfg); err != nil {
		t.Fatal(err)
	}
	check("after a reload", 5)
	cfg.Protocol = H1
	if err := b.Update(cfg); err != nil {
		t.Fatal(err)
	}
	check("after a protocol change", 5)
	getN(t, b, 4)
	if got := statsOf(t, b, a.addr()).Requests; got != 0 {
		t.Errorf("drained server got %d requests after the protocol change", got)
	}
	cfg.Servers[1].Weight = 2
	if err := b.Update(cfg); err != nil {
		t.Fatal(err)
	}
	check("after a reload changing the weight", 2)
}

// Passive health ejects a failing server only while the others in
// rotation keep the backend within max_ejected_percent out: a drain
// counts as out, so the last server in rotation is not ejected for
// failures that would then become every request's 503.
func TestEjectionCountsDrainedServers(t *testing.T) {
	tests := []struct {
		name       string
		drainOther bool
		pct        int
		ejected    bool
	}{
		{"other in rotation", false, 50, true},
		{"other drained", true, 50, false},
		{"other drained, cap 100%", true, 100, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkNoLeak(t)
			bad, other := newFakePeer(t), newFakePeer(t)
			bad.onHeaders = func(pc *peerConn, id uint32, method string) { pc.respond(id, 503, "busy") }
			b, m := newPeerBackend(t, bad, func(c *Config) {
				c.Servers = []ServerConfig{{Address: bad.addr()}, {Address: other.addr()}}
				c.Retries = 0
				c.Passive = PassiveConfig{ConsecutiveFailures: 2, EjectFor: time.Hour, MaxEjectedPercent: tt.pct, ProbeInterval: time.Hour}
			})
			if tt.drainOther {
				if _, err := b.SetDrain(other.addr(), true); err != nil {
					t.Fatal(err)
				}
			}
			// Round robin: at least two answers in a row from bad.
			for range 4 {
				if _, _, err := get(context.Background(), b, "/", nil); err != nil {
					break // ErrNoHealthyServer once bad is ejected with other drained
				}
			}
			ejected := statsOf(t, b, bad.addr()).State == "ejected"
			if ejected != tt.ejected {
				t.Errorf("bad server ejected: %v, want %v (ejections %v)", ejected, tt.ejected,
					testutil.ToFloat64(m.ejected.WithLabelValues("b", bad.addr())))
			}
		})
	}
}

// Clients leaving while their requests are in flight are no failures of
// the server: they do not eject it.
func TestClientAbortsDoNotEject(t *testing.T) {
	checkNoLeak(t)
	fp := newFakePeer(t)
	fp.onHeaders = func(pc *peerConn, id uint32, method string) {} // no answer
	b, m := newPeerBackend(t, fp, func(c *Config) {
		c.Retries = 0
		c.Passive = PassiveConfig{ConsecutiveFailures: 2, EjectFor: time.Hour, MaxEjectedPercent: 100, ProbeInterval: time.Hour}
	})
	for range 3 {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		_, _, err := get(ctx, b, "/", nil)
		cancel()
		if !errors.Is(err, ErrClientGone) {
			t.Fatalf("got %v, want ErrClientGone", err)
		}
	}
	if st := statsOf(t, b, fp.addr()).State; st == "ejected" {
		t.Errorf("server ejected for clients leaving (ejections %v)", testutil.ToFloat64(m.ejected.WithLabelValues("b", fp.addr())))
	}
}
