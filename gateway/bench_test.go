package gateway

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/sluice-gw/sluice/upstream"
)

// BenchmarkProxyRequest measures the gateway's own cost per proxied request
// (routing, ReverseProxy, queue, pool, h2c stream) against an in-process
// h2c origin. Allocations per request are the figure to watch.
func BenchmarkProxyRequest(b *testing.B) {
	up := newUpstream(b, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	log := quiet()
	be, err := upstream.New(upstream.Config{
		Name: "b", Protocol: upstream.H2C,
		Servers: []upstream.ServerConfig{{Address: up}},
		Queue:   upstream.QueueConfig{MaxPending: 100},
	}, upstream.NewMetrics(nil), log)
	if err != nil {
		b.Fatal(err)
	}
	defer be.Close()
	g, err := New(Config{Routes: []Route{{Backend: "b"}}}, map[string]http.RoundTripper{"b": be}, NewMetrics(nil), log)
	if err != nil {
		b.Fatal(err)
	}
	req := httptest.NewRequest("GET", "http://front/", nil)
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		g.ServeHTTP(rec, req)
		if rec.Code != 200 {
			b.Fatalf("status %d", rec.Code)
		}
	}
}
