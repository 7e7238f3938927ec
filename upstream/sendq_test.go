package upstream

import (
	"context"
	"testing"
	"time"
)

// TestH1HeadsBySendQueue: a backend's HTTP/1.1 connections hand the heads
// of requests without a body to the backend's send queue (package sendq),
// and a request with a body writes its own; all are answered.
func TestH1HeadsBySendQueue(t *testing.T) {
	checkNoLeak(t)
	fs := newFakeServer(t, false, 0)
	b := newTestBackend(t, Config{
		Protocol: H1,
		Servers:  []ServerConfig{{Address: fs.addr()}},
		H1:       H1Config{ConnsPerServer: 2},
		Queue:    QueueConfig{MaxPending: 10, Timeout: 10 * time.Second},
	})
	if b.heads == nil {
		t.Skip("no send queue on this system")
	}
	for i := range 3 {
		if _, body, err := get(context.Background(), b, "/", nil); err != nil || body != "ok" {
			t.Fatalf("GET %d: %q %v", i, body, err)
		}
	}
	if body, err := post(b); err != nil || body != "ok" {
		t.Fatalf("POST with a body: %q %v", body, err)
	}
	if w := b.heads.Written(); w != 3 {
		t.Errorf("the send queue wrote %d heads, want 3 (the GETs)", w)
	}
}
