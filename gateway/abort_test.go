package gateway

import (
	"context"
	"io"
	"net"
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

// TestQueuedClientLeavingEndsWait: an HTTP/1.1 client that leaves while
// its request waits in the backend's queue ends that wait when its
// connection's watcher sees it go (the request's context tells the queue
// by a callback), long before the queue timeout, and leaves nothing
// queued; the slot freed later serves the next request.
func TestQueuedClientLeavingEndsWait(t *testing.T) {
	release := make(chan struct{})
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hold" {
			<-release
		}
	})
	gw, b := newGatewayBackend(t, up, upstream.H2C, upstream.QueueConfig{MaxPending: 10, Timeout: time.Minute})
	held := make(chan error, 1)
	go func() {
		resp, err := http.Get("http://" + gw + "/hold")
		if err == nil {
			resp.Body.Close()
		}
		held <- err
	}()
	until := func(what string, ok func() bool) {
		t.Helper()
		for end := time.Now().Add(10 * time.Second); !ok(); time.Sleep(time.Millisecond) {
			if time.Now().After(end) {
				t.Fatalf("still not %s after 10s", what)
			}
		}
	}
	until("holding the slot", func() bool { s := b.Stats().Servers; return len(s) == 1 && s[0].Active == 1 })
	c, err := net.Dial("tcp", gw)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, "GET /queued HTTP/1.1\r\nHost: x\r\n\r\n")
	until("queued", func() bool { return b.Stats().Pending == 1 })
	c.Close()
	until("out of the queue", func() bool { return b.Stats().Pending == 0 })
	close(release)
	if err := <-held; err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + gw + "/next")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("next request: %d", resp.StatusCode)
	}
}
