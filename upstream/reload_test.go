package upstream

import (
	"context"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/gateway/gatewaytest"
)

func TestUpdateKeepsWarmConnections(t *testing.T) {
	checkNoLeak(t)
	a := newFakeServer(t, true, 0)
	c := newFakeServer(t, true, 0)
	cfg := Config{
		Name: "b", Protocol: H2C,
		Servers:               []ServerConfig{{Address: a.addr()}},
		Queue:                 QueueConfig{MaxPending: 10},
		ResponseHeaderTimeout: time.Second,
	}
	b := newTestBackend(t, cfg)
	if _, _, err := get(context.Background(), b, "/", nil); err != nil {
		t.Fatal(err)
	}
	// Add a server and change a timeout.
	cfg.Servers = append(cfg.Servers, ServerConfig{Address: c.addr()})
	cfg.ResponseHeaderTimeout = 2 * time.Second
	if err := b.Update(cfg); err != nil {
		t.Fatal(err)
	}
	// The added server is warmed in the background, and until its
	// connection is up requests go to the warm one (a server with no free
	// slot never blocks a request another can take): wait for the warm-up
	// rather than assume it beats the requests below.
	waitWarm(t, b)
	for range 20 {
		if _, _, err := get(context.Background(), b, "/", nil); err != nil {
			t.Fatal(err)
		}
	}
	if n := a.conns.Load(); n != 1 {
		t.Errorf("unchanged server saw %d connections, want its 1 warm one", n)
	}
	if n := c.conns.Load(); n != 1 {
		t.Errorf("added server saw %d connections, want 1", n)
	}
	if got := b.cur().cfg.ResponseHeaderTimeout; got != 2*time.Second {
		t.Errorf("timeout %v after update", got)
	}
	// Remove the first server: it drains and closes.
	cfg.Servers = cfg.Servers[1:]
	if err := b.Update(cfg); err != nil {
		t.Fatal(err)
	}
	if _, _, err := get(context.Background(), b, "/", nil); err != nil {
		t.Fatal(err)
	}
	gatewaytest.WaitFor(t, 5*time.Second, "removed server closed", func() bool {
		b.updateMu.Lock()
		defer b.updateMu.Unlock()
		return len(b.retired) == 0 && a.open.Load() == 0
	})
	// An invalid update changes nothing.
	bad := cfg
	bad.Protocol = "h3"
	if err := b.Update(bad); err == nil {
		t.Error("invalid update accepted")
	}
	if b.cur().cfg.Protocol != H2C {
		t.Error("invalid update applied")
	}
}

func TestActiveHealthFallRise(t *testing.T) {
	checkNoLeak(t)
	fp := newFakePeer(t)
	var healthy = make(chan bool, 1)
	healthy <- true
	fp.onHeaders = func(pc *peerConn, id uint32, method string) {
		ok := <-healthy
		healthy <- ok
		if ok {
			pc.respond(id, 200, "ok")
		} else {
			pc.respond(id, 500, "sick")
		}
	}
	b, _ := newPeerBackend(t, fp, func(c *Config) {
		c.Health = HealthConfig{Enabled: true, Interval: 20 * time.Millisecond, Timeout: time.Second, Fall: 2, Rise: 2}
	})
	b.Start()
	s := b.Servers()[0]
	<-healthy
	healthy <- false
	gatewaytest.WaitFor(t, 5*time.Second, "server marked down", func() bool { return s.unhealthy.Load() })
	if _, _, err := get(context.Background(), b, "/", nil); err == nil {
		t.Error("request served by a server marked down")
	}
	<-healthy
	healthy <- true
	gatewaytest.WaitFor(t, 5*time.Second, "server back up", func() bool { return !s.unhealthy.Load() })
	if n := fp.conns.Load(); n != 1 {
		t.Errorf("health checks used %d connections, want the 1 pooled one", n)
	}
}
