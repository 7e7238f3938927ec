package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// Helpers for the resilience tests: a Tomcat a test may stop, kill and
// start again without disturbing the shared one, and a load generator that
// timestamps every failure so that it can be placed on the test's timeline.

// privateTomcat is a second Tomcat with its own CATALINA_BASE and ports,
// owned by one test. Like the shared one it runs under the
// TOMCAT_WATCH_PID watchdog, so it dies with the test binary.
type privateTomcat struct {
	*tomcatProc
}

// startPrivateTomcat sets up and starts a fresh Tomcat (setup.sh +
// start.sh, fresh free ports) and stops it in t.Cleanup.
func startPrivateTomcat(t testing.TB) *privateTomcat {
	t.Helper()
	base := filepath.Join(t.TempDir(), "tomcat")
	began := time.Now()
	tp, err := startTomcat(base)
	if err != nil {
		t.Fatalf("private Tomcat: %v", err)
	}
	p := &privateTomcat{tp}
	t.Cleanup(func() {
		if t.Failed() {
			var buf bytes.Buffer
			p.dumpLog(&buf, 40)
			t.Logf("private Tomcat (%s):\n%s", base, buf.String())
		}
		p.stop()
	})
	t.Logf("private Tomcat up in %v: h2c on %d and %d", time.Since(began).Round(time.Millisecond), p.A, p.B)
	return p
}

// pid is the JVM's process id as start.sh recorded it.
func (p *privateTomcat) pid() (int, error) {
	b, err := os.ReadFile(filepath.Join(p.base, "tomcat.pid"))
	if err != nil {
		return 0, fmt.Errorf("private Tomcat not running: %w", err)
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

// stopGraceful sends SIGTERM, as a service manager would: Tomcat stops its
// connectors (sending GOAWAY on h2c connections), lets requests in
// progress finish and exits. It waits up to 30 s for the JVM to exit.
func (p *privateTomcat) stopGraceful() error {
	return p.signal(syscall.SIGTERM, 30*time.Second)
}

// kill9 sends SIGKILL: no GOAWAY, no draining; the kernel closes the
// sockets, so sluice sees connections end (or reset) mid-stream.
func (p *privateTomcat) kill9() error {
	return p.signal(syscall.SIGKILL, 10*time.Second)
}

// start starts the stopped Tomcat again on the same ports (start.sh also
// renews the watchdog) and waits until every connector answers.
func (p *privateTomcat) start() error {
	return p.script(2*time.Minute, "start.sh", p.base)
}

func (p *privateTomcat) signal(sig syscall.Signal, wait time.Duration) error {
	pid, err := p.pid()
	if err != nil {
		return err
	}
	if err := syscall.Kill(pid, sig); err != nil {
		return fmt.Errorf("kill -%d %d: %w", sig, pid, err)
	}
	deadline := time.Now().Add(wait)
	for processAlive(pid) {
		if time.Now().After(deadline) {
			return fmt.Errorf("Tomcat pid %d still running %v after signal %d", pid, wait, sig)
		}
		time.Sleep(20 * time.Millisecond) // poll: the JVM is not our child, nothing to wait on
	}
	return nil
}

// processAlive reports whether pid runs. A zombie counts as gone: the JVM
// was started by start.sh, which has exited, so the JVM's parent is
// whatever adopts orphans here, which may be slow to reap it.
func processAlive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name.
	if i := bytes.LastIndexByte(b, ')'); i >= 0 && i+2 < len(b) {
		return b[i+2] != 'Z'
	}
	return true
}

// ---------------------------------------------------------------- timed load

// timedLoad runs keep-alive clients until stopped and records every
// outcome against the time since it began.
type timedLoad struct {
	began   time.Time
	stopc   chan struct{}
	wg      sync.WaitGroup
	ok      atomic.Int64
	failed  atomic.Int64
	mu      sync.Mutex
	failAt  []time.Duration // every failure's time
	fails   []timedFailure  // the first maxKept failures, with causes
	byKind  map[string]int  // every failure, by cause with ports stripped
	perSec  []atomic.Int64  // OK responses per second since began
	stopped bool
}

type timedFailure struct {
	at  time.Duration // since the load began
	msg string
}

const maxKept = 5000

// startTimedLoad starts clients keep-alive clients, each with its own
// connection, requesting next(client, seq) from baseURL until stop.
// Responses must be 200 with the wanted body.
func startTimedLoad(baseURL string, clients int, next func(client, seq int) (path, want string)) *timedLoad {
	l := &timedLoad{stopc: make(chan struct{}), byKind: map[string]int{}, perSec: make([]atomic.Int64, 600)}
	start := make(chan struct{})
	for i := range clients {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			c := loadClient(true)
			defer c.CloseIdleConnections()
			<-start
			for seq := 0; ; seq++ {
				select {
				case <-l.stopc:
					return
				default:
				}
				path, want := next(i, seq)
				l.one(c, baseURL+path, want)
			}
		}()
	}
	l.began = time.Now()
	close(start)
	return l
}

func (l *timedLoad) one(c *http.Client, url, want string) {
	ctx, cancel := context.WithTimeout(context.Background(), reqTimeout)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := c.Do(req)
	var body []byte
	if err == nil {
		body, err = io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
	}
	at := time.Since(l.began)
	switch {
	case err != nil:
		l.fail(at, err.Error())
	case resp.StatusCode != http.StatusOK:
		l.fail(at, fmt.Sprintf("status %d, body %.100q", resp.StatusCode, body))
	case string(body) != want:
		l.fail(at, fmt.Sprintf("body %.80q, want %.80q", body, want))
	default:
		l.ok.Add(1)
		if s := int(at / time.Second); s < len(l.perSec) {
			l.perSec[s].Add(1)
		}
	}
}

func (l *timedLoad) fail(at time.Duration, msg string) {
	l.failed.Add(1)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.failAt = append(l.failAt, at)
	if len(l.fails) < maxKept {
		l.fails = append(l.fails, timedFailure{at, msg})
	}
	l.byKind[stripPorts(msg)]++
}

// stripPorts makes identical causes on different connections aggregate.
func stripPorts(msg string) string {
	var b strings.Builder
	for {
		i := strings.Index(msg, "127.0.0.1:")
		if i < 0 {
			b.WriteString(msg)
			return b.String()
		}
		b.WriteString(msg[:i] + "127.0.0.1:*")
		msg = strings.TrimLeft(msg[i+len("127.0.0.1:"):], "0123456789")
	}
}

// since is the time elapsed since the load began.
func (l *timedLoad) since() time.Duration { return time.Since(l.began) }

// stop ends the load, waiting for requests in flight (bounded by
// reqTimeout), and returns how long it ran.
func (l *timedLoad) stop() time.Duration {
	l.mu.Lock()
	if !l.stopped {
		l.stopped = true
		close(l.stopc)
	}
	l.mu.Unlock()
	l.wg.Wait()
	return time.Since(l.began)
}

// failures returns the kept failures in time order, and the times of all.
func (l *timedLoad) failures() ([]timedFailure, []time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := append([]timedFailure(nil), l.fails...)
	sort.Slice(out, func(i, j int) bool { return out[i].at < out[j].at })
	all := append([]time.Duration(nil), l.failAt...)
	return out, all
}

// summary is a multi-line report: totals, causes, and OK responses per
// second (which shows the dip, if any, around each event).
func (l *timedLoad) summary(ran time.Duration) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d ok, %d failed in %v = %.0f req/s", l.ok.Load(), l.failed.Load(),
		ran.Round(time.Millisecond), float64(l.ok.Load())/ran.Seconds())
	l.mu.Lock()
	var kinds []string
	for k, n := range l.byKind {
		kinds = append(kinds, fmt.Sprintf("  %6d x %s", n, k))
	}
	l.mu.Unlock()
	sort.Strings(kinds)
	if len(kinds) > 0 {
		b.WriteString("\nfailures by cause:\n" + strings.Join(kinds, "\n"))
	}
	b.WriteString("\nok per second:")
	for s := 0; s <= int(ran/time.Second) && s < len(l.perSec); s++ {
		fmt.Fprintf(&b, " %d", l.perSec[s].Load())
	}
	return b.String()
}

// ---------------------------------------------------------------- misc

// isRefused reports whether err is a TCP connect that found nobody
// listening, as opposed to a connection that failed once established.
func isRefused(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial" && errors.Is(err, syscall.ECONNREFUSED)
}

// trace records what happened to one request on the wire.
type trace struct {
	// answered: a response byte came back, which separates "never
	// answered" from "cut mid-response".
	answered atomic.Bool
	// reused: the last connection used was a kept-alive one, not a new
	// connection.
	reused atomic.Bool
}

func traced(req *http.Request) (*http.Request, *trace) {
	t := &trace{}
	ct := &httptrace.ClientTrace{
		GotConn:              func(ci httptrace.GotConnInfo) { t.reused.Store(ci.Reused) },
		GotFirstResponseByte: func() { t.answered.Store(true) },
	}
	return req.WithContext(httptrace.WithClientTrace(req.Context(), ct)), t
}
