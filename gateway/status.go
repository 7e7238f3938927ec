package gateway

import (
	"context"
	"errors"
	"net/http"

	"github.com/sluice-gw/sluice/upstream"
)

// StatusClientClosed is nginx's 499: the client left before the response.
// It is never sent, only counted.
const StatusClientClosed = 499

// errorStatus maps a proxying error to the status the client gets and a short
// body saying what happened. clientGone reports whether the client's
// context is done.
func errorStatus(err error, clientGone bool) (int, string) {
	var dialErr *upstream.DialError
	// net/http's header timeouts are unexported types that say so only
	// through a Timeout method.
	var timeout interface{ Timeout() bool }
	switch {
	case clientGone || errors.Is(err, upstream.ErrClientGone):
		return StatusClientClosed, "client closed request"
	case errors.Is(err, upstream.ErrQueueFull):
		return http.StatusServiceUnavailable, "queue full"
	case errors.Is(err, upstream.ErrQueueTimeout):
		return http.StatusServiceUnavailable, "queue timeout: no upstream connection free"
	case errors.Is(err, upstream.ErrClosed):
		return http.StatusServiceUnavailable, "shutting down"
	case errors.As(err, &dialErr):
		return http.StatusBadGateway, "upstream unreachable"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &timeout) && timeout.Timeout():
		return http.StatusGatewayTimeout, "upstream timeout"
	}
	return http.StatusBadGateway, "bad gateway"
}
