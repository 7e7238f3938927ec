package upstream

import (
	"context"
	"net/textproto"
	"time"
)

// RequestInfo is what the backend reports about a request for access logs.
// The gateway attaches one to the request context only when it logs, so the
// request path pays nothing otherwise. Written by the request's own
// goroutine, read after RoundTrip returns.
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
	// Got1xx, when not nil, is called with each informational (1xx)
	// response before the final one, from the connection's read loop, as
	// httptrace.ClientTrace.Got1xxResponse. Set by the caller.
	Got1xx func(code int, header textproto.MIMEHeader) error
}

type infoKey struct{}

// WithInfo returns ctx carrying info for the backend to fill in, for
// callers that can only call RoundTrip; Backend.RoundTripInfo takes it
// directly and saves the context value.
func WithInfo(ctx context.Context, info *RequestInfo) context.Context {
	return context.WithValue(ctx, infoKey{}, info)
}

func infoFrom(ctx context.Context) *RequestInfo {
	i, _ := ctx.Value(infoKey{}).(*RequestInfo)
	return i
}
