package upstream

import (
	"errors"
	"fmt"
)

// Sentinel errors a caller maps to HTTP statuses; classify with errors.Is.
var (
	// ErrNoCapacity means no connection slot is free right now. Callers
	// normally never see it: the backend queues instead.
	ErrNoCapacity = errors.New("upstream: no capacity")
	// ErrQueueFull means the backend's wait queue is at max_pending.
	ErrQueueFull = errors.New("upstream: queue full")
	// ErrBodyMemoryFull means an HTTP/2 or HTTP/3 client's request body
	// within retry_body_limit found the backend's retry_body_memory held
	// by other bodies: streamed instead, uncapped, it could leave
	// Tomcat's threads waiting for bodies (see Backend.prepareReplay).
	ErrBodyMemoryFull = errors.New("upstream: request body memory full (retry_body_memory)")
	// ErrQueueTimeout means a request waited queue.timeout for a slot.
	ErrQueueTimeout = errors.New("upstream: queue timeout")
	// ErrClientGone means the client left before the request got a slot.
	ErrClientGone = errors.New("upstream: client went away")
	// ErrNoHealthyServer means every server of the backend is out of
	// rotation; the request fails at once instead of queueing.
	ErrNoHealthyServer = errors.New("no healthy server")
	// ErrClosed means the backend was shut down.
	ErrClosed = errors.New("upstream: backend closed")
)

// Timeouts of an upstream exchange. Both say Timeout() so callers map them
// to 504 like any other timeout.
var (
	ErrResponseHeaderTimeout error = timeoutError("upstream: timeout awaiting response headers")
	ErrIdleTimeout           error = timeoutError("upstream: response body idle timeout")
	ErrTotalTimeout          error = timeoutError("upstream: total request timeout")
)

type timeoutError string

func (e timeoutError) Error() string { return string(e) }
func (e timeoutError) Timeout() bool { return true }

// DialError reports a failed connection attempt to one server.
type DialError struct {
	Addr string
	Err  error
}

func (e *DialError) Error() string { return fmt.Sprintf("upstream %s: dial: %v", e.Addr, e.Err) }
func (e *DialError) Unwrap() error { return e.Err }

// RoundTripError reports a failure after a request was handed to a
// connection: the server may or may not have seen it.
type RoundTripError struct {
	Addr     string
	Protocol string
	Err      error
}

func (e *RoundTripError) Error() string {
	return fmt.Sprintf("upstream %s (%s): %v", e.Addr, e.Protocol, e.Err)
}
func (e *RoundTripError) Unwrap() error { return e.Err }
