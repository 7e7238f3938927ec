package upstream

import (
	"bytes"
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"golang.org/x/net/http2"

	"github.com/sluice-gw/sluice/gateway/gatewaytest"
)

// TestWindowLeakRetiresConnection: a server that keeps the connection
// window of request bodies on streams it answered (as Tomcat does for
// bodies its servlet never read) gets its connection retired, counted
// and logged once; the next body, which no longer fits the old window,
// goes on a new connection, and the old one is closed once the request
// it still carries is done.
func TestWindowLeakRetiresConnection(t *testing.T) {
	checkNoLeak(t)
	fp := newFakePeer(t)
	// Answer each POST when its body has ended; never return credit.
	// A GET is held until release is closed.
	release, arrived := make(chan struct{}), make(chan struct{})
	fp.onHeaders = func(pc *peerConn, id uint32, method string) {
		if method != "POST" {
			close(arrived)
			go func() {
				<-release
				pc.respond(id, 200, "ok")
			}()
		}
	}
	fp.onData = func(pc *peerConn, f *http2.DataFrame) {
		if f.StreamEnded() {
			pc.respond(f.StreamID, 200, "ok")
		}
	}
	b, m, reg, logs := loggedBackend(t, fp.addr())
	post := func(n int) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "POST", "http://backend/upload", bytes.NewReader(make([]byte, n)))
		resp, err := b.RoundTrip(req)
		if err != nil {
			t.Fatalf("POST: %v", err)
		}
		resp.Body.Close()
		return resp.Header.Get("X-Conn")
	}
	// Three 8 KiB bodies and one of 24 KiB: 48 KiB of the default 64 KiB
	// window kept, over half only with the last; a GET in flight on the
	// connection from before the last.
	held := make(chan error, 1)
	for i, n := range []int{8 << 10, 8 << 10, 8 << 10, 24 << 10} {
		if i == 3 {
			go func() {
				_, _, err := get(context.Background(), b, "/held", nil)
				held <- err
			}()
			<-arrived
		}
		if c := post(n); c != "1" {
			t.Fatalf("POST on connection %s, want 1", c)
		}
	}
	leaks := m.leaks.WithLabelValues("b", fp.addr())
	gatewaytest.WaitFor(t, 5*time.Second, "the leak noticed", func() bool { return testutil.ToFloat64(leaks) == 1 })
	// 24 KiB no longer fits the first connection's window.
	if c := post(24 << 10); c != "2" {
		t.Fatalf("POST after the leak on connection %s, want 2", c)
	}
	if n := gathered(t, reg, "sluice_upstream_connection_requests").GetHistogram().GetSampleCount(); n != 0 {
		t.Fatalf("%d connections closed while the first carried a request", n)
	}
	close(release)
	if err := <-held; err != nil {
		t.Fatalf("GET held on the retired connection: %v", err)
	}
	gatewaytest.WaitFor(t, 5*time.Second, "the retired connection closed", func() bool {
		return gathered(t, reg, "sluice_upstream_connection_requests").GetHistogram().GetSampleCount() == 1
	})
	recs := logs.with(t, "upstream server keeps the send window of ended streams; connection retired")
	if len(recs) != 1 {
		t.Fatalf("%d log lines, want 1", len(recs))
	}
	r := recs[0]
	for k, v := range map[string]any{"level": "WARN", "server": fp.addr(), "kept_bytes": float64(48 << 10), "window_granted": float64(65535), "requests": float64(5)} {
		if r[k] != v {
			t.Errorf("%s = %v, want %v", k, r[k], v)
		}
	}
	if got := testutil.ToFloat64(leaks); got != 1 {
		t.Errorf("sluice_upstream_window_leaks_total = %v, want 1", got)
	}
}
