package h1

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestServerBurstKeepsWorkers: a burst of more concurrent requests than
// a thousand leaves its workers parked for the next one, so the next
// burst starts no goroutines (each new one grows its stack again by
// copying, and thousands of keep-alive clients make such bursts all the
// time).
func TestServerBurstKeepsWorkers(t *testing.T) {
	const k = 1500
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil || lim.Cur < 2*k+256 {
		t.Skipf("needs %d file descriptors (limit %d, %v)", 2*k+256, lim.Cur, err)
	}
	var (
		mu      sync.Mutex
		arrived int
		all     = make(chan struct{})
	)
	s := &Server{}
	addr := startServer(t, s, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		arrived++
		if arrived%k == 0 {
			close(all)
		}
		ch := all
		mu.Unlock()
		select {
		case <-ch: // k requests are being served at once
		case <-time.After(30 * time.Second):
			t.Error("the burst's requests never were all served at once")
		}
	})
	conns := make([]net.Conn, k)
	brs := make([]*bufio.Reader, k)
	for i := range conns {
		conns[i], brs[i] = dial(t, addr)
	}
	for burst := range 2 {
		var wg sync.WaitGroup
		for i := range conns {
			wg.Go(func() {
				io.WriteString(conns[i], "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
				res, err := http.ReadResponse(brs[i], nil)
				if err != nil {
					t.Errorf("connection %d: %v", i, err)
					return
				}
				io.Copy(io.Discard, res.Body)
			})
		}
		wg.Wait()
		mu.Lock()
		all = make(chan struct{})
		mu.Unlock()
		if t.Failed() {
			t.Fatalf("burst %d failed", burst)
		}
	}
	// A worker parks only after its connection's watcher took over: a
	// few more may start than the burst needs.
	if n := s.workers.started.Load(); n > k+k/10 {
		t.Errorf("two bursts of %d concurrent requests started %d workers, want about %d", k, n, k)
	}
}
