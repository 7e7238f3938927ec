package client

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"testing"
)

// withWroteHeaders is req with f as its trace's WroteHeaders.
func withWroteHeaders(req *http.Request, f func()) *http.Request {
	return req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{WroteHeaders: f}))
}

// TestReserveUnchecked: a reservation without the liveness peek writes
// the request even to a connection the server closed while it idled, and
// the failure says so (ErrReusedClosed) only for a reused connection met
// closed before any byte of answer; Reserve's peek still refuses such a
// connection before anything is written.
func TestReserveUnchecked(t *testing.T) {
	for _, tt := range []struct {
		name string
		// answered: requests the server answers before it closes the
		// connection, without reading further (-1: it never closes).
		answered int
		checked  bool // Reserve, not ReserveUnchecked
		presend  bool // the head written by Presend
		// wantReserve: Reserve's error; wantErr: RoundTrip's (nil: it
		// succeeds); reused: it is also ErrReusedClosed.
		wantReserve, wantErr error
		reused               bool
		// wantWritten: the request reached the socket (WroteHeaders or
		// Presend).
		wantWritten bool
	}{
		{name: "reused, closed while idle", answered: 1, wantErr: ErrServerClosed, reused: true, wantWritten: true},
		{name: "reused, closed while idle, presend", answered: 1, presend: true, wantErr: ErrServerClosed, reused: true, wantWritten: true},
		{name: "reused, closed while idle, peeked", answered: 1, checked: true, wantReserve: ErrIdleClosed},
		{name: "new, closed under the request", answered: 0, wantErr: ErrServerClosed, wantWritten: true},
		{name: "reused, open", answered: -1, wantWritten: true},
	} {
		for _, queued := range []bool{false, true} {
			name := tt.name
			if queued {
				name += ", head by a send queue"
			}
			t.Run(name, func(t *testing.T) {
				var cfg Config
				if queued {
					cfg.Sender = newSendq(t)
				}
				closed := make(chan struct{})
				fs := newFakeServer(t, func(nc net.Conn, br *bufio.Reader) {
					defer nc.Close()
					for n := 0; ; n++ {
						req, err := http.ReadRequest(br)
						if err != nil {
							return
						}
						readAll(req)
						if n == tt.answered {
							nc.Close()
							close(closed)
							return
						}
						if _, err := io.WriteString(nc, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"); err != nil {
							return
						}
						if n+1 == tt.answered {
							nc.Close()
							close(closed)
							return
						}
					}
				})
				c := fs.dial(t, cfg)
				warm := tt.answered
				if warm < 0 {
					warm = 1
				}
				for range warm {
					if _, body := roundTrip(t, c, newRequest(t, "GET", "http://x/", nil)); body != "ok" {
						t.Fatalf("warm-up body %q", body)
					}
				}
				if tt.answered > 0 {
					<-closed
				}
				if tt.checked {
					waitFor(t, "Reserve to notice the close", func() bool {
						err := c.Reserve()
						if err == nil {
							c.Release()
							return false
						}
						if !errors.Is(err, tt.wantReserve) {
							t.Fatalf("Reserve: %v, want %v", err, tt.wantReserve)
						}
						return true
					})
					return
				}
				if err := c.ReserveUnchecked(); err != nil {
					t.Fatalf("ReserveUnchecked: %v", err)
				}
				req := newRequest(t, "GET", "http://x/", nil)
				written := false
				if tt.presend {
					// A write to a socket the peer closed succeeds; the
					// answer's read finds the close.
					if err := c.Presend(req); err != nil {
						t.Fatalf("Presend: %v", err)
					}
					written = true
				}
				resp, err := c.RoundTrip(withWroteHeaders(req, func() { written = true }))
				if tt.wantErr == nil {
					if err != nil {
						t.Fatalf("RoundTrip: %v", err)
					}
					resp.Body.Close()
				} else {
					if !errors.Is(err, tt.wantErr) || errors.Is(err, ErrReusedClosed) != tt.reused {
						t.Fatalf("RoundTrip: %v, want %v (ErrReusedClosed: %v)", err, tt.wantErr, tt.reused)
					}
					if c.Err() == nil {
						t.Error("connection still usable")
					}
				}
				// With the queue, a close the answer's read meets before the
				// queue came to the head leaves it unsent: better, and
				// allowed.
				if written != tt.wantWritten && !(queued && tt.wantErr != nil && !tt.presend) {
					t.Errorf("request written: %v, want %v", written, tt.wantWritten)
				}
			})
		}
	}
}

// TestReserveUncheckedOnce: the reservation's skipped peek does not
// carry over to the next request: an exchange reserved with Reserve after
// an unchecked one is not marked ErrReusedClosed.
func TestReserveUncheckedOnce(t *testing.T) {
	closed := make(chan struct{})
	fs := newFakeServer(t, func(nc net.Conn, br *bufio.Reader) {
		defer nc.Close()
		for n := 0; n < 2; n++ {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			readAll(req)
			if _, err := io.WriteString(nc, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"); err != nil {
				return
			}
		}
		// The third request is read, and the connection closed under it.
		http.ReadRequest(br)
		close(closed)
	})
	c := fs.dial(t, Config{})
	if _, body := roundTrip(t, c, newRequest(t, "GET", "http://x/", nil)); body != "ok" {
		t.Fatalf("body %q", body)
	}
	if err := c.ReserveUnchecked(); err != nil {
		t.Fatal(err)
	}
	c.Release()
	if err := c.ReserveUnchecked(); err != nil {
		t.Fatal(err)
	}
	if _, body := roundTrip(t, c, newRequest(t, "GET", "http://x/", nil)); body != "ok" {
		t.Fatalf("body %q", body)
	}
	if err := c.Reserve(); err != nil {
		t.Fatal(err)
	}
	_, err := c.RoundTrip(newRequest(t, "GET", "http://x/", nil))
	if !errors.Is(err, ErrServerClosed) || errors.Is(err, ErrReusedClosed) {
		t.Fatalf("RoundTrip after a checked Reserve: %v, want ErrServerClosed only", err)
	}
	<-closed
}
