package upstream

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
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

// TestSuspectAfterGoAwayOnAnotherConnection: Tomcat pausing its connector
// may send GOAWAY on one connection only, then answer 404 on another while
// its webapps stop. Such a 404 is retried on another server too: a 404 or
// 503 from a server one of whose connections got GOAWAY a moment ago is
// suspect on any of its connections.
func TestSuspectAfterGoAwayOnAnotherConnection(t *testing.T) {
	checkNoLeak(t)
	stopping, healthy := newFakePeer(t), newFakePeer(t)
	var hits, notFound atomic.Int32
	stopping.onHeaders = func(pc *peerConn, id uint32, method string) {
		if hits.Add(1) == 1 {
			pc.goAway(1<<31 - 1) // on this connection only
			pc.respond(id, 200, "ok")
			return
		}
		notFound.Add(1)
		pc.respond(id, 404, "Not here any more") // on a connection without GOAWAY
	}
	b, m := newPeerBackend(t, stopping, func(c *Config) {
		c.Servers = append(c.Servers, ServerConfig{Address: healthy.addr()})
	})
	for i := 0; notFound.Load() == 0; i++ {
		if i == 10 {
			t.Fatalf("the stopping server got %d requests in 10, none on a second connection", hits.Load())
		}
		resp, _, err := get(context.Background(), b, "/", nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 200 {
			t.Fatalf("request %d: status %d, want 200", i, resp.StatusCode)
		}
	}
	if got := retries(m, retryDraining); got != 1 {
		t.Errorf("draining retries = %v, want 1", got)
	}
}

// TestSuspectAnswerWindow: a sibling connection's GOAWAY makes 404 and 503
// suspect for goAwaySuspect; other statuses, or later, are the
// application's.
func TestSuspectAnswerWindow(t *testing.T) {
	now := time.Now()
	tests := []struct {
		name   string
		status int
		goAway time.Duration // how long ago a sibling got GOAWAY; 0: never
		want   bool
	}{
		{"404, no GOAWAY", 404, 0, false},
		{"404 just after a sibling's GOAWAY", 404, 50 * time.Millisecond, true},
		{"503 just after a sibling's GOAWAY", 503, 50 * time.Millisecond, true},
		{"500 just after a sibling's GOAWAY", 500, 50 * time.Millisecond, false},
		{"404 long after a sibling's GOAWAY", 404, goAwaySuspect + time.Second, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &Server{}
			c := &pconn{pool: &pool{cfg: poolConfig{server: s}}}
			if tt.goAway > 0 {
				s.goAwayAt.Store(now.Add(-tt.goAway).UnixNano())
			}
			if got := suspectAnswer(tt.status, c, now); got != tt.want {
				t.Errorf("suspectAnswer = %v, want %v", got, tt.want)
			}
		})
	}
}
