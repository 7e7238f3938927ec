package upstream

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/gateway/gatewaytest"
	h1client "github.com/sluice-gw/sluice/h1compat/client"
)

// rawH1Server is an HTTP/1.1 server on a socket of its own: serve runs
// on each accepted connection, numbered from 1.
func rawH1Server(t *testing.T, serve func(n int64, nc net.Conn, br *bufio.Reader)) (addr string, conns *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	conns = new(atomic.Int64)
	done := make(chan struct{})
	t.Cleanup(func() { ln.Close(); <-done })
	go func() {
		defer close(done)
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			nc.SetDeadline(time.Now().Add(10 * time.Second))
			n := conns.Add(1)
			go func() {
				defer nc.Close()
				serve(n, nc, bufio.NewReader(nc))
			}()
		}
	}()
	return ln.Addr().String(), conns
}

func answerOK(nc net.Conn, br *bufio.Reader) bool {
	req, err := http.ReadRequest(br)
	if err != nil {
		return false
	}
	io.Copy(io.Discard, req.Body)
	_, err = io.WriteString(nc, "HTTP/1.1 200 \r\nContent-Length: 2\r\n\r\nok")
	return err == nil
}

func post(b *Backend) (string, error) {
	req, _ := http.NewRequest("POST", "http://backend/", strings.NewReader("a=1"))
	resp, err := b.RoundTrip(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return string(body), err
}

// closesFirstIdle is a server whose first connection answers one request
// and is closed once idle (closed then receives), with no Connection:
// close: the client learns it from the socket. Later connections answer
// every request.
func closesFirstIdle(t *testing.T) (addr string, conns *atomic.Int64, closed <-chan struct{}) {
	ch := make(chan struct{}, 1)
	addr, conns = rawH1Server(t, func(n int64, nc net.Conn, br *bufio.Reader) {
		if n == 1 {
			answerOK(nc, br)
			nc.Close()
			ch <- struct{}{}
			return
		}
		for answerOK(nc, br) {
		}
	})
	return addr, conns, ch
}

// TestH1ServerClosedIdleConnection: a keep-alive connection the server
// closed while it idled (Tomcat's keepAliveTimeout, a restart) is found
// before a request is written to it, so even a POST, which may not be
// retried, goes out on a new connection and succeeds.
func TestH1ServerClosedIdleConnection(t *testing.T) {
	checkNoLeak(t)
	addr, conns, closed := closesFirstIdle(t)
	b := newTestBackend(t, Config{
		Protocol: H1, Servers: []ServerConfig{{Address: addr}},
		H1: H1Config{ConnsPerServer: 1}, Queue: QueueConfig{MaxPending: 10},
	})
	if body, err := post(b); err != nil || body != "ok" {
		t.Fatalf("first POST: %q %v", body, err)
	}
	<-closed
	if body, err := post(b); err != nil || body != "ok" {
		t.Fatalf("POST after the server closed the idle connection: %q %v", body, err)
	}
	if c := conns.Load(); c != 2 {
		t.Errorf("server saw %d connections, want 2", c)
	}
}

// TestH1ServerClosedIdleConnectionReaped: the pool drops a connection the
// server closed while it idled without waiting for a request to find it.
func TestH1ServerClosedIdleConnectionReaped(t *testing.T) {
	checkNoLeak(t)
	addr, _ := rawH1Server(t, func(_ int64, nc net.Conn, br *bufio.Reader) { answerOK(nc, br) })
	b := newTestBackend(t, Config{
		Protocol: H1, Servers: []ServerConfig{{Address: addr}},
		H1: H1Config{ConnsPerServer: 2}, Queue: QueueConfig{MaxPending: 10},
	})
	if _, body, err := get(context.Background(), b, "/", nil); err != nil || body != "ok" {
		t.Fatalf("GET: %q %v", body, err)
	}
	gatewaytest.WaitFor(t, 5*time.Second, "the closed connection to leave the pool", func() bool { return b.Stats().Servers[0].Conns == 0 })
}

// TestH1ClosedUnderRequestRetry: a connection the server closes once it
// has read a request, before any byte of answer, fails that request with
// an error classified as net/http's was: the request was written and may
// have been seen, so an idempotent one is sent again on another
// connection and a POST is not.
func TestH1ClosedUnderRequestRetry(t *testing.T) {
	checkNoLeak(t)
	var drop atomic.Bool
	addr, conns := rawH1Server(t, func(_ int64, nc net.Conn, br *bufio.Reader) {
		for {
			req, err := http.ReadRequest(br)
			if err != nil || drop.CompareAndSwap(true, false) {
				return // closes without answering
			}
			io.Copy(io.Discard, req.Body)
			if _, err := io.WriteString(nc, "HTTP/1.1 200 \r\nContent-Length: 2\r\n\r\nok"); err != nil {
				return
			}
		}
	})
	b := newTestBackend(t, Config{
		Protocol: H1, Servers: []ServerConfig{{Address: addr}},
		H1: H1Config{ConnsPerServer: 1}, Queue: QueueConfig{MaxPending: 10}, Retries: 1,
	})
	if _, body, err := get(context.Background(), b, "/", nil); err != nil || body != "ok" {
		t.Fatalf("warm-up GET: %q %v", body, err)
	}
	drop.Store(true)
	if _, body, err := get(context.Background(), b, "/", nil); err != nil || body != "ok" {
		t.Fatalf("GET closed under: %q %v, want it sent again on a new connection", body, err)
	}
	if c := conns.Load(); c != 2 {
		t.Fatalf("server saw %d connections, want 2", c)
	}
	drop.Store(true)
	_, err := post(b)
	var rte *RoundTripError
	if !errors.As(err, &rte) || !errors.Is(err, h1client.ErrServerClosed) {
		t.Fatalf("POST closed under: %v, want a RoundTripError for ErrServerClosed, not retried", err)
	}
	if c := conns.Load(); c != 2 {
		t.Errorf("server saw %d connections, want 2 (the POST not sent again)", c)
	}
}

// TestH1IdleClosedWithoutPeek: a request that is sent again if its
// connection turns out closed (no body, idempotent method, a retry left)
// skips the connection's liveness peek; on a keep-alive connection the
// server closed while it idled it is sent again at once on a new
// connection, the client sees no error, and it counts as a retry for
// idle_closed, not as a failure of the server (which one failure would
// eject here). Any other request is still checked by the peek, and meets
// no closed connection.
func TestH1IdleClosedWithoutPeek(t *testing.T) {
	for _, tt := range []struct {
		name       string
		method     string
		retries    int
		wantRetrys float64 // sluice_retries_total{reason="idle_closed"}
	}{
		{"GET", "GET", 1, 1},
		{"OPTIONS", "OPTIONS", 2, 1},
		{"GET without retries", "GET", 0, 0},
		{"POST", "POST", 2, 0},
		{"PUT with a body", "PUT", 2, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			checkNoLeak(t)
			addr, conns, closed := closesFirstIdle(t)
			m := NewMetrics(nil)
			b := newBackendWith(t, Config{
				Name: "b", Protocol: H1, Servers: []ServerConfig{{Address: addr}},
				H1: H1Config{ConnsPerServer: 1}, Queue: QueueConfig{MaxPending: 10}, Retries: tt.retries,
				Passive: PassiveConfig{ConsecutiveFailures: 1, MaxEjectedPercent: 100},
			}, m, quietLog())
			send := func() (string, error) {
				var body io.Reader
				if tt.method == "PUT" {
					body = strings.NewReader("a=1")
				}
				req, _ := http.NewRequest(tt.method, "http://backend/", body)
				resp, err := b.RoundTrip(req)
				if err != nil {
					return "", err
				}
				defer resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					return "", fmt.Errorf("status %d", resp.StatusCode)
				}
				_, err = io.Copy(io.Discard, resp.Body)
				return resp.Status, err
			}
			if _, err := send(); err != nil {
				t.Fatalf("first %s: %v", tt.method, err)
			}
			<-closed
			if _, err := send(); err != nil {
				t.Fatalf("%s after the server closed the idle connection: %v", tt.method, err)
			}
			if c := conns.Load(); c != 2 {
				t.Errorf("server saw %d connections, want 2", c)
			}
			if got := retries(m, retryReusedClosed); got != tt.wantRetrys {
				t.Errorf("idle_closed retries = %v, want %v", got, tt.wantRetrys)
			}
			st := b.Stats().Servers[0]
			if st.Errors != 0 || st.State != "up" {
				t.Errorf("server errors %d, state %q: want 0, up (a closed idle connection is no failure of the server)", st.Errors, st.State)
			}
		})
	}
}
