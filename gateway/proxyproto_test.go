package gateway

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sluice-gw/sluice/gateway/gatewaytest"
	"github.com/sluice-gw/sluice/upstream"
)

func v2Header(cmd, fam byte, body []byte) []byte {
	h := append([]byte{}, proxyV2Sig...)
	h = append(h, 0x20|cmd, fam, byte(len(body)>>8), byte(len(body)))
	return append(h, body...)
}

func TestReadProxyHeader(t *testing.T) {
	v4 := []byte{192, 0, 2, 1, 198, 51, 100, 1, 0x30, 0x39, 0x01, 0xbb}
	v6 := make([]byte, 36)
	v6[15] = 1 // ::1
	v6[32], v6[33] = 0x1f, 0x90
	tests := []struct {
		name    string
		in      []byte
		want    string // "" means no address; "err" an error
		payload string
	}{
		{"v1 tcp4", []byte("PROXY TCP4 192.0.2.1 198.51.100.1 12345 443\r\nGET /"), "192.0.2.1:12345", "GET /"},
		{"v1 tcp6", []byte("PROXY TCP6 2001:db8::1 2001:db8::2 1 2\r\nx"), "[2001:db8::1]:1", "x"},
		{"v1 unknown", []byte("PROXY UNKNOWN\r\nx"), "", "x"},
		{"v1 family mismatch", []byte("PROXY TCP4 2001:db8::1 2001:db8::2 1 2\r\n"), "err", ""},
		{"v1 bad port", []byte("PROXY TCP4 192.0.2.1 198.51.100.1 99999 443\r\n"), "err", ""},
		{"v1 leading zero port", []byte("PROXY TCP4 192.0.2.1 198.51.100.1 080 443\r\n"), "err", ""},
		{"v1 no crlf", []byte("PROXY TCP4 192.0.2.1 198.51.100.1 1 2\n"), "err", ""},
		{"v1 too long", []byte("PROXY TCP4 " + strings.Repeat("1", 120) + "\r\n"), "err", ""},
		{"v1 truncated", []byte("PROXY TCP4 192.0.2.1"), "err", ""},
		{"v2 tcp4", append(v2Header(1, 0x11, v4), "GET"...), "192.0.2.1:12345", "GET"},
		{"v2 tcp6", append(v2Header(1, 0x21, v6), "x"...), "[::1]:8080", "x"},
		{"v2 tlvs skipped", append(v2Header(1, 0x11, append(v4, 0x04, 0, 1, 'z')), "x"...), "192.0.2.1:12345", "x"},
		{"v2 local", append(v2Header(0, 0x00, nil), "x"...), "", "x"},
		{"v2 short body", v2Header(1, 0x11, v4[:6]), "err", ""},
		{"v2 bad family", v2Header(1, 0x31, v4), "err", ""},
		{"no header", []byte("GET / HTTP/1.1\r\n\r\n"), "err", ""},
		{"empty", nil, "err", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := bufio.NewReader(bytes.NewReader(tt.in))
			addr, err := readProxyHeader(r)
			switch {
			case tt.want == "err":
				if !errors.Is(err, ErrProxyHeader) {
					t.Fatalf("got %v, %v; want ErrProxyHeader", addr, err)
				}
				return
			case err != nil:
				t.Fatal(err)
			case tt.want == "" && addr != nil:
				t.Fatalf("address %v, want none", addr)
			case tt.want != "" && (addr == nil || addr.String() != tt.want):
				t.Fatalf("address %v, want %s", addr, tt.want)
			}
			rest, _ := io.ReadAll(r)
			if string(rest) != tt.payload {
				t.Errorf("payload %q, want %q", rest, tt.payload)
			}
		})
	}
}

func FuzzReadProxyHeader(f *testing.F) {
	f.Add([]byte("PROXY TCP4 192.0.2.1 198.51.100.1 12345 443\r\n"))
	f.Add(v2Header(1, 0x11, []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}))
	f.Add(v2Header(1, 0x21, make([]byte, 36)))
	f.Fuzz(func(t *testing.T, b []byte) {
		addr, err := readProxyHeader(bufio.NewReader(bytes.NewReader(b)))
		if err == nil && addr != nil {
			if _, _, err := net.SplitHostPort(addr.String()); err != nil {
				t.Fatalf("bad address %v", addr)
			}
		}
	})
}

func TestProxyListener(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rejected := 0
	pl := &proxyListener{Listener: ln, timeout: 200 * time.Millisecond, from: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, rejected: func() { rejected++ }}
	defer pl.Close()
	// The clients keep their connections open until the test ends.
	hold := make(chan struct{})
	var clients sync.WaitGroup
	defer clients.Wait()
	defer close(hold)
	client := func(send string) {
		clients.Go(func() {
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			c.Write([]byte(send))
			<-hold
		})
	}
	client("PROXY TCP4 203.0.113.7 198.51.100.1 4000 80\r\nhello")
	c, err := pl.Accept()
	if err != nil {
		t.Fatal(err)
	}
	if got := c.RemoteAddr().String(); got != "203.0.113.7:4000" {
		t.Errorf("RemoteAddr %s", got)
	}
	b := make([]byte, 5)
	if _, err := io.ReadFull(c, b); err != nil || string(b) != "hello" {
		t.Errorf("payload %q %v", b, err)
	}
	c.Close()
	// A client that sends nothing is cut at the header timeout.
	client("")
	c, err = pl.Accept()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := c.Read(b); err == nil {
		t.Error("read succeeded without a header")
	}
	if d := time.Since(start); d > 700*time.Millisecond {
		t.Errorf("header wait took %v", d)
	}
	if rejected != 1 {
		t.Errorf("rejected %d, want 1", rejected)
	}
}

func TestProxyListenerTrusts(t *testing.T) {
	from := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8::/32")}
	tests := []struct {
		peer net.Addr
		want bool
	}{
		{&net.TCPAddr{IP: net.ParseIP("10.1.2.3"), Port: 1}, true},
		{&net.TCPAddr{IP: net.ParseIP("::ffff:10.1.2.3"), Port: 1}, true}, // dual-stack socket
		{&net.TCPAddr{IP: net.ParseIP("2001:db8::1"), Port: 1}, true},
		{&net.TCPAddr{IP: net.ParseIP("fe80::1"), Port: 1, Zone: "eth0"}, false},
		{&net.TCPAddr{IP: net.ParseIP("11.0.0.1"), Port: 1}, false},
		{&net.TCPAddr{IP: net.ParseIP("127.0.0.1"), Port: 1}, false},
		{&net.UnixAddr{Name: "/tmp/x", Net: "unix"}, false},
	}
	l := &proxyListener{from: from}
	for _, tt := range tests {
		if got := l.trusts(tt.peer); got != tt.want {
			t.Errorf("trusts(%v) = %v, want %v", tt.peer, got, tt.want)
		}
	}
	if (&proxyListener{}).trusts(tests[0].peer) {
		t.Error("an empty list trusts a peer")
	}
}

// TestProxyProtocolFromUntrustedPeerClosed: on a PROXY protocol listener, a
// peer outside ProxyFrom is closed at accept whatever it sends, even a
// valid header, and counted as proxy_untrusted; one inside is served with
// the header's address. Without ProxyFrom the listener is refused.
func TestProxyProtocolFromUntrustedPeerClosed(t *testing.T) {
	origin := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Header.Get("X-Forwarded-For"))
	})
	b := newBackend(t, upstream.Config{
		Protocol: upstream.H2C,
		Servers:  []upstream.ServerConfig{{Address: origin}},
		Queue:    upstream.QueueConfig{MaxPending: 10, Timeout: 5 * time.Second},
	})
	g, err := New(Config{Routes: []Route{{Backend: "b"}}}, map[string]http.RoundTripper{"b": b}, NewMetrics(nil), quiet())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.Listen(ListenerConfig{Addr: "127.0.0.1:0", ProxyProtocol: true}); !errors.Is(err, errProxyFromMissing) {
		t.Errorf("ProxyProtocol without ProxyFrom: %v, want errProxyFromMissing", err)
	}
	serve := func(from string) string {
		return listenAndServe(t, g, ListenerConfig{Addr: "127.0.0.1:0", ProxyProtocol: true, ProxyFrom: []netip.Prefix{netip.MustParsePrefix(from)}})
	}
	ask := func(addr string) (string, error) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		go io.WriteString(c, "PROXY TCP4 203.0.113.9 127.0.0.1 4000 80\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		return string(body), err
	}
	untrusted := g.m.rejected.WithLabelValues(reasonProxyUntrusted)
	if got, err := ask(serve("10.0.0.0/8")); err == nil {
		t.Errorf("peer 127.0.0.1 outside 10.0.0.0/8 was answered: %q", got)
	}
	if n := testutil.ToFloat64(untrusted); n != 1 {
		t.Errorf("sluice_client_rejected_total{reason=proxy_untrusted} = %v, want 1", n)
	}
	if got, err := ask(serve("127.0.0.0/8")); err != nil || got != "203.0.113.9" {
		t.Errorf("trusted peer: %q %v, want the header's address", got, err)
	}
	if n := testutil.ToFloat64(untrusted); n != 1 {
		t.Errorf("sluice_client_rejected_total{reason=proxy_untrusted} = %v after a trusted peer, want 1", n)
	}
}

// TestSlowProxyHeaderHoldsNoOtherClient: a peer that sends its PROXY
// header slowly holds up only its own connection: the accept loop never
// waits for a header, and the next client is answered at once.
func TestSlowProxyHeaderHoldsNoOtherClient(t *testing.T) {
	g, err := New(Config{Routes: []Route{{Backend: "b"}}}, map[string]http.RoundTripper{"b": answer(200, "ok")}, NewMetrics(nil), quiet())
	if err != nil {
		t.Fatal(err)
	}
	addr := listenAndServe(t, g, ListenerConfig{Addr: "127.0.0.1:0", ProxyProtocol: true, ProxyFrom: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
	slow, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	io.WriteString(slow, "PROXY TCP4 ") // the rest never comes
	c, br := gatewaytest.Dial(t, addr)
	start := time.Now()
	io.WriteString(c, "PROXY TCP4 203.0.113.9 127.0.0.1 4000 80\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n")
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	// The slow peer's header is waited for up to proxyHeaderTimeout.
	if d := time.Since(start); res.StatusCode != 200 || d >= proxyHeaderTimeout/2 {
		t.Errorf("second client: %d after %v, want 200 well within the slow peer's header timeout %v", res.StatusCode, d, proxyHeaderTimeout)
	}
}
