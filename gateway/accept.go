package gateway

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Accept retry delays: after a failed accept a listener waits, from 5 ms
// doubling to 1 s, as net/http's Server.Serve does after a temporary error.
const (
	acceptDelayMin = 5 * time.Millisecond
	acceptDelayMax = time.Second
)

// Accept failure reasons, the fixed label set of
// sluice_listener_accept_errors_total.
const (
	acceptEMFILE  = "emfile"       // the process's descriptor limit (RLIMIT_NOFILE)
	acceptENFILE  = "enfile"       // the system's descriptor limit
	acceptNoMem   = "no_memory"    // ENOBUFS, ENOMEM
	acceptAborted = "conn_aborted" // the client left before accept
	acceptClosed  = "closed"       // closed other than by Close
	acceptOther   = "other"
)

// acceptReason maps an accept error to its label.
func acceptReason(err error) string {
	switch {
	case errors.Is(err, net.ErrClosed):
		return acceptClosed
	case errors.Is(err, syscall.EMFILE):
		return acceptEMFILE
	case errors.Is(err, syscall.ENFILE):
		return acceptENFILE
	case errors.Is(err, syscall.ENOBUFS), errors.Is(err, syscall.ENOMEM):
		return acceptNoMem
	case errors.Is(err, syscall.ECONNABORTED), errors.Is(err, syscall.ECONNRESET):
		return acceptAborted
	}
	return acceptOther
}

// Listeners tracks whether each TCP listener Sluice owns can accept, for
// /readyz and the sluice_listener_* metrics. A listener is down once its
// accepts have failed long enough for the retry delay to reach its cap
// (about 1.3 s of failures in a row), or when it was closed by something
// other than its Close; it is up again at its next successful accept.
type Listeners struct {
	up     *prometheus.GaugeVec   // sluice_listener_up
	errors *prometheus.CounterVec // sluice_listener_accept_errors_total

	mu   sync.Mutex        // guards down
	down map[string]string // listener name → why it cannot accept
}

func newListeners() *Listeners {
	return &Listeners{
		up: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sluice_listener_up",
			Help: "1 while the TCP listener accepts connections, 0 while its accepts keep failing (listen, tls_listen, admin).",
		}, []string{"listener"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_listener_accept_errors_total",
			Help: "Failed accepts, by listener and reason (emfile, enfile, no_memory, conn_aborted, closed, other); each is retried after a delay.",
		}, []string{"listener", "reason"}),
		down: map[string]string{},
	}
}

func (ls *Listeners) collectors() []prometheus.Collector {
	return []prometheus.Collector{ls.up, ls.errors}
}

// Down lists the listeners that cannot accept, as "name: why", sorted.
func (ls *Listeners) Down() []string {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	out := make([]string, 0, len(ls.down))
	for name, why := range ls.down {
		out = append(out, name+": "+why)
	}
	slices.Sort(out)
	return out
}

func (ls *Listeners) setDown(name, why string) {
	ls.mu.Lock()
	ls.down[name] = why
	ls.mu.Unlock()
	ls.up.WithLabelValues(name).Set(0)
}

func (ls *Listeners) setUp(name string) {
	ls.mu.Lock()
	delete(ls.down, name)
	ls.mu.Unlock()
	ls.up.WithLabelValues(name).Set(1)
}

// forget drops a listener closed on purpose.
func (ls *Listeners) forget(name string) {
	ls.mu.Lock()
	delete(ls.down, name)
	ls.mu.Unlock()
	ls.up.DeleteLabelValues(name)
}

// Watch wraps ln so that a failed Accept is counted and retried after a
// growing delay rather than returned, and its state shows in Down and the
// metrics under name. Accept returns an error only once ln is closed.
// Closing the wrapper ends a wait in progress.
func (ls *Listeners) Watch(ln net.Listener, name string, log *slog.Logger) net.Listener {
	ls.setUp(name)
	return &retryListener{Listener: ln, name: name, ls: ls, log: log, done: make(chan struct{})}
}

// retryListener keeps accepting through failures the system recovers
// from: out of descriptors (EMFILE, ENFILE), out of buffers, a client
// gone before accept. Without it a wrapper that stops at the first error
// (the TLS listener's accept loop) dies for good on EMFILE.
type retryListener struct {
	net.Listener
	name string
	ls   *Listeners
	log  *slog.Logger
	done chan struct{} // closed by Close: ends a retry wait

	// mu orders state changes against Close, so that a closed listener
	// is never marked down again; taken before ls.mu.
	mu     sync.Mutex
	closed bool // guarded by mu
	down   bool // guarded by mu
}

func (l *retryListener) Accept() (net.Conn, error) {
	var delay time.Duration // 0 until an accept fails
	for {
		c, err := l.Listener.Accept()
		if err == nil {
			if delay > 0 {
				l.mark(false, nil)
			}
			return c, nil
		}
		select {
		case <-l.done:
			return nil, err
		default:
		}
		reason := acceptReason(err)
		l.ls.errors.WithLabelValues(l.name, reason).Inc()
		if reason == acceptClosed {
			l.mark(true, err)
			return nil, err
		}
		delay = min(max(2*delay, acceptDelayMin), acceptDelayMax)
		if delay == acceptDelayMax {
			l.mark(true, err)
		}
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-l.done:
			t.Stop()
			return nil, net.ErrClosed
		}
	}
}

// mark records the listener down (with the error) or up, and logs the
// change; nothing once it is closed.
func (l *retryListener) mark(down bool, err error) {
	closed := errors.Is(err, net.ErrClosed)
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	was := l.down
	l.down = down
	switch {
	case down && closed:
		l.ls.setDown(l.name, "closed unexpectedly")
	case down:
		l.ls.setDown(l.name, fmt.Sprintf("accept failing: %v", err))
	case was:
		l.ls.setUp(l.name)
	}
	l.mu.Unlock()
	switch {
	case down && closed:
		l.log.Error("listener closed unexpectedly", "listener", l.name, "err", err)
	case down && !was:
		l.log.Error("listener cannot accept; retrying every second", "listener", l.name, "err", err)
	case !down && was:
		l.log.Info("listener accepting again", "listener", l.name)
	}
}

// Close closes the listener and ends a retry wait in progress.
func (l *retryListener) Close() error {
	l.mu.Lock()
	if !l.closed {
		l.closed = true
		close(l.done)
		l.ls.forget(l.name)
	}
	l.mu.Unlock()
	return l.Listener.Close()
}
