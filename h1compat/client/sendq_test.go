package client

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/sluice-gw/sluice/upstream/sendq"
)

// newSendq is a send queue closed by the test's cleanup; the test skips
// where there is none (not Linux).
func newSendq(t *testing.T) *sendq.Queue {
	t.Helper()
	q := sendq.New(16)
	if q == nil {
		t.Skip("no send queue on this system")
	}
	t.Cleanup(q.Close)
	return q
}

// TestSenderExchanges: with a send queue, requests without a body go out
// whole and in order on one connection, each answered, each reporting
// WroteHeaders once before RoundTrip returns; a head over sendq.MaxHead
// and a request with a body are written by RoundTrip's goroutine as
// before.
func TestSenderExchanges(t *testing.T) {
	heads := make(chan string, 16)
	fs := newFakeServer(t, func(nc net.Conn, br *bufio.Reader) {
		defer nc.Close()
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			body, _ := io.ReadAll(req.Body)
			heads <- fmt.Sprintf("%s %s %d %s", req.Method, req.URL.Path, len(req.Header.Get("X-Big")), body)
			answer := "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
			if req.Method == "HEAD" {
				answer = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n"
			}
			if _, err := io.WriteString(nc, answer); err != nil {
				return
			}
		}
	})
	q := newSendq(t)
	c := fs.dial(t, Config{Sender: q})
	big := strings.Repeat("b", sendq.MaxHead)
	for i, tt := range []struct {
		method, path, big, body string
	}{
		{"GET", "/a", "", ""},
		{"HEAD", "/b", "", ""},
		{"POST", "/c", "", ""},
		{"GET", "/big", big, ""},
		{"PUT", "/d", "", "x=1"},
		{"DELETE", "/e", "", ""},
	} {
		var body []byte
		if tt.body != "" {
			body = []byte(tt.body)
		}
		req := newRequest(t, tt.method, "http://x"+tt.path, body)
		if tt.big != "" {
			req.Header.Set("X-Big", tt.big)
		}
		wrote := 0
		resp, err := c.RoundTrip(withWroteHeaders(req, func() { wrote++ }))
		if err != nil {
			t.Fatalf("request %d (%s %s): %v", i, tt.method, tt.path, err)
		}
		if wrote != 1 {
			t.Errorf("request %d: WroteHeaders %d times before RoundTrip returned, want 1", i, wrote)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if tt.method != "HEAD" && string(b) != "ok" {
			t.Errorf("request %d: body %q", i, b)
		}
		want := fmt.Sprintf("%s %s %d %s", tt.method, tt.path, len(tt.big), tt.body)
		if got := <-heads; got != want {
			t.Errorf("request %d: server read %q, want %q", i, got, want)
		}
	}
	if n := fs.conns.Load(); n != 1 {
		t.Errorf("server saw %d connections, want 1", n)
	}
	// GET, HEAD, POST and DELETE went by the queue; the big head and the
	// PUT with its body did not.
	if w := q.Written(); w != 4 {
		t.Errorf("the queue wrote %d heads, want 4", w)
	}
}

// TestSenderClosed: a connection whose send queue closed writes its heads
// itself. (A request queued when the queue closes fails as not sent:
// package sendq's TestCloseFailsQueued.)
func TestSenderClosed(t *testing.T) {
	fs := newFakeServer(t, func(nc net.Conn, br *bufio.Reader) {
		defer nc.Close()
		for {
			if _, err := http.ReadRequest(br); err != nil {
				return
			}
			if _, err := io.WriteString(nc, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"); err != nil {
				return
			}
		}
	})
	q := newSendq(t)
	c := fs.dial(t, Config{Sender: q})
	if _, body := roundTrip(t, c, newRequest(t, "GET", "http://x/", nil)); body != "ok" {
		t.Fatalf("body %q", body)
	}
	q.Close()
	wrote := false
	resp, err := c.RoundTrip(withWroteHeaders(newRequest(t, "GET", "http://x/", nil), func() { wrote = true }))
	if err != nil {
		t.Fatalf("after the queue closed: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if !wrote {
		t.Error("after the queue closed: WroteHeaders not reported")
	}
	if err := c.Err(); err != nil {
		t.Errorf("connection: %v", err)
	}
}
