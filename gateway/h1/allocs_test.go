package h1

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"testing"

	"github.com/sluice-gw/sluice/gateway/gatewaytest"
)

// maxAllocsPerKeepAliveRequest pins the allocations of the server and its
// handler per keep-alive GET (TestServeKeepAliveAllocs): 5 once the
// request's context was a ctxend.Notifier of its own (7 with a
// context.WithCancel and its cancel func per request). The client reads
// without allocating and the counters are the process's, so the figure
// is exact: no slack.
const maxAllocsPerKeepAliveRequest = 5

// TestServeKeepAliveAllocs fails when the server allocates more per
// keep-alive request. The handler asks for the request's context, and a
// watcher on it, as the gateway's proxy and upstream's queue do.
func TestServeKeepAliveAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	if testing.Short() {
		t.Skip("measures")
	}
	var w endedFunc = func() {}
	c, br := dial(t, startServer(t, &Server{}, func(rw http.ResponseWriter, r *http.Request) {
		if cn, ok := r.Context().(cancelNotifier); ok && cn.OnCancel(w) {
			cn.StopOnCancel()
		}
		io.WriteString(rw, "hello")
	}))
	req := []byte("GET /index.html?q=1 HTTP/1.1\r\nHost: x\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n")
	serve := func() {
		if _, err := c.Write(req); err != nil {
			t.Fatal(err)
		}
		if err := readHello(br); err != nil {
			t.Fatal(err)
		}
	}
	got := gatewaytest.MedianAllocs(t, "keep-alive request", serve)
	if got > maxAllocsPerKeepAliveRequest {
		t.Errorf("%.1f allocations per keep-alive request, pinned at %d", got, maxAllocsPerKeepAliveRequest)
	}
}

// readHello reads a response whose body is "hello" without allocating.
func readHello(br interface{ ReadSlice(byte) ([]byte, error) }) error {
	line, err := br.ReadSlice('\n')
	if err != nil {
		return err
	}
	if !bytes.HasPrefix(line, []byte("HTTP/1.1 200 ")) {
		return fmt.Errorf("status line %q", line)
	}
	for len(line) > 2 {
		if line, err = br.ReadSlice('\n'); err != nil {
			return err
		}
	}
	body, err := br.ReadSlice('o')
	if err != nil {
		return err
	}
	if string(body) != "hello" {
		return fmt.Errorf("body %q", body)
	}
	return nil
}
