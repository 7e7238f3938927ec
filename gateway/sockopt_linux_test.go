package gateway

import (
	"net"
	"syscall"
	"testing"

	"github.com/sluice-gw/sluice/gateway/rawsock"
)

// TestListenTCPSocketOptions: the listener defers accept to the first
// bytes, and what it accepts has TCP keep-alive and TCP_NODELAY as Go sets
// them on each accepted connection, inherited from the listener instead;
// it is accepted by rawsock, not registered with the poller.
func TestListenTCPSocketOptions(t *testing.T) {
	ln, err := ListenTCP("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	getopt := func(c syscall.Conn, level, opt int) int {
		t.Helper()
		rc, err := c.SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		var v int
		rc.Control(func(fd uintptr) { v, err = syscall.GetsockoptInt(int(fd), level, opt) })
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	if v := getopt(ln.(syscall.Conn), syscall.IPPROTO_TCP, syscall.TCP_DEFER_ACCEPT); v == 0 {
		t.Error("TCP_DEFER_ACCEPT not set on the listener")
	}
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("GET"))
	a, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if rc, ok := a.(*rawsock.Conn); !ok || rc.Registered() {
		t.Fatalf("accepted %T, want a *rawsock.Conn not registered", a)
	}
	for _, tt := range []struct {
		name       string
		level, opt int
		want       int
	}{
		{"SO_KEEPALIVE", syscall.SOL_SOCKET, syscall.SO_KEEPALIVE, 1},
		{"TCP_KEEPIDLE", syscall.IPPROTO_TCP, syscall.TCP_KEEPIDLE, 15},
		{"TCP_KEEPINTVL", syscall.IPPROTO_TCP, syscall.TCP_KEEPINTVL, 15},
		{"TCP_KEEPCNT", syscall.IPPROTO_TCP, syscall.TCP_KEEPCNT, 9},
		{"TCP_NODELAY", syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1},
	} {
		if got := getopt(a.(syscall.Conn), tt.level, tt.opt); got != tt.want {
			t.Errorf("accepted connection: %s = %d, want %d", tt.name, got, tt.want)
		}
	}
}
