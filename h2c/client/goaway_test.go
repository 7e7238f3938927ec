package client

import (
	"context"
	"errors"
	"io"
	"net/http/httptrace"
	"sync/atomic"
	"testing"

	"golang.org/x/net/http2"
)

// TestGoAwayMidFlight: streams at or below last-stream-id finish; the
// others fail as not processed; the owner hears of it; no new stream
// opens.
func TestGoAwayMidFlight(t *testing.T) {
	var heard atomic.Pointer[GoAway]
	c, f := start(t, Config{OnGoAway: func(g GoAway) { heard.Store(&g) }})
	var rts []chan rtResult
	var ids []uint32
	for range 3 {
		rts = append(rts, goRoundTrip(c, get(context.Background())))
		ids = append(ids, f.headers().streamID)
	}
	// Streams 1 and 3 were processed; 5 was not.
	f.writeHeaders(ids[0], false, ":status", "200")
	f.fr.WriteGoAway(ids[1], http2.ErrCodeNo, []byte("shutting down"))
	res := wait(t, rts[2])
	var ge *GoAwayError
	if !errors.Is(res.err, ErrNotProcessed) || !errors.As(res.err, &ge) || ge.StreamID != ids[2] {
		t.Fatalf("stream above last-stream-id: %v", res.err)
	}
	if g := heard.Load(); g == nil || g.LastStreamID != ids[1] || string(g.DebugData) != "shutting down" {
		t.Fatalf("OnGoAway got %+v", g)
	}
	if c.Err() == nil || c.Available() != 0 || c.Reserve() == nil {
		t.Fatalf("going away: Err %v Available %d", c.Err(), c.Available())
	}
	if _, err := c.RoundTrip(get(context.Background())); !errors.Is(err, ErrNotProcessed) {
		t.Fatalf("new request after GOAWAY: %v", err)
	}
	f.fr.WriteData(ids[0], true, []byte("one"))
	f.writeHeaders(ids[1], false, ":status", "200")
	f.fr.WriteData(ids[1], true, []byte("three"))
	for i, want := range []string{"one", "three"} {
		res := wait(t, rts[i])
		if res.err != nil {
			t.Fatalf("stream %d: %v", ids[i], res.err)
		}
		b, err := io.ReadAll(res.resp.Body)
		if err != nil || string(b) != want {
			t.Fatalf("stream %d body %q %v", ids[i], b, err)
		}
	}
	if c.InFlight() != 0 {
		t.Fatalf("InFlight %d", c.InFlight())
	}
}

// TestResets: RST_STREAM from the server, before headers and mid-body.
func TestResets(t *testing.T) {
	c, f := start(t, Config{})

	rt := goRoundTrip(c, get(context.Background()))
	f.fr.WriteRSTStream(f.headers().streamID, http2.ErrCodeRefusedStream)
	res := wait(t, rt)
	var hse http2.StreamError
	if !errors.Is(res.err, ErrNotProcessed) || !errors.As(res.err, &hse) || hse.Code != http2.ErrCodeRefusedStream {
		t.Fatalf("REFUSED_STREAM: %v", res.err)
	}

	rt = goRoundTrip(c, get(context.Background()))
	id := f.headers().streamID
	f.writeHeaders(id, false, ":status", "200")
	f.fr.WriteData(id, false, []byte("partial"))
	f.fr.WriteRSTStream(id, http2.ErrCodeInternal)
	res = wait(t, rt)
	if res.err != nil {
		t.Fatal(res.err)
	}
	b, err := io.ReadAll(res.resp.Body)
	var se *StreamError
	if string(b) != "partial" || !errors.As(err, &se) || se.Code != http2.ErrCodeInternal || errors.Is(err, ErrNotProcessed) {
		t.Fatalf("mid-body reset: body %q, err %v", b, err)
	}
	if c.InFlight() != 0 || c.Err() != nil {
		t.Fatalf("InFlight %d Err %v", c.InFlight(), c.Err())
	}
}

// TestClientResets: a cancelled context and a body closed early reset
// the stream with CANCEL; a body read to its end does not.
func TestClientResets(t *testing.T) {
	c, f := start(t, Config{})

	ctx, cancel := context.WithCancel(context.Background())
	rt := goRoundTrip(c, get(ctx))
	id := f.headers().streamID
	cancel()
	if r := f.rst(); r.streamID != id || r.code != http2.ErrCodeCancel {
		t.Fatalf("after cancel: RST_STREAM %d %v", r.streamID, r.code)
	}
	if res := wait(t, rt); !errors.Is(res.err, context.Canceled) {
		t.Fatalf("cancelled RoundTrip: %v", res.err)
	}

	rt = goRoundTrip(c, get(context.Background()))
	id = f.headers().streamID
	f.writeHeaders(id, false, ":status", "200")
	f.fr.WriteData(id, false, []byte("x"))
	res := wait(t, rt)
	res.resp.Body.Close()
	if r := f.rst(); r.streamID != id || r.code != http2.ErrCodeCancel {
		t.Fatalf("after early Close: RST_STREAM %d %v", r.streamID, r.code)
	}
	if _, err := res.resp.Body.Read(make([]byte, 1)); err == nil {
		t.Fatal("Read after Close succeeded")
	}

	rt = goRoundTrip(c, get(context.Background()))
	id = f.headers().streamID
	f.writeHeaders(id, false, ":status", "200")
	f.fr.WriteData(id, true, []byte("done"))
	res = wait(t, rt)
	io.ReadAll(res.resp.Body)
	res.resp.Body.Close()
	// A PING round trip proves nothing else was sent before it.
	f.fr.WritePing(false, [8]byte{7})
	r := f.next(func(r rframe) bool { return r.typ == http2.FrameRSTStream || r.typ == http2.FramePing })
	if r.typ != http2.FramePing {
		t.Fatalf("stream read to its end was reset: %v", r.code)
	}
	if c.InFlight() != 0 {
		t.Fatalf("InFlight %d", c.InFlight())
	}
}

// TestWroteHeaders: the trace, and a context that is a headersNotifier,
// learn that HEADERS went out, and a request refused before that is never
// reported as written.
func TestWroteHeaders(t *testing.T) {
	for _, tt := range []struct {
		name  string
		ctx   func(wrote *atomic.Int32) context.Context
		trace bool
	}{
		{name: "trace hook", ctx: func(wrote *atomic.Int32) context.Context {
			return httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{WroteHeaders: func() { wrote.Add(1) }})
		}},
		{name: "context's HeadersWritten", ctx: func(wrote *atomic.Int32) context.Context {
			return &headersCtx{Context: context.Background(), wrote: wrote}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, f := start(t, Config{})
			var wrote atomic.Int32
			ctx := tt.ctx(&wrote)
			rt := goRoundTrip(c, get(ctx))
			id := f.headers().streamID
			f.writeHeaders(id, true, ":status", "200")
			if res := wait(t, rt); res.err != nil || wrote.Load() != 1 {
				t.Fatalf("err %v, told of the headers %d times", res.err, wrote.Load())
			}
			f.fr.WriteGoAway(id, http2.ErrCodeNo, nil)
			f.fr.WritePing(false, [8]byte{})
			f.next(isType(http2.FramePing))
			if _, err := c.RoundTrip(get(ctx)); !errors.Is(err, ErrNotProcessed) || wrote.Load() != 1 {
				t.Fatalf("after GOAWAY: err %v, told of the headers %d times", err, wrote.Load())
			}
		})
	}
}

// headersCtx is a context told of written headers (headersNotifier).
type headersCtx struct {
	context.Context
	wrote *atomic.Int32
}

func (c *headersCtx) HeadersWritten() { c.wrote.Add(1) }
