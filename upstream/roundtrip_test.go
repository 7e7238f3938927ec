package upstream

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestRoundTripLeavesRequestUntouched pins the http.RoundTripper contract:
// RoundTrip must not modify the caller's request, whether the body is
// buffered for replay, streamed past the replay limit, or absent.
func TestRoundTripLeavesRequestUntouched(t *testing.T) {
	srv := newFakeServer(t, true, 0)
	tests := []struct {
		name    string
		method  string
		body    string
		length  int64 // -1: unknown
		retries int
	}{
		{"get", "GET", "", 0, 2},
		{"buffered body", "PUT", "hello", 5, 2},
		{"unknown length, buffered", "PUT", "hello", -1, 2},
		{"unknown length past the limit", "PUT", strings.Repeat("x", 100), -1, 2},
		{"no retries", "PUT", "hello", 5, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newTestBackend(t, Config{
				Protocol: H2C, Servers: []ServerConfig{{Address: srv.addr()}},
				Retries: tt.retries, RetryBodyLimit: 64,
			})
			var body io.ReadCloser = http.NoBody
			if tt.body != "" {
				body = io.NopCloser(strings.NewReader(tt.body))
			}
			req, err := http.NewRequestWithContext(context.Background(), tt.method, "http://backend/x?y=1", body)
			if err != nil {
				t.Fatal(err)
			}
			req.ContentLength = tt.length
			u, wantURL := req.URL, *req.URL
			resp, err := b.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if req.URL != u || *req.URL != wantURL {
				t.Errorf("request URL changed to %s, want %s", req.URL, &wantURL)
			}
			if req.Body != body {
				t.Errorf("request body replaced by %T", req.Body)
			}
		})
	}
}
