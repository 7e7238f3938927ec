package upstream

import (
	"bufio"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/gateway/gatewaytest"
)

func newTunnelBackend(t *testing.T, addr string, maxTunnels int) *Backend {
	t.Helper()
	b, err := New(Config{
		Name: "b", Protocol: Auto, Servers: []ServerConfig{{Address: addr}},
		H1: H1Config{MaxTunnels: maxTunnels}, Queue: QueueConfig{MaxPending: 10},
	}, NewMetrics(nil), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

func upgradeRequest(t *testing.T) *http.Request {
	req, _ := http.NewRequestWithContext(t.Context(), "GET", "http://b/ws", nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "echo")
	return req
}

// TestTunnelToH2CServer: an upgrade request to a server used over h2c gets
// an HTTP/1.1 connection of its own, which carries bytes both ways, is
// counted as a tunnel and not in the h2c pool, and closes with its body.
func TestTunnelToH2CServer(t *testing.T) {
	addr, open := gatewaytest.UpgradeOrigin(t)
	b := newTunnelBackend(t, addr, 0)
	// Detect h2c first with a plain request.
	res, err := b.RoundTrip(mustGet(t))
	if err != nil {
		t.Fatal(err)
	}
	proto, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if string(proto) != "HTTP/2.0" {
		t.Fatalf("plain request went over %s, want h2c", proto)
	}
	info := new(RequestInfo)
	res, err = b.RoundTripInfo(upgradeRequest(t), info)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status %d", res.StatusCode)
	}
	rwc, ok := res.Body.(io.ReadWriteCloser)
	if !ok {
		t.Fatalf("body %T is not writable", res.Body)
	}
	if _, err := io.WriteString(rwc, "hello"); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(rwc, buf); err != nil || string(buf) != "hello" {
		t.Fatalf("echo %q, %v", buf, err)
	}
	ss := b.Stats().Servers[0]
	if ss.Tunnels != 1 || ss.Conns != 1 || ss.Active != 0 || ss.Protocol != H2C {
		t.Errorf("with a tunnel open: %+v, want 1 tunnel, 1 h2c connection, 0 active", ss)
	}
	if info.Protocol != H1 || info.Server != addr {
		t.Errorf("info %+v", info)
	}
	rwc.Close()
	if n := b.Stats().Servers[0].Tunnels; n != 0 {
		t.Errorf("%d tunnels after Close", n)
	}
	gatewaytest.WaitFor(t, 5*time.Second, "the server to see the tunnel close", func() bool { return open.Load() == 0 })
}

func mustGet(t *testing.T) *http.Request {
	req, _ := http.NewRequestWithContext(t.Context(), "GET", "http://b/", nil)
	return req
}

// TestTunnelLimit: h1.max_tunnels bounds a server's tunnels; a slot frees
// when a tunnel closes.
func TestTunnelLimit(t *testing.T) {
	addr, _ := gatewaytest.UpgradeOrigin(t)
	b := newTunnelBackend(t, addr, 2)
	var bodies []io.Closer
	for range 2 {
		res, err := b.RoundTrip(upgradeRequest(t))
		if err != nil {
			t.Fatal(err)
		}
		bodies = append(bodies, res.Body)
	}
	if _, err := b.RoundTrip(upgradeRequest(t)); !errors.Is(err, ErrTunnelLimit) {
		t.Fatalf("third tunnel: %v, want ErrTunnelLimit", err)
	}
	bodies[0].Close()
	res, err := b.RoundTrip(upgradeRequest(t))
	if err != nil {
		t.Fatalf("after one closed: %v", err)
	}
	res.Body.Close()
	bodies[1].Close()
}

// TestTunnelClosedWithBackend: closing the backend (shutdown, or a reload
// removing it) closes its tunnels.
func TestTunnelClosedWithBackend(t *testing.T) {
	addr, open := gatewaytest.UpgradeOrigin(t)
	b := newTunnelBackend(t, addr, 0)
	res, err := b.RoundTrip(upgradeRequest(t))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b.Close()
	if _, err := bufio.NewReader(res.Body).ReadByte(); err == nil {
		t.Fatal("tunnel still readable after the backend closed")
	}
	gatewaytest.WaitFor(t, 5*time.Second, "the server to see the tunnel close", func() bool { return open.Load() == 0 })
}

// TestTunnelRefusedAnswer: an upgrade answered without 101 is an ordinary
// response whose Close frees the tunnel slot and connection.
func TestTunnelRefusedAnswer(t *testing.T) {
	addr, _ := gatewaytest.UpgradeOrigin(t)
	b := newTunnelBackend(t, addr, 1)
	for range 3 {
		req := upgradeRequest(t)
		req.Header.Set("Upgrade", "other")
		res, err := b.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		if res.StatusCode != 200 {
			t.Fatalf("status %d", res.StatusCode)
		}
		if _, ok := res.Body.(io.Writer); ok {
			t.Error("a refused upgrade's body is writable")
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
	}
	if n := b.Stats().Servers[0].Tunnels; n != 0 {
		t.Errorf("%d tunnels held", n)
	}
}

func TestIsUpgrade(t *testing.T) {
	tests := []struct {
		name string
		h    http.Header
		want bool
	}{
		{"websocket", http.Header{"Connection": {"keep-alive, Upgrade"}, "Upgrade": {"websocket"}}, true},
		{"no connection token", http.Header{"Upgrade": {"websocket"}}, false},
		{"no upgrade", http.Header{"Connection": {"upgrade"}}, false},
		{"h2c", http.Header{"Connection": {"Upgrade, HTTP2-Settings"}, "Upgrade": {"h2c"}}, false},
		{"empty", http.Header{"Connection": {"upgrade"}, "Upgrade": {""}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := IsUpgrade(tt.h); got != tt.want {
				t.Errorf("IsUpgrade(%v) = %v", tt.h, got)
			}
		})
	}
}

// TestRemovedServerKeepsItsTunnels: a reload that removes a server lets its
// open WebSockets carry on; the server closes once the last one ends.
func TestRemovedServerKeepsItsTunnels(t *testing.T) {
	addr, open := gatewaytest.UpgradeOrigin(t)
	other, _ := gatewaytest.UpgradeOrigin(t)
	b := newTunnelBackend(t, addr, 0)
	res, err := b.RoundTrip(upgradeRequest(t))
	if err != nil {
		t.Fatal(err)
	}
	rwc := res.Body.(io.ReadWriteCloser)
	if err := b.Update(Config{Protocol: Auto, Servers: []ServerConfig{{Address: other}}, Queue: QueueConfig{MaxPending: 10}}); err != nil {
		t.Fatal(err)
	}
	// The pool of the removed server is idle at once; its tunnel is not.
	gatewaytest.WaitFor(t, 5*time.Second, "the removed server's pool to close", func() bool {
		for _, ss := range b.Stats().Servers {
			if ss.Address == addr && ss.Conns > 0 {
				return false
			}
		}
		return true
	})
	if _, err := rwc.Write([]byte("x")); err != nil {
		t.Fatalf("tunnel write after the reload: %v", err)
	}
	if c, err := bufio.NewReader(rwc).ReadByte(); err != nil || c != 'x' {
		t.Fatalf("tunnel echo after the reload: %q, %v", c, err)
	}
	b.updateMu.Lock()
	retired := len(b.retired)
	b.updateMu.Unlock()
	if retired != 1 {
		t.Fatalf("%d retired servers while the tunnel is open, want 1", retired)
	}
	rwc.Close()
	waitRetired(t, b)
	gatewaytest.WaitFor(t, 5*time.Second, "the server to see the tunnel close", func() bool { return open.Load() == 0 })
}
