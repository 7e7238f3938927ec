package e2e

import (
	"crypto/tls"
	"encoding/xml"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go/http3"
)

// Every client protocol (HTTP/1.1, h2c, h2 over TLS, HTTP/3) reaches Tomcat
// through the same few upstream h2c connections.
func TestClientProtocolsShareUpstream(t *testing.T) {
	edge := tlsEdge(t, true)
	s := startSluice(t, edge+h2cFunnelConfig())
	httpsURL := "https://" + s.TLS + "/"

	// Warm-up: 400 concurrent requests are more than one connection's
	// 100 streams to each server, so both connections per server open
	// now and nothing later has a reason to open another.
	runLoad(t, s.URL, loadSpec{Clients: 400, Duration: 2 * time.Second, KeepAlive: true}).requireClean(t)
	opened := func() float64 {
		return requireMetric(t, s.Admin, "sluice_upstream_connections_opened_total", map[string]string{"backend": s.Backend})
	}
	warm := opened()
	for _, port := range []int{tc.A, tc.B} {
		n := requireMetric(t, s.Admin, "sluice_upstream_connections_opened_total", map[string]string{"backend": s.Backend, "server": addr(port)})
		if n > 2 {
			t.Errorf("server %s: %v connections opened in warm-up, want at most 2", addr(port), n)
		}
	}
	t.Logf("upstream connections opened after warm-up: %v", warm)

	curl := requireTool(t, "curl")
	for _, c := range []struct {
		name, proto string
		args        []string
	}{
		{"curl --http1.1", "1.1", []string{"--http1.1", s.URL + "/"}},
		{"curl --http2-prior-knowledge", "2", []string{"--http2-prior-knowledge", s.URL + "/"}},
		// Upgrade: h2c is not supported (Go dropped it, RFC 9113
		// deprecates it): the request is answered over HTTP/1.1.
		{"curl --http2 (Upgrade: h2c)", "1.1", []string{"--http2", s.URL + "/"}},
		{"curl --http2 over TLS", "2", []string{"--http2", "-k", httpsURL}},
		{"curl --http1.1 over TLS", "1.1", []string{"--http1.1", "-k", httpsURL}},
	} {
		args := append([]string{"-sS", "--max-time", "10", "-w", "\n%{http_code} %{http_version}"}, c.args...)
		out, err := runTool(t, 20*time.Second, curl, args...)
		want := helloBody + "\n200 " + c.proto
		if err != nil || out != want {
			t.Errorf("%s: %v, output %q, want %q", c.name, err, out, want)
		} else {
			t.Logf("%s: 200 HTTP/%s %q", c.name, c.proto, helloBody)
		}
	}

	runH2load(t, 5000, "-n", "5000", "-c", "20", "-m", "10", httpsURL)
	runH2load(t, 5000, "-n", "5000", "-c", "20", "-m", "10", s.URL+"/")

	// HTTP/3 with quic-go's client, and the Alt-Svc that advertises it.
	h3 := &http3.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
	defer h3.Close()
	h3c := &http.Client{Timeout: 10 * time.Second, Transport: h3}
	for range 20 {
		r := get(t, h3c, httpsURL)
		if r.status != 200 || r.body != helloBody || r.proto != "HTTP/3.0" {
			t.Fatalf("HTTP/3: %d %s %q", r.status, r.proto, r.body)
		}
	}
	wantAltSvc := fmt.Sprintf(`h3=":%s"; ma=86400`, strings.TrimPrefix(s.TLS, "127.0.0.1:"))
	if r := get(t, h1Client(), s.URL+"/"); r.header.Get("Alt-Svc") != wantAltSvc {
		t.Errorf("Alt-Svc %q, want %q", r.header.Get("Alt-Svc"), wantAltSvc)
	}
	t.Log("HTTP/3 (quic-go client): 20 x 200 HTTP/3.0")

	for _, p := range []string{"http1", "h2c", "h2", "h3"} {
		if n := requireMetric(t, s.Admin, "sluice_client_connections_accepted_total", map[string]string{"protocol": p}); n < 1 {
			t.Errorf("sluice_client_connections_accepted_total{protocol=%q} = %v", p, n)
		}
	}
	if after := opened(); after != warm {
		t.Errorf("sluice_upstream_connections_opened_total went from %v after warm-up to %v: a client protocol opened upstream connections", warm, after)
	} else {
		t.Logf("upstream connections opened: %v after warm-up, %v after every client protocol", warm, after)
	}
}

// h2specExceptions are h2spec cases allowed to fail, each with the reason;
// README.md lists the same cases. Keys are h2spec's test IDs
// ("http2/6.9.1/2").
var h2specExceptions = map[string]string{
	"http2/3.5/2": "cleartext listener only: HTTP/1.1 and h2c share the port, so an invalid " +
		"preface is read as an HTTP/1.1 request and answered 400 before the connection closes",
	"http2/6.5.3/1": "Go's server closes the connection (PROTOCOL_ERROR) on a SETTINGS frame " +
		"that repeats a setting, a deliberate hardening against settings floods",
	"http2/8.1.2.2/1": "Go's server refuses a request with a connection-specific header field " +
		"with a 400 response instead of a stream error; the request never reaches Tomcat",
	"http2/8.1.2.2/2": "Go's server refuses a request with TE other than \"trailers\" with a " +
		"400 response instead of a stream error; the request never reaches Tomcat",
}

var h2specSummary = regexp.MustCompile(`(\d+) tests, (\d+) passed, (\d+) skipped, (\d+) failed`)

// junit is the part of h2spec's JUnit report that names failures.
type junit struct {
	Suites []struct {
		Package string `xml:"package,attr"`
		Cases   []struct {
			Package string    `xml:"package,attr"`
			Name    string    `xml:"classname,attr"`
			Failure *struct{} `xml:"failure"`
			Error   *struct{} `xml:"error"`
		} `xml:"testcase"`
	} `xml:"testsuite"`
}

// HTTP/2 conformance of both listeners, by h2spec.
func TestListenersPassH2Spec(t *testing.T) {
	bin := requireTool(t, "bin/h2spec")
	edge := tlsEdge(t, false)
	s := startSluice(t, edge+h2cFunnelConfig())
	for _, run := range []struct {
		name string
		addr string
		args []string
	}{
		{"h2c (prior knowledge)", s.Listen, nil},
		{"h2 over TLS", s.TLS, []string{"-t", "-k"}},
	} {
		host, port, _ := strings.Cut(run.addr, ":")
		report := filepath.Join(t.TempDir(), "h2spec.xml")
		args := append([]string{"-h", host, "-p", port, "-o", "5", "-j", report}, run.args...)
		out, err := runTool(t, 5*time.Minute, bin, args...)
		m := h2specSummary.FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("h2spec %s: no summary line (%v):\n%s", run.name, err, tail(out, 3000))
		}
		t.Logf("h2spec %s: %s", run.name, m[0])
		failed := h2specFailures(t, report)
		var unexpected []string
		for _, id := range failed {
			if reason, ok := h2specExceptions[id]; ok {
				t.Logf("  known exception %s: %s", id, reason)
				continue
			}
			unexpected = append(unexpected, id)
		}
		if n, _ := strconv.Atoi(m[4]); n != len(failed) {
			t.Errorf("h2spec %s: summary says %d failed, report lists %v", run.name, n, failed)
		}
		if len(unexpected) > 0 {
			t.Errorf("h2spec %s: unexpected failures %v:\n%s", run.name, unexpected, tail(out, 6000))
		}
	}
}

// h2specFailures lists the IDs of failed cases in h2spec's JUnit report.
// A case's ID is its package and its position in the suite, as h2spec's
// own selector takes it ("http2/6.9.1/2").
func h2specFailures(t *testing.T, report string) []string {
	t.Helper()
	b, err := os.ReadFile(report)
	if err != nil {
		t.Fatalf("h2spec report: %v", err)
	}
	var j junit
	if err := xml.Unmarshal(b, &j); err != nil {
		t.Fatalf("h2spec report: %v", err)
	}
	var ids []string
	for _, s := range j.Suites {
		for i, c := range s.Cases {
			if c.Failure != nil || c.Error != nil {
				ids = append(ids, fmt.Sprintf("%s/%d", s.Package, i+1))
				t.Logf("  failed %s/%d: %s", s.Package, i+1, c.Name)
			}
		}
	}
	slices.Sort(ids)
	return ids
}
