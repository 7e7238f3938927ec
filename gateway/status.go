package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/sluice-gw/sluice/upstream"
)

// StatusClientClosed is nginx's 499: the client left before the response.
// It is never sent, only counted.
const StatusClientClosed = 499

// errorStatus maps a proxying error of backend to the status the client
// gets and a short line saying what happened, naming the backend so that
// an operator reading a client's report knows where to look. clientGone
// reports whether the client's context is done.
func errorStatus(err error, clientGone bool, backend string) (int, string) {
	code, msg := errorCause(err, clientGone)
	if errors.Is(err, upstream.ErrNoHealthyServer) && code == http.StatusServiceUnavailable {
		return code, fmt.Sprintf("no healthy server in backend %q", backend)
	}
	return code, fmt.Sprintf("%s (backend %q)", msg, backend)
}

func errorCause(err error, clientGone bool) (int, string) {
	var dialErr *upstream.DialError
	// net/http's header timeouts are unexported types that say so only
	// through a Timeout method.
	var timeout interface{ Timeout() bool }
	switch {
	case clientGone || errors.Is(err, upstream.ErrClientGone):
		return StatusClientClosed, "client closed request"
	case errors.As(err, new(*http.MaxBytesError)):
		return http.StatusRequestEntityTooLarge, "request body too large"
	case errors.Is(err, upstream.ErrQueueFull):
		return http.StatusServiceUnavailable, "queue full"
	case errors.Is(err, upstream.ErrBodyMemoryFull):
		// Like a full queue: it passes as the bodies held are sent.
		return http.StatusServiceUnavailable, "request body memory full"
	case errors.Is(err, upstream.ErrQueueTimeout):
		return http.StatusServiceUnavailable, "queue timeout: no upstream connection free"
	case errors.Is(err, upstream.ErrTunnelLimit):
		// Every server holds h1.max_tunnels WebSockets: it passes as
		// they close.
		return http.StatusServiceUnavailable, "tunnel limit reached"
	case errors.Is(err, upstream.ErrClosed):
		return http.StatusServiceUnavailable, "shutting down"
	case errors.Is(err, upstream.ErrNoHealthyServer):
		// Every server is down, ejected or draining: like a full queue,
		// a condition that passes, so 503 with Retry-After.
		return http.StatusServiceUnavailable, "no healthy server"
	case errors.As(err, &dialErr):
		return http.StatusBadGateway, "upstream unreachable"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &timeout) && timeout.Timeout():
		return http.StatusGatewayTimeout, "upstream timeout"
	}
	return http.StatusBadGateway, "bad gateway"
}
