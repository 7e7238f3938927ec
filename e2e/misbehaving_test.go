package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"
)

// Backends that misbehave must give the client a clear status within the
// configured timeouts and never hang the gateway.

// misbehavingServer accepts connections and either never answers
// (blackhole) or resets each connection after reading a little (reset).
func misbehavingServer(t *testing.T, mode string) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			go func() {
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
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	return ln.Addr().(*net.TCPAddr).Port
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
