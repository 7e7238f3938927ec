package gateway

import (
	"io"
	"net"
	"net/http"
	"net/netip"
	"testing"
	"time"
)

// TestFrontConnExposesSocket: a cleartext connection from Gateway.Listen,
// with or without PROXY protocol, lets the HTTP/1.1 server wait for its
// next request on the socket (no buffer while idle), once nothing is
// buffered above it.
func TestFrontConnExposesSocket(t *testing.T) {
	g, err := New(Config{Routes: []Route{{Backend: "b"}}}, map[string]http.RoundTripper{"b": http.DefaultTransport}, NewMetrics(nil), quiet())
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name  string
		lc    ListenerConfig
		first string
	}{
		{"plain", ListenerConfig{Addr: "127.0.0.1:0"}, ""},
		{"PROXY protocol", ListenerConfig{Addr: "127.0.0.1:0", ProxyProtocol: true, ProxyFrom: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}},
			"PROXY TCP4 203.0.113.9 127.0.0.1 4000 80\r\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ln, err := g.Listen(tt.lc)
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			fl := &frontListener{Listener: ln, h2: newConnListener()}
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			io.WriteString(c, tt.first)
			sc, err := fl.Accept()
			if err != nil {
				t.Fatal(err)
			}
			defer sc.Close()
			sc.SetDeadline(time.Now().Add(5 * time.Second))
			if _, err := sc.(*frontConn).SyscallConn(); err != nil {
				t.Errorf("SyscallConn: %v", err)
			}
		})
	}
}
