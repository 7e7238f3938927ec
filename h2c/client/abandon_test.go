package client

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/net/http2"
)

// TestAbandon: an abandoned body is drained, not reset, when the server
// ends the stream within the grace, and reset with CANCEL after it.
func TestAbandon(t *testing.T) {
	for _, tc := range []struct {
		name   string
		finish bool // the server ends the stream within the grace
	}{
		{"server finishes within grace", true},
		{"server stalls", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c, f := start(t, Config{StreamWindow: 65535})
				rt := goRoundTrip(c, get(context.Background()))
				id := f.headers().streamID
				f.writeHeaders(id, false, ":status", "200")
				f.fr.WriteData(id, false, make([]byte, 1000))
				res := wait(t, rt)
				synctest.Wait()
				start := time.Now()
				res.resp.Body.(*Body).Abandon(time.Second)
				// The buffered 1000 bytes are given back at once.
				if w := f.next(isType(http2.FrameWindowUpdate)); w.streamID != id || w.increment != 1000 {
					t.Fatalf("WINDOW_UPDATE %d +%d", w.streamID, w.increment)
				}
				if c.InFlight() != 1 {
					t.Fatalf("InFlight %d while draining", c.InFlight())
				}
				if tc.finish {
					// More than the window: dropped data is returned too.
					for range 4 {
						f.fr.WriteData(id, false, make([]byte, 16000))
					}
					f.fr.WriteData(id, true, nil)
					synctest.Wait()
					f.noFrame(http2.FrameRSTStream)
					if c.InFlight() != 0 || time.Since(start) != 0 {
						t.Fatalf("InFlight %d after the stream ended", c.InFlight())
					}
					return
				}
				r := f.rst()
				if r.streamID != id || r.code != http2.ErrCodeCancel || time.Since(start) != time.Second {
					t.Fatalf("RST_STREAM %d %v after %v", r.streamID, r.code, time.Since(start))
				}
				synctest.Wait()
				if c.InFlight() != 0 {
					t.Fatalf("InFlight %d after the grace", c.InFlight())
				}
			})
		})
	}
}
