package client

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// memBody is a request body held whole in memory, as upstream's replay
// buffer is.
type memBody struct {
	*bytes.Reader
	b []byte
}

func (m *memBody) Close() error      { return nil }
func (m *memBody) WholeBody() []byte { return m.b }

// post is a POST of body, whole in memory or streamed.
func post(ctx context.Context, body []byte, whole bool) *http.Request {
	req, _ := http.NewRequestWithContext(ctx, "POST", "http://backend/echo", nil)
	if whole {
		req.Body = &memBody{bytes.NewReader(body), body}
	} else {
		req.Body = io.NopCloser(bytes.NewReader(body))
	}
	req.ContentLength = int64(len(body))
	return req
}

// dataUntil reads the client's frames until stream id has sent n DATA
// bytes, and returns them all in order.
func (f *fakeServer) dataUntil(id uint32, n int) []rframe {
	f.t.Helper()
	var got []rframe
	for sent := 0; sent < n; {
		r := f.next(nil)
		got = append(got, r)
		if r.typ == http2.FrameData && r.streamID == id {
			sent += len(r.data)
		}
	}
	return got
}

// sendQueued waits until n requests wait for their whole body's credit.
func sendQueued(t *testing.T, c *Conn, n int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		c.mu.Lock()
		q := len(c.sendQ)
		c.mu.Unlock()
		if q == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d requests wait for their body's credit, want %d", q, n)
		}
	}
}

func TestWholeBodyGoesWithHeaders(t *testing.T) {
	c, f := start(t, Config{})
	body := bytes.Repeat([]byte("x"), 40000) // over one frame: two DATA frames
	rt := goRoundTrip(c, post(context.Background(), body, true))
	h := f.headers()
	if h.endStream {
		t.Fatal("END_STREAM on the HEADERS of a request with a body")
	}
	got := f.dataUntil(h.streamID, len(body))
	if last := got[len(got)-1]; !last.endStream {
		t.Fatal("no END_STREAM on the body's last DATA frame")
	}
	for _, r := range got {
		if r.typ != http2.FrameData || r.streamID != h.streamID {
			t.Fatalf("frame %v on stream %d between the HEADERS and the body's end", r.typ, r.streamID)
		}
	}
	if err := f.writeHeaders(h.streamID, true, ":status", "204"); err != nil {
		t.Fatal(err)
	}
	if res := wait(t, rt); res.err != nil || res.resp.StatusCode != 204 {
		t.Fatalf("RoundTrip: %v", res.err)
	}
}

// TestWholeBodyWaitsForItsCredit: a request whose body is whole in memory
// opens its stream only once the connection's window holds all of it, and
// a stream opened meanwhile does not take that credit first. Tomcat gives
// connection credit back only as its handlers read bodies: a stream it
// started whose body is held back by credit that later streams took would
// keep one of its threads waiting, and with all of them waiting, nothing
// moves until its read timeout.
func TestWholeBodyWaitsForItsCredit(t *testing.T) {
	c, f := start(t, Config{})
	ctx := context.Background()
	// A streamed body takes the whole connection window (65,535 bytes).
	first := goRoundTrip(c, post(ctx, make([]byte, initialWindow), false))
	a := f.headers().streamID
	f.dataUntil(a, initialWindow)

	whole := bytes.Repeat([]byte("w"), 1000)
	second := goRoundTrip(c, post(ctx, whole, true))
	sendQueued(t, c, 1)
	third := goRoundTrip(c, post(ctx, []byte("0123456789"), false))
	h3 := f.headers() // the streamed one opens; the whole one waits
	if h3.streamID != a+2 {
		t.Fatalf("HEADERS on stream %d, want %d (the streamed request's)", h3.streamID, a+2)
	}

	// Credit for exactly the whole body: it is the waiting request's.
	if err := f.fr.WriteWindowUpdate(0, uint32(len(whole))); err != nil {
		t.Fatal(err)
	}
	h2 := f.headers()
	if h2.streamID != a+4 {
		t.Fatalf("HEADERS on stream %d, want %d", h2.streamID, a+4)
	}
	for _, r := range f.dataUntil(h2.streamID, len(whole)) {
		if r.typ == http2.FrameData && r.streamID != h2.streamID {
			t.Fatalf("stream %d sent DATA with the credit of the body that waited for it", r.streamID)
		}
	}
	if err := f.fr.WriteWindowUpdate(0, 10); err != nil {
		t.Fatal(err)
	}
	f.dataUntil(h3.streamID, 10)

	for _, id := range []uint32{a, h2.streamID, h3.streamID} {
		if err := f.writeHeaders(id, true, ":status", "204"); err != nil {
			t.Fatal(err)
		}
	}
	for _, rt := range []chan rtResult{first, second, third} {
		if res := wait(t, rt); res.err != nil {
			t.Fatal(res.err)
		}
	}
}

func TestWholeBodyWaitEndsWithItsContext(t *testing.T) {
	c, f := start(t, Config{})
	first := goRoundTrip(c, post(context.Background(), make([]byte, initialWindow), false))
	a := f.headers().streamID
	f.dataUntil(a, initialWindow)
	before := c.Available()

	ctx, cancel := context.WithCancelCause(context.Background())
	gone := errors.New("client gone")
	waiting := goRoundTrip(c, post(ctx, []byte("body"), true))
	sendQueued(t, c, 1)
	cancel(gone)
	if res := wait(t, waiting); !errors.Is(res.err, gone) {
		t.Fatalf("RoundTrip: %v, want the context's cause", res.err)
	}
	sendQueued(t, c, 0)
	if got := c.Available(); got != before {
		t.Fatalf("Available %d after the wait ended, want %d: the slot was not given back", got, before)
	}
	if err := f.writeHeaders(a, true, ":status", "204"); err != nil {
		t.Fatal(err)
	}
	if res := wait(t, first); res.err != nil {
		t.Fatal(res.err)
	}
}

// TestWholeBodyWaitEndsWithGoAway: a request waiting for its body's
// credit when the server sends GOAWAY was never sent, and says so
// (ErrNotProcessed), so that upstream sends it again elsewhere.
func TestWholeBodyWaitEndsWithGoAway(t *testing.T) {
	c, f := start(t, Config{})
	first := goRoundTrip(c, post(context.Background(), make([]byte, initialWindow), false))
	a := f.headers().streamID
	f.dataUntil(a, initialWindow)

	waiting := goRoundTrip(c, post(context.Background(), []byte("body"), true))
	sendQueued(t, c, 1)
	if err := f.fr.WriteGoAway(a, http2.ErrCodeNo, nil); err != nil {
		t.Fatal(err)
	}
	if res := wait(t, waiting); !errors.Is(res.err, ErrNotProcessed) {
		t.Fatalf("RoundTrip: %v, want an error matching ErrNotProcessed", res.err)
	}
	sendQueued(t, c, 0)
	if err := f.writeHeaders(a, true, ":status", "204"); err != nil {
		t.Fatal(err)
	}
	if res := wait(t, first); res.err != nil {
		t.Fatal(res.err)
	}
}
