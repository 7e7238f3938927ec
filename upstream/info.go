package upstream

import (
	"context"
	"time"
)

// RequestInfo is what the backend reports about a request for access logs.
// The gateway attaches one to the request context only when it logs, so the
// request path pays nothing otherwise. Written by the request's own
// goroutine, read after RoundTrip returns.
type RequestInfo struct {
	Server    string        // address of the server that answered (last attempt)
	Protocol  string        // "h2c" or "h1"
	ConnID    uint64        // upstream connection, unique in the process
	QueueWait time.Duration // time spent waiting for a connection slot
	Attempts  int           // 1, plus retries
}

type infoKey struct{}

// WithInfo returns ctx carrying info for the backend to fill in.
func WithInfo(ctx context.Context, info *RequestInfo) context.Context {
	return context.WithValue(ctx, infoKey{}, info)
}

func infoFrom(ctx context.Context) *RequestInfo {
	i, _ := ctx.Value(infoKey{}).(*RequestInfo)
	return i
}
