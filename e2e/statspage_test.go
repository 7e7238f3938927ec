package e2e

import (
	"encoding/json"
	"fmt"
	"html"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/gateway/gatewaytest"
)

// The stats page, rendered by a real headless Chromium while traffic runs,
// shows the numbers /stats.json serves. The screenshot is kept in
// e2e/artifacts/ (git-ignored).
func TestStatsPageShowsStatsJSONInChromium(t *testing.T) {
	browser, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("chromium not installed: run `make deps` (Debian package chromium)")
	}
	s := startSluice(t, upstream{Protocol: "h2c", Ports: []int{tc.A, tc.B}, H2Conns: 2}.yaml())
	done := make(chan *loadResult, 1)
	go func() { done <- runLoad(t, s.URL, loadSpec{Clients: 300, Duration: 8 * time.Second, KeepAlive: true}) }()
	defer func() { (<-done).requireClean(t) }()
	// The page shows the load: both servers up and connected, and two
	// history samples.
	gatewaytest.WaitFor(t, 20*time.Second, "both servers up and connected, 2 history samples", func() bool {
		st := getStats(t, s.Admin)
		for _, srv := range st.Backends[0].Servers {
			if srv.State != "up" || srv.Connections < 1 {
				return false
			}
		}
		return len(st.History.T) >= 2
	})

	art := filepath.Join(repoRoot, "e2e", "artifacts")
	os.MkdirAll(art, 0o755)
	page := "http://" + s.Admin + "/"
	flags := chromiumFlags(t, 1100, 700, 3000)
	shot := exec.Command(browser, append(flags, "--screenshot="+filepath.Join(art, "stats-page.png"), page)...)
	if out, err := shot.CombinedOutput(); err != nil {
		t.Fatalf("chromium screenshot: %v\n%s", err, tail(string(out), 2000))
	}
	dom, err := exec.Command(browser, append(flags, "--dump-dom", page)...).Output()
	if err != nil {
		t.Fatalf("chromium --dump-dom: %v", err)
	}
	resp, err := http.Get("http://" + s.Admin + "/stats.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Backends []struct {
			Servers []struct {
				Address     string `json:"address"`
				State       string `json:"state"`
				Protocol    string `json:"protocol"`
				Connections int    `json:"connections"`
			} `json:"servers"`
		} `json:"backends"`
	}
	err = json.NewDecoder(resp.Body).Decode(&doc)
	resp.Body.Close()
	if err != nil || len(doc.Backends) != 1 {
		t.Fatalf("stats.json: %v %+v", err, doc)
	}
	for _, srv := range doc.Backends[0].Servers {
		// The rendered row: address, state, protocol, connections.
		re := regexp.MustCompile(regexp.QuoteMeta(srv.Address) + `</td><td class="[a-z]+">([a-z]+)</td><td>([a-z0-9?]+)</td><td data-k="conns">(\d+)</td>`)
		m := re.FindSubmatch(dom)
		if m == nil {
			t.Fatalf("server %s not rendered; DOM:\n%s", srv.Address, tail(string(dom), 3000))
		}
		conns, _ := strconv.Atoi(string(m[3]))
		got := fmt.Sprintf("%s/%s/%d", m[1], m[2], conns)
		want := fmt.Sprintf("%s/%s/%d", srv.State, srv.Protocol, srv.Connections)
		if got != want {
			t.Errorf("server %s: page shows %s, stats.json %s", srv.Address, got, want)
		}
	}
	if !regexp.MustCompile(`id="funnel">[0-9.]+ : 1<`).Match(dom) {
		t.Errorf("funnel ratio not shown; DOM:\n%s", tail(string(dom), 2000))
	}
}

// statsHistory is the part of /stats.json the charts draw.
type statsHistory struct {
	IntervalMs int64                 `json:"interval_ms"`
	T          []int64               `json:"t"`
	Clients    map[string][]*float64 `json:"client_connections"`
	Upstreams  []*float64            `json:"upstream_connections"`
	RPS        []*float64            `json:"requests_per_s"`
	Err5xx     []*float64            `json:"error_5xx_pct"`
	Err499     []*float64            `json:"error_499_pct"`
	P50        []*float64            `json:"latency_p50_ms"`
	P99        []*float64            `json:"latency_p99_ms"`
	Pending    []*float64            `json:"queue_pending"`
	WaitMean   []*float64            `json:"queue_wait_mean_ms"`
	WaitP99    []*float64            `json:"queue_wait_p99_ms"`
	Servers    []struct {
		Address string     `json:"address"`
		Active  []*float64 `json:"streams_active"`
		Limit   []*float64 `json:"streams_limit"`
		State   string     `json:"state"`
	} `json:"servers"`
	Events []struct {
		T       int64  `json:"t"`
		Address string `json:"address"`
		To      string `json:"to"`
	} `json:"events"`
}

// series maps a chart's series, as the page names them, to its values.
func (h *statsHistory) series() map[string][]*float64 {
	m := map[string][]*float64{
		"funnel/upstream": h.Upstreams, "requests/req/s": h.RPS,
		"errors/5xx": h.Err5xx, "errors/499": h.Err499,
		"latency/p50": h.P50, "latency/p99": h.P99,
		"queue/pending": h.Pending, "wait/mean": h.WaitMean, "wait/p99": h.WaitP99,
	}
	for p, v := range h.Clients {
		m["funnel/clients "+p] = v
	}
	for _, s := range h.Servers {
		m["streams/"+s.Address+" active"] = s.Active
		m["streams/"+s.Address+" limit"] = s.Limit
	}
	return m
}

type statsNow struct {
	Backends []struct {
		Servers []struct {
			Address     string `json:"address"`
			State       string `json:"state"`
			Connections int    `json:"connections"`
		} `json:"servers"`
		Discovery *struct {
			Name      string `json:"name"`
			Servers   int    `json:"servers"`
			Failures  int    `json:"failures"`
			LastError string `json:"last_error"`
		} `json:"discovery"`
	} `json:"backends"`
	Connections []struct {
		ID uint64 `json:"id"`
	} `json:"connections"`
	History statsHistory `json:"history"`
}

// chromiumFlags are headless Chromium's flags for a page of w×h pixels,
// given budgetMs of virtual time to run its scripts.
func chromiumFlags(t testing.TB, w, h, budgetMs int) []string {
	return []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + t.TempDir(), fmt.Sprintf("--virtual-time-budget=%d", budgetMs), fmt.Sprintf("--window-size=%d,%d", w, h)}
}

func getStats(t testing.TB, admin string) statsNow {
	t.Helper()
	resp, err := http.Get("http://" + admin + "/stats.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var d statsNow
	if err := json.NewDecoder(resp.Body).Decode(&d); err != nil {
		t.Fatalf("stats.json: %v", err)
	}
	return d
}

// The charts, drawn by headless Chromium under load: every chart has
// points, each series ends where /stats.json does (within one sample), a
// server killed during the test is marked on the time axis, and the
// connections table lists the upstream connections. Screenshots at laptop
// and phone width go to e2e/artifacts/.
func TestStatsPageHistoryInChromium(t *testing.T) {
	browser, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("chromium not installed: run `make deps` (Debian package chromium)")
	}
	pt := startPrivateTomcat(t)
	victim := addr(pt.A)
	s := startSluice(t, upstream{Protocol: "h2c", Ports: []int{tc.A, pt.A}, H2Conns: 2}.yaml())
	done, stop := make(chan *loadResult, 1), make(chan struct{})
	go func() {
		done <- runLoad(t, s.URL, loadSpec{Clients: 200, Duration: 2 * time.Minute, Stop: stop, KeepAlive: true})
	}()
	// The load outlasts the page's rendering (about 25 s in, more on a
	// busy box), so that every series has data up to the end: it runs
	// until the test ends. Requests in flight on the killed server fail:
	// the load is not required clean, only finished.
	defer func() { close(stop); <-done }()

	// Charts with some history under load before the kill.
	gatewaytest.WaitFor(t, 20*time.Second, "4 history samples", func() bool { return len(getStats(t, s.Admin).History.T) >= 4 })
	killedAt := time.Now()
	if err := pt.kill9(); err != nil {
		t.Fatal(err)
	}
	var samples int
	gatewaytest.WaitFor(t, 20*time.Second, "the killed server "+victim+" not up in /stats.json", func() bool {
		st := getStats(t, s.Admin)
		samples = len(st.History.T)
		for _, srv := range st.Backends[0].Servers {
			if srv.Address == victim {
				return srv.State != "up"
			}
		}
		return false
	})
	// Two more samples under load after the change.
	gatewaytest.WaitFor(t, 20*time.Second, "2 more history samples", func() bool { return len(getStats(t, s.Admin).History.T) >= samples+2 })

	art := filepath.Join(repoRoot, "e2e", "artifacts")
	os.MkdirAll(art, 0o755)
	page := "http://" + s.Admin + "/"
	flags := func(w, h int) []string { return append(chromiumFlags(t, w, h, 1500), "--hide-scrollbars") }
	for _, sz := range []struct {
		name string
		w, h int
		dark bool // prefers-color-scheme: dark
	}{{"stats-history-1280x800.png", 1280, 800, false}, {"stats-history-phone-390x844.png", 390, 844, false},
		{"stats-history-dark-1280x800.png", 1280, 800, true}} {
		args := append(flags(sz.w, sz.h), "--screenshot="+filepath.Join(art, sz.name))
		if sz.dark {
			args = append(args, "--force-dark-mode")
		}
		out, err := exec.Command(browser, append(args, page)...).CombinedOutput()
		if err != nil {
			t.Fatalf("chromium screenshot: %v\n%s", err, tail(string(out), 2000))
		}
		if st, err := os.Stat(filepath.Join(art, sz.name)); err != nil || st.Size() < 10000 {
			t.Errorf("screenshot %s: %v (%d bytes)", sz.name, err, st.Size())
		}
	}
	// The page fetches /stats.json between these two fetches: its last
	// points are those of before, or at most a sample or two later, and
	// after still holds them.
	before := getStats(t, s.Admin).History
	began := time.Now()
	dom, err := exec.Command(browser, append(flags(1280, 800), "--dump-dom", page)...).Output()
	if err != nil {
		t.Fatalf("chromium --dump-dom: %v", err)
	}
	doc := getStats(t, s.Admin)
	t.Logf("chromium rendered the page in %v", time.Since(began).Round(time.Millisecond))
	select {
	case r := <-done:
		done <- r
		t.Fatal("the load ended before the page was rendered: lengthen it")
	default:
	}
	h := doc.History
	if len(h.T) == 0 || len(before.T) == 0 {
		t.Fatal("stats.json has no history")
	}
	jsonLast := before.T[len(before.T)-1]
	want := h.series()

	charts := regexp.MustCompile(`data-chart="([a-z]+)"`).FindAllSubmatchIndex(dom, -1)
	wantCharts := []string{"funnel", "requests", "errors", "latency", "queue", "wait", "streams"}
	if len(charts) != len(wantCharts) {
		t.Fatalf("page has %d charts, want %d (%v); DOM:\n%s", len(charts), len(wantCharts), wantCharts, tail(string(dom), 3000))
	}
	seriesRe := regexp.MustCompile(`<path class="series" data-series="([^"]+)" data-n="(\d+)" data-last="([^"]+)" data-last-t="([^"]+)"`)
	for i, c := range charts {
		name := string(dom[c[2]:c[3]])
		end := len(dom)
		if i+1 < len(charts) {
			end = charts[i+1][0]
		}
		ss := seriesRe.FindAllSubmatch(dom[c[1]:end], -1)
		if len(ss) == 0 {
			t.Errorf("chart %s has no series", name)
		}
		points := 0
		for _, m := range ss {
			key := name + "/" + html.UnescapeString(string(m[1]))
			n, _ := strconv.Atoi(string(m[2]))
			points += n
			if n == 0 {
				continue
			}
			last, _ := strconv.ParseFloat(string(m[3]), 64)
			lastT, _ := strconv.ParseInt(string(m[4]), 10, 64)
			if jsonLast-lastT > h.IntervalMs {
				t.Errorf("%s: page's last point at %d, stats.json's (fetched just before) at %d: more than one sample apart", key, lastT, jsonLast)
			}
			vals, ok := want[key]
			if !ok {
				t.Errorf("%s: page series not in stats.json", key)
				continue
			}
			j := slices.Index(h.T, lastT)
			if j < 0 || vals[j] == nil || math.Abs(*vals[j]-last) > 1e-6*max(1, math.Abs(last)) {
				var got any = "absent"
				if j >= 0 && vals[j] != nil {
					got = *vals[j]
				}
				t.Errorf("%s: page's last point %v at %d, stats.json has %v there", key, last, lastT, got)
			}
		}
		if points < 2 {
			t.Errorf("chart %s has %d data points", name, points)
		}
	}
	// The kill is marked on the time axis.
	evRe := regexp.MustCompile(`<g class="event" data-t="(\d+)" data-to="([a-z]+)" data-server="` + regexp.QuoteMeta(victim) + `"`)
	marked := false
	for _, m := range evRe.FindAllSubmatch(dom, -1) {
		at, _ := strconv.ParseInt(string(m[1]), 10, 64)
		if string(m[2]) != "up" && at >= killedAt.UnixMilli()-h.IntervalMs {
			marked = true
		}
	}
	if !marked {
		t.Errorf("no state change of %s after the kill (%d) on the time axis; events in stats.json: %+v", victim, killedAt.UnixMilli(), h.Events)
	}
	rows := regexp.MustCompile(`<tr data-conn="\d+"><td>\d+</td><td>([0-9.:]+)</td><td>(h2c|h1)</td>`).FindAllSubmatch(dom, -1)
	if len(rows) == 0 || len(doc.Connections) == 0 {
		t.Errorf("connections table: %d rows on the page, %d in stats.json", len(rows), len(doc.Connections))
	}
}
