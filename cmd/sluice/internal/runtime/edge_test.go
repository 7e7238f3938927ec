package runtime

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quic-go/quic-go/http3"

	"github.com/sluice-gw/sluice/cmd/sluice/internal/config"
	"github.com/sluice-gw/sluice/gateway"
	"github.com/sluice-gw/sluice/upstream"

	"github.com/sluice-gw/sluice/gateway/gatewaytest"
)

// These tests check that the client-edge keys reach the listeners: TLS,
// HTTP/3 and Alt-Svc, certificate reload, the keys that need a restart,
// PROXY protocol, trusted proxies and the limits.

// writeCertPair writes a fresh self-signed certificate for localhost and
// 127.0.0.1 to dir/tls.crt and dir/tls.key (certFile and keyFile must be
// those), and returns its serial number.
func writeCertPair(t *testing.T, certFile, keyFile string) *big.Int {
	t.Helper()
	c := gatewaytest.WriteCert(t, filepath.Dir(certFile), "tls", "localhost", "127.0.0.1")
	if c.CertFile != certFile || c.KeyFile != keyFile {
		t.Fatalf("writeCertPair(%s, %s): want DIR/tls.crt and DIR/tls.key", certFile, keyFile)
	}
	return c.Serial
}

// echoOrigin answers every request with its X-Forwarded-For and
// X-Forwarded-Proto, over HTTP/1.1 and h2c.
func echoOrigin(t *testing.T) string {
	return gatewaytest.Origin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "xff=%s proto=%s", r.Header.Get("X-Forwarded-For"), r.Header.Get("X-Forwarded-Proto"))
	}))
}

// serveWithReload runs serve with cfg; reloads return whatever next holds.
func serveWithReload(t *testing.T, cfg *config.Config, next *atomic.Pointer[config.Config]) *running {
	t.Helper()
	next.Store(cfg)
	r := runServe(t, cfg, func() (*config.Config, error) { return next.Load(), nil })
	gatewaytest.WaitFor(t, 5*time.Second, "the gateway to listen", func() bool {
		if r.returned(0) {
			t.Fatalf("serve returned: %v", r.err)
		}
		code, _, err := adminGet(r.admin, "/readyz")
		return err == nil && code == http.StatusOK
	})
	return r
}

func postReloadTo(t *testing.T, admin string) (int, string) {
	t.Helper()
	resp, err := http.Post("http://"+admin+"/reload", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// servedSerial is the serial number of the certificate a new TLS
// connection to addr gets.
func servedSerial(t *testing.T, addr string) *big.Int {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber
}

func TestTLSAndHTTP3Wired(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	first := writeCertPair(t, certFile, keyFile)
	cfg, err := config.Quick(freeAddr(t), freeAddr(t), upstream.H2C, []string{echoOrigin(t)}, 1)
	if err != nil {
		t.Fatal(err)
	}
	cfg.TLSListen = freeAddr(t)
	cfg.HTTP3 = true
	cfg.TLSCerts = []gateway.CertPair{{CertFile: certFile, KeyFile: keyFile}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	var next atomic.Pointer[config.Config]
	r := serveWithReload(t, cfg, &next)

	// The cleartext answer advertises HTTP/3 and names its port.
	resp, err := http.Get("http://" + r.listen + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	altSvc := resp.Header.Get("Alt-Svc")
	var port int
	if _, err := fmt.Sscanf(altSvc, `h3=":%d"; ma=86400`, &port); err != nil || port == 0 {
		t.Fatalf("Alt-Svc %q: %v", altSvc, err)
	}
	tlsAddr := fmt.Sprintf("127.0.0.1:%d", port)

	// TLS with ALPN h2 on the same port number over TCP.
	h2 := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, ForceAttemptHTTP2: true,
	}}
	resp, err = h2.Get("https://" + tlsAddr + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Proto != "HTTP/2.0" || !strings.Contains(string(body), "proto=https") || resp.Header.Get("Alt-Svc") != altSvc {
		t.Errorf("TLS: %d %s %q Alt-Svc %q", resp.StatusCode, resp.Proto, body, resp.Header.Get("Alt-Svc"))
	}

	// HTTP/3 on the UDP port.
	h3 := &http3.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
	defer h3.Close()
	resp, err = (&http.Client{Timeout: 5 * time.Second, Transport: h3}).Get("https://" + tlsAddr + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.ProtoMajor != 3 || !strings.Contains(string(body), "proto=https") {
		t.Errorf("HTTP/3: %d %s %q", resp.StatusCode, resp.Proto, body)
	}

	// A reload reads the certificates again, even under the same names.
	second := writeCertPair(t, certFile, keyFile)
	if got := servedSerial(t, tlsAddr); got.Cmp(first) != 0 {
		t.Fatalf("serial before reload %v, want %v", got, first)
	}
	if code, body := postReloadTo(t, r.admin); code != 200 {
		t.Fatalf("reload with renewed certificate: %d %s", code, body)
	}
	if got := servedSerial(t, tlsAddr); got.Cmp(second) != 0 {
		t.Errorf("serial after reload %v, want the renewed %v", got, second)
	}
	// A broken file fails the reload and keeps the certificate in use.
	if err := os.WriteFile(certFile, []byte("not PEM"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, body := postReloadTo(t, r.admin); code != http.StatusBadRequest || !strings.Contains(body, "tls_certs") || !strings.Contains(body, certFile) {
		t.Errorf("reload with a broken certificate: %d %s", code, body)
	}
	if got := servedSerial(t, tlsAddr); got.Cmp(second) != 0 {
		t.Errorf("serial after failed reload %v, want %v kept", got, second)
	}
	writeCertPair(t, certFile, keyFile)

	// Listener-level keys are refused on reload, each named.
	changed := *cfg
	changed.Limits.MaxConns = 5
	changed.HTTP3 = false
	changed.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	changed.ProxyProtocolFrom = []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}
	next.Store(&changed)
	code, msg := postReloadTo(t, r.admin)
	for _, want := range []string{"http3 true -> false", "limits.max_conns 100000 -> 5", "trusted_proxies [] -> [10.0.0.0/8]", "proxy_protocol_from [] -> [192.0.2.0/24]", "need a restart"} {
		if code != http.StatusBadRequest || !strings.Contains(msg, want) {
			t.Errorf("reload changing listener keys: %d %q lacks %q", code, msg, want)
		}
	}
}

func TestProxyProtocolAndTrustedProxiesWired(t *testing.T) {
	cfg, err := config.Quick(freeAddr(t), freeAddr(t), upstream.H2C, []string{echoOrigin(t)}, 1)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ProxyProtocol = true
	cfg.ProxyProtocolFrom = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	cfg.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")}
	var next atomic.Pointer[config.Config]
	r := serveWithReload(t, cfg, &next)

	ask := func(proxyLine, xff string) string {
		t.Helper()
		req := proxyLine + "GET / HTTP/1.1\r\nHost: x\r\n"
		if xff != "" {
			req += "X-Forwarded-For: " + xff + "\r\n"
		}
		_, body, err := rawRoundTrip(t, r.listen, req+"\r\n")
		if err != nil {
			return "error: " + err.Error()
		}
		return body
	}
	// The PROXY header's source is the client; from a trusted network its
	// X-Forwarded-For chain is kept, from any other it is replaced.
	if got := ask("PROXY TCP4 203.0.113.9 127.0.0.1 4000 80\r\n", "198.51.100.1"); got != "xff=198.51.100.1, 203.0.113.9 proto=http" {
		t.Errorf("trusted peer: %q", got)
	}
	if got := ask("PROXY TCP4 192.0.2.50 127.0.0.1 4000 80\r\n", "198.51.100.1"); got != "xff=192.0.2.50 proto=http" {
		t.Errorf("untrusted peer: %q", got)
	}
	// Without the header the connection is closed unanswered, and counted.
	if got := ask("", ""); !strings.HasPrefix(got, "error: ") {
		t.Errorf("no PROXY header: %q, want the connection closed", got)
	}
	_, metrics, err := adminGet(r.admin, "/metrics")
	if err != nil || !strings.Contains(metrics, `sluice_client_rejected_total{reason="proxy_protocol"} 1`) {
		t.Errorf("proxy_protocol rejection not counted (%v)", err)
	}
}

// rawRoundTrip writes req, the bytes of a request, on a new connection to
// addr and reads the answer. The write runs beside the read, so an answer
// sent before the server has read it all is seen.
func rawRoundTrip(t *testing.T, addr, req string) (status int, body string, err error) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	go io.WriteString(c, req)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, "", err
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, string(b), nil
}

func TestLimitsWired(t *testing.T) {
	cfg, err := config.Quick(freeAddr(t), freeAddr(t), upstream.H2C, []string{echoOrigin(t)}, 1)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Limits.MaxHeaderCount = 5
	cfg.Limits.MaxRequestBody = 10
	cfg.Limits.MaxHeaderBytes = 4096
	cfg.Limits.ReadHeaderTimeout = 300 * time.Millisecond
	var next atomic.Pointer[config.Config]
	r := serveWithReload(t, cfg, &next)

	do := func(req *http.Request) int {
		t.Helper()
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	raw := func(head string) int {
		t.Helper()
		status, _, err := rawRoundTrip(t, r.listen, "GET / HTTP/1.1\r\nHost: x\r\n"+head+"\r\n")
		if err != nil {
			t.Fatal(err)
		}
		return status
	}
	// Host is not counted: Go keeps it out of the header map.
	if code := raw(strings.Repeat("X-H: v\r\n", 5)); code != 200 {
		t.Errorf("5 header fields: %d", code)
	}
	if code := raw(strings.Repeat("X-H: v\r\n", 6)); code != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("6 header fields: %d, want 431", code)
	}
	// Go's server allows 4 KiB of slack over MaxHeaderBytes.
	if code := raw("X-Big: " + strings.Repeat("a", 9000) + "\r\n"); code != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("9 kB header with max_header_bytes 4096: %d, want 431", code)
	}
	req, _ := http.NewRequest("POST", "http://"+r.listen+"/", strings.NewReader("0123456789X"))
	if code := do(req); code != http.StatusRequestEntityTooLarge {
		t.Errorf("11-byte body with max_request_body 10: %d, want 413", code)
	}
	// A connection that sends nothing is cut after read_header_timeout,
	// counted from the accept: so never sooner than that after the dial
	// began (the dial may return late on a loaded box).
	start := time.Now()
	c, err := net.Dial("tcp", r.listen)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = c.Read(make([]byte, 1))
	if d := time.Since(start); err == nil || d < 300*time.Millisecond || d > 3*time.Second {
		t.Errorf("silent connection: read returned %v after %v, want EOF after about 300ms", err, d)
	}
}

// With tls_listen on port 0 and HTTP/3, the kernel picks the UDP port and
// the TLS listener takes the same number on TCP. A number TCP already has
// in use is given up for another, and the TCP socket comes back bound;
// a fixed port is left for openEdge to bind.
func TestBindUDPAndTCPSkipsPortTakenOnTCP(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	takenPort := taken.Addr().(*net.TCPAddr).Port
	calls := 0
	listenUDP := func(addr string) (*net.UDPConn, error) {
		calls++
		if calls == 1 { // the kernel's pick: a port TCP has in use
			return net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: takenPort})
		}
		ua, err := net.ResolveUDPAddr("udp", addr)
		if err != nil {
			return nil, err
		}
		return net.ListenUDP("udp", ua)
	}

	udp, at, err := bindUDPAndTCP("127.0.0.1:0", listenUDP)
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	defer at.close()
	port := udp.LocalAddr().(*net.UDPAddr).Port
	// More than two binds happen when the kernel's second pick is in use
	// on TCP too (another test's connection): also a skip.
	if calls < 2 || port == takenPort {
		t.Errorf("%d UDP binds, port %d (TCP has %d), want 2 or more binds and another port", calls, port, takenPort)
	}
	if want := net.JoinHostPort("127.0.0.1", strconv.Itoa(port)); at.addr != want || at.ln == nil || at.ln.Addr().String() != want {
		t.Errorf("TLS socket %q bound %v, want %s bound", at.addr, at.ln, want)
	}

	fixed := net.JoinHostPort("127.0.0.1", strconv.Itoa(takenPort+1))
	udp2, at2, err := bindUDPAndTCP(fixed, func(string) (*net.UDPConn, error) {
		return net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	})
	if err != nil {
		t.Fatal(err)
	}
	udp2.Close()
	if at2.addr != fixed || at2.ln != nil {
		t.Errorf("fixed port: TLS socket %q bound %v, want %s left for openEdge", at2.addr, at2.ln, fixed)
	}
}
