package client

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// FuzzClientAnswer feeds a Conn arbitrary server bytes (in pieces of a
// fuzzed size) as the answer to a GET or HEAD, and holds what it accepts,
// head and body, to http.ReadResponse's verdict on the same bytes: status
// and body must agree. It never hangs: the server closes after its bytes.
func FuzzClientAnswer(f *testing.F) {
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"), false, 7)
	f.Add([]byte("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X\r\n\r\n2\r\nok\r\n0\r\nX: y\r\n\r\n"), false, 3)
	f.Add([]byte("HTTP/1.1 200 OK\r\n\r\nuntil the end"), false, 1)
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"), true, 100)
	f.Add([]byte("HTTP/1.0 304 Not Modified\r\n\r\n"), false, 2)
	f.Fuzz(func(t *testing.T, answer []byte, head bool, step int) {
		if step <= 0 {
			step = 1
		}
		cn, sn := net.Pipe()
		defer cn.Close()
		go func() {
			defer sn.Close()
			sn.SetDeadline(time.Now().Add(5 * time.Second))
			if _, err := http.ReadRequest(bufio.NewReader(sn)); err != nil {
				return
			}
			for rest := answer; len(rest) > 0; {
				k := min(step, len(rest))
				if _, err := sn.Write(rest[:k]); err != nil {
					return
				}
				rest = rest[k:]
			}
		}()
		c := newConn(cn, "fuzz", Config{})
		method := http.MethodGet
		if head {
			method = http.MethodHead
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, method, "http://x/", nil)
		resp, err := c.RoundTrip(req)
		if err != nil {
			return
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode == http.StatusSwitchingProtocols {
			return
		}
		br := bufio.NewReader(bytes.NewReader(answer))
		var gr *http.Response
		for {
			gr, err = http.ReadResponse(br, req)
			if err != nil {
				t.Fatalf("accepted (%d, %q) what net/http refuses: %v\n%q", resp.StatusCode, body, err, answer)
			}
			if gr.StatusCode >= 200 || gr.StatusCode == 101 {
				break
			}
		}
		gb, err := io.ReadAll(gr.Body)
		if err != nil {
			t.Fatalf("accepted a body net/http refuses: %v\n%q", err, answer)
		}
		if gr.StatusCode != resp.StatusCode || !bytes.Equal(gb, body) {
			t.Fatalf("net/http %d %q, client %d %q\n%q", gr.StatusCode, gb, resp.StatusCode, body, answer)
		}
	})
}
