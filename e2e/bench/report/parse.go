package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/sluice-gw/sluice/e2e/bench/rank"
)

// Result is what one load-generator run measured.
type Result struct {
	RPS      float64 // requests per second over the measured duration
	P50ms    float64 // median latency, ms (-1: unknown)
	P99ms    float64 // 99th percentile latency, ms (-1: unknown)
	Requests int64   // requests completed (any status)
	Errors   int64   // socket errors + HTTP failures (status >= 400) as the tool counts them
}

func (r Result) TSV() string {
	return fmt.Sprintf("%.1f\t%.3f\t%.3f\t%d\t%d", r.RPS, r.P50ms, r.P99ms, r.Requests, r.Errors)
}

var (
	wrkRPS      = regexp.MustCompile(`(?m)^Requests/sec:\s+([0-9.]+)`)
	wrkReqs     = regexp.MustCompile(`(?m)^\s*([0-9]+) requests in `)
	wrkPct      = regexp.MustCompile(`(?m)^\s+(50|99)(?:\.000)?%\s+([0-9.]+)(us|ms|s|m)\s*$`)
	wrkSockErr  = regexp.MustCompile(`Socket errors: connect ([0-9]+), read ([0-9]+), write ([0-9]+), timeout ([0-9]+)`)
	wrkNon2xx   = regexp.MustCompile(`Non-2xx or 3xx responses: ([0-9]+)`)
	h2Finished  = regexp.MustCompile(`(?m)^finished in [0-9.]+[a-z]*, ([0-9.]+) req/s`)
	h2Requests  = regexp.MustCompile(`(?m)^requests: ([0-9]+) total, ([0-9]+) started, ([0-9]+) done, ([0-9]+) succeeded, ([0-9]+) failed, ([0-9]+) errored, ([0-9]+) timeout`)
	h2ReqTimeMs = regexp.MustCompile(`(?m)^time for request:\s+\S+\s+\S+\s+([0-9.]+)(us|ms|s)`)
	h3Line      = regexp.MustCompile(`(?m)^(requests/s|completed|failed|p50_ms|p99_ms): (-?[0-9.]+)\s*$`)
)

func toMs(v float64, unit string) float64 {
	switch unit {
	case "us":
		return v / 1000
	case "s":
		return v * 1000
	case "m":
		return v * 60000
	}
	return v
}

func atoi(s string) int64 {
	n, _ := strconv.ParseInt(s, 10, 64)
	return n
}

// withRPS starts a Result with the requests per second that rps's first
// group finds in out, latencies unknown; missing is the error when it finds
// none.
func withRPS(out string, rps *regexp.Regexp, missing string) (Result, error) {
	r := Result{P50ms: -1, P99ms: -1}
	m := rps.FindStringSubmatch(out)
	if m == nil {
		return r, errors.New(missing)
	}
	r.RPS, _ = strconv.ParseFloat(m[1], 64)
	return r, nil
}

// ParseWrk reads `wrk --latency` output.
func ParseWrk(out string) (Result, error) {
	r, err := withRPS(out, wrkRPS, "wrk: no Requests/sec line")
	if err != nil {
		return r, err
	}
	if m := wrkReqs.FindStringSubmatch(out); m != nil {
		r.Requests = atoi(m[1])
	}
	for _, m := range wrkPct.FindAllStringSubmatch(out, -1) {
		v, _ := strconv.ParseFloat(m[2], 64)
		if m[1] == "50" {
			r.P50ms = toMs(v, m[3])
		} else {
			r.P99ms = toMs(v, m[3])
		}
	}
	if m := wrkSockErr.FindStringSubmatch(out); m != nil {
		for _, s := range m[1:] {
			r.Errors += atoi(s)
		}
	}
	if m := wrkNon2xx.FindStringSubmatch(out); m != nil {
		r.Errors += atoi(m[1])
	}
	return r, nil
}

// ParseH2load reads h2load's summary and, if log is not nil, its --log-file
// (tab-separated: start µs since epoch, status, µs until the response ended)
// for percentiles, which the summary does not print. Without a log the mean
// request time is reported as p50 and p99 stays unknown.
func ParseH2load(out string, log io.Reader) (Result, error) {
	r, err := withRPS(out, h2Finished, "h2load: no 'finished in' line")
	if err != nil {
		return r, err
	}
	m := h2Requests.FindStringSubmatch(out)
	if m == nil {
		return r, fmt.Errorf("h2load: no 'requests:' line")
	}
	r.Requests = atoi(m[3])
	// h2load: "failed" includes HTTP-level failures; "errored" and "timeout" are subsets of it.
	r.Errors = atoi(m[5])
	if log != nil {
		var lat []float64
		sc := bufio.NewScanner(log)
		for sc.Scan() {
			f := strings.Split(sc.Text(), "\t")
			if len(f) < 3 {
				continue
			}
			us, err := strconv.ParseFloat(f[2], 64)
			if err != nil {
				continue
			}
			lat = append(lat, us/1000)
		}
		if len(lat) > 0 {
			sort.Float64s(lat)
			r.P50ms = rank.Percentile(lat, 50)
			r.P99ms = rank.Percentile(lat, 99)
			return r, nil
		}
	}
	if m := h2ReqTimeMs.FindStringSubmatch(out); m != nil {
		v, _ := strconv.ParseFloat(m[1], 64)
		r.P50ms = toMs(v, m[2])
	}
	return r, nil
}

// ParseH3load reads e2e/bench/h3load's "key: value" summary. Requests is
// completed + failed (every request that ended within the run), as with
// h2load's "done".
func ParseH3load(out string) (Result, error) {
	r := Result{P50ms: -1, P99ms: -1}
	got := map[string]float64{}
	for _, m := range h3Line.FindAllStringSubmatch(out, -1) {
		v, err := strconv.ParseFloat(m[2], 64)
		if err == nil {
			got[m[1]] = v
		}
	}
	for _, k := range []string{"requests/s", "completed", "failed"} {
		if _, ok := got[k]; !ok {
			return r, fmt.Errorf("h3load: no %q line", k+":")
		}
	}
	r.RPS = got["requests/s"]
	r.Requests = int64(got["completed"] + got["failed"])
	r.Errors = int64(got["failed"])
	if v, ok := got["p50_ms"]; ok {
		r.P50ms = v
	}
	if v, ok := got["p99_ms"]; ok {
		r.P99ms = v
	}
	return r, nil
}

func cmdParse(args []string) error {
	if len(args) < 2 {
		return fmt.Errorf("usage: report parse wrk|h2load|h3load OUTPUT [H2LOAD_LOG]")
	}
	out, err := os.ReadFile(args[1])
	if err != nil {
		return err
	}
	var r Result
	switch args[0] {
	case "wrk":
		r, err = ParseWrk(string(out))
	case "h2load":
		var log io.Reader
		if len(args) > 2 {
			f, ferr := os.Open(args[2])
			if ferr == nil {
				defer f.Close()
				log = bufio.NewReaderSize(f, 1<<16)
			}
		}
		r, err = ParseH2load(string(out), log)
	case "h3load":
		r, err = ParseH3load(string(out))
	default:
		return fmt.Errorf("unknown tool %q", args[0])
	}
	if err != nil {
		return err
	}
	fmt.Println(r.TSV())
	return nil
}
