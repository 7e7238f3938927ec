package h1

import (
	"io"
	"net/http"
	"testing"
	"time"
)

// TestServerExpectContinue: 100 Continue is sent when the handler reads
// the body, not before; a handler that answers without reading gets no
// 100 and the connection closes; other expectations get 417.
func TestServerExpectContinue(t *testing.T) {
	addr := startServer(t, &Server{}, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/refuse" {
			w.WriteHeader(http.StatusForbidden)
			return
		}
		echo(w, r)
	})
	c, br := dial(t, addr)
	io.WriteString(c, "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
	line, err := br.ReadString('\n')
	if err != nil || line != "HTTP/1.1 100 Continue\r\n" {
		t.Fatalf("%q %v", line, err)
	}
	br.ReadString('\n')
	io.WriteString(c, "hello")
	if _, body := readResponse(t, br, "POST"); body != "hello" {
		t.Fatalf("body %q", body)
	}
	io.WriteString(c, "POST /refuse HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
	if res, _ := readResponse(t, br, "POST"); res.StatusCode != 403 || !res.Close {
		t.Errorf("refused: %d, close %v", res.StatusCode, res.Close)
	}
	c2, br2 := dial(t, addr)
	io.WriteString(c2, "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nExpect: teapot\r\n\r\n")
	if res, _ := readResponse(t, br2, "POST"); res.StatusCode != http.StatusExpectationFailed {
		t.Errorf("unknown expectation: %d", res.StatusCode)
	}
}

// TestServerAnswersWhileBodyIsRead: a handler that answers while another
// goroutine still waits for the rest of the body (an upstream client
// copying it) gets its answer out at once, not after the rest of the body
// or the read timeout.
func TestServerAnswersWhileBodyIsRead(t *testing.T) {
	addr := startServer(t, &Server{ReadHeaderTimeout: 2 * time.Second}, func(w http.ResponseWriter, r *http.Request) {
		go io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusRequestEntityTooLarge)
	})
	c, br := dial(t, addr)
	start := time.Now()
	io.WriteString(c, "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1000\r\n\r\nfirst bytes")
	res, _ := readResponse(t, br, "POST")
	if d := time.Since(start); res.StatusCode != http.StatusRequestEntityTooLarge || d > time.Second {
		t.Errorf("%d after %v; want 413 at once", res.StatusCode, d)
	}
}

// TestServerRelayedContinue: a handler that writes the 100 Continue itself
// (relaying its upstream's) then reads the body; no second 100 is sent.
func TestServerRelayedContinue(t *testing.T) {
	addr := startServer(t, &Server{}, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusContinue)
		echo(w, r)
	})
	c, br := dial(t, addr)
	io.WriteString(c, "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
	if res, err := http.ReadResponse(br, nil); err != nil || res.StatusCode != http.StatusContinue {
		t.Fatalf("%v %v", res, err)
	}
	io.WriteString(c, "hello")
	if res, body := readResponse(t, br, "POST"); res.StatusCode != 200 || body != "hello" {
		t.Errorf("%d %q", res.StatusCode, body)
	}
}

// TestServerOneContinue: a handler relaying a 100 Continue after the body
// reader sent one does not make a second.
func TestServerOneContinue(t *testing.T) {
	addr := startServer(t, &Server{}, func(w http.ResponseWriter, r *http.Request) {
		b := make([]byte, 1)
		io.ReadFull(r.Body, b) // sends 100 Continue
		w.WriteHeader(http.StatusContinue)
		rest, _ := io.ReadAll(r.Body)
		w.Write(append(b, rest...))
	})
	c, br := dial(t, addr)
	io.WriteString(c, "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
	if res, err := http.ReadResponse(br, nil); err != nil || res.StatusCode != http.StatusContinue {
		t.Fatalf("%v %v", res, err)
	}
	io.WriteString(c, "hello")
	if res, body := readResponse(t, br, "POST"); res.StatusCode != 200 || body != "hello" {
		t.Errorf("after the 100: %d %q, want 200 and the body", res.StatusCode, body)
	}
}
