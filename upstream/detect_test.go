package upstream

import (
	"context"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/gateway/gatewaytest"
)

// switchProxy forwards TCP connections to one of two servers, so a test can
// "enable h2c" on a server address mid-test.
type switchProxy struct {
	ln      net.Listener
	targets [2]string
	use     atomic.Int32
	wg      sync.WaitGroup
}

func newSwitchProxy(t *testing.T, h1, h2c string) *switchProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &switchProxy{ln: ln, targets: [2]string{h1, h2c}}
	p.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.wg.Go(func() { p.pipe(c) })
		}
	})
	t.Cleanup(func() { ln.Close(); p.wg.Wait() })
	return p
}

func (p *switchProxy) pipe(c net.Conn) {
	defer c.Close()
	u, err := net.Dial("tcp", p.targets[p.use.Load()])
	if err != nil {
		return
	}
	defer u.Close()
	done := make(chan struct{}, 2)
	go func() { io.Copy(u, c); u.(*net.TCPConn).CloseWrite(); done <- struct{}{} }()
	go func() { io.Copy(c, u); c.(*net.TCPConn).CloseWrite(); done <- struct{}{} }()
	<-done
	<-done
}

func TestAutoReprobeUpgradesToH2C(t *testing.T) {
	h1 := newFakeServer(t, false, 0)
	h2 := newFakeServer(t, true, 0)
	sw := newSwitchProxy(t, h1.addr(), h2.addr())
	b := newTestBackend(t, Config{
		Protocol:      Auto,
		ProbeInterval: 50 * time.Millisecond,
		Servers:       []ServerConfig{{Address: sw.ln.Addr().String()}},
		Queue:         QueueConfig{MaxPending: 10},
	})
	b.Start()
	resp, _, err := get(context.Background(), b, "/", nil)
	if err != nil {
		t.Fatal(err)
	}
	if p := resp.Header.Get("X-Proto"); p != "HTTP/1.1" {
		t.Fatalf("first request over %s, want HTTP/1.1", p)
	}
	sw.use.Store(1) // the operator enables h2c
	gatewaytest.WaitFor(t, 5*time.Second, "upgrade to h2c", func() bool { return b.Servers()[0].Protocol() == H2C })
	resp, _, err = get(context.Background(), b, "/", nil)
	if err != nil {
		t.Fatal(err)
	}
	if p := resp.Header.Get("X-Proto"); p != "HTTP/2.0" {
		t.Errorf("after upgrade request went over %s", p)
	}
	// The HTTP/1.1 connections drain away.
	gatewaytest.WaitFor(t, 5*time.Second, "h1 pool drained", func() bool {
		s := b.Servers()[0]
		s.retiredMu.Lock()
		defer s.retiredMu.Unlock()
		return len(s.retired) == 1 && s.retired[0].stats().conns == 0
	})
}
