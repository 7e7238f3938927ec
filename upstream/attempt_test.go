package upstream

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/gateway/gatewaytest"
)

// TestEarlyCloseOverH2CDoesNotWait: closing an h2c response body before
// its end returns at once (the connection's reader drops the rest), and
// the server, still writing, sees no reset within abortGrace. A blocking
// drain would hold Close until the server finished or abortGrace ran out.
func TestEarlyCloseOverH2CDoesNotWait(t *testing.T) {
	checkNoLeak(t)
	release := make(chan struct{})
	result := make(chan error, 1)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "first")
		w.(http.Flusher).Flush()
		<-release
		chunk := make([]byte, 1024)
		for range 20 {
			if _, err := w.Write(chunk); err != nil {
				result <- err
				return
			}
			w.(http.Flusher).Flush()
		}
		result <- r.Context().Err()
	}))
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	srv.Config.Protocols = &p
	srv.Start()
	t.Cleanup(srv.Close)
	b := newTestBackend(t, Config{Protocol: H2C, Servers: []ServerConfig{{Address: srv.Listener.Addr().String()}}})

	req, _ := http.NewRequestWithContext(context.Background(), "GET", "http://backend/", nil)
	resp, err := b.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(resp.Body, buf); err != nil {
		t.Fatal(err)
	}
	closed := make(chan struct{})
	go func() {
		resp.Body.Close()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(abortGrace / 2):
		// The server is still held: only a drain waits here.
		close(release)
		<-closed
		t.Fatal("Close waited for the rest of the response")
	}
	close(release)
	if err := <-result; err != nil {
		t.Errorf("the server saw %v while finishing its response", err)
	}
	// The stream ended, so the connection's slot is free again.
	pl := b.cur().servers[0].cur.Load()
	gatewaytest.WaitFor(t, 5*time.Second, "stream slot freed", func() bool {
		pl.mu.Lock()
		defer pl.mu.Unlock()
		return len(pl.conns) == 1 && pl.conns[0].cc.InFlight() == 0
	})
}
