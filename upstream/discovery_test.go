package upstream

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"golang.org/x/net/dns/dnsmessage"

	"github.com/sluice-gw/sluice/gateway/gatewaytest"
	"github.com/sluice-gw/sluice/upstream/dnsclient"
	"github.com/sluice-gw/sluice/upstream/dnsclient/dnstest"
)

// scriptedLookup answers each resolution with the next step of a script
// and records when it was asked.
type scriptedLookup struct {
	mu    sync.Mutex
	steps []lookupStep
	calls []time.Time
}

type lookupStep struct {
	addrs []string // host addresses (A) answered
	ttl   time.Duration
	err   error
}

func (l *scriptedLookup) lookup(context.Context) (dnsclient.Answer, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls = append(l.calls, time.Now())
	i := min(len(l.calls)-1, len(l.steps)-1)
	st := l.steps[i]
	var ans dnsclient.Answer
	for _, a := range st.addrs {
		ans.Endpoints = append(ans.Endpoints, dnsclient.Endpoint{Addr: netip.MustParseAddr(a)})
	}
	ans.TTL = st.ttl
	return ans, st.err
}

func (l *scriptedLookup) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.calls)
}

func (l *scriptedLookup) call(i int) time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.calls[i]
}

func addrs(b *Backend) []string {
	var out []string
	for _, s := range b.Servers() {
		out = append(out, s.addr)
	}
	return out
}

func onPort1(hosts ...string) []string {
	out := []string{}
	for _, h := range hosts {
		out = append(out, h+":1")
	}
	return out
}

// TestDiscoveryFollowsAnswers: each good answer becomes the server set,
// re-resolved after the interval or the shorter TTL (never under a
// second); failures and empty answers keep the last good set, and the
// cadence, and are counted and shown.
func TestDiscoveryFollowsAnswers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		notFound := fmt.Errorf("x: %w", dnsclient.ErrNotFound)
		timeout := errors.New("i/o timeout")
		steps := []struct {
			lookupStep
			next time.Duration // until the next resolution
			want []string      // hosts in the backend afterwards
		}{
			{lookupStep{err: timeout}, 5 * time.Second, nil},
			{lookupStep{addrs: []string{"127.0.0.3", "127.0.0.2"}, ttl: time.Minute}, 5 * time.Second, []string{"127.0.0.2", "127.0.0.3"}},
			{lookupStep{addrs: []string{"127.0.0.2", "127.0.0.3", "127.0.0.4"}, ttl: 2 * time.Second}, 2 * time.Second, []string{"127.0.0.2", "127.0.0.3", "127.0.0.4"}},
			// Failures keep the cadence of the last good answer.
			{lookupStep{err: timeout}, 2 * time.Second, []string{"127.0.0.2", "127.0.0.3", "127.0.0.4"}},
			{lookupStep{}, 2 * time.Second, []string{"127.0.0.2", "127.0.0.3", "127.0.0.4"}},
			{lookupStep{err: notFound}, 2 * time.Second, []string{"127.0.0.2", "127.0.0.3", "127.0.0.4"}},
			{lookupStep{addrs: []string{"127.0.0.4"}}, time.Second, []string{"127.0.0.4"}},
			{lookupStep{addrs: []string{"127.0.0.4", "127.0.0.4"}, ttl: 3 * time.Second}, 3 * time.Second, []string{"127.0.0.4"}},
		}
		l := &scriptedLookup{}
		for _, s := range steps {
			l.steps = append(l.steps, s.lookupStep)
		}
		reg := prometheus.NewRegistry()
		b, err := New(Config{
			Name: "d", Protocol: H2C,
			Discovery: DiscoveryConfig{Name: "tomcat.test", Port: 1},
			Passive:   PassiveConfig{ProbeInterval: time.Hour},
		}, NewMetrics(reg), quietLog())
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		b.lookupFor = func(DiscoveryConfig) lookupFunc { return l.lookup }
		b.Start()
		start := time.Now()
		var at time.Duration
		for i, s := range steps {
			synctest.Wait()
			if n := l.count(); n != i+1 {
				t.Fatalf("step %d: %d resolutions", i, n)
			}
			if got := l.call(i).Sub(start); got != at {
				t.Fatalf("step %d: resolved at %v, want %v", i, got, at)
			}
			if got, want := addrs(b), onPort1(s.want...); !slices.Equal(got, want) {
				t.Fatalf("step %d: servers %v, want %v", i, got, want)
			}
			if i == 0 {
				if _, _, err := get(t.Context(), b, "/", nil); !errors.Is(err, ErrNoHealthyServer) {
					t.Fatalf("request to a backend with no server yet: %v", err)
				}
			}
			if i < len(steps)-1 {
				time.Sleep(s.next)
				at += s.next
			}
		}
		ds := b.Stats().Discovery
		if ds == nil || ds.Servers != 1 || ds.Failures != 0 || ds.LastError != "" ||
			ds.Resolutions[resolvedOK] != 4 || ds.Resolutions[resolvedEmpty] != 2 || ds.Resolutions[resolvedError] != 2 {
			t.Fatalf("discovery stats %+v", ds)
		}
		for result, want := range map[string]float64{resolvedOK: 4, resolvedEmpty: 2, resolvedError: 2} {
			if got := testutil.ToFloat64(b.obs.m.resolutions.WithLabelValues("d", result)); got != want {
				t.Errorf("sluice_discovery_resolutions_total{result=%q} = %v, want %v", result, got, want)
			}
		}
		if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP sluice_backend_servers Servers in the backend's rotation set, configured and discovered (draining ones not counted).
# TYPE sluice_backend_servers gauge
sluice_backend_servers{backend="d"} 1
`), "sluice_backend_servers"); err != nil {
			t.Error(err)
		}
	})
}

// TestDiscoveryFailureIsShown: a failing resolution after a good one
// shows in the stats with its error and the count in a row.
func TestDiscoveryFailureIsShown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := &scriptedLookup{steps: []lookupStep{{addrs: []string{"127.0.0.2"}, ttl: time.Hour}, {err: errors.New("connection refused")}}}
		b, err := New(Config{Name: "d", Protocol: H2C, Discovery: DiscoveryConfig{Name: "x", Port: 1, Interval: time.Second},
			Passive: PassiveConfig{ProbeInterval: time.Hour}}, NewMetrics(nil), quietLog())
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		b.lookupFor = func(DiscoveryConfig) lookupFunc { return l.lookup }
		b.Start()
		time.Sleep(2500 * time.Millisecond)
		ds := b.Stats().Discovery
		if ds.Failures != 2 || !strings.Contains(ds.LastError, "connection refused") || ds.Servers != 1 ||
			ds.LastSuccess.IsZero() || !ds.LastResolution.After(ds.LastSuccess) {
			t.Fatalf("stats %+v", ds)
		}
		if got := addrs(b); !slices.Equal(got, onPort1("127.0.0.2")) {
			t.Fatalf("servers %v", got)
		}
	})
}

// TestDiscoveryAndReload: a reload that leaves the discovery alone keeps
// the discovered servers and the loop; one that changes it restarts the
// loop at once, keeping the servers until the new answer; one that drops
// it drops them. Configured servers come first, and an address both
// configured and discovered is listed once.
func TestDiscoveryAndReload(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := &scriptedLookup{steps: []lookupStep{{addrs: []string{"127.0.0.2", "127.0.0.3"}, ttl: time.Hour}}}
		cfg := Config{Name: "d", Protocol: H2C,
			Servers:   []ServerConfig{{Address: "127.0.0.9:1"}, {Address: "127.0.0.3:1"}},
			Discovery: DiscoveryConfig{Name: "x", Port: 1, Interval: time.Minute},
			Passive:   PassiveConfig{ProbeInterval: time.Hour}}
		b, err := New(cfg, NewMetrics(nil), quietLog())
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		b.lookupFor = func(DiscoveryConfig) lookupFunc { return l.lookup }
		b.Start()
		synctest.Wait()
		want := onPort1("127.0.0.9", "127.0.0.3", "127.0.0.2")
		if got := addrs(b); !slices.Equal(got, want) {
			t.Fatalf("servers %v, want %v", got, want)
		}
		kept := b.Servers()

		cfg.Retries = 1
		if err := b.Update(cfg); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if !slices.Equal(b.Servers(), kept) || l.count() != 1 {
			t.Fatalf("unchanged discovery: servers %v after %d resolutions", addrs(b), l.count())
		}

		l.mu.Lock()
		l.steps = append(l.steps, lookupStep{err: errors.New("refused")})
		l.mu.Unlock()
		cfg.Discovery.Resolver = "127.0.0.1:5353"
		if err := b.Update(cfg); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if !slices.Equal(b.Servers(), kept) || l.count() != 2 {
			t.Fatalf("changed discovery: servers %v after %d resolutions", addrs(b), l.count())
		}

		cfg.Discovery = DiscoveryConfig{}
		if err := b.Update(cfg); err != nil {
			t.Fatal(err)
		}
		if got, want := addrs(b), onPort1("127.0.0.9", "127.0.0.3"); !slices.Equal(got, want) {
			t.Fatalf("discovery removed: servers %v, want %v", got, want)
		}
		if b.Stats().Discovery != nil {
			t.Error("stats show a removed discovery")
		}
	})
}

func TestRefreshDelay(t *testing.T) {
	for _, tt := range []struct{ interval, ttl, want time.Duration }{
		{5 * time.Second, time.Minute, 5 * time.Second},
		{5 * time.Second, 2 * time.Second, 2 * time.Second},
		{5 * time.Second, 0, time.Second},
		{500 * time.Millisecond, time.Minute, time.Second},
	} {
		if got := refreshDelay(tt.interval, tt.ttl); got != tt.want {
			t.Errorf("refreshDelay(%v, %v) = %v, want %v", tt.interval, tt.ttl, got, tt.want)
		}
	}
}

func TestDiscovered(t *testing.T) {
	ep := func(a string, port, prio, weight uint16) dnsclient.Endpoint {
		return dnsclient.Endpoint{Addr: netip.MustParseAddr(a), Port: port, Priority: prio, Weight: weight}
	}
	tests := []struct {
		name string
		cfg  DiscoveryConfig
		eps  []dnsclient.Endpoint
		want []ServerConfig
	}{
		{"A on the port, sorted, IPv6 bracketed", DiscoveryConfig{Type: DNSTypeA, Port: 8080},
			[]dnsclient.Endpoint{ep("10.0.0.2", 0, 0, 0), ep("fd00::1", 0, 0, 0), ep("10.0.0.1", 0, 0, 0)},
			[]ServerConfig{{Address: "10.0.0.1:8080", Weight: 1}, {Address: "10.0.0.2:8080", Weight: 1}, {Address: "[fd00::1]:8080", Weight: 1}}},
		{"SRV ports, weights and priorities", DiscoveryConfig{Type: DNSTypeSRV},
			[]dnsclient.Endpoint{ep("10.0.0.1", 8080, 10, 50), ep("10.0.0.2", 8081, 20, 0), ep("10.0.0.3", 8082, 10, 5000)},
			[]ServerConfig{{Address: "10.0.0.1:8080", Weight: 50}, {Address: "10.0.0.2:8081", Weight: 1, Backup: true}, {Address: "10.0.0.3:8082", Weight: 1000}}},
		{"SRV with a port set", DiscoveryConfig{Type: DNSTypeSRV, Port: 9000},
			[]dnsclient.Endpoint{ep("10.0.0.1", 8080, 0, 1), ep("10.0.0.1", 8081, 0, 1)},
			[]ServerConfig{{Address: "10.0.0.1:9000", Weight: 1}}},
		{"SRV port 0 skipped", DiscoveryConfig{Type: DNSTypeSRV},
			[]dnsclient.Endpoint{ep("10.0.0.1", 0, 0, 1)}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := discovered(tt.cfg, dnsclient.Answer{Endpoints: tt.eps}); !slices.Equal(got, tt.want) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestDiscoveryConfigValidate(t *testing.T) {
	for _, tt := range []struct {
		cfg Config
		err string
	}{
		{Config{Discovery: DiscoveryConfig{Name: "x", Port: 80}}, ""},
		{Config{Discovery: DiscoveryConfig{Name: "x", Type: DNSTypeSRV}}, ""},
		{Config{Discovery: DiscoveryConfig{Name: "x"}}, "port 0 out of 1..65535"},
		{Config{Discovery: DiscoveryConfig{Name: "x", Type: "mx", Port: 80}}, `unknown record type "mx"`},
		{Config{}, "no servers"},
	} {
		tt.cfg.Name = "b"
		tt.cfg.setDefaults()
		err := tt.cfg.validate()
		if tt.err == "" && err != nil || tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)) {
			t.Errorf("%+v: err %v, want %q", tt.cfg.Discovery, err, tt.err)
		}
	}
}

// TestDiscoveryReconcilesConnections resolves SRV records from an
// in-process DNS server: servers that stay keep their one warm
// connection, a removed one drains and closes, a new one is dialled, and
// a failing DNS server changes nothing.
func TestDiscoveryReconcilesConnections(t *testing.T) {
	checkNoLeak(t)
	tomcats := []*fakeServer{newFakeServer(t, true, 0), newFakeServer(t, true, 0), newFakeServer(t, true, 0)}
	const name = "_http._tcp.tomcat.test."
	zone := func(idx ...int) dnstest.Handler {
		var rrs []dnsmessage.Resource
		for _, i := range idx {
			port, _ := strconv.Atoi(tomcats[i].addr()[strings.LastIndexByte(tomcats[i].addr(), ':')+1:])
			target := fmt.Sprintf("t%d.tomcat.test.", i)
			rrs = append(rrs, dnstest.SRV(name, 0, 0, 1, uint16(port), target), dnstest.A(target, 0, "127.0.0.1"))
		}
		return dnstest.Zone{Records: rrs, Glue: true}.Answer
	}
	dns := dnstest.NewServer(t, zone(0, 1))
	b := newTestBackend(t, Config{Protocol: H2C,
		Discovery: DiscoveryConfig{Name: name, Type: DNSTypeSRV, Resolver: dns.Addr, Interval: time.Second}})
	b.Start()
	servers := func(idx ...int) func() bool {
		return func() bool {
			var want []string
			for _, i := range idx {
				want = append(want, tomcats[i].addr())
			}
			slices.Sort(want)
			return slices.Equal(addrs(b), want)
		}
	}
	gatewaytest.WaitFor(t, 5*time.Second, "servers 0 and 1", servers(0, 1))
	for range 10 {
		if _, _, err := get(t.Context(), b, "/", nil); err != nil {
			t.Fatal(err)
		}
	}
	gatewaytest.WaitFor(t, 5*time.Second, "servers 0 and 1 warm", func() bool { return tomcats[0].open.Load() > 0 && tomcats[1].open.Load() > 0 })
	// Server 1's warm connections must survive the change: none of its
	// connections is closed by it. (Counting connections opened instead
	// would race with a dial the pool may still have in flight.)
	closed := tomcats[1].closed.Load()
	dns.SetHandler(zone(1, 2))
	gatewaytest.WaitFor(t, 5*time.Second, "servers 1 and 2", servers(1, 2))
	gatewaytest.WaitFor(t, 5*time.Second, "server 0 closed", func() bool { return tomcats[0].open.Load() == 0 })
	gatewaytest.WaitFor(t, 5*time.Second, "server 2 dialled", func() bool { return tomcats[2].open.Load() > 0 })
	for range 10 {
		if _, _, err := get(t.Context(), b, "/", nil); err != nil {
			t.Fatal(err)
		}
	}
	if n := tomcats[1].closed.Load(); n != closed || tomcats[1].open.Load() == 0 {
		t.Errorf("server 1 stayed but %d of its connections were closed (%d open), want its warm ones kept", n-closed, tomcats[1].open.Load())
	}
	dns.SetHandler(dnstest.Fail(dnsmessage.RCodeServerFailure))
	gatewaytest.WaitFor(t, 5*time.Second, "a failed resolution", func() bool { return b.Stats().Discovery.Failures > 0 })
	if !servers(1, 2)() {
		t.Fatalf("servers %v after a failed resolution", addrs(b))
	}
	for range 10 {
		if _, _, err := get(t.Context(), b, "/", nil); err != nil {
			t.Fatal(err)
		}
	}
}
