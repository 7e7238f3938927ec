package upstream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"testing/iotest"

	"golang.org/x/net/http2"

	"github.com/sluice-gw/sluice/h2c/client"
)

func TestRetryReason(t *testing.T) {
	refused := &client.StreamError{StreamID: 1, Code: http2.ErrCodeRefusedStream}
	goAway := &client.GoAwayError{StreamID: 3}
	reset := &client.StreamError{StreamID: 1, Code: http2.ErrCodeInternal}
	broken := errors.New("broken pipe")
	wrap := func(err error) error { return &RoundTripError{Addr: "a:1", Protocol: H2C, Err: err} }
	tests := []struct {
		name                          string
		err                           error
		wrote, idempotent, replayable bool
		want                          string
	}{
		{"refused stream, replayable", wrap(refused), true, false, true, retryRefused},
		{"refused stream, body not replayable", wrap(refused), true, true, false, ""},
		{"goaway left it out", wrap(goAway), true, false, true, retryGoAway},
		{"goaway, body not replayable", wrap(goAway), true, false, false, ""},
		{"never written: any method, any body", wrap(broken), false, false, false, retryNotSent},
		{"never written, timed out, body not replayable", wrap(ErrResponseHeaderTimeout), false, true, false, ""},
		{"never written, timed out, replayable", wrap(ErrResponseHeaderTimeout), false, false, true, retryNotSent},
		{"written, idempotent, replayable", wrap(reset), true, true, true, retryIdempotent},
		{"written, not idempotent", wrap(reset), true, false, true, ""},
		{"written, idempotent, body not replayable", wrap(reset), true, true, false, ""},
		{"written, idempotent, timed out", wrap(ErrResponseHeaderTimeout), true, true, true, ""},
		{"written, idempotent, deadline exceeded", wrap(os.ErrDeadlineExceeded), true, true, true, ""},
		{"client gone", fmt.Errorf("%w: %w", ErrClientGone, broken), false, true, true, ""},
		{"canceled", wrap(context.Canceled), false, true, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := retryReason(tt.err, tt.wrote, tt.idempotent, tt.replayable); got != tt.want {
				t.Errorf("retryReason = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestPrepareReplay(t *testing.T) {
	const limit = 8
	tests := []struct {
		name       string
		body       io.Reader // nil: no body
		length     int64     // Content-Length; -1 unknown
		replayable bool
		buffered   bool // a replay was kept
		closed     bool // the caller's body was closed (read whole)
		readErr    bool
	}{
		{"no body", nil, 0, true, false, false, false},
		{"known length within the limit", strings.NewReader("hello"), 5, true, true, true, false},
		{"known length at the limit", strings.NewReader("12345678"), 8, true, true, true, false},
		{"known length past the limit: streamed", strings.NewReader("123456789"), 9, false, false, false, false},
		{"unknown length within the limit", strings.NewReader("hello"), -1, true, true, true, false},
		{"unknown length past the limit: streamed whole", strings.NewReader("0123456789abc"), -1, false, false, false, false},
		{"read error", iotest.ErrReader(errors.New("client reset")), 5, false, false, false, true},
		{"short body", strings.NewReader("hi"), 5, false, false, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var want string
			var body *closeRecorder
			req, _ := http.NewRequest("PUT", "http://backend/", nil)
			if tt.body != nil {
				if sr, ok := tt.body.(*strings.Reader); ok {
					b := make([]byte, sr.Len())
					sr.ReadAt(b, 0)
					want = string(b)
				}
				body = &closeRecorder{Reader: tt.body}
				req.Body = body
			}
			req.ContentLength = tt.length
			rp, first, replayable, err := readReplay(req, limit, nil)
			if tt.readErr {
				if err == nil {
					t.Fatal("no error for a body that fails")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if replayable != tt.replayable || (rp != nil) != tt.buffered {
				t.Fatalf("replayable %v, buffered %v; want %v, %v", replayable, rp != nil, tt.replayable, tt.buffered)
			}
			if req.Body != body && !(body == nil && req.Body == nil) {
				t.Errorf("the caller's body was replaced by %T", req.Body)
			}
			if body != nil && body.closed != tt.closed {
				t.Errorf("caller's body closed %v, want %v", body.closed, tt.closed)
			}
			if tt.body == nil {
				if first != nil {
					t.Errorf("first body %T for a request without one", first)
				}
				return
			}
			// The first attempt gets the whole body; a replay gets it again.
			if got, _ := io.ReadAll(first); string(got) != want {
				t.Errorf("first attempt sends %q, want %q", got, want)
			}
			if rp != nil {
				if got, _ := io.ReadAll(rp.body()); string(got) != want {
					t.Errorf("replay sends %q, want %q", got, want)
				}
			}
		})
	}
}

// closeRecorder is a request body that records Close.
type closeRecorder struct {
	io.Reader
	closed bool
}

func (c *closeRecorder) Close() error {
	c.closed = true
	return nil
}
