package e2e

import "testing"

// TestPostStormTomcatSurvives: 1,000 concurrent POSTs to a servlet that
// reads its body (/echo), funnelled onto the h2c connections. Tomcat
// gives every stream with a body two buffers of its initialWindowSize
// (1 MiB in deploy/tomcat) and one of its 16 threads: uncapped, Sluice's
// 100 streams per connection ran Tomcat's 512 MB heap out (OutOfMemoryError)
// or left servlets waiting for bodies held behind streams that had no
// thread, until Tomcat's read timeout. h2c.max_body_streams_per_conn
// (8, × 2 connections = the connector's 16 threads) keeps every answer 2xx.
func TestPostStormTomcatSurvives(t *testing.T) {
	requireSluice(t)
	p := startPrivateTomcat(t)
	s := startSluice(t, upstream{Protocol: "h2c", Ports: []int{p.A, p.B}}.yaml())
	for _, n := range []int{40 << 10, 1 << 10} {
		runH2load(t, 20000, "-n", "20000", "-c", "100", "-m", "10", "-d", bodyFile(t, n), s.URL+"/echo")
	}
	if _, err := p.pid(); err != nil {
		t.Fatalf("Tomcat gone after the storms: %v", err)
	}
}
