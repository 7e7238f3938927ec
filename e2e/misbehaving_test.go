package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/gateway/gatewaytest"
)

// Backends that misbehave must give the client a clear status within the
// configured timeouts and never hang the gateway.

// misbehavingServer accepts connections and either never answers
// (blackhole) or resets each connection after reading a little (reset).
func misbehavingServer(t *testing.T, mode string) int {
	t.Helper()
	return gatewaytest.Listen(t, func(c net.Conn) {
		buf := make([]byte, 4096)
		for {
			if _, err := c.Read(buf); err != nil {
				return
			}
			if mode == "reset" {
				c.(*net.TCPConn).SetLinger(0)
				c.Close()
				return
			}
		}
	}).Port
}

func TestMisbehavingBackendsGetClearStatusInTime(t *testing.T) {
	tests := []struct {
		mode       string
		wantStatus int
		// The answer comes within [notBefore, within] of sending the
		// request: a timeout is never cut short, and a loaded box may add
		// up to 2 s to it but never the client's 20 s.
		notBefore, within time.Duration
	}{
		{"blackhole", http.StatusGatewayTimeout, time.Second, 3 * time.Second}, // response_header: 1s
		{"reset", http.StatusBadGateway, 0, 2 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			port := misbehavingServer(t, tt.mode)
			cfg := fmt.Sprintf(`backends:
  %s:
    protocol: h1
    servers:
      - { address: %q }
    timeouts: { connect: 1s, response_header: 1s }
routes:
  - { host: "*", path_prefix: "/", backend: %s }
`, backendName, addr(port), backendName)
			s := startSluice(t, cfg)
			c := &http.Client{Timeout: 20 * time.Second}
			// Several at once: one stuck request must not hold up others.
			var wg sync.WaitGroup
			for i := range 10 {
				wg.Go(func() {
					start := time.Now()
					resp, err := c.Get(s.URL + "/")
					if err != nil {
						t.Errorf("request %d: %v (the gateway hung or dropped it)", i, err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					d := time.Since(start)
					if resp.StatusCode != tt.wantStatus {
						t.Errorf("request %d: status %d, want %d", i, resp.StatusCode, tt.wantStatus)
					}
					if d < tt.notBefore || d > tt.within {
						t.Errorf("request %d: answered after %v, want within [%v, %v]", i, d, tt.notBefore, tt.within)
					}
				})
			}
			wg.Wait()
			// The gateway itself still answers its admin endpoint.
			resp, err := c.Get("http://" + s.Admin + "/healthz")
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("admin /healthz after misbehaving backend: %v", err)
			}
			resp.Body.Close()
		})
	}
}
