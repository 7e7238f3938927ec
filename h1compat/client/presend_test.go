package client

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptrace"
	"strings"
	"sync/atomic"
	"testing"
)

// TestPresend: a head written by Presend is the request's only copy on
// the wire, the RoundTrip that follows reads its answer (reporting
// WroteHeaders, and telling a HeadersNotifier context first, as a write
// would), and the connection goes on as before.
// Presended reports the reservation's presend until that RoundTrip.
func TestPresend(t *testing.T) {
	var n atomic.Int64
	fs := newFakeServer(t, serveEach(func(req *http.Request, _ []byte) string {
		b := fmt.Sprintf("%s %s %s #%d", req.Method, req.URL.RequestURI(), req.Header.Get("X-A"), n.Add(1))
		head := fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", len(b))
		if req.Method == "HEAD" {
			return head
		}
		return head + b
	}))
	c := fs.dial(t, Config{})
	tests := []struct {
		name, method string
		presend      bool
		want         string
	}{
		{name: "presend GET", method: "GET", presend: true, want: "GET /p?q=1 v #1"},
		{name: "written by RoundTrip after", method: "GET", want: "GET /p?q=1 v #2"},
		{name: "presend DELETE", method: "DELETE", presend: true, want: "DELETE /p?q=1 v #3"},
		{name: "presend HEAD", method: "HEAD", presend: true, want: ""},
		{name: "next after HEAD", method: "GET", want: "GET /p?q=1 v #5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := newRequest(t, tt.method, "http://x/p?q=1", nil)
			req.Header.Set("X-A", "v")
			wrote := 0
			hc := &headersCtx{}
			hc.Context = httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{WroteHeaders: func() {
				if hc.wrote != wrote+1 {
					t.Error("the trace told before the context")
				}
				wrote++
			}})
			req = req.WithContext(hc)
			if err := c.Reserve(); err != nil {
				t.Fatal(err)
			}
			if c.Presended() {
				t.Fatal("Presended before Presend")
			}
			if tt.presend {
				if err := c.Presend(req); err != nil {
					t.Fatal(err)
				}
				if wrote != 0 || hc.wrote != 0 {
					t.Fatal("Presend reported WroteHeaders")
				}
				if !c.Presended() {
					t.Fatal("not Presended after Presend")
				}
			}
			resp, body := roundTrip(t, c, req)
			if c.Presended() {
				t.Fatal("Presended after the RoundTrip")
			}
			if body != tt.want || resp.StatusCode != 200 {
				t.Fatalf("%d %q, want 200 %q", resp.StatusCode, body, tt.want)
			}
			if wrote != 1 || hc.wrote != 1 {
				t.Errorf("WroteHeaders called %d times, the context's HeadersWritten %d, want 1", wrote, hc.wrote)
			}
			if c.InFlight() != 0 || c.Err() != nil {
				t.Fatalf("after: in flight %d, err %v", c.InFlight(), c.Err())
			}
		})
	}
}

// TestPresendRefused: Presend writes only on a reservation, only a
// request without a body, and only a head up to maxPresend; a refusal leaves the connection as it was.
func TestPresendRefused(t *testing.T) {
	var got atomic.Int64
	fs := newFakeServer(t, serveEach(func(req *http.Request, body []byte) string {
		got.Add(1)
		return fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	}))
	c := fs.dial(t, Config{})
	if err := c.Presend(newRequest(t, "GET", "http://x/", nil)); !errors.Is(err, ErrBusy) {
		t.Fatalf("Presend without a reservation: %v, want ErrBusy", err)
	}
	if err := c.Reserve(); err != nil {
		t.Fatal(err)
	}
	req := newRequest(t, "POST", "http://x/", []byte("body"))
	if err := c.Presend(req); err == nil {
		t.Fatal("Presend of a request with a body succeeded")
	}
	bad := newRequest(t, "GET", "http://x/", nil)
	bad.Header.Set("X-Bad", "a\nb")
	if err := c.Presend(bad); err == nil {
		t.Fatal("Presend of an invalid request succeeded")
	}
	long := newRequest(t, "GET", "http://x/", nil)
	long.Header.Set("X-Long", strings.Repeat("a", maxPresend))
	if err := c.Presend(long); err == nil {
		t.Fatal("Presend of a head over maxPresend succeeded")
	}
	if _, body := roundTrip(t, c, req); body != "body" {
		t.Fatalf("answer %q, want the body echoed", body)
	}
	if got.Load() != 1 || c.Err() != nil {
		t.Fatalf("server saw %d requests, err %v; want 1, nil", got.Load(), c.Err())
	}
}

// TestPresendReleased: a reservation released after Presend closes the
// connection: the request went out, and its answer would otherwise be
// read as the next request's.
func TestPresendReleased(t *testing.T) {
	saw := make(chan string, 2)
	fs := newFakeServer(t, func(nc net.Conn, br *bufio.Reader) {
		defer nc.Close()
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				saw <- "end"
				return
			}
			saw <- req.URL.Path
		}
	})
	c := fs.dial(t, Config{})
	var hooks atomic.Int64
	c.SetStateHook(func(*Conn) { hooks.Add(1) })
	if err := c.Reserve(); err != nil {
		t.Fatal(err)
	}
	if err := c.Presend(newRequest(t, "GET", "http://x/gone", nil)); err != nil {
		t.Fatal(err)
	}
	c.Release()
	if !errors.Is(c.Err(), ErrClosed) || hooks.Load() != 1 {
		t.Fatalf("after Release: err %v, hooks %d; want ErrClosed, 1", c.Err(), hooks.Load())
	}
	if got := <-saw; got != "/gone" {
		t.Fatalf("server saw %q first, want /gone", got)
	}
	if got := <-saw; got != "end" {
		t.Fatalf("server saw %q next, want the end of the connection", got)
	}
}

// headersCtx is a context told of written headers (HeadersNotifier).
type headersCtx struct {
	context.Context
	wrote int
}

func (c *headersCtx) HeadersWritten() { c.wrote++ }
