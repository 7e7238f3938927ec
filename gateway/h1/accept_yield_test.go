package h1

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"sync/atomic"
	"testing"
)

// TestAcceptLoopYieldsPerConnection: the accept loop yields once for
// every connection it accepts (yieldAfterAccept), after handing it to its
// goroutine, and the connections are served.
func TestAcceptLoopYieldsPerConnection(t *testing.T) {
	var yields atomic.Int64
	yieldAfterAccept = func() { yields.Add(1); runtime.Gosched() }
	t.Cleanup(func() { yieldAfterAccept = runtime.Gosched })
	var accepted atomic.Int64
	s := &Server{ConnState: func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			accepted.Add(1)
		}
	}}
	addr := startServer(t, s, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	const n = 5
	for i := range n {
		c, br := dial(t, addr)
		fmt.Fprintf(c, "GET /%d HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", i)
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		c.Close()
	}
	waitFor(t, "the yields", func() bool { return yields.Load() == n })
	if a := accepted.Load(); a != n {
		t.Errorf("%d connections accepted, want %d", a, n)
	}
}
