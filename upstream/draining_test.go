package upstream

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
)

// TestDrainingAnswerIsRetried: Tomcat stopping without
// gracefulStopAwaitMillis sends GOAWAY, then answers 404 on the open
// connection while its webapps stop. An idempotent request so answered is
// sent once more to another server; other answers, other methods and
// servers not shutting down pass through.
func TestDrainingAnswerIsRetried(t *testing.T) {
	tests := []struct {
		name      string
		method    string
		status    int
		goAway    bool
		retries   int
		wantCode  int
		wantRetry float64
	}{
		{"404 after GOAWAY", "GET", 404, true, 2, 200, 1},
		{"503 after GOAWAY", "HEAD", 503, true, 2, 200, 1},
		{"PUT with a buffered body", "PUT", 404, true, 2, 200, 1},
		{"404 without GOAWAY", "GET", 404, false, 2, 404, 0},
		{"500 after GOAWAY", "GET", 500, true, 2, 500, 0},
		{"POST after GOAWAY", "POST", 404, true, 2, 404, 0},
		{"retries off", "GET", 404, true, 0, 404, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkNoLeak(t)
			stopping, healthy := newFakePeer(t), newFakePeer(t)
			var hits atomic.Int32
			stopping.onHeaders = func(pc *peerConn, id uint32, method string) {
				hits.Add(1)
				if tt.goAway {
					pc.goAway(1<<31 - 1) // Tomcat's first, graceful GOAWAY
				}
				pc.respond(id, tt.status, "Not here any more")
			}
			b, m := newPeerBackend(t, stopping, func(c *Config) {
				// The stopping server first: round robin starts there.
				c.Servers = append(c.Servers, ServerConfig{Address: healthy.addr()})
				c.Retries = tt.retries
			})
			var body *strings.Reader
			req, _ := http.NewRequestWithContext(context.Background(), tt.method, "http://b/", nil)
			if tt.method == "PUT" || tt.method == "POST" {
				body = strings.NewReader("payload")
				req, _ = http.NewRequestWithContext(context.Background(), tt.method, "http://b/", body)
			}
			resp, err := b.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if hits.Load() != 1 {
				t.Fatalf("the stopping server saw %d requests, want the first", hits.Load())
			}
			if resp.StatusCode != tt.wantCode {
				t.Errorf("status %d, want %d", resp.StatusCode, tt.wantCode)
			}
			if got := retries(m, retryDraining); got != tt.wantRetry {
				t.Errorf("draining retries = %v, want %v", got, tt.wantRetry)
			}
		})
	}
}

// TestRemovedServerAnswerIsRetried: a 404 from a server a reload removed
// while the request ran is retried on a server of the new configuration.
func TestRemovedServerAnswerIsRetried(t *testing.T) {
	checkNoLeak(t)
	old, next := newFakePeer(t), newFakePeer(t)
	arrived, answer := make(chan struct{}), make(chan struct{})
	old.onHeaders = func(pc *peerConn, id uint32, method string) {
		close(arrived)
		<-answer
		pc.respond(id, 404, "gone")
	}
	b, m := newPeerBackend(t, old, func(c *Config) {
		c.Servers = append(c.Servers, ServerConfig{Address: next.addr()})
	})
	type result struct {
		code int
		err  error
	}
	done := make(chan result, 1)
	go func() {
		resp, _, err := get(context.Background(), b, "/", nil)
		if err != nil {
			done <- result{err: err}
			return
		}
		done <- result{code: resp.StatusCode}
	}()
	<-arrived
	cfg := b.cur().cfg
	cfg.Servers = []ServerConfig{{Address: next.addr()}}
	if err := b.Update(cfg); err != nil {
		t.Fatal(err)
	}
	close(answer)
	r := <-done
	if r.err != nil || r.code != 200 {
		t.Fatalf("request answered by the removed server: %d %v, want 200 from the other", r.code, r.err)
	}
	if got := retries(m, retryDraining); got != 1 {
		t.Errorf("draining retries = %v, want 1", got)
	}
}
