package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/gateway/gatewaytest"
)

// idleConn is a client connection that has had one answer and now idles.
type idleConn struct {
	c  net.Conn
	br *bufio.Reader
}

// openIdle opens a keep-alive HTTP/1.1 connection to addr, sends GET /,
// reads the answer and leaves the connection open.
func openIdle(addr string) (*idleConn, error) {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: idle.test\r\n\r\n"); err != nil {
		c.Close()
		return nil, err
	}
	br := bufio.NewReaderSize(c, 512)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		c.Close()
		return nil, err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || string(b) != helloBody || resp.Close {
		c.Close()
		return nil, fmt.Errorf("answer %d %q close=%v: %v", resp.StatusCode, b, resp.Close, err)
	}
	c.SetDeadline(time.Time{})
	return &idleConn{c, br}, nil
}

// 10,000 idle HTTP/1.1 client connections, each served once, are held
// open; the test reports sluice's memory per idle connection.
func TestIdleClientConnections(t *testing.T) {
	const n = 10000
	s := startSluice(t, h2cFunnelConfig())
	pid := s.cmd.Process.Pid
	// Warm-up: upstream connections, pools and Tomcat are in their steady
	// state before the first measurement.
	runLoad(t, s.URL, loadSpec{Clients: 200, Duration: time.Second, KeepAlive: true}).requireClean(t)
	http1 := map[string]string{"protocol": "http1"}
	gatewaytest.WaitFor(t, 10*time.Second, "the warm-up's client connections closed", func() bool {
		return metric(t, s.Admin, "sluice_client_connections", http1) == 0
	})
	before := rssKiB(t, pid)
	open0 := metric(t, s.Admin, "sluice_client_connections", http1)

	conns := make([]*idleConn, n)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		failed   int
		firstErr error
		next     = make(chan int)
	)
	start := time.Now()
	for range 64 {
		wg.Go(func() {
			for i := range next {
				c, err := openIdle(s.Listen)
				if err != nil {
					mu.Lock()
					failed++
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					continue
				}
				conns[i] = c
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.c.Close()
			}
		}
	}()
	t.Logf("%d connections opened and served in %v, %d failed", n-failed, time.Since(start).Round(time.Millisecond), failed)
	if failed > 0 {
		t.Fatalf("%d of %d connections failed; first: %v", failed, n, firstErr)
	}
	gatewaytest.WaitFor(t, 10*time.Second, fmt.Sprintf("sluice_client_connections{protocol=http1} to count the %d idle connections", n), func() bool {
		return metric(t, s.Admin, "sluice_client_connections", http1) >= open0+n
	})
	with := rssKiB(t, pid)
	open := metric(t, s.Admin, "sluice_client_connections", http1)
	perConn := float64(with-before) / n
	t.Logf("sluice RSS: %d KiB before, %d KiB with %d idle connections: %.1f KiB per idle HTTP/1.1 connection", before, with, n, perConn)
	t.Logf("sluice_client_connections{protocol=http1}: %v before, %v with the idle connections", open0, open)
	if open-open0 < n {
		t.Errorf("sluice_client_connections{protocol=http1} grew by %v, want %d", open-open0, n)
	}

	// Every idle connection is still usable: a sample sends a second
	// request on it.
	for i := 0; i < n; i += n / 20 {
		c := conns[i]
		c.c.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(c.c, "GET / HTTP/1.1\r\nHost: idle.test\r\n\r\n")
		resp, err := http.ReadResponse(c.br, nil)
		if err != nil {
			t.Fatalf("idle connection %d: second request: %v", i, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != helloBody {
			t.Errorf("idle connection %d: second request: %d %q", i, resp.StatusCode, b)
		}
	}
}
