package e2e

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/gateway/gatewaytest"
)

// h2c on embedded Tomcat, the Spring Boot shape: deploy/tomcat/embedded's
// GatewayTomcat (the connector code deploy/tomcat/README.md shows) compiled
// with javac against Debian's libtomcat10-embed-java and run on loopback.

// The jars the embedded server needs: Debian's libtomcat10-embed-java, and
// jakarta.annotation from libtomcat10-java (a tomcat10 dependency; Maven's
// tomcat-embed-core brings tomcat-annotations-api the same way).
var embeddedClasspath = []string{
	"/usr/share/java/tomcat10-embed-core.jar",
	"/usr/share/java/tomcat10-annotations-api.jar",
}

type embeddedTomcat struct {
	H2C, H1 int // connector ports: h2c (and HTTP/1.1), HTTP/1.1 only
}

// startEmbeddedTomcat compiles and starts GatewayTomcat with the given
// maxKeepAliveRequests on its HTTP/1.1-only connector, waits until both
// connectors accept, and stops it (SIGTERM, then SIGKILL) in t.Cleanup.
func startEmbeddedTomcat(t testing.TB, h1MaxKeepAliveRequests int) *embeddedTomcat {
	t.Helper()
	for _, jar := range embeddedClasspath {
		if _, err := os.Stat(jar); err != nil {
			t.Fatalf("embedded Tomcat: %v (apt-get install libtomcat10-embed-java tomcat10, or run `make deps`)", err)
		}
	}
	javac, err := exec.LookPath("javac")
	if err != nil {
		t.Fatalf("embedded Tomcat: %v (apt-get install default-jdk-headless, or run `make deps`)", err)
	}
	dir := t.TempDir()
	classes, base := filepath.Join(dir, "classes"), filepath.Join(dir, "base")
	cp := strings.Join(embeddedClasspath, ":")
	began := time.Now()
	src := filepath.Join(repoRoot, "deploy", "tomcat", "embedded", "GatewayTomcat.java")
	if out, err := exec.Command(javac, "-nowarn", "-d", classes, "-cp", cp, src).CombinedOutput(); err != nil {
		t.Fatalf("javac %s: %v\n%s", src, err, out)
	}
	compiled := time.Since(began)

	et := &embeddedTomcat{H2C: mustFreePort(t), H1: mustFreePort(t)}
	out := &tailBuffer{max: 1 << 20}
	cmd := exec.Command("java", "-Xmx256m", "-cp", classes+":"+cp, "GatewayTomcat",
		"127.0.0.1", strconv.Itoa(et.H2C), strconv.Itoa(et.H1), strconv.Itoa(h1MaxKeepAliveRequests), base)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	exited := gatewaytest.Start(t, "embedded Tomcat", cmd, func() string { return lastLines(out.String(), 40) })

	deadline := time.Now().Add(30 * time.Second)
	for _, port := range []int{et.H2C, et.H1} {
		gatewaytest.WaitFor(t, time.Until(deadline), fmt.Sprintf("embedded Tomcat accepting on port %d", port), func() bool {
			select {
			case <-exited:
				t.Fatalf("embedded Tomcat exited during startup (%v)", cmd.ProcessState)
			default:
			}
			c, err := net.DialTimeout("tcp", addr(port), time.Second)
			if err == nil {
				c.Close()
			}
			return err == nil
		})
	}
	t.Logf("embedded Tomcat up in %v (javac %v): h2c on %d, HTTP/1.1 only on %d (maxKeepAliveRequests=%d)",
		time.Since(began).Round(time.Millisecond), compiled.Round(time.Millisecond), et.H2C, et.H1, h1MaxKeepAliveRequests)
	return et
}

// The funnel against embedded Tomcat: protocol auto detects h2c, many
// concurrent requests share at most 2 connections, and after warm-up no
// backend connection is opened.
func TestEmbeddedTomcatFunnel(t *testing.T) {
	et := startEmbeddedTomcat(t, 100)
	s := startSluice(t, upstream{Protocol: "auto", Ports: []int{et.H2C}, H2Conns: 2}.yaml())
	if r := get(t, h1Client(), s.URL+"/proto"); r.status != 200 || strings.TrimSpace(r.body) != "HTTP/2.0" {
		t.Fatalf("GET /proto through sluice = %d %q, want 200 HTTP/2.0 (auto should detect h2c)", r.status, r.body)
	}
	h2cLabels := map[string]string{"backend": backendName, "protocol": "h2c"}
	if n := requireMetric(t, s.Admin, "sluice_upstream_connections", h2cLabels); n < 1 {
		t.Fatalf("sluice_upstream_connections{protocol=\"h2c\"} = %v after an h2c request, want >= 1", n)
	}

	runLoad(t, s.URL, loadSpec{Clients: 200, Duration: time.Second, KeepAlive: true}).requireClean(t)
	opened0 := requireMetric(t, s.Admin, "sluice_upstream_connections_opened_total", map[string]string{"backend": backendName})
	_, tw0 := tomcatConns(t, et.H2C)

	streams := startSampler(100*time.Millisecond, metricProbe(s.Admin, "sluice_upstream_streams_active", map[string]string{"backend": backendName}))
	sockets := startSampler(100*time.Millisecond, socketProbe(et.H2C))
	res := runLoad(t, s.URL, loadSpec{Clients: 1000, Duration: 5 * time.Second, KeepAlive: true})
	maxStreams, n := streams.stop(t)
	maxSockets, _ := sockets.stop(t)
	res.requireClean(t)

	opened := requireMetric(t, s.Admin, "sluice_upstream_connections_opened_total", map[string]string{"backend": backendName})
	est, tw := tomcatConns(t, et.H2C)
	t.Logf("%s; upstream connections opened %v after warm-up, %v at the end; max %v requests in flight upstream (%d samples) over at most %v connections; now %d established, TIME_WAIT %d -> %d",
		res, opened0, opened, maxStreams, n, maxSockets, est, tw0, tw)
	if opened != opened0 || opened > 2 {
		t.Errorf("sluice_upstream_connections_opened_total went %v -> %v during the load, want unchanged and <= 2", opened0, opened)
	}
	if maxSockets > 2 || est > 2 {
		t.Errorf("established connections on the embedded h2c port: max %v during the load, %d after, want <= 2", maxSockets, est)
	}
	if maxStreams <= maxSockets {
		t.Errorf("at most %v requests in flight upstream over %v connections: streams were not multiplexed", maxStreams, maxSockets)
	}
	if tw > tw0 {
		t.Errorf("TIME_WAIT on the embedded h2c port grew %d -> %d: upstream connections were churned", tw0, tw)
	}
}

// Tomcat's stock keep-alive limit on an HTTP/1.1-only connector (the Tomcat
// 7/8.0 case): every 100th response says Connection: close. Sluice replaces
// each such connection as the response arrives: no request fails, every
// close is counted, and nothing else is dialled.
func TestEmbeddedTomcatH1KeepAliveLimit(t *testing.T) {
	const h1Conns = 8
	et := startEmbeddedTomcat(t, 100)
	s := startSluice(t, upstream{Protocol: "h1", Ports: []int{et.H1}, H1Conns: h1Conns}.yaml())
	res := runLoad(t, s.URL, loadSpec{Clients: 200, Duration: 5 * time.Second, KeepAlive: true})
	res.requireClean(t)

	labels := map[string]string{"backend": backendName}
	closes := requireMetric(t, s.Admin, "sluice_upstream_keepalive_closes_total", labels)
	opened := requireMetric(t, s.Admin, "sluice_upstream_connections_opened_total", labels)
	est, _ := tomcatConns(t, et.H1)
	t.Logf("%s; keep-alive closes %v, upstream connections opened %v (%.0f requests per connection), %d established now",
		res, closes, opened, float64(res.OK)/max(opened, 1), est)
	// Each connection carries 100 requests, so at least OK/100 closes less
	// the connections still open with fewer.
	if want := float64(res.OK)/100 - h1Conns; closes < want || closes < 1 {
		t.Errorf("sluice_upstream_keepalive_closes_total = %v, want >= %v (one per 100 requests)", closes, want)
	}
	if opened > closes+h1Conns {
		t.Errorf("sluice_upstream_connections_opened_total = %v, want <= %v (one replacement per keep-alive close plus the first %d)",
			opened, closes+h1Conns, h1Conns)
	}
	if est > h1Conns {
		t.Errorf("%d established connections on Tomcat's HTTP/1.1 port, want <= %d", est, h1Conns)
	}
}
