package gateway

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sluice-gw/sluice/gateway/gatewaytest"
	"github.com/sluice-gw/sluice/upstream"
)

// tlsGateway serves a gateway on a TLS listener from Listen, in front of an
// origin that counts the requests it sees and echoes X-Forwarded-Proto.
func tlsGateway(t *testing.T, readHeader time.Duration) (addr string, seen *atomic.Int64, g *Gateway) {
	t.Helper()
	seen = new(atomic.Int64)
	origin := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		seen.Add(1)
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, "proto="+r.Header.Get("X-Forwarded-Proto"))
	})
	b := newBackend(t, upstream.Config{
		Protocol: upstream.H2C,
		Servers:  []upstream.ServerConfig{{Address: origin}},
		Queue:    upstream.QueueConfig{MaxPending: 100, Timeout: 5 * time.Second},
	})
	g, err := New(Config{Routes: []Route{{Backend: "b"}}, ReadHeaderTimeout: readHeader},
		map[string]http.RoundTripper{"b": b}, NewMetrics(nil), quiet())
	if err != nil {
		t.Fatal(err)
	}
	certs, err := LoadCerts([]CertPair{writeCert(t, t.TempDir(), "a", "localhost")})
	if err != nil {
		t.Fatal(err)
	}
	return listenAndServe(t, g, ListenerConfig{Addr: "127.0.0.1:0", Certs: certs}), seen, g
}

func tlsDial(t *testing.T, addr string, alpn ...string) *tls.Conn {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, NextProtos: alpn})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(5 * time.Second))
	return c
}

// TestTLSSmugglingGuard: HTTP/1.1 over TLS goes through the same raw-byte
// guard as cleartext; every corpus case gets 400 and none reaches the
// origin, whether the client offered ALPN http/1.1 or no ALPN at all. A
// client that chose h2 and speaks HTTP/1.1 is closed without an answer.
func TestTLSSmugglingGuard(t *testing.T) {
	addr, seen, _ := tlsGateway(t, 5*time.Second)
	for name, in := range smugglingCorpus {
		for _, alpn := range [][]string{{"http/1.1"}, nil, {"h2"}} {
			c := tlsDial(t, addr, alpn...)
			go io.WriteString(c, in)
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if len(alpn) == 1 && alpn[0] == "h2" {
				if err == nil {
					t.Errorf("%s (alpn h2): got an HTTP/1.1 answer %d, want the connection closed", name, resp.StatusCode)
				} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
					t.Errorf("%s (alpn h2): connection left open", name)
				}
				continue
			}
			if err != nil {
				t.Errorf("%s (alpn %v): %v", name, alpn, err)
				continue
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest {
				t.Errorf("%s (alpn %v): status %d, want 400", name, alpn, resp.StatusCode)
			}
		}
	}
	if n := seen.Load(); n != 0 {
		// "smuggled 2nd head" and "after Upgrade" carry a clean first
		// request that may go through (3 cases, 3 ALPN variants); nothing else may.
		if n > 9 {
			t.Errorf("origin saw %d requests from the corpus", n)
		}
	}
}

// TestTLSProtocols: h2 by ALPN and HTTP/1.1 both reach the origin through
// the guard and report https to it (r.TLS is set).
func TestTLSProtocols(t *testing.T) {
	addr, _, _ := tlsGateway(t, 5*time.Second)
	for _, h2 := range []bool{false, true} {
		var p http.Protocols
		p.SetHTTP1(!h2)
		p.SetHTTP2(h2)
		c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, Protocols: &p,
		}}
		resp, err := c.Get("https://" + addr + "/")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		wantMajor := 1
		if h2 {
			wantMajor = 2
		}
		if resp.StatusCode != 200 || string(body) != "proto=https" || resp.ProtoMajor != wantMajor {
			t.Errorf("h2=%v: %s %d %q", h2, resp.Proto, resp.StatusCode, body)
		}
	}
	// Clean requests, pipelined, on one guarded connection.
	c := tlsDial(t, addr, "http/1.1")
	go io.WriteString(c, cleanCorpus["pipelined"])
	br := bufio.NewReader(c)
	for i := range 2 {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("pipelined %d: %v", i, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("pipelined %d: %d", i, resp.StatusCode)
		}
	}
}

// TestTLSHandshakeTimeout: a client that connects and never says hello is
// cut at the read-header timeout without holding up other handshakes, and
// counted as a failed handshake.
func TestTLSHandshakeTimeout(t *testing.T) {
	// Long enough that a handshake queued behind the silent client is told
	// from a slow one on a loaded box running -race.
	const timeout = 2 * time.Second
	addr, _, g := tlsGateway(t, timeout)
	dialed := time.Now()
	silent, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	// Another client handshakes at once while the silent one waits.
	start := time.Now()
	tlsDial(t, addr, "http/1.1")
	if d := time.Since(start); d > timeout/2 {
		t.Errorf("handshake waited %v behind a silent client", d)
	}
	silent.SetReadDeadline(time.Now().Add(5 * timeout))
	_, err = silent.Read(make([]byte, 1))
	// The timer starts at the accept, after the dial began.
	if d := time.Since(dialed); err == nil || d < timeout || d > 2*timeout {
		t.Errorf("silent client: read %v after %v, want EOF after about %v", err, d, timeout)
	}
	gatewaytest.WaitFor(t, 5*time.Second, "the failed handshake counted", func() bool { return rejectedCount(g, reasonTLSHandshake) == 1 })
}

// TestTLSListenerClose: Close returns while a handshake is stuck, and
// Accept then fails.
func TestTLSListenerClose(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	certs, err := LoadCerts([]CertPair{writeCert(t, t.TempDir(), "a", "localhost")})
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan struct{}, 1)
	l := newTLSListener(acceptSignal{inner, accepted}, certs.TLSConfig("h2", "http/1.1"), time.Minute, func() {}, func(*guardConn, net.Conn) {})
	c, err := net.Dial("tcp", inner.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	<-accepted // the handshake starts and waits for a ClientHello that never comes
	done := make(chan struct{})
	go func() { l.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close hung on a handshake in progress")
	}
	if _, err := l.Accept(); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Errorf("Accept after Close: %v", err)
	}
}

// acceptSignal sends on accepted when the listener has accepted a
// connection.
type acceptSignal struct {
	net.Listener
	accepted chan<- struct{}
}

func (l acceptSignal) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.accepted <- struct{}{}
	}
	return c, err
}

// TestTLSRapidReset: an HTTP/2-over-TLS client flooding HEADERS+RST_STREAM
// is cut like a cleartext one, and counted once.
func TestTLSRapidReset(t *testing.T) {
	addr, _, g := tlsGateway(t, 5*time.Second)
	c := tlsDial(t, addr, "h2")
	if p := c.ConnectionState().NegotiatedProtocol; p != "h2" {
		t.Fatalf("ALPN chose %q", p)
	}
	streams := floodResets(t, c)
	if got := rejectedCount(g, reasonRapidReset); got != 1 {
		t.Errorf("sluice_client_rejected_total{reason=rapid_reset} = %v, want 1", got)
	}
	t.Logf("cut after %d HEADERS+RST_STREAM pairs written", streams)
}

func rejectedCount(g *Gateway, reason string) float64 {
	return testutil.ToFloat64(g.m.rejected.WithLabelValues(reason))
}

// TestTLS12CipherSuites: TLS 1.2 clients get AEAD suites only; one that
// offers nothing but CBC (forbidden with HTTP/2) fails the handshake.
func TestTLS12CipherSuites(t *testing.T) {
	addr, _, _ := tlsGateway(t, 5*time.Second)
	for _, tc := range []struct {
		name   string
		suites []uint16
		ok     bool
	}{
		{"GCM", []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256}, true},
		{"CBC only", []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA}, false},
	} {
		c, err := tls.Dial("tcp", addr, &tls.Config{
			InsecureSkipVerify: true, NextProtos: []string{"h2"},
			MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS12, CipherSuites: tc.suites,
		})
		if (err == nil) != tc.ok {
			t.Errorf("%s: handshake error %v, want ok=%v", tc.name, err, tc.ok)
		}
		if err == nil {
			c.Close()
		}
	}
}

// TestTLSGuardOnlyForHTTP2: HTTP/1.1 over TLS (ALPN http/1.1 or none) is
// parsed by gateway/h1 and gets no guard; one that chose h2, or opens with
// the HTTP/2 preface without ALPN, gets it (the rapid-reset counter), and
// is served.
func TestTLSGuardOnlyForHTTP2(t *testing.T) {
	_, _, g := tlsGateway(t, 5*time.Second)
	certs, err := LoadCerts([]CertPair{writeCert(t, t.TempDir(), "a", "localhost")})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var guarded atomic.Int64
	ln := newTLSListener(raw, certs.TLSConfig("h2", "http/1.1"), 5*time.Second, func() {},
		func(gc *guardConn, c net.Conn) { guarded.Add(1); g.guard(gc, c) })
	addr := serveOn(t, g, ln, true)
	for _, tt := range []struct {
		name    string
		alpn    []string
		h2      bool
		guarded int64
	}{
		{"http/1.1", []string{"http/1.1"}, false, 0},
		{"no ALPN", nil, false, 0},
		{"h2", []string{"h2"}, true, 1},
		{"no ALPN, HTTP/2 preface", nil, true, 1},
	} {
		before := guarded.Load()
		c := tlsDial(t, addr, tt.alpn...)
		status := 0
		if tt.h2 {
			status, _ = h2Status(t, c)
		} else {
			io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatalf("%s: %v", tt.name, err)
			}
			resp.Body.Close()
			status = resp.StatusCode
		}
		if status != http.StatusOK {
			t.Errorf("%s: status %d", tt.name, status)
		}
		if got := guarded.Load() - before; got != tt.guarded {
			t.Errorf("%s: %d guards made, want %d", tt.name, got, tt.guarded)
		}
	}
}
