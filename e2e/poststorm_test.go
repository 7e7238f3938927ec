package e2e

import (
	"strings"
	"testing"
)

// TestPostStormTomcatSurvives: storms of concurrent POSTs to a servlet
// that reads its body (/echo), funnelled onto the h2c connections. Tomcat
// gives every stream with a body two buffers of its initialWindowSize
// (1 MiB in deploy/tomcat) and one of its 16 threads, and reads each
// HTTP/2 connection on a thread of the same pool: uncapped, Sluice's 100
// streams per connection ran Tomcat's 512 MB heap out (OutOfMemoryError)
// or left servlets waiting for bodies held behind streams that had no
// thread, until Tomcat's read timeout. Bodies are read whole first
// (retry_body_limit, 1 MiB) and h2c.max_body_streams_per_conn (6, × 2
// connections, leaving Tomcat threads to read the connections) holds
// them back: every answer is 2xx, for 200 KB bodies from HTTP/2 and
// HTTP/1.1 clients too (with 64 KiB and 8, none of 2,000 was).
func TestPostStormTomcatSurvives(t *testing.T) {
	requireSluice(t)
	p := startPrivateTomcat(t)
	s := startSluice(t, upstream{Protocol: "h2c", Ports: []int{p.A, p.B}}.yaml())
	big := bodyFile(t, 200<<10)
	runH2load(t, 5000, "-n", "5000", "-c", "100", "-m", "10", "-d", big, s.URL+"/echo")
	runH2load(t, 4000, "--h1", "-n", "4000", "-c", "200", "-d", big, s.URL+"/echo")
	for _, n := range []int{40 << 10, 1 << 10} {
		runH2load(t, 20000, "-n", "20000", "-c", "100", "-m", "10", "-d", bodyFile(t, n), s.URL+"/echo")
	}
	if _, err := p.pid(); err != nil {
		t.Fatalf("Tomcat gone after the storms: %v", err)
	}
}

// TestPostStormStreamedBodies: bodies over retry_body_limit are streamed
// from their clients; an HTTP/1.1 client's still takes one of the
// h2c.max_body_streams_per_conn tokens (waiting holds back only that
// client), so 200 concurrent 200 KB uploads all go through (uncapped,
// 5 MB ones stalled Tomcat's threads: 102 of 500 answered).
func TestPostStormStreamedBodies(t *testing.T) {
	requireSluice(t)
	p := startPrivateTomcat(t)
	cfg := upstream{Protocol: "h2c", Ports: []int{p.A, p.B}}.yaml()
	cfg = strings.Replace(cfg, "    timeouts:", "    retry_body_limit: 65536\n    timeouts:", 1)
	s := startSluice(t, cfg)
	runH2load(t, 4000, "--h1", "-n", "4000", "-c", "200", "-d", bodyFile(t, 200<<10), s.URL+"/echo")
	if _, err := p.pid(); err != nil {
		t.Fatalf("Tomcat gone after the storm: %v", err)
	}
}
