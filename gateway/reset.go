package gateway

import (
	"net/http"
	"sync/atomic"
	"time"
)

// HTTP/2 rapid reset (CVE-2023-44487): a client opens streams and resets
// them at once, so the server does work for every one and answers none. Go's
// server bounds the handlers it runs but closes such a connection only once
// its queue of pending handlers overflows, which took 1–3 s here because
// Sluice's handler returns at once for a request whose client has gone.
// Counting the streams each connection cancels, before their handler ran or
// while it was proxying them (499), closes a flood within a hundred streams
// instead.

// rapidResetLimit is how many streams a connection may cancel within
// rapidResetWindow before it is closed. A browser cancelling navigation or
// a client timing out cancels a few streams, not a hundred a second.
const (
	rapidResetLimit  = 100
	rapidResetWindow = time.Second
)

// resetWindow counts one connection's early resets in a fixed window.
type resetWindow struct {
	start atomic.Int64 // UnixNano of the window's first reset
	n     atomic.Int32
	cut   atomic.Bool // the connection was closed for it, once
}

// add counts one reset at now and reports whether the connection went over
// the limit.
func (w *resetWindow) add(now int64) bool {
	start := w.start.Load()
	if now-start > int64(rapidResetWindow) {
		if w.start.CompareAndSwap(start, now) {
			w.n.Store(1)
			return false
		}
	}
	return w.n.Add(1) > rapidResetLimit
}

// streamReset records a request whose client cancelled (reset) the stream,
// and closes the client's connection when that is a flood.
func (t *connTracker) streamReset(r *http.Request) {
	if r.ProtoMajor != 2 {
		return // HTTP/1.1 has no streams to reset; HTTP/3 is quic-go's
	}
	cc, ok := r.Context().Value(connKey{}).(*clientConn)
	if !ok || cc.conn == nil {
		return
	}
	// Only the request that crosses the limit closes and counts: the
	// streams of a flood end concurrently, and each connection is one
	// rejection.
	if cc.resets.add(time.Now().UnixNano()) && cc.resets.cut.CompareAndSwap(false, true) {
		t.reject(reasonRapidReset)
		// Closing the socket under Go's HTTP/2 server ends its read loop;
		// the streams still open end with it. No GOAWAY: the client is
		// not owed one.
		cc.conn.Close()
	}
}
