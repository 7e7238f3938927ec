package client

import (
	"errors"
	"fmt"
)

// Errors of a connection; classify with errors.Is.
var (
	// ErrServerClosed: the server closed the connection (or reset it)
	// before any byte of the answer. Whether it saw the request is
	// unknown, as with net/http's transport: the request was written
	// when RoundTrip's trace reported WroteHeaders.
	ErrServerClosed = errors.New("h1 client: server closed the connection before answering")
	// ErrIdleClosed: Reserve found that the server had closed the idle
	// connection (or sent bytes nobody asked for); no request was sent.
	ErrIdleClosed = errors.New("h1 client: server closed the idle connection")
	// ErrReusedClosed: a connection reserved without the liveness peek
	// (ReserveUnchecked), which had carried an earlier exchange, met the
	// end of the stream or a reset before any byte of the answer: most
	// likely the server closed it while it idled, as the peek would have
	// found, though it may have read the request. Always with
	// ErrServerClosed.
	ErrReusedClosed = errors.New("h1 client: server closed the reused connection before answering")
	// ErrBusy: the connection carries or has reserved a request.
	ErrBusy = errors.New("h1 client: connection busy")
	// ErrClosed: Close was called.
	ErrClosed = errors.New("h1 client: connection closed")
	// ErrKeepAliveEnded: the server's last answer ended the connection's
	// keep-alive (Connection: close, or a body delimited by the close).
	ErrKeepAliveEnded = errors.New("h1 client: server ended keep-alive")
	// ErrSwitched: the server switched protocols (101); the connection
	// belongs to the response body.
	ErrSwitched = errors.New("h1 client: connection switched protocols")
	// ErrBodyUnfinished: the response body was closed before its end, so
	// the connection could not be reused.
	ErrBodyUnfinished = errors.New("h1 client: response body closed before its end")
	// errPresendBody: Presend takes requests without a body only.
	errPresendBody = errors.New("h1 client: Presend of a request with a body")
	// errPresendSize: Presend leaves a long head to RoundTrip.
	errPresendSize = errors.New("h1 client: head too long for Presend")
	// ErrTooMany1xx: more interim answers than a client takes.
	ErrTooMany1xx = errors.New("h1 client: too many 1xx informational responses")
)

// ProtocolError is an answer the strict parser refused, or bytes after
// it where none belong. Err is a *gateway/h1.Error (errors.Is its
// sentinels) or io.ErrUnexpectedEOF.
type ProtocolError struct {
	Addr string
	Err  error
}

func (e *ProtocolError) Error() string {
	return fmt.Sprintf("h1 client: malformed response from %s: %v", e.Addr, e.Err)
}
func (e *ProtocolError) Unwrap() error { return e.Err }

// RequestError is a request that cannot be written as HTTP/1.1 (an
// invalid field, method or Host). Nothing was sent, and the connection
// stays usable.
type RequestError struct{ Reason string }

func (e *RequestError) Error() string { return "h1 client: invalid request: " + e.Reason }
