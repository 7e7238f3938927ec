package client

import (
	"context"
	"errors"
	"io"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/net/http2"
)

// notifyCtx is a cancelNotifier context, as upstream's attempt context
// is; asking for its Done channel fails the test.
type notifyCtx struct {
	context.Context
	t *testing.T

	mu    sync.Mutex
	w     interface{ ContextEnded() }
	ended bool
	stops int // StopOnCancel calls
}

var errNotified = errors.New("the attempt's cause")

func (n *notifyCtx) Done() <-chan struct{} {
	n.t.Error("Done asked of a cancelNotifier context")
	return nil
}

func (n *notifyCtx) Err() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.ended {
		return errNotified
	}
	return nil
}

func (n *notifyCtx) Value(any) any { return nil }

func (n *notifyCtx) OnCancel(w interface{ ContextEnded() }) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.ended {
		return false
	}
	n.w = w
	return true
}

func (n *notifyCtx) StopOnCancel() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	had := n.w != nil
	n.w = nil
	n.stops++
	return had
}

func (n *notifyCtx) cancel() {
	n.mu.Lock()
	n.ended = true
	w := n.w
	n.w = nil
	n.mu.Unlock()
	if w != nil {
		w.ContextEnded()
	}
}

func (n *notifyCtx) watched() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.w != nil
}

// TestCancelNotifier: a cancelNotifier context ends a stream awaiting its
// response headers or its body (the error is the context's, the stream
// reset with CANCEL) with no Done channel asked for; a context that ended
// before RoundTrip fails it; the caller's end of the stream (EOF,
// Abandon) stops the watching, so an abandoned stream still drains when
// the context ends afterwards (upstream ends it as the body is closed).
func TestCancelNotifier(t *testing.T) {
	for _, tc := range []string{"awaiting headers", "reading the body", "ended before", "EOF", "abandoned"} {
		t.Run(tc, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c, f := start(t, Config{})
				ctx := &notifyCtx{Context: context.Background(), t: t}
				if tc == "ended before" {
					ctx.cancel()
				}
				rt := goRoundTrip(c, get(ctx))
				id := f.headers().streamID
				switch tc {
				case "awaiting headers":
					synctest.Wait()
					ctx.cancel()
					fallthrough
				case "ended before":
					if res := wait(t, rt); !errors.Is(res.err, errNotified) {
						t.Fatalf("RoundTrip: %v, want the context's error", res.err)
					}
					if r := f.rst(); r.streamID != id || r.code != http2.ErrCodeCancel {
						t.Fatalf("RST_STREAM %d %v", r.streamID, r.code)
					}
					return
				}
				f.writeHeaders(id, false, ":status", "200")
				res := wait(t, rt)
				if res.err != nil {
					t.Fatal(res.err)
				}
				body := res.resp.Body.(*Body)
				switch tc {
				case "reading the body":
					read := make(chan error, 1)
					go func() {
						_, err := body.Read(make([]byte, 10))
						read <- err
					}()
					synctest.Wait()
					ctx.cancel()
					if err := wait(t, read); !errors.Is(err, errNotified) {
						t.Fatalf("Read: %v, want the context's error", err)
					}
					if r := f.rst(); r.streamID != id || r.code != http2.ErrCodeCancel {
						t.Fatalf("RST_STREAM %d %v", r.streamID, r.code)
					}
				case "EOF":
					f.fr.WriteData(id, true, []byte("ok"))
					if b, err := io.ReadAll(body); err != nil || string(b) != "ok" {
						t.Fatalf("body %q, %v", b, err)
					}
					if ctx.watched() {
						t.Error("a finished stream still watches its context")
					}
				case "abandoned":
					body.Abandon(time.Second)
					if ctx.watched() {
						t.Error("an abandoned stream still watches its context")
					}
					ctx.cancel()
					synctest.Wait()
					f.noFrame(http2.FrameRSTStream)
					f.fr.WriteData(id, true, nil)
					synctest.Wait()
					f.noFrame(http2.FrameRSTStream)
					if c.InFlight() != 0 {
						t.Fatalf("InFlight %d after the stream ended", c.InFlight())
					}
				}
			})
		})
	}
}

// TestCloseAfterEOFIsFree: closing a body read to its end does nothing
// more (the Read that saw the end finished the stream): the watcher is
// stopped once, by that Read, and the slot given back once.
func TestCloseAfterEOFIsFree(t *testing.T) {
	c, f := start(t, Config{})
	n := &notifyCtx{Context: context.Background(), t: t}
	rt := goRoundTrip(c, get(n))
	id := f.headers().streamID
	f.writeHeaders(id, false, ":status", "200")
	f.fr.WriteData(id, true, []byte("ok"))
	res := wait(t, rt)
	if res.err != nil {
		t.Fatal(res.err)
	}
	if b, err := io.ReadAll(res.resp.Body); err != nil || string(b) != "ok" {
		t.Fatalf("body %q, %v", b, err)
	}
	res.resp.Body.Close()
	n.mu.Lock()
	stops := n.stops
	n.mu.Unlock()
	if stops != 1 || c.InFlight() != 0 {
		t.Errorf("StopOnCancel called %d times, in flight %d; want 1 and 0", stops, c.InFlight())
	}
}
