package gateway

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/sluice-gw/sluice/gateway/gatewaytest"
)

// maxAllocsPerRequest pins the allocations per proxied GET with the
// origin in another process (TestProxyRequestAllocs), so that they are
// the gateway's, the h2c client's and the test's recorder's alone: 52
// at 2d60272, where the fast path started (net/http's HTTP/2 client;
// measured the same way on that tree), 17 before the h2c client had its own HPACK decoder and HEADERS frame
// reading and the coalescer started its flusher without a closure, 16
// after; 13 once the attempt's context was the tracker's own (no context
// of WithCancelCause, and no Done channel: the h2c client learns of its
// end through OnCancel); 12 once the clients told the attempt's context
// of the written headers (HeadersWritten) rather than a WroteHeaders
// closure per attempt. Of the 12: the recorder's 8 (httptest.NewRecorder
// 3, its header snapshot at WriteHeader 3, its body buffer 1, its header
// map growing for the copied fields 1), the upstream attempt's tracker 1,
// the h2c stream 1 and the response header map 2. The counters are the
// process's own, so the figure is exact: no slack.
const maxAllocsPerRequest = 12

// originChildEnv makes TestBenchOriginChild serve, in a child process
// of the test binary, the origin of TestProxyRequestAllocs.
const originChildEnv = "SLUICE_TEST_BENCH_ORIGIN"

// TestBenchOriginChild is not a test: run as a child process with
// originChildEnv set, it serves benchHandler over h2c, prints its
// address and serves until it is killed.
func TestBenchOriginChild(t *testing.T) {
	if os.Getenv(originChildEnv) == "" {
		t.Skip("the origin of TestProxyRequestAllocs, run as a child process")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	fmt.Println(ln.Addr())
	(&http.Server{Protocols: &p, Handler: http.HandlerFunc(benchHandler)}).Serve(ln)
}

// childOrigin starts TestBenchOriginChild in a child process until the
// test ends and returns its address.
func childOrigin(t testing.TB) string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestBenchOriginChild$")
	cmd.Env = append(os.Environ(), originChildEnv+"=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr gatewaytest.Buffer
	cmd.Stderr = &stderr
	gatewaytest.Start(t, "origin", cmd, stderr.String)
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("origin's address: %v", err)
	}
	return strings.TrimSpace(line)
}

// TestProxyRequestAllocs is TestProxyRequestInProcessAllocs with the origin in
// a child process: it fails when the gateway or the h2c client allocates
// more per request.
func TestProxyRequestAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	if testing.Short() {
		t.Skip("measures")
	}
	g := benchGatewayAt(t, childOrigin(t))
	req := httptest.NewRequest("GET", "http://front/", nil)
	got := allocsPerRequest(t, func() {
		rec := httptest.NewRecorder()
		g.ServeHTTP(rec, req)
		if rec.Code != 200 {
			t.Fatalf("status %d", rec.Code)
		}
	})
	if got > maxAllocsPerRequest {
		t.Errorf("%.1f allocations per proxied request in the gateway's process, pinned at %d", got, maxAllocsPerRequest)
	}
}
