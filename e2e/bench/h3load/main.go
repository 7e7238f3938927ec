// Command h3load is the benchmark's HTTP/3 load generator: C QUIC
// connections, each with M requests in flight at a time (M goroutines
// sending GETs back to back), for a fixed time, like `h2load -c C -m M -D`.
// It uses quic-go's HTTP/3 client (http3.Transport), one Transport and one
// UDP socket per connection, so the proxy sees C separate client
// connections from C source ports.
//
//	h3load -url https://127.0.0.1:19122/ -c 200 -m 10 -d 10s [-warmup 2s] [-insecure]
//	h3load -url https://127.0.0.1:19122/proto -verify -insecure
//
// Before the clock starts, every connection is dialled and sends one request
// (not counted). Requests that start during -warmup are not counted either;
// then requests are counted for -d. Requests still in flight when the time
// is up are neither completed nor failed (as with h2load).
//
// Output on stdout, one "key: value" per line:
//
//	h3load: URL conns C streams M duration D warmup W
//	connections: N ok, F failed, R dialed in all
//	requests/s: 12345.67       completed / measured seconds
//	completed: N               responses read to the end with a status below 400
//	failed: N                  transport errors, request timeouts, status 400 and above
//	p50_ms: 12.345             latency percentiles of the completed requests (nearest rank)
//	p99_ms: 45.678
//	status: 200=N 502=M
//	error: COUNT MESSAGE       the most frequent errors, at most 5 lines
//
// With -verify it sends one request, prints "status: …", "proto: …" and
// "body: …" and exits 1 unless the status is 200.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"

	"github.com/sluice-gw/sluice/e2e/bench/rank"
)

func main() {
	rawURL := flag.String("url", "https://127.0.0.1:8443/", "https URL to GET")
	conns := flag.Int("c", 10, "QUIC connections (clients)")
	streams := flag.Int("m", 10, "concurrent requests (streams) per connection")
	dur := flag.Duration("d", 10*time.Second, "measured duration")
	warmup := flag.Duration("warmup", 0, "load before the measured duration, not counted")
	insecure := flag.Bool("insecure", false, "accept any server certificate (self-signed)")
	timeout := flag.Duration("timeout", 30*time.Second, "per-request timeout; a slower request counts as failed")
	verify := flag.Bool("verify", false, "send one request, print status, protocol and body, exit 1 unless 200")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("h3load: ")

	u, err := url.Parse(*rawURL)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		log.Fatalf("-url must be an https:// URL, got %q", *rawURL)
	}
	if *conns < 1 || *streams < 1 || *dur <= 0 {
		log.Fatal("-c and -m must be at least 1 and -d positive")
	}
	tlsConf := &tls.Config{InsecureSkipVerify: *insecure}

	if *verify {
		os.Exit(runVerify(u.String(), tlsConf, *timeout))
	}

	var dials atomic.Int64
	clients := make([]*client, *conns)
	for i := range clients {
		c, err := newClient(tlsConf, &dials)
		if err != nil {
			log.Fatalf("connection %d: %v", i, err)
		}
		clients[i] = c
	}
	defer func() {
		for _, c := range clients {
			c.close()
		}
	}()

	// Connect every client (one uncounted request each), 64 at a time.
	var connFailed atomic.Int64
	var firstConnErr sync.Once
	sem := make(chan struct{}, 64)
	var wg sync.WaitGroup
	for _, c := range clients {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			ctx, cancel := context.WithTimeout(context.Background(), *timeout)
			defer cancel()
			if _, err := c.get(ctx, u.String()); err != nil {
				connFailed.Add(1)
				firstConnErr.Do(func() { log.Printf("first connection failure: %v", err) })
			}
		}()
	}
	wg.Wait()

	start := time.Now()
	measureFrom := start.Add(*warmup)
	ctx, cancel := context.WithDeadline(context.Background(), measureFrom.Add(*dur))
	defer cancel()
	workers := make([]*stats, *conns**streams)
	for i := range workers {
		st := newStats()
		workers[i] = st
		c := clients[i / *streams]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				t0 := time.Now()
				rctx, rcancel := context.WithTimeout(ctx, *timeout)
				status, err := c.get(rctx, u.String())
				rcancel()
				if ctx.Err() != nil {
					return // in flight at the end: not counted
				}
				if t0.Before(measureFrom) {
					continue
				}
				st.add(status, err, time.Since(t0))
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(measureFrom)
	if elapsed > *dur {
		elapsed = *dur // the deadline, not the time the last goroutine took to notice it
	}

	total := newStats()
	for _, st := range workers {
		total.merge(st)
	}
	fmt.Printf("h3load: %s conns %d streams %d duration %s warmup %s\n", u, *conns, *streams, *dur, *warmup)
	fmt.Printf("connections: %d ok, %d failed, %d dialed in all\n", int64(*conns)-connFailed.Load(), connFailed.Load(), dials.Load())
	fmt.Print(total.report(elapsed))
}

// client is one QUIC connection: its own UDP socket and http3.Transport,
// which redials (counted in dials) if the connection is lost.
type client struct {
	udp *net.UDPConn
	qt  *quic.Transport
	tr  *http3.Transport
}

func newClient(tlsConf *tls.Config, dials *atomic.Int64) (*client, error) {
	udp, err := net.ListenUDP("udp", nil)
	if err != nil {
		return nil, err
	}
	c := &client{udp: udp, qt: &quic.Transport{Conn: udp}}
	c.tr = &http3.Transport{
		TLSClientConfig: tlsConf,
		QUICConfig:      &quic.Config{KeepAlivePeriod: 10 * time.Second, MaxIdleTimeout: time.Minute},
		Dial: func(ctx context.Context, addr string, tlsCfg *tls.Config, cfg *quic.Config) (*quic.Conn, error) {
			dials.Add(1)
			ua, err := net.ResolveUDPAddr("udp", addr)
			if err != nil {
				return nil, err
			}
			return c.qt.DialEarly(ctx, ua, tlsCfg, cfg)
		},
	}
	return c, nil
}

// get sends one GET and reads the body to the end.
func (c *client) get(ctx context.Context, u string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, err
	}
	resp, err := c.tr.RoundTrip(req)
	if err != nil {
		return 0, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, err
}

func (c *client) close() {
	c.tr.Close()
	c.qt.Close()
	c.udp.Close()
}

func runVerify(u string, tlsConf *tls.Config, timeout time.Duration) int {
	tr := &http3.Transport{TLSClientConfig: tlsConf}
	defer tr.Close()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		log.Print(err)
		return 1
	}
	resp, err := tr.RoundTrip(req)
	if err != nil {
		fmt.Printf("error: %v\n", err)
		return 1
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if err != nil {
		fmt.Printf("error: reading the body: %v\n", err)
		return 1
	}
	fmt.Printf("status: %d\nproto: %s\nbody: %s\n", resp.StatusCode, resp.Proto, strings.TrimRight(string(body), "\n"))
	if resp.StatusCode != http.StatusOK {
		return 1
	}
	return 0
}

// stats is what one worker counted; merged at the end.
type stats struct {
	latMs     []float64 // completed requests
	failed    int64
	status    map[int]int64
	errCounts map[string]int64
}

func newStats() *stats {
	return &stats{status: map[int]int64{}, errCounts: map[string]int64{}}
}

func (s *stats) add(status int, err error, d time.Duration) {
	if status != 0 {
		s.status[status]++
	}
	switch {
	case err != nil:
		s.failed++
		s.errCounts[errText(err)]++
	case status >= 400:
		s.failed++
	default:
		s.latMs = append(s.latMs, float64(d)/float64(time.Millisecond))
	}
}

func errText(err error) string {
	if errors.Is(err, context.DeadlineExceeded) {
		return "request timeout (-timeout)"
	}
	msg := err.Error()
	if len(msg) > 200 {
		msg = msg[:200]
	}
	return strings.ReplaceAll(msg, "\n", " ")
}

func (s *stats) merge(o *stats) {
	s.latMs = append(s.latMs, o.latMs...)
	s.failed += o.failed
	for k, v := range o.status {
		s.status[k] += v
	}
	for k, v := range o.errCounts {
		s.errCounts[k] += v
	}
}

// report renders the result lines; elapsed is the measured time.
func (s *stats) report(elapsed time.Duration) string {
	var b strings.Builder
	sort.Float64s(s.latMs)
	n := len(s.latMs)
	rps := 0.0
	if elapsed > 0 {
		rps = float64(n) / elapsed.Seconds()
	}
	fmt.Fprintf(&b, "requests/s: %.2f\n", rps)
	fmt.Fprintf(&b, "completed: %d\n", n)
	fmt.Fprintf(&b, "failed: %d\n", s.failed)
	fmt.Fprintf(&b, "p50_ms: %.3f\n", rank.Percentile(s.latMs, 50))
	fmt.Fprintf(&b, "p99_ms: %.3f\n", rank.Percentile(s.latMs, 99))
	codes := make([]int, 0, len(s.status))
	for k := range s.status {
		codes = append(codes, k)
	}
	sort.Ints(codes)
	b.WriteString("status:")
	for _, k := range codes {
		fmt.Fprintf(&b, " %d=%d", k, s.status[k])
	}
	b.WriteString("\n")
	type ec struct {
		msg string
		n   int64
	}
	var errs []ec
	for m, c := range s.errCounts {
		errs = append(errs, ec{m, c})
	}
	sort.Slice(errs, func(i, j int) bool {
		if errs[i].n != errs[j].n {
			return errs[i].n > errs[j].n
		}
		return errs[i].msg < errs[j].msg
	})
	for i, e := range errs {
		if i == 5 {
			break
		}
		fmt.Fprintf(&b, "error: %d %s\n", e.n, e.msg)
	}
	return b.String()
}
