package runtime

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/cmd/sluice/internal/config"
	"github.com/sluice-gw/sluice/gateway/gatewaytest"
	"github.com/sluice-gw/sluice/upstream"
)

// readLines is the JSON access log lines in file, or nil if it does not
// exist yet.
func readLines(t *testing.T, file string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		return nil
	}
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("access log line %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

func get(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TestAccessLogFileAndReopen: the configured file gets one JSON line per
// request with the fields operators grep for, and a reload (SIGHUP, POST
// /reload) reopens it by name after logrotate has moved it away.
func TestAccessLogFileAndReopen(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "access.log")
	cfg, err := config.Quick(freeAddr(t), freeAddr(t), upstream.H2C, []string{echoOrigin(t)}, 1)
	if err != nil {
		t.Fatal(err)
	}
	cfg.AccessLog = config.AccessLog{Mode: config.AccessLogAll, Sample: 100, Format: config.FormatJSON, Path: file}
	var next atomic.Pointer[config.Config]
	r := serveWithReload(t, cfg, &next)

	if code := get(t, "http://"+r.listen+"/first?q=1"); code != 200 {
		t.Fatalf("status %d", code)
	}
	var lines []map[string]any
	gatewaytest.WaitFor(t, 5*time.Second, "the access log line (flushed within 1s)", func() bool {
		lines = readLines(t, file)
		return len(lines) == 1
	})
	l := lines[0]
	for k, want := range map[string]any{"method": "GET", "path": "/first", "status": float64(200), "backend": config.QuickBackend, "proto": "HTTP/1.1", "upstream_req": float64(1)} {
		if l[k] != want {
			t.Errorf("%s = %v, want %v (line %v)", k, l[k], want, l)
		}
	}
	for _, k := range []string{"client", "host", "bytes", "server", "upstream_conn", "queue_wait", "duration"} {
		if _, ok := l[k]; !ok {
			t.Errorf("field %s missing: %v", k, l)
		}
	}

	rotated := file + ".1"
	if err := os.Rename(file, rotated); err != nil {
		t.Fatal(err)
	}
	if code, body := postReloadTo(t, r.admin); code != 200 {
		t.Fatalf("reload: %d %s", code, body)
	}
	if code := get(t, "http://"+r.listen+"/second"); code != 200 {
		t.Fatalf("status %d", code)
	}
	gatewaytest.WaitFor(t, 5*time.Second, "the line in the reopened file", func() bool {
		lines = readLines(t, file)
		return len(lines) == 1 && lines[0]["path"] == "/second"
	})
	if got := lines[0]["upstream_req"]; got != float64(2) {
		t.Errorf("second request on the one upstream connection: upstream_req = %v, want 2", got)
	}
	if old := readLines(t, rotated); len(old) != 1 {
		t.Errorf("rotated file has %d lines, want 1", len(old))
	}
}

func TestAccessLogChangeNeedsRestart(t *testing.T) {
	cur := config.Default()
	next := *cur
	next.AccessLog.Mode = config.AccessLogErrors
	next.Pprof = true
	got := strings.Join(restartKeys(cur, &next), "; ")
	for _, want := range []string{"access_log.mode off -> errors", "pprof false -> true"} {
		if !strings.Contains(got, want) {
			t.Errorf("restartKeys = %q, missing %q", got, want)
		}
	}
}

func TestPprofSwitch(t *testing.T) {
	for _, on := range []bool{false, true} {
		cfg, err := config.Quick(freeAddr(t), freeAddr(t), upstream.H2C, []string{echoOrigin(t)}, 1)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Pprof = on
		var next atomic.Pointer[config.Config]
		r := serveWithReload(t, cfg, &next)
		code, body, err := adminGet(r.admin, "/debug/pprof/goroutine?debug=1")
		if err != nil {
			t.Fatal(err)
		}
		if on && (code != 200 || !strings.Contains(body, "goroutine profile")) {
			t.Errorf("pprof on: %d %.80q", code, body)
		}
		if !on && code != http.StatusNotFound {
			t.Errorf("pprof off: %d, want 404", code)
		}
	}
}
