package upstream

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/gateway/gatewaytest"
)

// TestH1ServerClosingConnections pins the fallback pool's behaviour when the
// server ends keep-alive (Tomcat's maxKeepAliveRequests, Connection: close):
// every connection is replaced (ahead of need: TestH1ReplacementDialledAhead)
// and no request fails.
func TestH1ServerClosingConnections(t *testing.T) {
	checkNoLeak(t)
	var n, conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1)%3 == 0 {
			w.Header().Set("Connection", "close")
		}
		io.WriteString(w, "ok")
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	b := newTestBackend(t, Config{
		Protocol: H1,
		Servers:  []ServerConfig{{Address: srv.Listener.Addr().String()}},
		H1:       H1Config{ConnsPerServer: 2},
		Queue:    QueueConfig{MaxPending: 10},
	})
	for i := range 30 {
		_, body, err := get(context.Background(), b, "/", nil)
		if err != nil || body != "ok" {
			t.Fatalf("request %d: %q %v", i, body, err)
		}
	}
	// Every third response closed its connection: 10 closes, so about 10
	// connections in all, and never more than the cap open at once.
	if c := conns.Load(); c < 10 || c > 12 {
		t.Errorf("server saw %d connections, want about 10", c)
	}
	gatewaytest.WaitFor(t, 5*time.Second, "closed connections swept", func() bool { return b.Stats().Servers[0].Conns <= 2 })
}

func TestH1IdleConnectionsClosedMRUFirstReuse(t *testing.T) {
	checkNoLeak(t)
	fs := newFakeServer(t, false, 0)
	b := newTestBackend(t, Config{
		Protocol: H1,
		Servers:  []ServerConfig{{Address: fs.addr()}},
		H1:       H1Config{ConnsPerServer: 4, IdleTimeout: 300 * time.Millisecond},
		Queue:    QueueConfig{MaxPending: 10},
	})
	// Two concurrent requests open two connections.
	done := make(chan error, 2)
	for range 2 {
		go func() { _, _, err := get(context.Background(), b, "/sleep", nil); done <- err }()
	}
	for range 2 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if c := b.Stats().Servers[0].Conns; c != 2 {
		t.Fatalf("%d connections open, want 2", c)
	}
	// Sequential requests reuse the most recently used connection, so the
	// other one idles out while this one keeps working.
	deadline := time.Now().Add(5 * time.Second)
	for b.Stats().Servers[0].Conns > 1 {
		if _, _, err := get(context.Background(), b, "/", nil); err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatal("idle connection never closed")
		}
		time.Sleep(20 * time.Millisecond) // paces the requests: the other connection must idle meanwhile
	}
	if c := fs.conns.Load(); c != 2 {
		t.Errorf("server saw %d connections, want 2 (no churn)", c)
	}
	gatewaytest.WaitFor(t, 5*time.Second, "last connection idles out", func() bool { return b.Stats().Servers[0].Conns == 0 })
}
