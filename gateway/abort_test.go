package gateway

import (
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/upstream"
)

// TestClientAbortDoesNotResetUpstreamStream pins the abort strategy: a
// client leaving mid-response must not send RST_STREAM upstream (Tomcat
// counts resets towards killing the shared connection); the short response
// is drained instead.
func TestClientAbortDoesNotResetUpstreamStream(t *testing.T) {
	reset := make(chan bool, 1)
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "first")
		w.(http.Flusher).Flush()
		// Keep streaming after the client left, so the gateway's writes
		// to it fail while the upstream response is still unfinished.
		chunk := make([]byte, 1024)
		for range 30 {
			time.Sleep(10 * time.Millisecond) // paces the stream past the client's abort
			w.Write(chunk)
			w.(http.Flusher).Flush()
		}
		// The server learns of a reset through the request context.
		select {
		case <-r.Context().Done():
			reset <- true
		case <-time.After(200 * time.Millisecond):
			reset <- false
		}
	})
	gw := newGateway(t, up, upstream.QueueConfig{MaxPending: 10})
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+gw+"/", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5)
	io.ReadFull(resp.Body, buf)
	cancel()
	resp.Body.Close()
	if <-reset {
		t.Error("upstream stream was reset when the client left")
	}
}

// TestStuckUpstreamIsResetAfterClientLeaves: the grace period is bounded,
// so a request that never finishes does not hold its stream forever.
func TestStuckUpstreamIsResetAfterClientLeaves(t *testing.T) {
	reset := make(chan struct{})
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
		close(reset)
	})
	gw := newGateway(t, up, upstream.QueueConfig{MaxPending: 10})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+gw+"/", nil)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
	}
	select {
	case <-reset:
	case <-time.After(5 * time.Second):
		t.Fatal("stuck upstream request never reset after the client left")
	}
}
