package client

import (
	"errors"
	"fmt"

	"golang.org/x/net/http2"
)

// ErrNotProcessed matches (errors.Is) every error that proves the server
// did not process the request: REFUSED_STREAM, and a stream above a
// GOAWAY's last-stream-id. Such a request is safe to send again.
var ErrNotProcessed = errors.New("h2c client: request not processed by the server")

// ErrNoSettings reports a server that accepted the connection but sent no
// SETTINGS before the dial's context ended.
var ErrNoSettings = errors.New("h2c client: no SETTINGS from server")

// ErrClosed is the error of a connection closed by Close.
var ErrClosed = errors.New("h2c client: connection closed")

// ErrNoSlot is Reserve's error when the connection is full, closed or
// going away.
var ErrNoSlot = errors.New("h2c client: no stream slot available")

// ErrCanceled is the error of a stream whose response body was closed
// before its end: the stream was reset with CANCEL.
var ErrCanceled = errors.New("h2c client: stream canceled")

// ErrHeaderTooLarge fails a stream whose response header list exceeds
// Config.MaxHeaderListSize; the stream is reset with PROTOCOL_ERROR.
var ErrHeaderTooLarge = errors.New("h2c client: response header list too large")

// ErrBodyLength fails a response whose DATA does not add up to its
// Content-Length: more resets the stream, less is found at its end.
var ErrBodyLength = errors.New("h2c client: response body length differs from Content-Length")

// GoAway is a GOAWAY frame received from the server.
type GoAway struct {
	// LastStreamID is the highest stream the server may have processed;
	// streams above it were not processed and are safe to retry.
	LastStreamID uint32
	// ErrCode is the HTTP/2 error code; 0 (NO_ERROR) is a graceful
	// shutdown, 11 (ENHANCE_YOUR_CALM) Tomcat's overhead protection.
	ErrCode http2.ErrCode
	// DebugData is the frame's opaque debug data (Tomcat puts a reason
	// there), a copy bounded by the client's MAX_FRAME_SIZE; nil if none.
	DebugData []byte
}

// GoAwayError fails a request that the server's GOAWAY left out: its
// stream was above LastStreamID or had not been sent yet. It matches
// ErrNotProcessed.
type GoAwayError struct {
	GoAway
	StreamID uint32 // zero when the stream was never opened
}

func (e *GoAwayError) Error() string {
	return fmt.Sprintf("h2c client: server sent GOAWAY (last stream %d, %v); stream %d not processed", e.LastStreamID, e.ErrCode, e.StreamID)
}

func (e *GoAwayError) Is(target error) bool { return target == ErrNotProcessed }

// StreamError is a stream reset with RST_STREAM: by the server, or by
// the client (Local) because the server broke the protocol on it. Code
// REFUSED_STREAM matches ErrNotProcessed. It unwraps to the equivalent
// http2.StreamError, so code classifying x/net's errors keeps working.
type StreamError struct {
	StreamID uint32
	Code     http2.ErrCode
	Local    bool
}

func (e *StreamError) Error() string {
	if e.Local {
		return fmt.Sprintf("h2c client: stream %d reset by client: server error %v", e.StreamID, e.Code)
	}
	return fmt.Sprintf("h2c client: stream %d reset by server: %v", e.StreamID, e.Code)
}

func (e *StreamError) Is(target error) bool {
	return target == ErrNotProcessed && e.Code == http2.ErrCodeRefusedStream
}

func (e *StreamError) Unwrap() error { return http2.StreamError{StreamID: e.StreamID, Code: e.Code} }

// ConnError is a connection ended by a protocol violation from the server
// (Sluice sent GOAWAY with Code), or by a read or write failure (Code is
// zero and Err says why).
type ConnError struct {
	Code   http2.ErrCode
	Reason string
	Err    error
}

func (e *ConnError) Error() string {
	switch {
	case e.Err != nil && e.Reason != "":
		return fmt.Sprintf("h2c client: connection failed: %s: %v", e.Reason, e.Err)
	case e.Err != nil:
		return fmt.Sprintf("h2c client: connection failed: %v", e.Err)
	}
	return fmt.Sprintf("h2c client: protocol error from server (%v): %s", e.Code, e.Reason)
}

func (e *ConnError) Unwrap() error { return e.Err }
