package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/gateway/gatewaytest"
)

// Helpers for the client-edge tests: certificates, TLS listener configs,
// latency-measuring load, external tools (curl, h2load) and sluice's RSS.

// writeTestCert writes a self-signed certificate for localhost and
// 127.0.0.1 into dir and returns the certificate and key paths.
func writeTestCert(t testing.TB, dir string) (certFile, keyFile string) {
	c := gatewaytest.WriteCert(t, dir, "sluice", "localhost", "127.0.0.1")
	return c.CertFile, c.KeyFile
}

// tlsEdge returns YAML for a TLS listener on a fresh loopback port (also
// the HTTP/3 UDP port when http3) with a fresh certificate, and its
// address.
func tlsEdge(t testing.TB, http3 bool) (yaml, tlsAddr string) {
	t.Helper()
	certFile, keyFile := writeTestCert(t, t.TempDir())
	tlsAddr = addr(mustFreePort(t))
	yaml = fmt.Sprintf("tls_listen: %q\ntls_certs: [{cert: %q, key: %q}]\nhttp3: %v\n", tlsAddr, certFile, keyFile, http3)
	return yaml, tlsAddr
}

// requireTool returns the path of an external program or fails the test:
// `make deps` installs every one of them, so a missing one is a broken
// setup, not a reason to skip.
func requireTool(t testing.TB, name string) string {
	t.Helper()
	if strings.Contains(name, "/") {
		p := filepath.Join(repoRoot, name)
		if st, err := os.Stat(p); err != nil || st.Mode()&0o111 == 0 {
			t.Fatalf("%s is missing (%v): run `make deps`, which installs it", p, err)
		}
		return p
	}
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is not installed: run `make deps`", name)
	}
	return p
}

// runTool runs a program with a timeout and returns its combined output.
func runTool(t testing.TB, timeout time.Duration, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	return string(out), err
}

// ---------------------------------------------------------------- latency

// latencies is the outcome of a latency-measured load run.
type latencies struct {
	d        []time.Duration // of successful requests
	failed   int
	firstErr string
	elapsed  time.Duration
}

func (l *latencies) pct(p float64) time.Duration {
	if len(l.d) == 0 {
		return 0
	}
	i := min(len(l.d)-1, int(p*float64(len(l.d))))
	return l.d[i]
}

func (l *latencies) String() string {
	return fmt.Sprintf("%d ok (%.0f req/s), %d failed; p50 %v, p99 %v, max %v",
		len(l.d), float64(len(l.d))/l.elapsed.Seconds(), l.failed,
		l.pct(0.50).Round(10*time.Microsecond), l.pct(0.99).Round(10*time.Microsecond), l.pct(1).Round(10*time.Microsecond))
}

// runLatencyLoad runs clients closed-loop clients, each with its own
// client from newClient (so its own connection), sending GET url and
// expecting helloBody, for d; it records every request's latency.
func runLatencyLoad(clients int, d time.Duration, url string, newClient func() *http.Client) *latencies {
	var (
		mu  sync.Mutex
		res = &latencies{}
		wg  sync.WaitGroup
	)
	start := time.Now()
	deadline := start.Add(d)
	for range clients {
		wg.Go(func() {
			c := newClient()
			defer c.CloseIdleConnections()
			var mine []time.Duration
			failed, firstErr := 0, ""
			for time.Now().Before(deadline) {
				t0 := time.Now()
				err := getHello(c, url)
				if err != nil {
					failed++
					if firstErr == "" {
						firstErr = err.Error()
					}
					time.Sleep(10 * time.Millisecond)
					continue
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			res.d = append(res.d, mine...)
			res.failed += failed
			if res.firstErr == "" {
				res.firstErr = firstErr
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	slices.Sort(res.d)
	return res
}

func getHello(c *http.Client, url string) error {
	ctx, cancel := context.WithTimeout(context.Background(), reqTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	switch {
	case err != nil:
		return err
	case resp.StatusCode != http.StatusOK || string(body) != helloBody:
		return fmt.Errorf("status %d, body %.60q", resp.StatusCode, body)
	}
	return nil
}

// keepAliveH1 is a one-connection HTTP/1.1 keep-alive client.
func keepAliveH1() *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy: nil, MaxConnsPerHost: 1, MaxIdleConnsPerHost: 1, DisableCompression: true,
	}}
}

// ---------------------------------------------------------------- h2load

var h2loadRequests = regexp.MustCompile(`requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored`)
var h2loadStatus = regexp.MustCompile(`status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx`)

// h2loadResult runs h2load and returns the number of 2xx answers and its
// summary lines; any failed, errored or non-2xx request fails the test.
func runH2load(t *testing.T, n int, args ...string) int {
	t.Helper()
	bin := requireTool(t, "h2load")
	out, err := runTool(t, 2*time.Minute, bin, args...)
	if err != nil {
		t.Fatalf("h2load %v: %v\n%s", args, err, out)
	}
	req := h2loadRequests.FindStringSubmatch(out)
	st := h2loadStatus.FindStringSubmatch(out)
	if req == nil || st == nil {
		t.Fatalf("h2load %v: no summary in output:\n%s", args, out)
	}
	proto := ""
	if m := regexp.MustCompile(`Application protocol: (\S+)`).FindStringSubmatch(out); m != nil {
		proto = m[1]
	}
	ok, _ := strconv.Atoi(st[1])
	t.Logf("h2load %s: %s; %s; protocol %s", strings.Join(args, " "), req[0], st[0], proto)
	if ok != n || req[5] != "0" || req[6] != "0" {
		t.Errorf("h2load %v: %d of %d answered 2xx\n%s", args, ok, n, tail(out, 2000))
	}
	return ok
}

// ---------------------------------------------------------------- process

// rssKiB is the resident set size of pid from /proc/PID/status.
func rssKiB(t testing.TB, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) >= 1 {
				n, err := strconv.Atoi(f[0])
				if err == nil {
					return n
				}
			}
		}
	}
	t.Fatalf("no VmRSS in /proc/%d/status", pid)
	return 0
}

// comparePercentile checks that the normal clients' p99 under an attack is
// at most twice the baseline's, measured just before the attack (after a
// warm-up). A second baseline, after the attack, is logged as a cross-check
// of how much the box itself drifted.
func comparePercentile(t *testing.T, attack string, under, before, after *latencies) {
	t.Helper()
	ratio := float64(under.pct(0.99)) / float64(before.pct(0.99))
	t.Logf("p99 during the %s %v; baseline p99 %v before (%.2fx), %v after (%.2fx)",
		attack, under.pct(0.99).Round(10*time.Microsecond),
		before.pct(0.99).Round(10*time.Microsecond), ratio,
		after.pct(0.99).Round(10*time.Microsecond), float64(under.pct(0.99))/float64(after.pct(0.99)))
	if after.failed > 0 {
		t.Errorf("baseline after the %s failed: %v (%s)", attack, after, after.firstErr)
	}
	if ratio > 2 {
		t.Errorf("normal clients' p99 during the %s is %.2fx the baseline's, want at most 2x", attack, ratio)
	}
}
