package runtime

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/cmd/sluice/internal/config"
	"github.com/sluice-gw/sluice/gateway/gatewaytest"
	"github.com/sluice-gw/sluice/upstream"
)

// These tests run serve itself in front of an httptest origin, to pin down
// what a draining gateway does on the wire: Go's http.Server behaviour
// during Shutdown is relied on, so it is checked rather than assumed.

// blockingOrigin is an h2c-capable origin whose /block requests wait for
// release; started receives one value per /block request that arrived.
type blockingOrigin struct {
	addr    string
	started chan struct{}
	release func()
}

func newBlockingOrigin(t *testing.T) *blockingOrigin {
	t.Helper()
	o := &blockingOrigin{started: make(chan struct{}, 16)}
	releaseCh := make(chan struct{})
	var once sync.Once
	o.release = func() { once.Do(func() { close(releaseCh) }) }
	o.addr = gatewaytest.Origin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/block" {
			o.started <- struct{}{}
			select {
			case <-releaseCh:
			case <-r.Context().Done():
				return
			}
			io.WriteString(w, "done")
			return
		}
		io.WriteString(w, "ok")
	}))
	t.Cleanup(o.release) // runs before the origin's Close, which waits for handlers
	return o
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

type running struct {
	listen, admin string
	cancel        context.CancelFunc
	done          chan struct{} // closed when serve returns
	err           error         // serve's result, once done is closed
}

// returned waits up to d for serve to return and reports whether it did.
func (r *running) returned(d time.Duration) bool {
	select {
	case <-r.done:
		return true
	case <-time.After(d):
		return false
	}
}

// runServe runs serve with cfg and load (nil: no reloads) until the test
// ends, and then fails the test unless serve returns within 10 s.
func runServe(t *testing.T, cfg *config.Config, load func() (*config.Config, error)) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{listen: cfg.Listen, admin: cfg.Admin, cancel: cancel, done: make(chan struct{})}
	go func() {
		r.err = serve(ctx, cfg, slog.New(slog.DiscardHandler), load)
		close(r.done)
	}()
	t.Cleanup(func() {
		cancel()
		if !r.returned(10 * time.Second) {
			t.Error("serve did not return")
		}
	})
	return r
}

// startServe runs serve with a quick-mode config for origin, changed by
// tweak, and waits until the client listener accepts and /healthz answers.
func startServe(t *testing.T, origin string, tweak func(*config.Config)) *running {
	t.Helper()
	cfg, err := config.Quick(freeAddr(t), freeAddr(t), upstream.H2C, []string{origin}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if tweak != nil {
		tweak(cfg)
	}
	r := runServe(t, cfg, nil)
	gatewaytest.WaitFor(t, 10*time.Second, "the gateway to be ready (/healthz 200, listen accepting)", func() bool {
		if code, _, err := adminGet(r.admin, "/healthz"); err != nil || code != http.StatusOK {
			return false
		}
		c, err := net.Dial("tcp", r.listen)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return r
}

func adminGet(admin, path string) (int, string, error) {
	c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get("http://" + admin + path)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// rawConn is an HTTP/1.1 keep-alive client connection driven by hand, so
// that the test sees exactly which headers come back and when it closes.
type rawConn struct {
	net.Conn
	br *bufio.Reader
}

func dialRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawConn{Conn: c, br: bufio.NewReader(c)}
}

func (c *rawConn) send(t *testing.T, path string) {
	t.Helper()
	if _, err := io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: app.example\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
}

func (c *rawConn) read(t *testing.T) (*http.Response, string) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		t.Fatalf("reading response: %v", err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("reading body: %v", err)
	}
	return resp, string(b)
}

// closedByPeer reports whether the server closed c within wait.
func (c *rawConn) closedByPeer(wait time.Duration) bool {
	c.SetReadDeadline(time.Now().Add(wait))
	_, err := c.br.ReadByte()
	return errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || (err != nil && strings.Contains(err.Error(), "reset"))
}

func TestGracefulShutdownDrains(t *testing.T) {
	origin := newBlockingOrigin(t)
	r := startServe(t, origin.addr, func(c *config.Config) { c.ShutdownGrace = 20 * time.Second })

	// An idle keep-alive connection: it has had its answer.
	idle := dialRaw(t, r.listen)
	idle.send(t, "/")
	if resp, body := idle.read(t); resp.StatusCode != 200 || body != "ok" || resp.Close {
		t.Fatalf("warm-up: %d %q close=%v", resp.StatusCode, body, resp.Close)
	}
	// An HTTP/1.1 request and an h2c request in flight when shutdown begins.
	busy := dialRaw(t, r.listen)
	busy.send(t, "/block")
	<-origin.started
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	h2 := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{Protocols: &p}}
	type result struct {
		code  int
		body  string
		proto string
		err   error
	}
	h2done := make(chan result, 1)
	go func() {
		resp, err := h2.Get("http://" + r.listen + "/block")
		if err != nil {
			h2done <- result{err: err}
			return
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		h2done <- result{resp.StatusCode, string(b), resp.Proto, err}
	}()
	<-origin.started

	r.cancel()

	// While requests run, the admin listener answers: not ready, metrics on.
	gatewaytest.WaitFor(t, 5*time.Second, "/readyz 503", func() bool {
		code, _, err := adminGet(r.admin, "/readyz")
		return err == nil && code == http.StatusServiceUnavailable
	})
	if code, body, err := adminGet(r.admin, "/metrics"); err != nil || code != 200 || !strings.Contains(body, "sluice_upstream_streams_active") {
		t.Errorf("/metrics while draining: %d %v", code, err)
	}
	// The listener is closed and idle connections with it.
	gatewaytest.WaitFor(t, 5*time.Second, "the listener to refuse", func() bool {
		c, err := net.DialTimeout("tcp", r.listen, time.Second)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	if !idle.closedByPeer(5 * time.Second) {
		t.Error("idle keep-alive connection not closed at shutdown")
	}
	if r.returned(0) {
		t.Fatalf("serve returned with requests in flight: %v", r.err)
	}

	origin.release()
	resp, body := busy.read(t)
	if resp.StatusCode != 200 || body != "done" {
		t.Errorf("in-flight HTTP/1.1 request: %d %q", resp.StatusCode, body)
	}
	// Go's server marks a response whose headers are written after
	// Shutdown began, so the client does not send another request on it.
	// (ReadResponse moves "Connection: close" of an HTTP/1.1 response into
	// Close and drops the header.)
	if !resp.Close || resp.ProtoMinor != 1 {
		t.Errorf("in-flight %s response without Connection: close", resp.Proto)
	}
	if !busy.closedByPeer(5 * time.Second) {
		t.Error("HTTP/1.1 connection left open after its last response")
	}
	if res := <-h2done; res.err != nil || res.code != 200 || res.body != "done" || res.proto != "HTTP/2.0" {
		t.Errorf("in-flight h2c request: %+v", res)
	}
	if !r.returned(5 * time.Second) {
		t.Fatal("serve did not return once requests finished")
	}
	if r.err != nil {
		t.Errorf("serve: %v", r.err)
	}
	if _, _, err := adminGet(r.admin, "/healthz"); err == nil {
		t.Error("admin listener still serving after serve returned")
	}
}

func TestShutdownGraceBoundsDrain(t *testing.T) {
	origin := newBlockingOrigin(t)
	const grace = 300 * time.Millisecond
	r := startServe(t, origin.addr, func(c *config.Config) { c.ShutdownGrace = grace })
	busy := dialRaw(t, r.listen)
	busy.send(t, "/block") // never released before the grace period ends
	<-origin.started
	start := time.Now()
	r.cancel()
	if !r.returned(5 * time.Second) {
		t.Fatal("serve outlived shutdown_grace")
	}
	if r.err != nil {
		t.Errorf("serve: %v", r.err)
	}
	if d := time.Since(start); d < grace {
		t.Errorf("serve returned after %v, before shutdown_grace %v", d, grace)
	}
	if !busy.closedByPeer(5 * time.Second) {
		t.Error("request still running past shutdown_grace was not cut")
	}
}

func TestErrorPagesWired(t *testing.T) {
	// Nothing listens: a request that dials itself gets 502, one that
	// comes after the server was found unreachable (down) gets 503.
	dead := freeAddr(t)
	pages := map[int]config.ErrorPage{}
	for _, code := range []int{502, 503} {
		page := filepath.Join(t.TempDir(), fmt.Sprintf("%d.html", code))
		body := fmt.Sprintf("<h1>down %d</h1>", code)
		if err := os.WriteFile(page, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		pages[code] = config.ErrorPage{Path: page, Body: []byte(body)}
	}
	r := startServe(t, dead, func(c *config.Config) { c.ErrorPages = pages })
	resp, err := http.Get("http://" + r.listen + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	page, ok := pages[resp.StatusCode]
	if !ok || string(body) != string(page.Body) || resp.Header.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Errorf("got %d %q %q", resp.StatusCode, body, resp.Header.Get("Content-Type"))
	}
}
