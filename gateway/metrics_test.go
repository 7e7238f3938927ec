package gateway

import (
	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestClientRequestsByProtocol scrapes sluice_client_requests_total after
// one request of each protocol, two of HTTP/1.1, and one refused, which
// sluice_client_rejected_total counts as body_too_large.
func TestClientRequestsByProtocol(t *testing.T) {
	reg := prometheus.NewRegistry()
	g, err := New(Config{Routes: []Route{{Backend: "b"}}, MaxRequestBody: 10},
		map[string]http.RoundTripper{"b": answer(200, "ok")}, NewMetrics(reg), quiet())
	if err != nil {
		t.Fatal(err)
	}
	req := func(major int, tlsOn bool) *http.Request {
		r := httptest.NewRequest("GET", "/", nil)
		r.ProtoMajor, r.ProtoMinor = major, 0
		if tlsOn {
			r.TLS = &tls.ConnectionState{}
		}
		return r
	}
	for _, r := range []*http.Request{req(1, false), req(1, true), req(2, false), req(2, true), req(3, true)} {
		g.ServeHTTP(httptest.NewRecorder(), r)
	}
	tooBig := httptest.NewRequest("POST", "/", strings.NewReader(strings.Repeat("x", 20)))
	g.ServeHTTP(httptest.NewRecorder(), tooBig) // refused (413), still a request
	want := `
# HELP sluice_client_requests_total Client requests received, by client protocol (http1, h2c, h2, h3).
# TYPE sluice_client_requests_total counter
sluice_client_requests_total{protocol="h2"} 1
sluice_client_requests_total{protocol="h2c"} 1
sluice_client_requests_total{protocol="h3"} 1
sluice_client_requests_total{protocol="http1"} 3
# HELP sluice_client_rejected_total Client connections or requests refused, by reason (limit, timeout, tls_handshake, proxy_protocol, proxy_untrusted, rapid_reset; requests: header_too_large, too_many_headers, uri_too_long, bad_request_line, invalid_header, content_length, transfer_encoding, bad_chunk, body_too_large, bad_request).
# TYPE sluice_client_rejected_total counter
sluice_client_rejected_total{reason="body_too_large"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "sluice_client_requests_total", "sluice_client_rejected_total"); err != nil {
		t.Error(err)
	}
}

// TestBytesTotal scrapes sluice_bytes_total: request body bytes read from
// the client and sent upstream ("in"), response body bytes written to the
// client ("out"), by backend.
func TestBytesTotal(t *testing.T) {
	reg := prometheus.NewRegistry()
	echo := rtFunc(func(r *http.Request) (*http.Response, error) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return nil, err
		}
		out := strings.Repeat(string(body), 3)
		return &http.Response{StatusCode: 200, Header: http.Header{}, ContentLength: int64(len(out)),
			Body: io.NopCloser(strings.NewReader(out))}, nil
	})
	g, err := New(Config{Routes: []Route{{PathPrefix: "/echo", Backend: "echo"}, {Backend: "quiet"}}},
		map[string]http.RoundTripper{"echo": echo, "quiet": answer(204, "")}, NewMetrics(reg), quiet())
	if err != nil {
		t.Fatal(err)
	}
	for _, body := range []string{"hello", "0123456789"} {
		g.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("POST", "/echo", strings.NewReader(body)))
	}
	g.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/other", nil))
	want := `
# HELP sluice_bytes_total Body bytes proxied, by direction (in: request bodies read from clients and sent upstream; out: response bodies written to clients) and backend.
# TYPE sluice_bytes_total counter
sluice_bytes_total{backend="echo",direction="in"} 15
sluice_bytes_total{backend="echo",direction="out"} 45
sluice_bytes_total{backend="quiet",direction="in"} 0
sluice_bytes_total{backend="quiet",direction="out"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "sluice_bytes_total"); err != nil {
		t.Error(err)
	}
}
