package gateway

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sluice-gw/sluice/gateway/gatewaytest"
	"github.com/sluice-gw/sluice/upstream"
)

func logGateway(t testing.TB, mode string, n int, out io.Writer) *Gateway {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/fail" {
			w.WriteHeader(503)
		}
		io.WriteString(w, "hello")
	})
	b := newBackend(t, upstream.Config{Protocol: upstream.H2C,
		Servers: []upstream.ServerConfig{{Address: up}}, Queue: upstream.QueueConfig{MaxPending: 10}})
	al, err := NewAccessLog(AccessLogConfig{Mode: mode, SampleN: n, JSON: true, Out: out})
	if err != nil {
		t.Fatal(err)
	}
	g, err := New(Config{Routes: []Route{{Backend: "b"}}, AccessLog: al}, map[string]http.RoundTripper{"b": b}, NewMetrics(nil), quiet())
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func TestAccessLogModes(t *testing.T) {
	tests := []struct {
		mode      string
		n         int
		wantLines int // for 10 OK requests and 2 failing ones
	}{
		{LogAll, 0, 12},
		{LogErrors, 0, 2},
		{LogSample, 5, 4},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			var out gatewaytest.Buffer
			g := logGateway(t, tt.mode, tt.n, &out)
			for i := range 12 {
				path := "/"
				if i >= 10 {
					path = "/fail"
				}
				g.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "http://front"+path, nil))
			}
			lines := strings.Split(strings.TrimSpace(out.String()), "\n")
			if len(lines) != tt.wantLines {
				t.Fatalf("%d lines, want %d:\n%s", len(lines), tt.wantLines, out.String())
			}
			var rec map[string]any
			if err := json.Unmarshal([]byte(lines[len(lines)-1]), &rec); err != nil {
				t.Fatal(err)
			}
			for _, k := range []string{"client", "proto", "method", "host", "path", "status", "bytes", "backend", "server", "upstream_proto", "upstream_conn", "upstream_req", "queue_wait", "duration"} {
				if _, ok := rec[k]; !ok {
					t.Errorf("field %s missing in %v", k, rec)
				}
			}
			if rec["status"] != float64(503) || rec["upstream_proto"] != "h2c" || rec["bytes"] != float64(5) {
				t.Errorf("record %v", rec)
			}
		})
	}
	if al, err := NewAccessLog(AccessLogConfig{Mode: "loud"}); err == nil || al != nil {
		t.Error("bad mode accepted")
	}
}

// BenchmarkProxyRequestAccessLog is BenchmarkProxyRequest with every
// request logged as JSON, to show what logging costs per request.
func BenchmarkProxyRequestAccessLog(b *testing.B) {
	g := logGateway(b, LogAll, 0, io.Discard)
	req := httptest.NewRequest("GET", "http://front/", nil)
	b.ReportAllocs()
	for b.Loop() {
		g.ServeHTTP(httptest.NewRecorder(), req)
	}
}
