package gateway

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestRefusalsCountedByReason: each class of request the HTTP/1.1 parser
// refuses gets its status and is counted under its own reason of
// sluice_client_rejected_total, on both listeners, and nothing else is
// counted for it.
func TestRefusalsCountedByReason(t *testing.T) {
	s := newEdgeStack(t)
	fields := func(n int) string {
		var b strings.Builder
		for range n {
			b.WriteString("X-F: v\r\n")
		}
		return b.String()
	}
	cases := []struct {
		reason string
		status int
		req    string
	}{
		{reasonHeaderTooLarge, 431, "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 64<<10) + "\r\n\r\n"},
		{reasonTooManyHeaders, 431, "GET / HTTP/1.1\r\nHost: x\r\n" + fields(101) + "\r\n"},
		{"uri_too_long", 414, "GET /" + strings.Repeat("a", 33<<10) + " HTTP/1.1\r\nHost: x\r\n\r\n"},
		{"bad_request_line", 400, "G(T / HTTP/1.1\r\nHost: x\r\n\r\n"},
		{"invalid_header", 400, "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n"},
		{"content_length", 400, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab"},
		{"transfer_encoding", 400, "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n"},
		{"bad_chunk", 400, "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n\r\n"},
	}
	reasons := []string{reasonBadRequest, reasonHeaderTooLarge, reasonTooManyHeaders, "uri_too_long", "bad_request_line",
		"invalid_header", "content_length", "transfer_encoding", "bad_chunk"}
	counts := func() map[string]float64 {
		m := make(map[string]float64, len(reasons))
		for _, r := range reasons {
			m[r] = testutil.ToFloat64(s.m.rejected.WithLabelValues(r))
		}
		return m
	}
	listeners := []struct {
		name string
		dial func(t *testing.T) net.Conn
	}{
		{"cleartext", func(t *testing.T) net.Conn { return tcpConn(t, s.plain) }},
		{"tls", func(t *testing.T) net.Conn { return tlsConn(t, s.tls, "http/1.1") }},
	}
	for _, l := range listeners {
		for _, tc := range cases {
			t.Run(l.name+"/"+tc.reason, func(t *testing.T) {
				before, seen := counts(), s.seen.Load()
				c := l.dial(t)
				c.SetDeadline(time.Now().Add(5 * time.Second))
				go io.WriteString(c, tc.req)
				resp, err := http.ReadResponse(bufio.NewReader(c), nil)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != tc.status {
					t.Errorf("status %d, want %d", resp.StatusCode, tc.status)
				}
				after := counts()
				for _, r := range reasons {
					want := 0.0
					if r == tc.reason {
						want = 1
					}
					if d := after[r] - before[r]; d != want {
						t.Errorf("sluice_client_rejected_total{reason=%q} grew by %v, want %v", r, d, want)
					}
				}
				if n := s.seen.Load() - seen; n != 0 {
					t.Errorf("the origin saw %d requests", n)
				}
			})
		}
	}
}
