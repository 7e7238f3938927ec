package gateway

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// emfile is the error net's Accept returns when the process is out of
// descriptors.
var emfile = &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}

// fakeListener fails its first len(errs) accepts with errs, in order, then
// accepts from inner, or blocks until closed when inner is nil; always
// repeats errs forever.
type fakeListener struct {
	inner  net.Listener
	always error

	mu     sync.Mutex
	errs   []error     // guarded by mu
	calls  []time.Time // when Accept was called; guarded by mu
	closed chan struct{}
	once   sync.Once
}

func newFakeListener(inner net.Listener, errs ...error) *fakeListener {
	return &fakeListener{inner: inner, errs: errs, closed: make(chan struct{})}
}

func (f *fakeListener) Accept() (net.Conn, error) {
	f.mu.Lock()
	f.calls = append(f.calls, time.Now())
	if f.always != nil {
		f.mu.Unlock()
		return nil, f.always
	}
	if len(f.errs) > 0 {
		err := f.errs[0]
		f.errs = f.errs[1:]
		f.mu.Unlock()
		return nil, err
	}
	f.mu.Unlock()
	if f.inner != nil {
		return f.inner.Accept()
	}
	<-f.closed
	return nil, net.ErrClosed
}

func (f *fakeListener) Close() error {
	f.once.Do(func() { close(f.closed) })
	if f.inner != nil {
		return f.inner.Close()
	}
	return nil
}

func (f *fakeListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1} }

func (f *fakeListener) gaps() []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []time.Duration
	for i := 1; i < len(f.calls); i++ {
		out = append(out, f.calls[i].Sub(f.calls[i-1]))
	}
	return out
}

func TestAcceptReason(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want string
	}{
		{emfile, acceptEMFILE},
		{&net.OpError{Op: "accept", Err: os.NewSyscallError("accept4", syscall.ENFILE)}, acceptENFILE},
		{&net.OpError{Op: "accept", Err: os.NewSyscallError("accept4", syscall.ENOBUFS)}, acceptNoMem},
		{&net.OpError{Op: "accept", Err: os.NewSyscallError("accept4", syscall.ENOMEM)}, acceptNoMem},
		{&net.OpError{Op: "accept", Err: os.NewSyscallError("accept4", syscall.ECONNABORTED)}, acceptAborted},
		{&net.OpError{Op: "accept", Err: net.ErrClosed}, acceptClosed},
		{errors.New("something else"), acceptOther},
	} {
		if got := acceptReason(tt.err); got != tt.want {
			t.Errorf("acceptReason(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}

// TestRetryListenerBacksOff: accepts failing with EMFILE are retried after
// 5 ms, doubling to 1 s, as net/http does; the listener shows down only
// once the delay reaches 1 s, and up again at the next accept.
func TestRetryListenerBacksOff(t *testing.T) {
	for _, failures := range []int{3, 10} {
		t.Run(fmt.Sprint(failures, " failures"), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ls := newListeners()
				errs := make([]error, failures)
				for i := range errs {
					errs[i] = emfile
				}
				client, server := net.Pipe()
				defer client.Close()
				inner := newFakeListener(oneConn(server), errs...)
				ln := ls.Watch(inner, "listen", quiet())
				defer ln.Close()
				got := make(chan net.Conn, 1)
				go func() {
					c, err := ln.Accept()
					if err != nil {
						t.Errorf("Accept: %v", err)
					}
					got <- c
				}()
				// The delays add up to 1275 ms before the failure
				// that takes the delay to 1 s.
				time.Sleep(1300 * time.Millisecond)
				synctest.Wait()
				down, up := ls.Down(), testutil.ToFloat64(ls.up.WithLabelValues("listen"))
				switch {
				case failures < 9 && (len(down) != 0 || up != 1):
					t.Errorf("after %d failures: down %q, sluice_listener_up %v; want up", failures, down, up)
				case failures >= 9 && (len(down) != 1 || up != 0):
					t.Errorf("failing for 1.3 s: down %q, sluice_listener_up %v; want down", down, up)
				case len(down) == 1 && !strings.HasPrefix(down[0], "listen: accept failing: ") || len(down) == 1 && !strings.Contains(down[0], "too many open files"):
					t.Errorf("down %q, want the listener and the error named", down)
				}
				if c := <-got; c != server {
					t.Errorf("Accept returned %v, want the connection after the failures", c)
				}
				want := []time.Duration{}
				for d := acceptDelayMin; len(want) < failures; d = min(2*d, acceptDelayMax) {
					want = append(want, d)
				}
				if gaps := inner.gaps(); fmt.Sprint(gaps) != fmt.Sprint(want) {
					t.Errorf("accepts retried after %v, want %v", gaps, want)
				}
				if down := ls.Down(); len(down) != 0 || testutil.ToFloat64(ls.up.WithLabelValues("listen")) != 1 {
					t.Errorf("after a successful accept: down %q, sluice_listener_up %v", down, testutil.ToFloat64(ls.up.WithLabelValues("listen")))
				}
				if n := testutil.ToFloat64(ls.errors.WithLabelValues("listen", acceptEMFILE)); n != float64(failures) {
					t.Errorf("sluice_listener_accept_errors_total{reason=emfile} = %v, want %d", n, failures)
				}
			})
		})
	}
}

// oneConn is a listener that accepts c once, then blocks until closed.
func oneConn(c net.Conn) net.Listener {
	ch := make(chan net.Conn, 1)
	ch <- c
	return &chanListener{ch: ch, closed: make(chan struct{})}
}

type chanListener struct {
	ch     chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) Close() error   { l.once.Do(func() { close(l.closed) }); return nil }
func (l *chanListener) Addr() net.Addr { return &net.TCPAddr{} }

// TestRetryListenerCloseEndsWait: Close during a retry wait returns Accept
// at once with net.ErrClosed, and forgets the listener.
func TestRetryListenerCloseEndsWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ls := newListeners()
		inner := newFakeListener(nil)
		inner.always = emfile
		ln := ls.Watch(inner, "tls_listen", quiet())
		done := make(chan error, 1)
		go func() {
			_, err := ln.Accept()
			done <- err
		}()
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if down := ls.Down(); len(down) != 1 || !strings.HasPrefix(down[0], "tls_listen: ") {
			t.Errorf("failing for 10 s: down %q", down)
		}
		start := time.Now()
		ln.Close()
		if err := <-done; !errors.Is(err, net.ErrClosed) {
			t.Errorf("Accept after Close: %v, want net.ErrClosed", err)
		}
		if d := time.Since(start); d != 0 {
			t.Errorf("Accept returned %v after Close", d)
		}
		if down := ls.Down(); len(down) != 0 {
			t.Errorf("closed listener still down: %q", down)
		}
		if n := testutil.CollectAndCount(ls.up); n != 0 {
			t.Errorf("sluice_listener_up has %d series after Close, want 0", n)
		}
	})
}

// TestRetryListenerClosedUnexpectedly: a listener closed by something other
// than its Close returns the error (the server stops) and shows down.
func TestRetryListenerClosedUnexpectedly(t *testing.T) {
	ls := newListeners()
	inner := newFakeListener(nil, &net.OpError{Op: "accept", Err: net.ErrClosed})
	ln := ls.Watch(inner, "admin", quiet())
	defer ln.Close()
	if _, err := ln.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Accept: %v, want net.ErrClosed", err)
	}
	if down := ls.Down(); len(down) != 1 || down[0] != "admin: closed unexpectedly" {
		t.Errorf("down %q", down)
	}
	if n := testutil.ToFloat64(ls.errors.WithLabelValues("admin", acceptClosed)); n != 1 {
		t.Errorf("sluice_listener_accept_errors_total{reason=closed} = %v", n)
	}
}

// TestTLSListenerSurvivesEMFILE: the TLS listener's accept loop used to
// stop for good at the first accept error other than a timeout, so after
// a moment out of descriptors tls_listen never accepted again. With the
// retry below it, handshakes go on once accepts succeed again.
func TestTLSListenerSurvivesEMFILE(t *testing.T) {
	g, err := New(Config{Routes: []Route{{Backend: "b"}}}, map[string]http.RoundTripper{"b": answer(200, "ok")}, NewMetrics(nil), quiet())
	if err != nil {
		t.Fatal(err)
	}
	certs, err := LoadCerts([]CertPair{writeCert(t, t.TempDir(), "a", "localhost")})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	flaky := newFakeListener(raw, emfile, emfile, emfile)
	ln := newTLSListener(g.m.listeners.Watch(flaky, "tls_listen", quiet()), certs.TLSConfig("h2", "http/1.1"), 5*time.Second,
		func() {}, g.guard)
	serveOn(t, g, ln, true)
	for i := range 3 {
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", raw.Addr().String(),
			&tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
		if err != nil {
			t.Fatalf("connection %d after EMFILE: %v", i, err)
		}
		c.Close()
	}
	if n := testutil.ToFloat64(g.m.listeners.errors.WithLabelValues("tls_listen", acceptEMFILE)); n != 3 {
		t.Errorf("sluice_listener_accept_errors_total{listener=tls_listen,reason=emfile} = %v, want 3", n)
	}
}
