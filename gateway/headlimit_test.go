package gateway

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/quic-go/quic-go/http3"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/sluice-gw/sluice/upstream"
)

// edgeStack serves one gateway, with Config's zero values, on every client
// listener: cleartext (HTTP/1.1, h2c), TLS (HTTP/1.1, h2) and HTTP/3.
type edgeStack struct {
	plain, tls, h3 string
	seen           *atomic.Int64 // requests that reached the origin
	m              *Metrics
}

func newEdgeStack(t *testing.T) *edgeStack {
	t.Helper()
	s := &edgeStack{seen: new(atomic.Int64), m: NewMetrics(nil)}
	origin := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		s.seen.Add(1)
		io.WriteString(w, "ok")
	})
	b := newBackend(t, upstream.Config{
		Protocol: upstream.H2C,
		Servers:  []upstream.ServerConfig{{Address: origin}},
		Queue:    upstream.QueueConfig{MaxPending: 100, Timeout: 5 * time.Second},
	})
	g, err := New(Config{Routes: []Route{{Backend: "b"}}}, map[string]http.RoundTripper{"b": b}, s.m, quiet())
	if err != nil {
		t.Fatal(err)
	}
	certs, err := LoadCerts([]CertPair{writeCert(t, t.TempDir(), "s", "localhost")})
	if err != nil {
		t.Fatal(err)
	}
	for _, withTLS := range []bool{false, true} {
		lc := ListenerConfig{Addr: "127.0.0.1:0"}
		if withTLS {
			lc.Certs = certs
		}
		if withTLS {
			s.tls = listenAndServe(t, g, lc)
		} else {
			s.plain = listenAndServe(t, g, lc)
		}
	}
	pc, err := ListenUDP("127.0.0.1:0", quiet())
	if err != nil {
		t.Fatal(err)
	}
	h3 := NewH3Server(g, certs)
	go h3.Serve(pc)
	t.Cleanup(func() { h3.srv.Close(); pc.Close() })
	s.h3 = pc.LocalAddr().String()
	return s
}

// h1Status sends an HTTP/1.1 GET with the extra header lines on c and
// returns the response status.
func h1Status(t *testing.T, c net.Conn, lines string) int {
	t.Helper()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	go io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n"+lines+"Connection: close\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("HTTP/1.1 response: %v", err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// h2Status speaks HTTP/2 with prior knowledge on c: one GET with the extra
// fields, its header block split over CONTINUATION frames of the
// protocol's default size. It returns the response's :status, or the
// GOAWAY code that closed the connection before one. Go's client would
// refuse to send a block over the server's SETTINGS_MAX_HEADER_LIST_SIZE,
// so the frames are written by hand, as a hostile client would.
func h2Status(t *testing.T, c net.Conn, fields ...hpack.HeaderField) (int, http2.ErrCode) {
	t.Helper()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "https"}, {":authority", "x"}, {":path", "/"}} {
		enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	for _, f := range fields {
		enc.WriteField(hpack.HeaderField{Name: strings.ToLower(f.Name), Value: f.Value})
	}
	block := hb.Bytes()
	go func() {
		bw := bufio.NewWriter(c)
		fr := http2.NewFramer(bw, nil)
		bw.WriteString(http2.ClientPreface)
		fr.WriteSettings()
		const max = 16 << 10
		first := block[:min(max, len(block))]
		rest := block[len(first):]
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: first, EndStream: true, EndHeaders: len(rest) == 0})
		for len(rest) > 0 {
			n := min(max, len(rest))
			fr.WriteContinuation(1, n == len(rest), rest[:n])
			rest = rest[n:]
		}
		bw.Flush()
	}()
	fr := http2.NewFramer(io.Discard, c)
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("HTTP/2 response: %v", err)
		}
		switch f := f.(type) {
		case *http2.MetaHeadersFrame:
			if f.StreamID != 1 {
				continue
			}
			code, err := strconv.Atoi(f.PseudoValue("status"))
			if err != nil {
				t.Fatalf("HTTP/2 :status %q", f.PseudoValue("status"))
			}
			return code, 0
		case *http2.GoAwayFrame:
			return 0, f.ErrCode
		case *http2.RSTStreamFrame:
			t.Fatalf("HTTP/2: RST_STREAM %v before a response", f.ErrCode)
		}
	}
}

func tlsConn(t *testing.T, addr, alpn string) net.Conn {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{alpn}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if got := c.ConnectionState().NegotiatedProtocol; got != alpn {
		t.Fatalf("ALPN %q, want %q", got, alpn)
	}
	return c
}

func tcpConn(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestDefaultHeadLimitIs32KiB: with limits at their defaults, a 64 KiB
// header field, and a head a little over the limit (two 20 KiB fields),
// get 431 on every listener and protocol, are counted as refused and never
// reach the origin, while a 16 KiB field goes through. (The default used
// to be 1 MiB, which let 64 KiB lines through to Tomcat.)
//
// Over HTTP/2 the limit must not be Go's server's own: hardened against
// CONTINUATION floods (CVE-2023-45288), it closes the connection with
// GOAWAY instead of answering 431 when one field is longer than its whole
// limit.
func TestDefaultHeadLimitIs32KiB(t *testing.T) {
	s := newEdgeStack(t)
	h3 := &http3.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true, ServerName: "localhost"}}
	t.Cleanup(func() { h3.Close() })
	big := []hpack.HeaderField{{Name: "X-Big", Value: strings.Repeat("a", 64<<10)}}
	fine := []hpack.HeaderField{{Name: "X-Fine", Value: strings.Repeat("a", 16<<10)}}
	over := []hpack.HeaderField{{Name: "X-A", Value: strings.Repeat("a", 20<<10)}, {Name: "X-B", Value: strings.Repeat("b", 20<<10)}}
	h1 := func(c func(t *testing.T) net.Conn) func(*testing.T, []hpack.HeaderField) string {
		return func(t *testing.T, fs []hpack.HeaderField) string {
			var lines strings.Builder
			for _, f := range fs {
				lines.WriteString(f.Name + ": " + f.Value + "\r\n")
			}
			return strconv.Itoa(h1Status(t, c(t), lines.String()))
		}
	}
	h2 := func(c func(t *testing.T) net.Conn) func(*testing.T, []hpack.HeaderField) string {
		return func(t *testing.T, fs []hpack.HeaderField) string {
			code, goaway := h2Status(t, c(t), fs...)
			if code == 0 {
				return "GOAWAY " + goaway.String()
			}
			return strconv.Itoa(code)
		}
	}
	plain := func(t *testing.T) net.Conn { return tcpConn(t, s.plain) }
	protocols := []struct {
		name   string
		status func(t *testing.T, fs []hpack.HeaderField) string
	}{
		{"HTTP/1.1 cleartext", h1(plain)},
		{"HTTP/1.1 TLS", h1(func(t *testing.T) net.Conn { return tlsConn(t, s.tls, "http/1.1") })},
		{"h2c", h2(plain)},
		{"h2 TLS", h2(func(t *testing.T) net.Conn { return tlsConn(t, s.tls, "h2") })},
		{"HTTP/3", func(t *testing.T, fs []hpack.HeaderField) string {
			req, _ := http.NewRequest(http.MethodGet, "https://"+s.h3+"/", nil)
			for _, f := range fs {
				req.Header.Set(f.Name, f.Value)
			}
			resp, err := h3.RoundTrip(req)
			if err != nil {
				t.Fatalf("HTTP/3: %v", err)
			}
			resp.Body.Close()
			return strconv.Itoa(resp.StatusCode)
		}},
	}
	refused := s.m.rejected.WithLabelValues(reasonHeaderTooLarge)
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			before, counted := s.seen.Load(), testutil.ToFloat64(refused)
			if got := p.status(t, big); got != "431" {
				t.Errorf("64 KiB header field: %s, want 431", got)
			}
			if got := p.status(t, over); got != "431" {
				t.Errorf("two 20 KiB header fields: %s, want 431", got)
			}
			if n := s.seen.Load() - before; n != 0 {
				t.Errorf("the origin saw %d requests with heads over the limit", n)
			}
			if n := testutil.ToFloat64(refused) - counted; n != 2 {
				t.Errorf("sluice_client_rejected_total{reason=%q} went up by %v, want 2", reasonHeaderTooLarge, n)
			}
			if got := p.status(t, fine); got != "200" {
				t.Errorf("16 KiB header field: %s, want 200", got)
			}
		})
	}
}
