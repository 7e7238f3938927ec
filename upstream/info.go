package upstream

import (
	"net/textproto"
	"time"
)

// RequestInfo is what the backend reports about a request for access logs,
// filled in by Backend.RoundTripInfo. Written by the request's own
// goroutine, read after RoundTripInfo returns.
type RequestInfo struct {
	Server   string // address of the server that answered (last attempt)
	Protocol string // "h2c" or "h1"
	ConnID   uint64 // upstream connection, unique in the process
	// ConnReq numbers the request on that connection, 1 for its first.
	// net/http does not expose HTTP/2 stream ids; on an h2c connection
	// request N is normally stream 2N-1.
	ConnReq   uint64
	QueueWait time.Duration // time spent waiting for a connection slot
	Attempts  int           // 1, plus retries

	// Got1xx, if the caller sets it, gets the informational responses
	// (100, 103) that come before the final one, as a Got1xxResponse hook
	// in the request context's httptrace.ClientTrace would, without a
	// context per request; it takes the place of such a hook. Not for
	// protocol switches (upgrades): those take the context's hooks only.
	Got1xx func(code int, header textproto.MIMEHeader) error
}
