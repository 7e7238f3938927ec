package e2e

import (
	"strconv"
	"testing"
	"time"
)

// TestWindowLeakConnectionRetired: Tomcat keeps the HTTP/2 connection
// window of a request body that arrived whole before its servlet finished
// without reading it (the index JSP ignores bodies). After a storm of
// such POSTs the connection's window is gone, and a body for a servlet
// that reads it (/echo) would wait until Tomcat's read timeout. Sluice
// retires such a connection and opens another, so POSTs to /echo after
// the storm all succeed.
func TestWindowLeakConnectionRetired(t *testing.T) {
	requireSluice(t)
	p := startPrivateTomcat(t)
	s := startSluice(t, upstream{Protocol: "h2c", Ports: []int{p.A}, H2Conns: 1}.yaml())
	big, small := bodyFile(t, 40<<10), bodyFile(t, 1<<10)
	// Every POST of the storm must succeed: the connections Sluice
	// retires are replaced by young ones under a burst, where Tomcat's
	// asynchronous frame reader used to parse bytes twice and end them
	// with GOAWAY (deploy/tomcat/server.xml: useAsyncIO="false").
	out, err := runTool(t, 2*time.Minute, requireTool(t, "h2load"), "-n", "20000", "-c", "100", "-m", "10", "-d", big, s.URL+"/")
	req := h2loadRequests.FindStringSubmatch(out)
	if err != nil || req == nil {
		t.Fatalf("h2load: %v\n%s", err, out)
	}
	t.Logf("storm of 40 KB POSTs to /: %s", req[0])
	if ok, _ := strconv.Atoi(req[4]); ok != 20000 {
		t.Fatalf("storm: %d of 20000 succeeded", ok)
	}
	leaks := map[string]string{"backend": backendName}
	deadline := time.Now().Add(10 * time.Second)
	for metric(t, s.Admin, "sluice_upstream_window_leaks_total", leaks) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no connection retired for a kept window after the storm")
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("connections retired for a kept window: %v", metric(t, s.Admin, "sluice_upstream_window_leaks_total", leaks))
	runH2load(t, 2000, "-n", "2000", "-c", "10", "-m", "10", "-d", small, s.URL+"/echo")
}
