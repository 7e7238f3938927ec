package client

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"golang.org/x/net/http2"
)

// TestContinuationFlood: a header block that never ends must end the
// connection after a bounded amount of input, not be buffered: fields
// past the limit, and empty CONTINUATION frames, which add nothing.
func TestContinuationFlood(t *testing.T) {
	for _, tc := range []struct {
		name      string
		value     int // bytes of the field each CONTINUATION carries; 0: empty frames
		maxFrames int
	}{
		{"fields beyond the limit", 4000, 8},
		{"empty frames", 0, 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, f := start(t, Config{MaxHeaderListSize: 16384})
			rt := goRoundTrip(c, get(context.Background()))
			id := f.headers().streamID
			if err := f.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: f.block(":status", "200")}); err != nil {
				t.Fatal(err)
			}
			var frag []byte
			if tc.value > 0 {
				frag = f.block("x-flood", strings.Repeat("a", tc.value))
			}
			sent := 0
			for ; sent < 100000; sent++ {
				if err := f.fr.WriteContinuation(id, false, frag); err != nil {
					break
				}
			}
			// The pipe is synchronous: what the server could write is
			// what the client read.
			if sent > tc.maxFrames {
				t.Fatalf("client read %d CONTINUATION frames", sent)
			}
			if g := f.goAway(); g.code != http2.ErrCodeProtocol {
				t.Fatalf("GOAWAY %v, want PROTOCOL_ERROR", g.code)
			}
			res := wait(t, rt)
			var ce *ConnError
			if !errors.As(res.err, &ce) || ce.Code != http2.ErrCodeProtocol {
				t.Fatalf("RoundTrip error %v, want a PROTOCOL_ERROR ConnError", res.err)
			}
		})
	}
}

// TestHeaderListOverLimit: a response header list over the limit fails
// its stream only; the connection goes on.
func TestHeaderListOverLimit(t *testing.T) {
	c, f := start(t, Config{MaxHeaderListSize: 4096})
	rt := goRoundTrip(c, get(context.Background()))
	id := f.headers().streamID
	f.writeHeaders(id, false, ":status", "200", "x-big", strings.Repeat("b", 3000), "x-big2", strings.Repeat("c", 3000))
	res := wait(t, rt)
	if !errors.Is(res.err, ErrHeaderTooLarge) {
		t.Fatalf("RoundTrip error %v, want ErrHeaderTooLarge", res.err)
	}
	if r := f.rst(); r.streamID != id || r.code != http2.ErrCodeProtocol {
		t.Fatalf("RST_STREAM %d %v", r.streamID, r.code)
	}
	rt = goRoundTrip(c, get(context.Background()))
	id = f.headers().streamID
	f.writeHeaders(id, true, ":status", "204")
	if res := wait(t, rt); res.err != nil || res.resp.StatusCode != 204 {
		t.Fatalf("next request on the connection: %v", res.err)
	}
	if c.InFlight() != 0 {
		t.Fatalf("InFlight %d", c.InFlight())
	}
}

// TestFramesOnUnknownStreams: frames on streams the client closed are
// ignored; frames on streams it never opened end the connection.
func TestFramesOnUnknownStreams(t *testing.T) {
	for _, tc := range []struct {
		name  string
		write func(f *fakeServer, closed uint32) error
		fatal bool
	}{
		{"DATA on closed stream", func(f *fakeServer, id uint32) error { return f.fr.WriteData(id, true, []byte("late")) }, false},
		{"HEADERS on closed stream", func(f *fakeServer, id uint32) error { return f.writeHeaders(id, true, ":status", "200") }, false},
		{"RST_STREAM on closed stream", func(f *fakeServer, id uint32) error { return f.fr.WriteRSTStream(id, http2.ErrCodeCancel) }, false},
		{"WINDOW_UPDATE on closed stream", func(f *fakeServer, id uint32) error { return f.fr.WriteWindowUpdate(id, 100) }, false},
		{"DATA on idle stream", func(f *fakeServer, id uint32) error { return f.fr.WriteData(id+100, false, []byte("x")) }, true},
		{"HEADERS on even stream", func(f *fakeServer, id uint32) error { return f.writeHeaders(2, false, ":status", "200") }, true},
		{"RST_STREAM on idle stream", func(f *fakeServer, id uint32) error { return f.fr.WriteRSTStream(id+100, http2.ErrCodeCancel) }, true},
		{"PUSH_PROMISE", func(f *fakeServer, id uint32) error {
			return f.fr.WritePushPromise(http2.PushPromiseParam{StreamID: id, PromiseID: 2, BlockFragment: f.block(":method", "GET"), EndHeaders: true})
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, f := start(t, Config{})
			// Stream 1 completes; stream 3 stays open.
			rt := goRoundTrip(c, get(context.Background()))
			f.writeHeaders(f.headers().streamID, true, ":status", "200")
			if res := wait(t, rt); res.err != nil {
				t.Fatal(res.err)
			}
			rt = goRoundTrip(c, get(context.Background()))
			open := f.headers().streamID
			if err := tc.write(f, 1); err != nil {
				t.Fatal(err)
			}
			if tc.fatal {
				if g := f.goAway(); g.code != http2.ErrCodeProtocol {
					t.Fatalf("GOAWAY %v, want PROTOCOL_ERROR", g.code)
				}
				if res := wait(t, rt); res.err == nil {
					t.Fatal("open stream survived a connection error")
				}
				<-c.Done()
				return
			}
			f.writeHeaders(open, false, ":status", "200")
			f.fr.WriteData(open, true, []byte("ok"))
			res := wait(t, rt)
			if res.err != nil {
				t.Fatalf("open stream failed: %v", res.err)
			}
			b, err := io.ReadAll(res.resp.Body)
			if err != nil || string(b) != "ok" || c.Err() != nil {
				t.Fatalf("body %q %v, conn %v", b, err, c.Err())
			}
		})
	}
}

// TestContentLengthMismatch: a body longer or shorter than its
// Content-Length fails after the bytes that came.
func TestContentLengthMismatch(t *testing.T) {
	for _, tc := range []struct {
		name string
		sent string
		rst  bool
	}{
		{"short", "abc", false},
		{"long", "abcdefg", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, f := start(t, Config{})
			rt := goRoundTrip(c, get(context.Background()))
			id := f.headers().streamID
			f.writeHeaders(id, false, ":status", "200", "content-length", "5")
			res := wait(t, rt)
			f.fr.WriteData(id, true, []byte(tc.sent))
			_, err := io.ReadAll(res.resp.Body)
			if !errors.Is(err, ErrBodyLength) {
				t.Fatalf("body error %v", err)
			}
			if tc.rst {
				if r := f.rst(); r.streamID != id || r.code != http2.ErrCodeProtocol {
					t.Fatalf("RST_STREAM %d %v", r.streamID, r.code)
				}
			}
			if c.InFlight() != 0 || c.Err() != nil {
				t.Fatalf("InFlight %d Err %v", c.InFlight(), c.Err())
			}
		})
	}
}
