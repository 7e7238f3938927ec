package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
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
		msg        string // prefix of the body line
	}{
		{"queue full", upstream.ErrQueueFull, false, http.StatusServiceUnavailable, `queue full (backend "b")`},
		{"queue timeout", fmt.Errorf("wrap: %w", upstream.ErrQueueTimeout), false, http.StatusServiceUnavailable, "queue timeout"},
		{"closed", upstream.ErrClosed, false, http.StatusServiceUnavailable, "shutting down"},
		{"tunnel limit", fmt.Errorf("%w in backend %q", upstream.ErrTunnelLimit, "b"), false, http.StatusServiceUnavailable, "tunnel limit reached"},
		{"client gone sentinel", upstream.ErrClientGone, false, StatusClientClosed, "client closed request"},
		{"client ctx done", errors.New("stream reset"), true, StatusClientClosed, "client closed request"},
		{"dial refused", &upstream.DialError{Addr: "a:1", Err: syscall.ECONNREFUSED}, false, http.StatusBadGateway, "upstream unreachable"},
		{"dial timeout is still 502", &upstream.DialError{Addr: "a:1", Err: os.ErrDeadlineExceeded}, false, http.StatusBadGateway, "upstream unreachable"},
		{"header timeout", &upstream.RoundTripError{Addr: "a:1", Err: timeoutErr{}}, false, http.StatusGatewayTimeout, "upstream timeout"},
		{"deadline", context.DeadlineExceeded, false, http.StatusGatewayTimeout, "upstream timeout"},
		{"reset", &upstream.RoundTripError{Addr: "a:1", Err: syscall.ECONNRESET}, false, http.StatusBadGateway, "bad gateway"},
		{"unknown", errors.New("boom"), false, http.StatusBadGateway, `bad gateway (backend "b")`},
		{"no healthy server", fmt.Errorf("%w in backend %q", upstream.ErrNoHealthyServer, "b"), false, http.StatusServiceUnavailable, `no healthy server in backend "b"`},
		{"no healthy server but client gone", upstream.ErrNoHealthyServer, true, StatusClientClosed, "client closed request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, msg := errorStatus(tt.err, tt.clientGone, "b")
			if got != tt.want {
				t.Errorf("status %d, want %d", got, tt.want)
			}
			if !strings.HasPrefix(msg, tt.msg) {
				t.Errorf("message %q, want it to start with %q", msg, tt.msg)
			}
		})
	}
}
