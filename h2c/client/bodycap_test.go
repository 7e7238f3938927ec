package client

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"testing"
	"testing/synctest"

	"golang.org/x/net/http2"
)

func postN(ctx context.Context, n int) *http.Request {
	req, _ := http.NewRequestWithContext(ctx, "POST", "http://backend/echo", bytes.NewReader(make([]byte, n)))
	return req
}

// TestMaxBodyStreams: with a cap of two, a third POST with a small body
// waits, holding its slot, until one of the two ends; a GET, a body over
// MaxCappedBody and one of unknown length go at once; a POST whose
// context ends while it waits gives its slot back unsent.
func TestMaxBodyStreams(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, f := start(t, Config{MaxBodyStreams: 2}, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 20})
		// Room for every body on the connection: only the cap holds one back.
		f.fr.WriteWindowUpdate(0, 1<<20)
		ctx := context.Background()
		first := goRoundTrip(c, postN(ctx, 1000))
		id1 := f.headers().streamID
		f.readData(id1, 1000)
		goRoundTrip(c, postN(ctx, 1000))
		f.headers()
		third := goRoundTrip(c, postN(ctx, 1000))
		synctest.Wait()
		f.noFrame(http2.FrameHeaders)
		if c.InFlight() != 3 {
			t.Fatalf("InFlight %d, want 3 (the waiting POST holds its slot)", c.InFlight())
		}
		// Not capped: no body, a long body, a body of unknown length.
		goRoundTrip(c, get(ctx))
		f.headers()
		goRoundTrip(c, postN(ctx, MaxCappedBody+1))
		f.headers()
		unsized := postN(ctx, 10)
		unsized.ContentLength = -1
		goRoundTrip(c, unsized)
		f.headers()
		// A waiter whose client leaves gives its slot back.
		gone, cancel := context.WithCancel(ctx)
		left := goRoundTrip(c, postN(gone, 1000))
		synctest.Wait()
		before := c.InFlight()
		cancel()
		if res := wait(t, left); !errors.Is(res.err, context.Canceled) {
			t.Fatalf("waiting POST whose context ended: %v", res.err)
		}
		if c.InFlight() != before-1 {
			t.Fatalf("InFlight %d after the waiter left, want %d", c.InFlight(), before-1)
		}
		f.noFrame(http2.FrameHeaders)
		// The first ends: the third goes.
		f.writeHeaders(id1, true, ":status", "200")
		wait(t, first).resp.Body.Close()
		h := f.headers()
		if h.field(":method") != "POST" {
			t.Fatalf("after a body stream ended, %s went", h.field(":method"))
		}
		f.readData(h.streamID, 1000)
		f.writeHeaders(h.streamID, true, ":status", "200")
		wait(t, third).resp.Body.Close()
	})
}

// heldBody is a body read whole beforehand, as upstream's retry buffer.
type heldBody struct{ *bytes.Reader }

func (heldBody) HeldWhole()   {}
func (heldBody) Close() error { return nil }

// soleBody is a body whose client sends nothing else meanwhile, as an
// HTTP/1.1 client's, when sole.
type soleBody struct {
	*bytes.Reader
	sole bool
}

func (b soleBody) Sole() bool { return b.sole }
func (soleBody) Close() error { return nil }

// TestMaxBodyStreamsHeldBody: a body held whole in memory, or whose client
// sends nothing else meanwhile, takes a token whatever its length, and
// whether its length is known; a body as long that is neither (an HTTP/2
// client's, streamed) goes at once.
func TestMaxBodyStreamsHeldBody(t *testing.T) {
	held := func(b []byte) io.Reader { return heldBody{bytes.NewReader(b)} }
	sole := func(b []byte) io.Reader { return soleBody{bytes.NewReader(b), true} }
	for _, tt := range []struct {
		name  string
		body  func([]byte) io.Reader
		n     int
		known bool
	}{
		{"held, over MaxCappedBody", held, 200 << 10, true},
		{"held, unknown length", held, 1000, false},
		{"sole, over MaxCappedBody", sole, 200 << 10, true},
		{"sole, unknown length", sole, 1000, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c, f := start(t, Config{MaxBodyStreams: 1}, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 20})
				f.fr.WriteWindowUpdate(0, 1<<20)
				ctx := context.Background()
				first := goRoundTrip(c, postN(ctx, 1000))
				id1 := f.headers().streamID
				f.readData(id1, 1000)
				held, _ := http.NewRequestWithContext(ctx, "POST", "http://backend/echo", tt.body(make([]byte, tt.n)))
				held.ContentLength = int64(tt.n)
				if !tt.known {
					held.ContentLength = -1
				}
				second := goRoundTrip(c, held)
				synctest.Wait()
				f.noFrame(http2.FrameHeaders)
				// As long, neither held nor sole: not capped.
				other, _ := http.NewRequestWithContext(ctx, "POST", "http://backend/echo", soleBody{bytes.NewReader(make([]byte, tt.n)), false})
				other.ContentLength = int64(tt.n)
				if !tt.known {
					other.ContentLength = -1
				}
				goRoundTrip(c, other)
				if h := f.headers(); h.field(":method") != "POST" {
					t.Fatalf("%s went instead of the POST that is not held", h.field(":method"))
				}
				f.noFrame(http2.FrameHeaders)
				f.writeHeaders(id1, true, ":status", "200")
				wait(t, first).resp.Body.Close()
				h := f.headers()
				if got, _ := f.readData(h.streamID, tt.n); len(got) != tt.n {
					t.Fatalf("held body: %d bytes sent, want %d", len(got), tt.n)
				}
				f.writeHeaders(h.streamID, true, ":status", "200")
				wait(t, second).resp.Body.Close()
			})
		})
	}
}
