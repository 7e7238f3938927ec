package h1

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// TestServerIdleTimeoutFromLastRequest: the idle timeout runs from the
// end of the last request, however long ago the deadline left on the
// socket through the requests (conn.idleBy) was set: requests that come
// more often than the idle timeout, for longer than it, are all served,
// and the connection closes an idle timeout after the last.
func TestServerIdleTimeoutFromLastRequest(t *testing.T) {
	// Requests come every idle/4, so a client delayed by the scheduler
	// for up to three quarters of the timeout is still served.
	const idle = 1 * time.Second
	const slack = 50 * time.Millisecond
	for _, fl := range watchFlavours {
		t.Run(fl.name, func(t *testing.T) {
			addr := serveWrapped(t, &Server{IdleTimeout: idle}, echo, fl.wrap)
			c, br := dial(t, addr)
			var last time.Time
			for i := range 6 {
				if i > 0 {
					time.Sleep(idle / 4) // idle, for less than the timeout
				}
				fmt.Fprintf(c, "GET /%d HTTP/1.1\r\nHost: h\r\n\r\n", i)
				readResponse(t, br, "GET")
				last = time.Now()
			}
			_, err := io.ReadAll(br)
			if d := time.Since(last); err != nil || d < idle-slack || d > 5*time.Second {
				t.Errorf("closed %v after the last response (%v), want between %v and 5s", d, err, idle-slack)
			}
		})
	}
}

// TestServerRequestOutlastsIdleDeadline: a request without a body that
// outlasts the idle deadline left on the socket for it (conn.idleBy) is
// not cut by it: a slow answer is answered and the connection goes on,
// and a client that leaves after the deadline passed is still noticed
// (the watcher clears the deadline and waits on).
func TestServerRequestOutlastsIdleDeadline(t *testing.T) {
	const idle = 300 * time.Millisecond
	for _, fl := range watchFlavours {
		t.Run(fl.name, func(t *testing.T) {
			canceled := make(chan error, 1)
			addr := serveWrapped(t, &Server{IdleTimeout: idle}, func(w http.ResponseWriter, r *http.Request) {
				switch r.URL.Path {
				case "/slow":
					time.Sleep(2 * idle)
				case "/wait":
					awaitCancel(w, r, canceled)
					return
				}
				io.WriteString(w, r.URL.Path)
			}, fl.wrap)
			c, br := dial(t, addr)
			// The first request leaves the idle deadline set; the ones
			// after it keep it.
			for _, path := range []string{"/first", "/slow", "/after"} {
				fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: h\r\n\r\n", path)
				if _, body := readResponse(t, br, "GET"); body != path {
					t.Fatalf("%s: %q", path, body)
				}
			}
			io.WriteString(c, "GET /wait HTTP/1.1\r\nHost: h\r\n\r\n")
			res, err := http.ReadResponse(br, nil)
			if err != nil || res.StatusCode != http.StatusOK {
				t.Fatalf("/wait: %v %v", res, err)
			}
			time.Sleep(2 * idle) // the deadline left for /wait passes
			c.Close()
			if err := <-canceled; !errors.Is(err, context.Canceled) {
				t.Errorf("/wait: %v", err)
			}
		})
	}
}

// TestReadHeadPastIdleDeadline: the idle deadline left on the socket
// through a request without a body (conn.idleBy) may pass just after the
// watcher saw the next request's bytes come and before the worker reads
// them; they are read all the same, under the head's clock, not taken
// for an idle connection timing out (which closed it with the request
// unread).
func TestReadHeadPastIdleDeadline(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	if _, err := io.WriteString(client, "GET /next HTTP/1.1\r\nHost: h\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	cc := newConn(&Server{}, server)
	cc.first = false
	cc.idleBy = time.Now().Add(-time.Millisecond)
	server.SetReadDeadline(cc.idleBy)
	defer cc.releaseBuf()
	if err := cc.readHead(); err != nil {
		t.Fatalf("readHead: %v", err)
	}
	if string(cc.req.Target) != "/next" || !cc.idleBy.IsZero() {
		t.Errorf("target %q, idleBy %v", cc.req.Target, cc.idleBy)
	}
}
