package client

import (
	"bytes"
	"context"
	"errors"
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
