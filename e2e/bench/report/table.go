package main

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// row is one line of a TSV file with a header, by column name.
type row map[string]string

func (r row) num(k string) (float64, bool) {
	v, err := strconv.ParseFloat(strings.TrimSpace(r[k]), 64)
	if err != nil || math.IsNaN(v) {
		return 0, false
	}
	return v, true
}

func readTSV(path string) ([]row, []string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	var header []string
	var rows []row
	for sc.Scan() {
		line := sc.Text()
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Split(line, "\t")
		if header == nil {
			header = fields
			continue
		}
		r := row{}
		for i, h := range header {
			if i < len(fields) {
				r[h] = fields[i]
			}
		}
		rows = append(rows, r)
	}
	return rows, header, sc.Err()
}

// labels reads an "id<TAB>label" file, keeping its order.
func labels(path string) (order []string, label map[string]string) {
	label = map[string]string{}
	rows, _, err := readTSV(path)
	if err != nil {
		return nil, label
	}
	for _, r := range rows {
		order = append(order, r["id"])
		label[r["id"]] = r["label"]
	}
	return order, label
}

// peerLabels reads peers.tsv: "id<TAB>label[<TAB>backend]". A row with a
// backend gives the peer's label on that backend only (Sluice on its HTTP/1.1
// pool, say); the rows without one give the order and the default labels.
type peerLabels struct {
	order     []string
	label     map[string]string
	onBackend map[[2]string]string // {backend, id}
}

func readPeerLabels(path string) peerLabels {
	p := peerLabels{label: map[string]string{}, onBackend: map[[2]string]string{}}
	rows, _, err := readTSV(path)
	if err != nil {
		return p
	}
	for _, r := range rows {
		if b := r["backend"]; b != "" {
			p.onBackend[[2]string{b, r["id"]}] = r["label"]
			continue
		}
		p.order = append(p.order, r["id"])
		p.label[r["id"]] = r["label"]
	}
	return p
}

// name is the peer's label on backend, or its id without one.
func (p peerLabels) name(backend, id string) string {
	if l := p.onBackend[[2]string{backend, id}]; l != "" {
		return l
	}
	if l := p.label[id]; l != "" {
		return l
	}
	return id
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func maxOf(v []float64) float64 {
	m := math.NaN()
	for _, x := range v {
		if math.IsNaN(m) || x > m {
			m = x
		}
	}
	return m
}

func fmtNum(v float64, prec int) string {
	if math.IsNaN(v) || v < 0 {
		return "—"
	}
	return strconv.FormatFloat(v, 'f', prec, 64)
}

func fmtInt(v float64) string {
	if math.IsNaN(v) || v < 0 {
		return "—"
	}
	s := strconv.FormatFloat(math.Round(v), 'f', 0, 64)
	// thousands separators for readability
	n := len(s)
	if n <= 4 {
		return s
	}
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (n-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// cell aggregates one backend × scenario × peer over the rounds.
type cell struct {
	ok, total int
	failures  []string
	na        string // status "n/a": the peer cannot run this scenario, and why
	cols      map[string][]float64
	rounds    map[string]roundVals // by round: the last ok run's, for the paired ratios
}

func (c *cell) med(k string) float64 { return median(c.cols[k]) }

func cmdTable(args []string) error {
	if len(args) != 1 {
		return fmt.Errorf("usage: report table RESULTS_DIR")
	}
	return writeTables(os.Stdout, args[0])
}

func writeTables(w io.Writer, dir string) error {
	rows, _, err := readTSV(filepath.Join(dir, "raw.tsv"))
	if err != nil {
		return err
	}
	backendOrder, backendLabel := labels(filepath.Join(dir, "backends.tsv"))
	scenarioOrder, scenarioLabel := labels(filepath.Join(dir, "scenarios.tsv"))
	peers := readPeerLabels(filepath.Join(dir, "peers.tsv"))
	peerOrder := peers.order

	cells := map[[3]string]*cell{}
	seen := func(order *[]string, id string) {
		for _, x := range *order {
			if x == id {
				return
			}
		}
		*order = append(*order, id)
	}
	numeric := []string{"rps", "p50_ms", "p99_ms", "errors", "backend_syns", "backend_tw", "sluice_opened", "sluice_ka_closes", "proxy_cpu_s", "requests", "proxy_hwm_kib", "other_cpu_s"}
	perReq := map[string]string{"proxy_cpu_s": "cpu_per_10k", "backend_cpu_s": "backend_cpu_per_10k"}
	for _, r := range rows {
		seen(&backendOrder, r["backend"])
		seen(&scenarioOrder, r["scenario"])
		seen(&peerOrder, r["peer"])
		k := [3]string{r["backend"], r["scenario"], r["peer"]}
		c := cells[k]
		if c == nil {
			c = &cell{cols: map[string][]float64{}, rounds: map[string]roundVals{}}
			cells[k] = c
		}
		if r["status"] == "n/a" {
			c.na = strings.TrimSpace(r["note"])
			continue
		}
		c.total++
		if r["status"] != "ok" {
			msg := r["status"]
			if n := strings.TrimSpace(r["note"]); n != "" {
				msg += ": " + n
			}
			c.failures = append(c.failures, msg)
			continue
		}
		c.ok++
		c.rounds[r["round"]] = roundOf(r)
		for _, k := range numeric {
			if v, ok := r.num(k); ok && v >= 0 {
				c.cols[k] = append(c.cols[k], v)
			}
		}
		for from, to := range perReq {
			if v, ok := per10k(r, from); ok {
				c.cols[to] = append(c.cols[to], v)
			}
		}
	}
	name := func(m map[string]string, id string) string {
		if l, ok := m[id]; ok && l != "" {
			return l
		}
		return id
	}

	for _, b := range backendOrder {
		any := false
		for k := range cells {
			if k[0] == b {
				any = true
			}
		}
		if !any {
			continue
		}
		fmt.Fprintf(w, "\n#### Backend: %s\n\n", name(backendLabel, b))
		peerName := func(id string) string { return peers.name(b, id) }
		scenarioName := func(s string) string { return name(scenarioLabel, s) }
		fmt.Fprintln(w, "| scenario | peer | req/s | Sluice ÷ peer | p50 ms | p99 ms | errors | backend conns opened | backend TIME_WAIT | proxy CPU s / 10k req | backend CPU s / 10k req | proxy peak RSS MiB | runs used | other procs CPU s (max) |")
		fmt.Fprintln(w, "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
		for _, s := range scenarioOrder {
			sl := cells[[3]string{b, s, "sluice"}]
			for _, p := range peerOrder {
				c := cells[[3]string{b, s, p}]
				if c == nil {
					continue
				}
				runs := fmt.Sprintf("%d/%d", c.ok, c.total)
				if c.total == 0 && c.na != "" {
					fmt.Fprintf(w, "| %s | %s | n/a: %s | — | — | — | — | — | — | — | — | — | — | — |\n", scenarioName(s), peerName(p), strings.ReplaceAll(c.na, "|", "/"))
					continue
				}
				if c.ok == 0 {
					why := "failed"
					if len(c.failures) > 0 {
						why = "FAILED: " + strings.ReplaceAll(c.failures[0], "|", "/")
					}
					fmt.Fprintf(w, "| %s | %s | %s | — | — | — | — | — | — | — | — | — | %s | — |\n", scenarioName(s), peerName(p), why, runs)
					continue
				}
				ratio := "—"
				if sl != nil && sl.ok > 0 {
					if pr := c.med("rps"); pr > 0 {
						ratio = fmtNum(sl.med("rps")/pr, 2)
					}
				}
				fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
					scenarioName(s), peerName(p),
					fmtInt(c.med("rps")), ratio,
					fmtNum(c.med("p50_ms"), 1), fmtNum(c.med("p99_ms"), 1),
					fmtInt(c.med("errors")), fmtInt(c.med("backend_syns")), fmtInt(c.med("backend_tw")),
					fmtNum(c.med("cpu_per_10k"), 3), fmtNum(c.med("backend_cpu_per_10k"), 3), fmtNum(c.med("proxy_hwm_kib")/1024, 1),
					runs, fmtNum(maxOf(c.cols["other_cpu_s"]), 1))
			}
		}
		writeSluiceCounters(w, b, scenarioOrder, cells, scenarioName)
		writePaired(w, b, scenarioOrder, peerOrder, cells, scenarioName, peerName)
	}

	idle, _, err := readTSV(filepath.Join(dir, "idle.tsv"))
	if err == nil && len(idle) > 0 {
		fmt.Fprintln(w, "\n#### Idle client connections (fast backend; RSS summed over the proxy's processes)")
		fmt.Fprintln(w, "\n| peer | client protocol | connections asked | connections held | still open at the end | RSS before MiB | RSS with them open MiB | KiB per connection |")
		fmt.Fprintln(w, "|---|---|--:|--:|--:|--:|--:|--:|")
		for _, r := range idle {
			p := peers.name("", r["peer"])
			asked := mustNum(r, "n_asked")
			if math.IsNaN(asked) {
				asked = mustNum(r, "n_target") // idle.tsv from before n_asked
			}
			note := strings.ReplaceAll(r["note"], "|", "/")
			switch r["status"] {
			case "ok":
			case "not-run":
				fmt.Fprintf(w, "| %s | %s | %s | not run: %s | — | — | — | — |\n", p, r["proto"], fmtInt(asked), note)
				continue
			default:
				fmt.Fprintf(w, "| %s | %s | %s | FAILED: %s %s | — | — | — | — |\n", p, r["proto"], fmtInt(asked), r["status"], note)
				continue
			}
			open, _ := r.num("n_open")
			before, _ := r.num("rss_before_kib")
			after, _ := r.num("rss_after_kib")
			per := math.NaN()
			if open > 0 {
				per = (after - before) / open
			}
			fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s |\n", p, r["proto"], fmtInt(asked), fmtInt(open), fmtInt(mustNum(r, "n_alive")),
				fmtNum(before/1024, 1), fmtNum(after/1024, 1), fmtNum(per, 1))
		}
	}
	return nil
}

// writeSluiceCounters adds, under a backend's table, what Sluice counted
// itself over the measured runs (medians): a cross-check of the "backend
// conns opened" column, and how often the server ended a keep-alive
// connection. Nothing when no run recorded them (results from before).
func writeSluiceCounters(w io.Writer, backend string, scenarios []string, cells map[[3]string]*cell, scenarioName func(string) string) {
	var parts []string
	for _, s := range scenarios {
		c := cells[[3]string{backend, s, "sluice"}]
		if c == nil || len(c.cols["sluice_opened"]) == 0 {
			continue
		}
		part := fmt.Sprintf("%s: %s opened", scenarioName(s), fmtInt(c.med("sluice_opened")))
		if len(c.cols["sluice_ka_closes"]) > 0 {
			part += fmt.Sprintf(", %s ended by the server's keep-alive limit", fmtInt(c.med("sluice_ka_closes")))
		}
		parts = append(parts, part)
	}
	if len(parts) == 0 {
		return
	}
	fmt.Fprintf(w, "\nSluice's own counters over the measured run (medians; sluice_upstream_connections_opened_total, sluice_upstream_keepalive_closes_total): %s.\n", strings.Join(parts, "; "))
}

func mustNum(r row, k string) float64 {
	v, ok := r.num(k)
	if !ok {
		return math.NaN()
	}
	return v
}

// roundVals is what one ok run measured, for the paired ratios.
type roundVals struct {
	rps, p99, cpu float64 // cpu: proxy CPU seconds per 10k requests; NaN when unknown
}

func roundOf(r row) roundVals {
	v := roundVals{rps: mustNum(r, "rps"), p99: mustNum(r, "p99_ms"), cpu: math.NaN()}
	if cpu, ok := per10k(r, "proxy_cpu_s"); ok {
		v.cpu = cpu
	}
	return v
}

// per10k is column k of r per 10k of its requests.
func per10k(r row, k string) (float64, bool) {
	rq, ok := r.num("requests")
	if !ok || rq <= 0 {
		return 0, false
	}
	v, ok := r.num(k)
	return v / rq * 10000, ok
}

// writePaired adds, under a backend's table, Sluice ÷ each peer round by
// round: the runs of one round are back to back, so on a box whose speed
// drifts a round's ratio is steadier than the ratio of two medians, and
// the spread of the rounds shows how far one run's verdict can be trusted.
// Only rounds in which both Sluice and the peer have an ok run count.
func writePaired(w io.Writer, backend string, scenarios, peers []string, cells map[[3]string]*cell, scenarioName, peerName func(string) string) {
	var lines []string
	for _, s := range scenarios {
		sl := cells[[3]string{backend, s, "sluice"}]
		for _, p := range peers {
			c := cells[[3]string{backend, s, p}]
			if p == "sluice" || sl == nil || c == nil {
				continue
			}
			var rs []string
			for rd := range c.rounds {
				if _, ok := sl.rounds[rd]; ok {
					rs = append(rs, rd)
				}
			}
			sortRounds(rs)
			var rps, p99, cpu []float64
			for _, rd := range rs {
				sv, pv := sl.rounds[rd], c.rounds[rd]
				rps = append(rps, ratio(sv.rps, pv.rps))
				p99 = append(p99, ratio(sv.p99, pv.p99))
				cpu = append(cpu, ratio(sv.cpu, pv.cpu))
			}
			if len(rps) == 0 {
				continue
			}
			lines = append(lines, fmt.Sprintf("| %s | %s | %d | %s | %s | %s |", scenarioName(s), peerName(p), len(rps), fmtRatios(rps), fmtRatios(p99), fmtRatios(cpu)))
		}
	}
	if len(lines) == 0 {
		return
	}
	fmt.Fprintln(w, "\nSluice ÷ peer round by round (each round's runs are back to back; the rounds in order, then their median):")
	fmt.Fprintln(w, "\n| scenario | peer | rounds | req/s | p99 | proxy CPU per request |")
	fmt.Fprintln(w, "|---|---|--:|---|---|---|")
	for _, l := range lines {
		fmt.Fprintln(w, l)
	}
}

// sortRounds orders round numbers numerically (10 after 9).
func sortRounds(rs []string) {
	sort.Slice(rs, func(i, j int) bool {
		a, errA := strconv.Atoi(rs[i])
		b, errB := strconv.Atoi(rs[j])
		if errA != nil || errB != nil {
			return rs[i] < rs[j]
		}
		return a < b
	})
}

// ratio is a ÷ b, NaN when either is unknown or b is not positive.
func ratio(a, b float64) float64 {
	if math.IsNaN(a) || math.IsNaN(b) || a < 0 || b <= 0 {
		return math.NaN()
	}
	return a / b
}

// fmtRatios is "0.81, 0.86 → 0.84": each round's ratio, then the median
// of those known; "—" stands for a round without one.
func fmtRatios(v []float64) string {
	parts := make([]string, len(v))
	var known []float64
	for i, x := range v {
		parts[i] = fmtNum(x, 2)
		if !math.IsNaN(x) {
			known = append(known, x)
		}
	}
	return strings.Join(parts, ", ") + " → " + fmtNum(median(known), 2)
}
