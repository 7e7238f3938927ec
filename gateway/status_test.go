package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"syscall"
	"testing"

	"github.com/sluice-gw/sluice/upstream"
)

type timeoutErr struct{}

func (timeoutErr) Error() string { return "timeout awaiting response headers" }
func (timeoutErr) Timeout() bool { return true }

func TestErrorStatus(t *testing.T) {
	tests := []struct {
		name       string
		err        error
		clientGone bool
		want       int
	}{
		{"queue full", upstream.ErrQueueFull, false, http.StatusServiceUnavailable},
		{"queue timeout", fmt.Errorf("wrap: %w", upstream.ErrQueueTimeout), false, http.StatusServiceUnavailable},
		{"closed", upstream.ErrClosed, false, http.StatusServiceUnavailable},
		{"client gone sentinel", upstream.ErrClientGone, false, StatusClientClosed},
		{"client ctx done", errors.New("stream reset"), true, StatusClientClosed},
		{"dial refused", &upstream.DialError{Addr: "a:1", Err: syscall.ECONNREFUSED}, false, http.StatusBadGateway},
		{"dial timeout is still 502", &upstream.DialError{Addr: "a:1", Err: os.ErrDeadlineExceeded}, false, http.StatusBadGateway},
		{"header timeout", &upstream.RoundTripError{Addr: "a:1", Err: timeoutErr{}}, false, http.StatusGatewayTimeout},
		{"deadline", context.DeadlineExceeded, false, http.StatusGatewayTimeout},
		{"reset", &upstream.RoundTripError{Addr: "a:1", Err: syscall.ECONNRESET}, false, http.StatusBadGateway},
		{"unknown", errors.New("boom"), false, http.StatusBadGateway},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, msg := errorStatus(tt.err, tt.clientGone)
			if got != tt.want {
				t.Errorf("status %d, want %d", got, tt.want)
			}
			if msg == "" {
				t.Error("empty message")
			}
		})
	}
}
