package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// TestImportHAProxy18EndToEnd converts the configuration of the original
// report (HAProxy 1.8 in front of two Tomcats, option http-server-close,
// maxconn, timeouts) with `sluice import-haproxy`, the two Tomcats being the
// e2e ones, runs sluice from the output and sends requests through it:
// every one gets Tomcat's 200, both Tomcats serve, and the funnel holds
// where HAProxy opened a connection per request.
func TestImportHAProxy18EndToEnd(t *testing.T) {
	requireSluice(t)
	testdata := filepath.Join(repoRoot, "cmd", "sluice", "internal", "haproxyimport", "testdata")
	src, err := os.ReadFile(filepath.Join(testdata, "haproxy18.cfg"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := strings.NewReplacer(
		"10.0.0.11:8080", addr(tc.A),
		"10.0.0.12:8080", addr(tc.B),
		"errors/503.http", filepath.Join(testdata, "errors", "503.http"),
	).Replace(string(src))
	file := filepath.Join(t.TempDir(), "haproxy.cfg")
	if err := os.WriteFile(file, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(sluiceBin, "import-haproxy", file)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("import-haproxy: %v\n%s", err, stderr.String())
	}
	t.Logf("import-haproxy report:\n%s", stderr.String())
	if !strings.Contains(stderr.String(), "option http-server-close: becomes the funnel") {
		t.Errorf("the report does not say that http-server-close becomes the funnel")
	}
	// startSluice chooses the listen and admin addresses.
	yml := regexp.MustCompile(`(?m)^listen: .*\n`).ReplaceAllString(string(out), "")
	s := startSluice(t, yml)

	const clients, perClient = 20, 25
	var wg sync.WaitGroup
	var mu sync.Mutex
	bad := map[string]int{}
	for i := range clients {
		c := h1Client()
		if i%2 == 1 {
			c = h2cClient()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range perClient {
				r, err := c.Get(s.URL + "/hello")
				if err != nil {
					mu.Lock()
					bad[err.Error()]++
					mu.Unlock()
					continue
				}
				b := make([]byte, 64)
				n, _ := r.Body.Read(b)
				r.Body.Close()
				if r.StatusCode != 200 || string(b[:n]) != helloBody {
					mu.Lock()
					bad[strconv.Itoa(r.StatusCode)+" "+string(b[:n])]++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if len(bad) > 0 {
		t.Errorf("of %d requests, failed: %v", clients*perClient, bad)
	}
	for _, p := range []int{tc.A, tc.B} {
		labels := map[string]string{"backend": "tomcats", "server": addr(p)}
		up := requireMetric(t, s.Admin, "sluice_server_up", labels)
		opened := requireMetric(t, s.Admin, "sluice_upstream_connections_opened_total", labels)
		t.Logf("server %s: up %v, upstream connections opened %v for %d requests", addr(p), up, opened, clients*perClient)
		if up != 1 || opened < 1 || opened > 3 {
			t.Errorf("server %s: up %v, %v connections opened; want up, and 1 to 3 connections (2 h2c, maybe a probe's) for all requests", addr(p), up, opened)
		}
	}
}
