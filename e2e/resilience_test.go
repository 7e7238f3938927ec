package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/gateway/gatewaytest"
)

// Resilience: sluice draining on SIGTERM, and a Tomcat going away and
// coming back under load, gracefully (SIGTERM) or not (SIGKILL).

// SIGTERM under load: every request sluice accepted is answered in
// full; only connection attempts after shutdown began may be refused.
func TestSIGTERMUnderLoadFinishesInFlight(t *testing.T) {
	const (
		grace   = 10 * time.Second
		clients = 300
		path    = "/slow?ms=200"
	)
	s := startSluice(t, fmt.Sprintf("shutdown_grace: %s\n", grace)+upstream{Protocol: "h2c", Ports: []int{tc.A, tc.B}}.yaml())

	var (
		signalAt atomic.Int64 // UnixNano when SIGTERM was sent; 0 before
		exitedAt atomic.Int64 // UnixNano when sluice was seen to exit; 0 before
		stop     = make(chan struct{})
		wg       sync.WaitGroup

		sent, completed, failed, refused atomic.Int64
		inFlightAtSignal, inFlightOK     atomic.Int64
		triedAfterExit                   atomic.Int64 // clients with an attempt begun after exitedAt

		mu    sync.Mutex
		fails []string
	)
	fail := func(msg string) {
		failed.Add(1)
		mu.Lock()
		if len(fails) < 50 {
			fails = append(fails, msg)
		}
		mu.Unlock()
	}
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tr := &http.Transport{Proxy: nil, MaxConnsPerHost: 1, MaxIdleConnsPerHost: 1, DisableCompression: true,
				DialContext: (&net.Dialer{Timeout: 5 * time.Second}).DialContext}
			defer tr.CloseIdleConnections()
			c := &http.Client{Transport: tr}
			counted := false
			for {
				select {
				case <-stop:
					return
				default:
				}
				ctx, cancel := context.WithTimeout(context.Background(), reqTimeout)
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+path, nil)
				req, tr := traced(req)
				started := time.Now().UnixNano()
				sent.Add(1)
				resp, err := c.Do(req)
				var body []byte
				if err == nil {
					body, err = io.ReadAll(resp.Body)
					resp.Body.Close()
				}
				cancel()
				sig := signalAt.Load()
				before := sig == 0 || started < sig
				if before && sig != 0 {
					inFlightAtSignal.Add(1)
				}
				rel := func(ns int64) string {
					if sig == 0 {
						return "before SIGTERM"
					}
					return fmt.Sprintf("%v after SIGTERM", time.Duration(ns-sig).Round(time.Microsecond))
				}
				switch {
				case err == nil && resp.StatusCode == http.StatusOK && string(body) == "slow\n":
					completed.Add(1)
					if before && sig != 0 {
						inFlightOK.Add(1)
					}
				case !before && err != nil && !tr.answered.Load() && (isRefused(err) || !tr.reused.Load()):
					// Sent after shutdown began, never answered, and either
					// refused (the listener is closed; also what Go's client
					// ends with when it retries a request whose keep-alive
					// connection sluice closed unread) or reset on a new
					// connection still in the kernel's accept queue.
					refused.Add(1)
					time.Sleep(100 * time.Millisecond) // pacing: a refused client retries 10 times a second
				case err != nil:
					fail(fmt.Sprintf("started %s, failed %s: %v", rel(started), rel(time.Now().UnixNano()), err))
				default:
					fail(fmt.Sprintf("started %s: status %d body %.80q", rel(started), resp.StatusCode, body))
				}
				if ex := exitedAt.Load(); !counted && ex != 0 && started > ex {
					counted = true
					triedAfterExit.Add(1)
				}
			}
		}()
	}

	time.Sleep(2 * time.Second) // the timeline: SIGTERM after 2 s of load
	signalAt.Store(time.Now().UnixNano())
	sigTime := time.Now()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}

	// /readyz while draining: it must turn 503 and never back to 200.
	var ready200, ready503, readyErr, back200 int
	readyDone := make(chan struct{})
	go func() {
		defer close(readyDone)
		c := &http.Client{Timeout: 500 * time.Millisecond, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
		for {
			select {
			case <-s.exited:
				return
			default:
			}
			resp, err := c.Get("http://" + s.Admin + "/readyz")
			switch {
			case err != nil:
				readyErr++
			case resp.StatusCode == http.StatusOK:
				ready200++
				if ready503 > 0 {
					back200++
				}
			case resp.StatusCode == http.StatusServiceUnavailable:
				ready503++
			}
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			time.Sleep(5 * time.Millisecond) // the sampling interval
		}
	}()

	var exitAfter time.Duration
	select {
	case <-s.exited:
		exitAfter = time.Since(sigTime)
	case <-time.After(grace + 5*time.Second):
		close(stop)
		t.Fatalf("sluice still running %v after SIGTERM (shutdown_grace %v)", grace+5*time.Second, grace)
	}
	<-readyDone
	// Every client meets the closed listener: its attempt that began
	// after the exit must count as refused, not as a failure.
	exitedAt.Store(time.Now().UnixNano())
	gatewaytest.WaitFor(t, 10*time.Second, "an attempt by every client after sluice exited", func() bool { return triedAfterExit.Load() == clients })
	close(stop)
	wg.Wait()

	t.Logf("SIGTERM after 2s of %d keep-alive clients on %s: sluice exited after %v with %v",
		clients, path, exitAfter.Round(time.Millisecond), s.cmd.ProcessState)
	t.Logf("requests: %d sent, %d completed (200), %d failed, %d refused after shutdown; in flight at SIGTERM: %d, of which %d completed 200",
		sent.Load(), completed.Load(), failed.Load(), refused.Load(), inFlightAtSignal.Load(), inFlightOK.Load())
	t.Logf("/readyz after SIGTERM: %d x 200, %d x 503, %d x no answer", ready200, ready503, readyErr)

	if code := s.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("sluice exit code %d, want 0", code)
	}
	if exitAfter > grace {
		t.Errorf("sluice took %v to exit, more than shutdown_grace %v", exitAfter, grace)
	}
	if failed.Load() > 0 {
		t.Errorf("%d requests failed:\n%s", failed.Load(), strings.Join(fails, "\n"))
	}
	if inFlightAtSignal.Load() == 0 {
		t.Error("no request was in flight at SIGTERM: the test did not exercise draining")
	}
	if ready503 == 0 {
		t.Error("/readyz never answered 503 while sluice drained")
	}
	if back200 > 0 {
		t.Errorf("/readyz answered 200 %d times after it had answered 503", back200)
	}
}

// restartConfig is sluice in front of a private Tomcat's port and the
// shared Tomcat's port B, with retries, active health checks (fall 2 x
// 1 s) and passive ejection.
func restartConfig(private, shared int) string {
	return fmt.Sprintf(`backends:
  %s:
    protocol: h2c
    servers:
      - { address: %q }
      - { address: %q }
    h2c: { conns_per_server: 2, max_streams_per_conn: 100 }
    queue: { max_pending: 10000, timeout: 5s }
    timeouts: { connect: 1s, response_header: 30s }
    retries: 2
    health: { enabled: true, path: /hello, interval: %s, timeout: 500ms, fall: %d, rise: 2, slow_start: 2s }
    passive: { consecutive_failures: 5, eject_for: 2s }
routes:
  - { host: "*", path_prefix: "/", backend: %s }
`, backendName, addr(private), addr(shared), healthInterval, healthFall, backendName)
}

const (
	healthInterval = time.Second
	healthFall     = 2
	restartClients = 1000
)

// restartMix alternates instant and 10 ms requests, so that Tomcat always
// has requests in progress when it is stopped.
func restartMix(client, seq int) (string, string) {
	if (client+seq)%2 == 0 {
		return "/", helloBody
	}
	return "/slow?ms=10", "slow\n"
}

// logResilienceMetrics logs the retry, GOAWAY and ejection counters that
// exist, and returns sluice_retries_total (0 if not exported).
func logResilienceMetrics(t *testing.T, s *sluiceProc) float64 {
	t.Helper()
	samples, err := scrape(s.Admin)
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	var parts []string
	var retries float64
	for _, name := range []string{"sluice_retries_total", "sluice_upstream_goaway_total", "sluice_ejections_total", "sluice_upstream_connections_opened_total"} {
		v, n := sumMetric(samples, name, map[string]string{"backend": backendName})
		if n == 0 {
			parts = append(parts, name+" not exported")
			continue
		}
		if name == "sluice_retries_total" {
			retries = v
			var by []string
			for _, smp := range samples {
				if smp.name == name && smp.value > 0 {
					by = append(by, fmt.Sprintf("%s=%v", smp.labels["reason"], smp.value))
				}
			}
			parts = append(parts, fmt.Sprintf("%s %v %v", name, v, by))
			continue
		}
		parts = append(parts, fmt.Sprintf("%s %v", name, v))
	}
	t.Logf("metrics: %s", strings.Join(parts, "; "))
	return retries
}

// A Tomcat stopped with SIGTERM and started again under load: sluice
// drains it (GOAWAY), retries what it refused, and no client sees an error.
func TestTomcatGracefulRestartNoFailures(t *testing.T) {
	restartWithoutFailures(t, startPrivateTomcat(t), restartMix)
}

// restartWithoutFailures stops pt with SIGTERM under load from
// restartClients keep-alive clients requesting mix, starts it again, and
// fails the test if any request fails.
func restartWithoutFailures(t *testing.T, pt *privateTomcat, mix func(client, seq int) (string, string)) {
	s := startSluice(t, restartConfig(pt.A, tc.B))
	load := startTimedLoad(s.URL, restartClients, mix)

	var eventErr error
	sleepUntil := func(at time.Duration) { time.Sleep(at - load.since()) } // the test's timeline
	sleepUntil(3 * time.Second)
	stopAt := load.since()
	if err := pt.stopGraceful(); err != nil {
		eventErr = err
	}
	stoppedAt := load.since()
	sleepUntil(7 * time.Second)
	startAt := load.since()
	if eventErr == nil {
		eventErr = pt.start()
	}
	readyAt := load.since()
	sleepUntil(15 * time.Second)
	ran := load.stop()

	t.Logf("private Tomcat :%d: SIGTERM at %v, exited at %v; start at %v, ready at %v",
		pt.A, stopAt.Round(time.Millisecond), stoppedAt.Round(time.Millisecond), startAt.Round(time.Millisecond), readyAt.Round(time.Millisecond))
	t.Logf("load: %d keep-alive clients: %s", restartClients, load.summary(ran))
	logResilienceMetrics(t, s)
	if eventErr != nil {
		t.Fatal(eventErr)
	}
	if load.ok.Load() == 0 {
		t.Fatal("no request succeeded")
	}
	if n := load.failed.Load(); n > 0 {
		var lines []string
		kept, _ := load.failures()
		for i, f := range kept {
			if i == 30 {
				break
			}
			lines = append(lines, fmt.Sprintf("  at %v: %s", f.at.Round(time.Millisecond), f.msg))
		}
		t.Errorf("%d requests failed across a graceful Tomcat restart, want 0; first ones:\n%s", n, strings.Join(lines, "\n"))
	}
}

// A Tomcat killed with SIGKILL: failures are allowed only until
// health checks can have noticed (fall x interval, plus 1 s), none after;
// once Tomcat is back, sluice sends it traffic again.
func TestTomcatKill9FailsOnlyUntilHealthChecksNotice(t *testing.T) {
	pt := startPrivateTomcat(t)
	s := startSluice(t, restartConfig(pt.A, tc.B))
	server := map[string]string{"backend": backendName, "server": addr(pt.A)}
	load := startTimedLoad(s.URL, restartClients, restartMix)

	var eventErr error
	sleepUntil := func(at time.Duration) { time.Sleep(at - load.since()) } // the test's timeline
	sleepUntil(3 * time.Second)
	killAt := load.since()
	if err := pt.kill9(); err != nil {
		eventErr = err
	}
	sleepUntil(8 * time.Second)
	startAt := load.since()
	if eventErr == nil {
		eventErr = pt.start()
	}
	readyAt := load.since()

	// Back in service: sluice holds a connection to it again and requests
	// are in flight on it, within 10 s of Tomcat answering.
	var connAt, streamsAt time.Duration
	var maxStreams float64
	for deadline := time.Now().Add(10 * time.Second); eventErr == nil && time.Now().Before(deadline); {
		samples, err := scrape(s.Admin)
		if err != nil {
			eventErr = err
			break
		}
		if v, _ := sumMetric(samples, "sluice_upstream_connections", server); v >= 1 && connAt == 0 {
			connAt = load.since()
		}
		if v, _ := sumMetric(samples, "sluice_upstream_streams_active", server); v > 0 {
			maxStreams = max(maxStreams, v)
			if streamsAt == 0 {
				streamsAt = load.since()
			}
		}
		if connAt > 0 && streamsAt > 0 {
			break
		}
		time.Sleep(100 * time.Millisecond) // poll: when it came back is the measurement
	}
	// Keep the load on a little longer: no failure may follow recovery.
	time.Sleep(2 * time.Second) // the period under test
	ran := load.stop()

	window := killAt + healthFall*healthInterval + time.Second
	t.Logf("private Tomcat :%d: SIGKILL at %v; start at %v, ready at %v; sluice connection to it at %v, streams on it at %v (max %v seen)",
		pt.A, killAt.Round(time.Millisecond), startAt.Round(time.Millisecond), readyAt.Round(time.Millisecond),
		connAt.Round(time.Millisecond), streamsAt.Round(time.Millisecond), maxStreams)
	t.Logf("load: %d keep-alive clients: %s", restartClients, load.summary(ran))
	logResilienceMetrics(t, s)
	if eventErr != nil {
		t.Fatal(eventErr)
	}

	inside := func(at time.Duration) bool { return at >= killAt && at <= window }
	kept, all := load.failures()
	var nIn, nOut int
	var first, last time.Duration
	for _, at := range all {
		if !inside(at) {
			nOut++
			continue
		}
		if nIn == 0 || at < first {
			first = at
		}
		last = max(last, at)
		nIn++
	}
	var inLines, outLines []string
	for _, f := range kept {
		line := fmt.Sprintf("  at %v (kill%s): %s", f.at.Round(time.Millisecond), signed(f.at-killAt), f.msg)
		if inside(f.at) {
			inLines = append(inLines, line)
		} else {
			outLines = append(outLines, line)
		}
	}
	if nIn > 0 {
		t.Logf("%d failures within %v of the kill (allowed), from kill%s to kill%s:\n%s", nIn, window-killAt,
			signed(first-killAt), signed(last-killAt), strings.Join(firstN(inLines, 20), "\n"))
	}
	if nOut > 0 {
		t.Errorf("%d failures outside [kill, kill+%v] = [%v, %v]:\n%s", nOut, window-killAt,
			killAt.Round(time.Millisecond), window.Round(time.Millisecond), strings.Join(firstN(outLines, 30), "\n"))
	}
	if connAt == 0 {
		t.Errorf("no sluice_upstream_connections%v >= 1 within 10 s of the restarted Tomcat answering", server)
	}
	if streamsAt == 0 {
		t.Errorf("no request in flight to the restarted Tomcat (sluice_upstream_streams_active%v) within 10 s", server)
	}
}

// signed prints d rounded to milliseconds with its sign, for offsets.
func signed(d time.Duration) string {
	d = d.Round(time.Millisecond)
	if d >= 0 {
		return "+" + d.String()
	}
	return d.String()
}

func firstN(s []string, n int) []string {
	if len(s) > n {
		return append(s[:n:n], fmt.Sprintf("  ... %d more", len(s)-n))
	}
	return s
}
