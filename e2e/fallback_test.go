package e2e

import (
	"strings"
	"testing"
	"time"
)

// protocol: auto must fall back to pooled HTTP/1.1 for a server without
// h2c, bounded by h1.conns_per_server, and still pick h2c where it exists.
func TestAutoFallsBackToHTTP1(t *testing.T) {
	const h1Conns = 4

	t.Run("h1_only_server", func(t *testing.T) {
		s := startSluice(t, upstream{Protocol: "auto", Ports: []int{tc.H1}, H1Conns: h1Conns}.yaml())
		if r := get(t, h1Client(), s.URL+"/proto"); r.status != 200 || strings.TrimSpace(r.body) != "HTTP/1.1" {
			t.Fatalf("GET /proto through sluice = %d %q, want 200 HTTP/1.1 (reached Tomcat)", r.status, r.body)
		}

		gauge := startSampler(100*time.Millisecond, metricProbe(s.Admin, "sluice_upstream_connections", map[string]string{"backend": backendName, "protocol": "h1"}))
		sockets := startSampler(100*time.Millisecond, socketProbe(tc.H1))
		res := runLoad(t, s.URL, loadSpec{Clients: 200, Duration: 5 * time.Second, KeepAlive: true})
		maxGauge, n := gauge.stop(t)
		maxSockets, _ := sockets.stop(t)
		res.requireClean(t)

		requireMetric(t, s.Admin, "sluice_upstream_connections", map[string]string{"backend": backendName, "protocol": "h1"})
		t.Logf("during load: max sluice_upstream_connections{protocol=h1} = %v over %d samples; max established on Tomcat's h1 port = %v",
			maxGauge, n, maxSockets)
		if maxGauge < 1 || maxGauge > h1Conns {
			t.Errorf("sluice_upstream_connections{protocol=\"h1\"} peaked at %v, want 1..%d", maxGauge, h1Conns)
		}
		if maxSockets > h1Conns {
			t.Errorf("Tomcat's h1 port had %v established connections, want <= %d", maxSockets, h1Conns)
		}
	})

	t.Run("h2c_server", func(t *testing.T) {
		s := startSluice(t, upstream{Protocol: "auto", Ports: []int{tc.A}, H1Conns: h1Conns}.yaml())
		for range 3 {
			if r := get(t, h1Client(), s.URL+"/proto"); r.status != 200 || strings.TrimSpace(r.body) != "HTTP/2.0" {
				t.Fatalf("GET /proto through sluice = %d %q, want 200 HTTP/2.0 (auto should pick h2c)", r.status, r.body)
			}
		}
	})
}
