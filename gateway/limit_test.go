package gateway

import (
	"net"
	"sync/atomic"
	"testing"
	"time"
)

func TestLimitListenerRefusesBeyondCap(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rejected := make(chan struct{}, 10)
	ll := &limitListener{Listener: ln, max: 2, open: new(atomic.Int64), rejected: func() { rejected <- struct{}{} }}
	defer ll.Close()
	accepted := make(chan net.Conn, 10)
	go func() {
		for {
			c, err := ll.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	var clients []net.Conn
	for range 3 {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		clients = append(clients, c)
	}
	a1, a2 := <-accepted, <-accepted
	select {
	case <-rejected:
	case <-time.After(5 * time.Second):
		t.Fatal("third connection not rejected")
	}
	// The rejected client sees its connection closed quickly.
	clients[2].SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := clients[2].Read(make([]byte, 1)); err == nil {
		t.Error("rejected connection readable")
	}
	// Closing one frees a slot.
	a1.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	select {
	case a3 := <-accepted:
		a3.Close()
	case <-time.After(5 * time.Second):
		t.Fatal("slot not freed")
	}
	a2.Close()
	for _, c := range clients {
		c.Close()
	}
}
