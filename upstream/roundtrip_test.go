package upstream

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"slices"
	"strings"
	"testing"

	"github.com/sluice-gw/sluice/gateway/gatewaytest"
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

// TestInformationalResponsesAndRequestInfo: a 103 reaches the caller
// through its request's httptrace hooks, the one route for 1xx responses,
// over either protocol, and RoundTripInfo reports the server, protocol and
// connection that answered.
func TestInformationalResponsesAndRequestInfo(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</a.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		w.Header().Del("Link")
		io.WriteString(w, "ok")
	})
	for _, proto := range []string{H2C, H1} {
		t.Run(proto, func(t *testing.T) {
			addr := gatewaytest.Origin(t, h)
			b := newTestBackend(t, Config{Protocol: proto, Servers: []ServerConfig{{Address: addr}}})

			var hints []string
			ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
				Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
					hints = append(hints, fmt.Sprint(code, " ", h.Get("Link")))
					return nil
				},
			})
			req, _ := http.NewRequestWithContext(ctx, "GET", "http://backend/", nil)
			var info RequestInfo
			resp, err := b.RoundTripInfo(req, &info)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(body) != "ok" || resp.Header.Get("Link") != "" {
				t.Errorf("final response: body %q, Link %q", body, resp.Header.Get("Link"))
			}
			if want := []string{"103 </a.css>; rel=preload"}; !slices.Equal(hints, want) {
				t.Errorf("1xx seen %q, want %q", hints, want)
			}
			if info.Server != addr || info.Protocol != proto || info.ConnID == 0 || info.ConnReq != 1 || info.Attempts != 1 {
				t.Errorf("info %+v", info)
			}
		})
	}
}

// TestGot1xxInfoReplacesTrace: a caller giving its 1xx hook in
// RequestInfo.Got1xx gets the 103 there, and its request context's
// ClientTrace is not looked up (none of its hooks is called), over either
// protocol; without Got1xx the context's hooks are called.
func TestGot1xxInfoReplacesTrace(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</a.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		io.WriteString(w, "ok")
	})
	for _, proto := range []string{H2C, H1} {
		for _, tt := range []struct {
			name                 string
			infoHook             bool
			wantCtx, wantInfo1xx int
		}{
			{name: "context's trace", wantCtx: 2},
			{name: "info's Got1xx", infoHook: true, wantInfo1xx: 1},
		} {
			t.Run(proto+"/"+tt.name, func(t *testing.T) {
				addr := gatewaytest.Origin(t, h)
				b := newTestBackend(t, Config{Protocol: proto, Servers: []ServerConfig{{Address: addr}}})
				var ctxHooks, info1xx int
				ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
					Got1xxResponse: func(int, textproto.MIMEHeader) error { ctxHooks++; return nil },
					WroteHeaders:   func() { ctxHooks++ },
				})
				req, _ := http.NewRequestWithContext(ctx, "GET", "http://backend/", nil)
				var info RequestInfo
				if tt.infoHook {
					info.Got1xx = func(int, textproto.MIMEHeader) error { info1xx++; return nil }
				}
				resp, err := b.RoundTripInfo(req, &info)
				if err != nil {
					t.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if ctxHooks != tt.wantCtx || info1xx != tt.wantInfo1xx {
					t.Errorf("context's hooks called %d times, info's Got1xx %d; want %d and %d", ctxHooks, info1xx, tt.wantCtx, tt.wantInfo1xx)
				}
			})
		}
	}
}
