package main

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const wrkOut = `Running 5s test @ http://127.0.0.1:19121/
  2 threads and 1000 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   100.59ms   45.28ms   1.77s    72.71%
    Req/Sec     4.93k   781.27     6.51k    80.81%
  Latency Distribution
     50%   94.46ms
     75%  124.00ms
     90%  157.46ms
     99%    1.24s
  49275 requests in 5.10s, 6.53MB read
  Socket errors: connect 3, read 4, write 0, timeout 2
  Non-2xx or 3xx responses: 7
Requests/sec:   9653.97
Transfer/sec:      1.28MB
`

func TestParseWrk(t *testing.T) {
	r, err := ParseWrk(wrkOut)
	if err != nil {
		t.Fatal(err)
	}
	want := Result{RPS: 9653.97, P50ms: 94.46, P99ms: 1240, Requests: 49275, Errors: 16}
	if r != want {
		t.Fatalf("got %+v, want %+v", r, want)
	}
	if _, err := ParseWrk("unable to connect to 127.0.0.1:1 Connection refused\n"); err == nil {
		t.Fatal("no error for output without results")
	}
}

const h2loadOut = `finished in 5.01s, 8227.40 req/s, 329.11KB/s
requests: 41137 total, 43137 started, 41137 done, 41130 succeeded, 7 failed, 5 errored, 1 timeout
status codes: 41180 2xx, 0 3xx, 0 4xx, 2 5xx
traffic: 1.61MB (1685049) total, 187.04KB (191530) headers (space savings 94.26%), 723.11KB (740466) data
                     min         max         mean         sd        +/- sd
time for request:     1.58ms       1.07s    235.02ms    103.40ms    71.66%
`

func TestParseH2load(t *testing.T) {
	var log strings.Builder
	for i := 1; i <= 100; i++ {
		fmt.Fprintf(&log, "1795604580914574\t200\t%d\n", i*1000) // i ms
	}
	r, err := ParseH2load(h2loadOut, strings.NewReader(log.String()))
	if err != nil {
		t.Fatal(err)
	}
	want := Result{RPS: 8227.40, P50ms: 50, P99ms: 99, Requests: 41137, Errors: 7}
	if r != want {
		t.Fatalf("got %+v, want %+v", r, want)
	}
	r, err = ParseH2load(h2loadOut, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.P50ms != 235.02 || r.P99ms != -1 {
		t.Fatalf("without a log: p50 %v p99 %v, want the mean 235.02 and -1", r.P50ms, r.P99ms)
	}
}

const h3loadOut = `$ bin/bench/h3load -url https://127.0.0.1:19122/ -c 200 -m 10 -d 5s -insecure
h3load: https://127.0.0.1:19122/ conns 200 streams 10 duration 5s warmup 0s
connections: 200 ok, 0 failed, 201 dialed in all
requests/s: 8123.45
completed: 40617
failed: 3
p50_ms: 21.500
p99_ms: 88.125
status: 200=40617 502=1
error: 2 timeout: no recent network activity
`

func TestParseH3load(t *testing.T) {
	r, err := ParseH3load(h3loadOut)
	if err != nil {
		t.Fatal(err)
	}
	want := Result{RPS: 8123.45, P50ms: 21.5, P99ms: 88.125, Requests: 40620, Errors: 3}
	if r != want {
		t.Fatalf("got %+v, want %+v", r, want)
	}
	if _, err := ParseH3load("h3load: connection 0: bind: address in use\n"); err == nil {
		t.Fatal("no error for output without results")
	}
	r, err = ParseH3load("requests/s: 0.00\ncompleted: 0\nfailed: 12\np50_ms: -1.000\np99_ms: -1.000\n")
	if err != nil || r.P50ms != -1 || r.Errors != 12 {
		t.Fatalf("all failed: %+v, %v", r, err)
	}
}

func TestParseStat(t *testing.T) {
	p, err := parseStat("4242 (my (odd) proc) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 7 3 20 0 3 0 100 0 0")
	if err != nil {
		t.Fatal(err)
	}
	if p.pid != 4242 || p.ppid != 1 || p.ticks != 300 || p.cticks != 10 || p.comm != "my (odd) proc" {
		t.Fatalf("got %+v", p)
	}
}

func TestMedianAndTable(t *testing.T) {
	if m := median([]float64{3, 1, 2, 10}); m != 2.5 {
		t.Fatalf("median = %v", m)
	}
	if !math.IsNaN(median(nil)) {
		t.Fatal("median of nothing should be NaN")
	}
	dir := t.TempDir()
	raw := "round\tbackend\tscenario\tpeer\tstatus\trps\tp50_ms\tp99_ms\trequests\terrors\tbackend_syns\tbackend_tw\tproxy_cpu_s\tproxy_hwm_kib\tbackend_cpu_s\tother_cpu_s\tnote\n" +
		"1\tfast\th2c\tsluice\tok\t1000\t1\t2\t10000\t0\t4\t0\t1.0\t10240\t0.5\t0\t\n" +
		"2\tfast\th2c\tsluice\tok\t3000\t1\t2\t30000\t0\t0\t0\t3.0\t10240\t1.5\t0\t\n" +
		"1\tfast\th2c\tnginx\tok\t4000\t1\t2\t40000\t0\t900\t800\t2.0\t20480\t\t0\t\n" +
		"1\tfast\th2c\tcaddy\tstart-failed\t\t\t\t\t\t\t\t\t\t\t\tnot installed\n" +
		"1\tfast\th3\tsluice\tok\t500\t3\t9\t5000\t1\t0\t0\t1.0\t10240\t\t0\t\n" +
		"1\tfast\th3\tnginx\tn/a\t\t\t\t\t\t\t\t\t\t\t\tnginx 1.22 has no HTTP/3\n"
	if err := os.WriteFile(filepath.Join(dir, "raw.tsv"), []byte(raw), 0o644); err != nil {
		t.Fatal(err)
	}
	idle := "peer\tproto\tstatus\tn_asked\tn_target\tn_open\tn_alive\trss_before_kib\trss_after_kib\tnote\n" +
		"sluice\th1\tok\t10000\t10000\t9990\t9990\t10240\t20230\t\n" +
		"sluice\th1\tnot-run\t50000\t50000\t\t\t\t\tRLIMIT_NOFILE hard limit 20000 < 50200 fds needed\n"
	if err := os.WriteFile(filepath.Join(dir, "idle.tsv"), []byte(idle), 0o644); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	if err := writeTables(&out, dir); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	for _, want := range []string{
		"| h2c | sluice | 2000 | 1.00 | 1.0 | 2.0 | 0 | 2 | 0 | 1.000 | 0.500 | 10.0 | 2/2 | 0.0 |",
		"| h2c | nginx | 4000 | 0.50 | 1.0 | 2.0 | 0 | 900 | 800 | 0.500 | — | 20.0 | 1/1 | 0.0 |",
		"| h2c | caddy | FAILED: start-failed: not installed |",
		"| h3 | sluice | 500 | 1.00 | 3.0 | 9.0 | 1 | 0 | 0 | 2.000 | — | 10.0 | 1/1 | 0.0 |",
		"| h3 | nginx | n/a: nginx 1.22 has no HTTP/3 | — |",
		"| sluice | h1 | 10,000 | 9990 | 9990 | 10.0 | 19.8 | 1.0 |",
		"| sluice | h1 | 50,000 | not run: RLIMIT_NOFILE hard limit 20000 < 50200 fds needed |",
		// Paired by round: only round 1 has both; nginx's CPU per request is 0.5.
		"| h2c | nginx | 1 | 0.25 → 0.25 | 1.00 → 1.00 | 2.00 → 2.00 |",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("table lacks %q:\n%s", want, s)
		}
	}
	for _, bad := range []string{"| h2c | caddy | 1 |", "| h3 | nginx | 1 |", "| h2c | sluice | 2 |"} {
		if strings.Contains(s, bad) {
			t.Errorf("paired table has %q, a peer without an ok round or Sluice itself:\n%s", bad, s)
		}
	}
}

// TestPairedRounds: rounds pair by number (10 after 9), a round that
// failed on either side is left out, and an unknown ratio shows as "—"
// without moving the median.
func TestPairedRounds(t *testing.T) {
	dir := t.TempDir()
	raw := "round\tbackend\tscenario\tpeer\tstatus\trps\tp50_ms\tp99_ms\trequests\terrors\tproxy_cpu_s\tnote\n"
	add := func(round int, peer, status string, rps, p99, cpu float64) {
		raw += fmt.Sprintf("%d\tfast\th1-keepalive\t%s\t%s\t%g\t1\t%g\t%g\t0\t%g\t\n", round, peer, status, rps, p99, rps*10, cpu)
	}
	for r := 1; r <= 10; r++ {
		add(r, "sluice", "ok", 100*float64(r), 10, 1)
		status := "ok"
		if r == 3 {
			status = "noisy"
		}
		add(r, "haproxy-h2", status, 50*float64(r), 20, 0.25)
	}
	// Round 10's peer CPU unknown (its proc sample failed): ratio "—".
	raw = strings.Replace(raw, "10\tfast\th1-keepalive\thaproxy-h2\tok\t500\t1\t20\t5000\t0\t0.25", "10\tfast\th1-keepalive\thaproxy-h2\tok\t500\t1\t20\t5000\t0\t-", 1)
	if err := os.WriteFile(filepath.Join(dir, "raw.tsv"), []byte(raw), 0o644); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	if err := writeTables(&out, dir); err != nil {
		t.Fatal(err)
	}
	want := "| h1-keepalive | haproxy-h2 | 9 | 2.00, 2.00, 2.00, 2.00, 2.00, 2.00, 2.00, 2.00, 2.00 → 2.00 | 0.50, 0.50, 0.50, 0.50, 0.50, 0.50, 0.50, 0.50, 0.50 → 0.50 | 2.00, 2.00, 2.00, 2.00, 2.00, 2.00, 2.00, 2.00, — → 2.00 |"
	if !strings.Contains(out.String(), want) {
		t.Fatalf("paired table lacks\n%s\nin:\n%s", want, out.String())
	}
	rs := []string{"10", "2", "9", "1"}
	sortRounds(rs)
	if strings.Join(rs, " ") != "1 2 9 10" {
		t.Fatalf("sortRounds: %v", rs)
	}
}
