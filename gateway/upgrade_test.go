package gateway

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sluice-gw/sluice/gateway/gatewaytest"
	"github.com/sluice-gw/sluice/upstream"
)

// upgradeGateway serves a gateway in front of origin with backend protocol
// proto, and returns its address, the gateway and the backend.
func upgradeGateway(t *testing.T, origin, proto string) (string, *Gateway, *upstream.Backend) {
	t.Helper()
	b := newBackend(t, upstream.Config{
		Protocol: proto, Servers: []upstream.ServerConfig{{Address: origin}},
		Queue: upstream.QueueConfig{MaxPending: 10},
	})
	g, err := New(Config{Routes: []Route{{Backend: "b"}}}, map[string]http.RoundTripper{"b": b}, NewMetrics(nil), quiet())
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return serveOn(t, g, ln, false), g, b
}

// dialUpgrade sends an Upgrade: echo request on a new connection and
// returns the connection, its reader and the response.
func dialUpgrade(t *testing.T, addr string) (net.Conn, *bufio.Reader, *http.Response) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
	br := bufio.NewReader(c)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c, br, res
}

// TestUpgradeSplicedToH2CServer: a WebSocket-like upgrade through the
// gateway to a server used over h2c switches protocols and carries bytes
// both ways; the tunnel ends when the client leaves.
func TestUpgradeSplicedToH2CServer(t *testing.T) {
	origin, open := gatewaytest.UpgradeOrigin(t, "X-Origin: yes")
	addr, g, b := upgradeGateway(t, origin, upstream.Auto)
	// A plain request first: protocol detection finds h2c.
	plain, err := http.Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	proto, _ := io.ReadAll(plain.Body)
	plain.Body.Close()
	if string(proto) != "HTTP/2.0" {
		t.Fatalf("plain request reached the origin over %s", proto)
	}
	c, br, res := dialUpgrade(t, addr)
	if res.StatusCode != http.StatusSwitchingProtocols || res.Header.Get("Upgrade") != "echo" || res.Header.Get("X-Origin") != "yes" {
		t.Fatalf("answer %d %v", res.StatusCode, res.Header)
	}
	for _, msg := range []string{"hello", strings.Repeat("x", 100<<10)} {
		if _, err := io.WriteString(c, msg); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(br, got); err != nil || string(got) != msg {
			t.Fatalf("echo of %d bytes: %v", len(msg), err)
		}
	}
	if g.Tunnels() != 1 || b.Stats().Servers[0].Tunnels != 1 {
		t.Errorf("gateway tunnels %d, backend %+v", g.Tunnels(), b.Stats().Servers[0])
	}
	c.Close()
	gatewaytest.WaitFor(t, 5*time.Second, "the tunnel to close", func() bool {
		return g.Tunnels() == 0 && b.Stats().Servers[0].Tunnels == 0 && open.Load() == 0
	})
}

// TestUpgradeWrongTokenReleasesSlot pins issue 9 item 6: a 101 switching
// to another protocol than asked is refused with 502, and the upstream
// connection it came on is closed and its slot given back. ReverseProxy
// left both held for good.
func TestUpgradeWrongTokenReleasesSlot(t *testing.T) {
	var open atomic.Int64
	origin := gatewaytest.Listen(t, func(c net.Conn) {
		open.Add(1)
		defer open.Add(-1)
		defer c.Close()
		br := bufio.NewReader(c)
		if _, err := http.ReadRequest(br); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: wrong\r\nConnection: Upgrade\r\n\r\n")
		io.Copy(io.Discard, br) // hold the connection until the gateway closes it
	})
	addr, _, b := upgradeGateway(t, origin.String(), upstream.H1)
	for i := range 100 {
		c, _, res := dialUpgrade(t, addr)
		if res.StatusCode != http.StatusBadGateway {
			t.Fatalf("request %d: status %d, want 502", i, res.StatusCode)
		}
		c.Close()
	}
	gatewaytest.WaitFor(t, 5*time.Second, "every upstream connection to close", func() bool {
		return open.Load() == 0 && b.Stats().Servers[0].Tunnels == 0
	})
}

// pipeTunnel splices two net.Pipe pairs under ts and returns the client's
// and the server's far ends.
func pipeTunnel(ts *tunnels) (client, server net.Conn, done chan struct{}) {
	client, near := net.Pipe()
	back, server := net.Pipe()
	done = make(chan struct{})
	go func() {
		defer close(done)
		ts.splice(near, bufio.NewReader(near), back)
	}()
	return client, server, done
}

// TestTunnelIdleTimeout: a tunnel that carries no byte either way for the
// idle timeout is closed; one that keeps talking is not.
func TestTunnelIdleTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ts := &tunnels{idle: 10 * time.Second}
		client, server, done := pipeTunnel(ts)
		go io.Copy(server, server) // echo
		buf := make([]byte, 4)
		for range 5 {
			time.Sleep(8 * time.Second)
			client.Write([]byte("ping"))
			if _, err := io.ReadFull(client, buf); err != nil {
				t.Fatalf("tunnel closed while in use, after %v: %v", time.Since(time.Unix(946684800, 0)), err)
			}
		}
		start := time.Now()
		<-done
		if d := time.Since(start); d != 10*time.Second {
			t.Errorf("idle tunnel closed after %v, want 10s", d)
		}
		if _, err := client.Read(buf); err == nil {
			t.Error("client end still open")
		}
	})
}

// TestCloseTunnels: shutdown waits for tunnels up to its deadline, then
// closes those left; a tunnel ending by itself lets it finish sooner.
// Tunnels opened afterwards are closed at once.
func TestCloseTunnels(t *testing.T) {
	tests := []struct {
		name         string
		clientLeaves time.Duration // 0: the client stays
		deadline     time.Duration // 0: none
		wantErr      error
		wantAfter    time.Duration
	}{
		{name: "cut at the deadline", deadline: 30 * time.Second, wantErr: context.DeadlineExceeded, wantAfter: 30 * time.Second},
		{name: "returns when they end", clientLeaves: 5 * time.Second, wantAfter: 5 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				g := &Gateway{}
				g.tunnels.idle = time.Hour
				client, server, done := pipeTunnel(&g.tunnels)
				go io.Copy(io.Discard, server)
				synctest.Wait()
				if g.Tunnels() != 1 {
					t.Fatalf("%d tunnels", g.Tunnels())
				}
				if tt.clientLeaves > 0 {
					time.AfterFunc(tt.clientLeaves, func() { client.Close() })
				}
				ctx := t.Context()
				if tt.deadline > 0 {
					var cancel context.CancelFunc
					ctx, cancel = context.WithTimeout(ctx, tt.deadline)
					defer cancel()
				}
				start := time.Now()
				if err := g.CloseTunnels(ctx); !errors.Is(err, tt.wantErr) {
					t.Errorf("CloseTunnels: %v, want %v", err, tt.wantErr)
				}
				if d := time.Since(start); d != tt.wantAfter {
					t.Errorf("returned after %v, want %v", d, tt.wantAfter)
				}
				<-done
				_, _, done = pipeTunnel(&g.tunnels)
				<-done // closed at once
			})
		})
	}
}
