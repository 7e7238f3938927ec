package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The load generator runs in-process (not wrk) so each response is checked
// and counted. Every loop is bounded by Duration; a request still in flight
// at the end gets at most reqTimeout more.
const reqTimeout = 20 * time.Second

type loadSpec struct {
	Clients   int
	Duration  time.Duration
	KeepAlive bool // true: one reused connection per client; false: a new connection per request
	// Next picks client's seq-th request; nil means GET / expecting helloBody.
	Next func(client, seq int) loadReq
	// Stop, when not nil, ends the load sooner when it is closed: for a
	// test that loads sluice until it is done, Duration is then a bound.
	Stop <-chan struct{}
}

type loadReq struct {
	Path       string        // default "/"
	Want       string        // expected body; default helloBody
	AbortAfter time.Duration // > 0: cancel the request after this long; it counts as aborted, never as failed
	PauseAfter time.Duration // idle time before the client's next request
}

type loadResult struct {
	OK, Failed     int64
	Aborted        int64 // cancelled by the client as planned
	AbortedTooLate int64 // meant to be cancelled but completed first
	Elapsed        time.Duration

	mu     sync.Mutex
	errors map[string]int
}

func (r *loadResult) fail(err error) {
	atomic.AddInt64(&r.Failed, 1)
	msg := err.Error()
	// Strip the per-connection port so identical causes aggregate.
	if i := strings.Index(msg, "127.0.0.1:"); i >= 0 {
		msg = msg[:i] + "127.0.0.1:*" + strings.TrimLeft(msg[i+len("127.0.0.1:"):], "0123456789")
	}
	r.mu.Lock()
	if r.errors == nil {
		r.errors = map[string]int{}
	}
	if len(r.errors) < 20 {
		r.errors[msg]++
	}
	r.mu.Unlock()
}

func (r *loadResult) String() string {
	s := fmt.Sprintf("%d ok, %d failed, %d aborted (%d too late to abort) in %v = %.0f req/s",
		r.OK, r.Failed, r.Aborted, r.AbortedTooLate, r.Elapsed.Round(time.Millisecond),
		float64(r.OK)/r.Elapsed.Seconds())
	r.mu.Lock()
	defer r.mu.Unlock()
	var errs []string
	for m, n := range r.errors {
		errs = append(errs, fmt.Sprintf("  %6d x %s", n, m))
	}
	sort.Strings(errs)
	if len(errs) > 0 {
		s += "\nerrors:\n" + strings.Join(errs, "\n")
	}
	return s
}

func (r *loadResult) requireClean(t testing.TB) {
	t.Helper()
	if r.Failed > 0 || r.OK == 0 {
		t.Fatalf("load: %v", r)
	}
}

// loadClient is one load client: at most one connection, kept alive
// between requests or not, dialled without proxy within 10 s, and no
// transparent compression.
func loadClient(keepAlive bool) *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
		MaxConnsPerHost:     1,
		MaxIdleConnsPerHost: 1,
		DisableKeepAlives:   !keepAlive,
		DisableCompression:  true,
	}}
}

// runLoad drives spec.Clients concurrent clients at baseURL for spec.Duration.
func runLoad(t testing.TB, baseURL string, spec loadSpec) *loadResult {
	t.Helper()
	res := &loadResult{}
	start := make(chan struct{})
	var wg sync.WaitGroup
	var began time.Time
	deadline := make(chan struct{})
	for i := range spec.Clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := loadClient(spec.KeepAlive)
			defer c.CloseIdleConnections()
			<-start
			for seq := 0; ; seq++ {
				select {
				case <-deadline:
					return
				default:
				}
				req := loadReq{}
				if spec.Next != nil {
					req = spec.Next(i, seq)
				}
				doOne(c, baseURL, req, res)
				if req.PauseAfter > 0 {
					select {
					case <-deadline:
						return
					case <-time.After(req.PauseAfter):
					}
				}
			}
		}()
	}
	began = time.Now()
	close(start)
	var once sync.Once
	end := func() { once.Do(func() { close(deadline) }) }
	time.AfterFunc(spec.Duration, end)
	if spec.Stop != nil {
		go func() {
			select {
			case <-spec.Stop:
				end()
			case <-deadline:
			}
		}()
	}
	wg.Wait()
	res.Elapsed = time.Since(began)
	mode := "new connection per request"
	if spec.KeepAlive {
		mode = "keep-alive"
	}
	t.Logf("load: %d clients, %s, %v: %v", spec.Clients, mode, spec.Duration, res)
	return res
}

func doOne(c *http.Client, baseURL string, lr loadReq, res *loadResult) {
	path, want := lr.Path, lr.Want
	if path == "" {
		path = "/"
	}
	if want == "" {
		want = helloBody
	}
	timeout := reqTimeout
	if lr.AbortAfter > 0 {
		timeout = lr.AbortAfter
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, baseURL+path, nil)
	if err != nil {
		res.fail(err)
		return
	}
	resp, err := c.Do(req)
	var body []byte
	if err == nil {
		body, err = io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
	}
	if lr.AbortAfter > 0 {
		switch {
		case err != nil && errors.Is(err, context.DeadlineExceeded):
			atomic.AddInt64(&res.Aborted, 1)
		case err == nil:
			atomic.AddInt64(&res.AbortedTooLate, 1)
		default:
			res.fail(fmt.Errorf("aborting client: %w", err))
		}
		return
	}
	switch {
	case err != nil:
		res.fail(err)
	case resp.StatusCode != http.StatusOK:
		res.fail(fmt.Errorf("GET %s: status %d, body %.80q", path, resp.StatusCode, body))
	case string(body) != want:
		res.fail(fmt.Errorf("GET %s: body %.80q, want %.80q", path, body, want))
	default:
		atomic.AddInt64(&res.OK, 1)
	}
}

// sampler calls fn every interval in its own goroutine until stopped, and
// reports the largest value seen and any error (fn must not call t.Fatal).
type sampler struct {
	stopc chan struct{}
	done  chan struct{}
	max   float64
	n     int
	err   error
}

// metricProbe is a sampler's probe: the sum of name's series that match
// labels, scraped from admin.
func metricProbe(admin, name string, labels map[string]string) func() (float64, error) {
	return func() (float64, error) {
		samples, err := scrape(admin)
		if err != nil {
			return 0, err
		}
		v, _ := sumMetric(samples, name, labels)
		return v, nil
	}
}

// socketProbe is a sampler's probe: Tomcat's established connections on
// port.
func socketProbe(port int) func() (float64, error) {
	return func() (float64, error) {
		est, _, err := tomcatConnsErr(port)
		return float64(est), err
	}
}

func startSampler(every time.Duration, fn func() (float64, error)) *sampler {
	s := &sampler{stopc: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			v, err := fn()
			if err != nil && s.err == nil {
				s.err = err
			}
			if err == nil && (s.n == 0 || v > s.max) {
				s.max = v
			}
			if err == nil {
				s.n++
			}
			select {
			case <-s.stopc:
				return
			case <-tick.C:
			}
		}
	}()
	return s
}

// stop returns the largest sample and how many samples were taken.
func (s *sampler) stop(t testing.TB) (float64, int) {
	t.Helper()
	close(s.stopc)
	<-s.done
	if s.err != nil {
		t.Fatalf("sampler: %v", s.err)
	}
	return s.max, s.n
}
