package e2e

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha1"
	"crypto/tls"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/gateway/gatewaytest"
)

// examplesDir is Tomcat's examples webapp (Debian tomcat10-examples, which
// `make deps` installs), deployed at /examples on the shared Tomcat.
const examplesDir = "/usr/share/tomcat10-examples/examples"

// ---------------------------------------------------------------- WebSocket client

// wsConn is a minimal RFC 6455 client: the handshake, masked frames out,
// fragmented messages in. Enough to talk to Tomcat's examples.
type wsConn struct {
	c  net.Conn
	br *bufio.Reader
	mu sync.Mutex // serialises writes (a pong may interleave with a message)
}

const (
	wsText   = 1
	wsBinary = 2
	wsClose  = 8
	wsPing   = 9
	wsPong   = 10
)

// dialWS opens a WebSocket to path over c (a TCP or TLS connection to
// sluice).
func dialWS(c net.Conn, host, path string) (*wsConn, error) {
	c.SetDeadline(time.Now().Add(30 * time.Second))
	var k [16]byte
	rand.Read(k[:])
	key := base64.StdEncoding.EncodeToString(k[:])
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n", path, host, key)
	br := bufio.NewReader(c)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		return nil, fmt.Errorf("handshake: %w", err)
	}
	if res.StatusCode != http.StatusSwitchingProtocols {
		body, _ := io.ReadAll(io.LimitReader(res.Body, 512))
		return nil, fmt.Errorf("handshake: %s: %q", res.Status, body)
	}
	sum := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	if got, want := res.Header.Get("Sec-WebSocket-Accept"), base64.StdEncoding.EncodeToString(sum[:]); got != want {
		return nil, fmt.Errorf("handshake: Sec-WebSocket-Accept %q, want %q", got, want)
	}
	c.SetDeadline(time.Time{})
	return &wsConn{c: c, br: br}, nil
}

// write sends one frame, masked as a client must.
func (w *wsConn) write(op byte, payload []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	hdr := []byte{0x80 | op}
	switch n := len(payload); {
	case n < 126:
		hdr = append(hdr, 0x80|byte(n))
	case n < 1<<16:
		hdr = append(hdr, 0x80|126, byte(n>>8), byte(n))
	default:
		hdr = append(hdr, 0x80|127)
		hdr = binary.BigEndian.AppendUint64(hdr, uint64(n))
	}
	var mask [4]byte
	rand.Read(mask[:])
	hdr = append(hdr, mask[:]...)
	masked := make([]byte, len(payload))
	for i, b := range payload {
		masked[i] = b ^ mask[i%4]
	}
	w.c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_, err := w.c.Write(append(hdr, masked...))
	return err
}

// read returns the next data message, reassembled from its fragments,
// answering pings on the way.
func (w *wsConn) read(timeout time.Duration) (op byte, msg []byte, err error) {
	w.c.SetReadDeadline(time.Now().Add(timeout))
	for {
		var h [2]byte
		if _, err := io.ReadFull(w.br, h[:]); err != nil {
			return 0, nil, err
		}
		fin, opcode := h[0]&0x80 != 0, h[0]&0x0f
		if h[1]&0x80 != 0 {
			return 0, nil, errors.New("masked frame from the server")
		}
		n := uint64(h[1] & 0x7f)
		switch n {
		case 126:
			var b [2]byte
			if _, err := io.ReadFull(w.br, b[:]); err != nil {
				return 0, nil, err
			}
			n = uint64(binary.BigEndian.Uint16(b[:]))
		case 127:
			var b [8]byte
			if _, err := io.ReadFull(w.br, b[:]); err != nil {
				return 0, nil, err
			}
			n = binary.BigEndian.Uint64(b[:])
		}
		if n > 16<<20 {
			return 0, nil, fmt.Errorf("frame of %d bytes", n)
		}
		payload := make([]byte, n)
		if _, err := io.ReadFull(w.br, payload); err != nil {
			return 0, nil, err
		}
		switch opcode {
		case wsPing:
			if err := w.write(wsPong, payload); err != nil {
				return 0, nil, err
			}
			continue
		case wsPong:
			continue
		case wsClose:
			return wsClose, payload, io.EOF
		case 0: // continuation
		default:
			op = opcode
		}
		msg = append(msg, payload...)
		if fin {
			return op, msg, nil
		}
	}
}

func (w *wsConn) close() {
	w.write(wsClose, []byte{0x03, 0xe8}) // 1000: normal closure
	w.c.Close()
}

// ---------------------------------------------------------------- tests

// wsListener is one of sluice's client listeners and how to reach it over
// HTTP/1.1.
type wsListener struct {
	name string
	dial func() (net.Conn, error)
}

// h1Listeners are s's listen and tls_listen, reached over HTTP/1.1.
func h1Listeners(s *sluiceProc) []wsListener {
	return []wsListener{
		{"listen", func() (net.Conn, error) { return net.DialTimeout("tcp", s.Listen, 5*time.Second) }},
		{"tls_listen", func() (net.Conn, error) {
			d := &net.Dialer{Timeout: 5 * time.Second}
			return tls.DialWithDialer(d, "tcp", s.TLS, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
		}},
	}
}

// TestWebSocketThroughH2CServer pins issue 9 item 11: Tomcat's own
// WebSocket examples answered 502 through sluice when the server was used
// over h2c, since Tomcat has no WebSocket over HTTP/2. Now each WebSocket
// gets an HTTP/1.1 connection of its own to the server. Tested with
// HTTP/1.1 clients on listen and tls_listen, backend in protocol auto (h2c
// detected): echo of a text, a binary and a 100 KB message, a chat
// broadcast between two clients, and a connection idle for 15 s still
// echoing.
func TestWebSocketThroughH2CServer(t *testing.T) {
	tlsYAML := tlsEdge(t, false)
	s := startSluice(t, tlsYAML+upstream{Protocol: "auto", Ports: []int{tc.A}}.yaml())
	waitH2CDetected(t, s)
	listeners := h1Listeners(s)
	open := func(t *testing.T, l wsListener, path string) *wsConn {
		t.Helper()
		c, err := l.dial()
		if err != nil {
			t.Fatal(err)
		}
		ws, err := dialWS(c, "localhost", path)
		if err != nil {
			c.Close()
			t.Fatalf("%s %s: %v", l.name, path, err)
		}
		t.Cleanup(ws.close)
		return ws
	}
	echo := func(t *testing.T, ws *wsConn, op byte, msg []byte) {
		t.Helper()
		if err := ws.write(op, msg); err != nil {
			t.Fatal(err)
		}
		gotOp, got, err := ws.read(30 * time.Second)
		if err != nil {
			t.Fatalf("echo of %d bytes: %v", len(msg), err)
		}
		if gotOp != op || !bytes.Equal(got, msg) {
			t.Fatalf("echo of %d bytes (opcode %d): got %d bytes, opcode %d", len(msg), op, len(got), gotOp)
		}
	}
	const echoPath = "/examples/websocket/echoAnnotation"

	// The idle connections open first and are checked last, so that the
	// other cases run during their 15 s.
	idle := map[string]*wsConn{}
	for _, l := range listeners {
		ws := open(t, l, echoPath)
		echo(t, ws, wsText, []byte("before the pause"))
		idle[l.name] = ws
	}
	idleSince := time.Now()

	for _, l := range listeners {
		t.Run(l.name, func(t *testing.T) {
			t.Run("echo", func(t *testing.T) {
				ws := open(t, l, echoPath)
				echo(t, ws, wsText, []byte("hello through sluice"))
				bin := make([]byte, 256)
				for i := range bin {
					bin[i] = byte(i)
				}
				echo(t, ws, wsBinary, bin)
				big := []byte(strings.Repeat("0123456789abcdef", 100<<10/16))
				echo(t, ws, wsText, big)
			})
			t.Run("chat broadcast", func(t *testing.T) {
				// Each client is in the room once it got a join message:
				// its own, broadcast after the 101 (a departure of the
				// previous subtest's clients may come first).
				joined := func(ws *wsConn) {
					t.Helper()
					for {
						_, msg, err := ws.read(30 * time.Second)
						if err != nil {
							t.Fatalf("no join message: %v", err)
						}
						if strings.HasSuffix(string(msg), "has joined.") {
							return
						}
					}
				}
				a := open(t, l, "/examples/websocket/chat")
				joined(a)
				b := open(t, l, "/examples/websocket/chat")
				joined(b)
				line := "hi from a over " + l.name
				if err := a.write(wsText, []byte(line)); err != nil {
					t.Fatal(err)
				}
				// b sees joins first, then a's line prefixed with a's nickname.
				deadline := time.Now().Add(30 * time.Second)
				for {
					_, msg, err := b.read(time.Until(deadline))
					if err != nil {
						t.Fatalf("b never got %q: %v", line, err)
					}
					if strings.HasSuffix(string(msg), ": "+line) {
						break
					}
				}
			})
		})
	}

	if n := metric(t, s.Admin, "sluice_upstream_tunnels", map[string]string{"backend": backendName}); n < 2 {
		t.Errorf("sluice_upstream_tunnels = %v with the 2 idle WebSockets open", n)
	}
	if rest := 15*time.Second - time.Since(idleSince); rest > 0 {
		time.Sleep(rest) // the idle period is the case under test
	}
	for _, l := range listeners {
		echo(t, idle[l.name], wsText, []byte("after 15 s idle over "+l.name))
		idle[l.name].close()
	}
	gatewaytest.WaitFor(t, 10*time.Second, "sluice_upstream_tunnels = 0 after every WebSocket closed", func() bool {
		return metric(t, s.Admin, "sluice_upstream_tunnels", map[string]string{"backend": backendName}) == 0
	})
}

// waitH2CDetected waits until the auto backend uses h2c to the server.
func waitH2CDetected(t *testing.T, s *sluiceProc) {
	t.Helper()
	gatewaytest.WaitFor(t, 10*time.Second, "protocol auto to detect h2c on Tomcat's connector", func() bool {
		return metric(t, s.Admin, "sluice_upstream_connections", map[string]string{"backend": backendName, "protocol": "h2c"}) >= 1
	})
}

// TestResponseTrailersForHTTP11Client pins issue 9 item 12: the examples
// webapp's /servlets/trailers/response ends with two trailer fields, which
// an h2 upstream sends unannounced. An HTTP/1.1 client that sent TE:
// trailers got Content-Length and no trailers; it must get both fields,
// on listen and on tls_listen (both served by sluice's HTTP/1.1 server).
func TestResponseTrailersForHTTP11Client(t *testing.T) {
	s := startSluice(t, tlsEdge(t, false)+upstream{Protocol: "auto", Ports: []int{tc.A}}.yaml())
	waitH2CDetected(t, s)
	for _, l := range h1Listeners(s) {
		t.Run(l.name, func(t *testing.T) { trailersForHTTP11Client(t, l) })
	}
}

func trailersForHTTP11Client(t *testing.T, l wsListener) {
	c, err := l.dial()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	br := bufio.NewReader(c)
	for _, te := range []string{"trailers", ""} {
		req := "GET /examples/servlets/trailers/response HTTP/1.1\r\nHost: localhost\r\n"
		if te != "" {
			req += "TE: " + te + "\r\nConnection: TE\r\n"
		}
		io.WriteString(c, req+"\r\n")
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(res.Body)
		if err != nil || res.StatusCode != 200 || !strings.Contains(string(body), "trailer fields") {
			t.Fatalf("TE %q: %d %q %v", te, res.StatusCode, body, err)
		}
		got := res.Trailer.Get("X-Trailer-1") == "Trailer value one" && res.Trailer.Get("X-Trailer-2") == "Trailer value two"
		if te != "" && !got {
			t.Errorf("TE: trailers: trailers %v, Transfer-Encoding %v, Content-Length %d; want x-trailer-1 and x-trailer-2",
				res.Trailer, res.TransferEncoding, res.ContentLength)
		}
		if te == "" && len(res.Trailer) != 0 && res.ContentLength >= 0 {
			t.Errorf("no TE: trailers %v with a Content-Length", res.Trailer)
		}
	}
}
