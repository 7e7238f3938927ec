package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/sluice-gw/sluice/gateway/gatewaytest"
)

// The files under test, relative to the repository root.
const (
	monitoringDir  = "deploy/monitoring"
	alertsFile     = monitoringDir + "/alerts.yml"
	alertTestsFile = monitoringDir + "/alerts_test.yml"
	dashboardFile  = monitoringDir + "/sluice-dashboard.json"
)

// TestMonitoringRulesPromtool checks the alerting rules with Debian's
// promtool: syntax (`check rules`) and the unit tests that fire every alert
// (`test rules`).
func TestMonitoringRulesPromtool(t *testing.T) {
	promtool := requireTool(t, "promtool")
	for _, args := range [][]string{
		{"check", "rules", filepath.Join(repoRoot, alertsFile)},
		{"test", "rules", filepath.Join(repoRoot, alertTestsFile)},
	} {
		out, err := runTool(t, time.Minute, promtool, args...)
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
			continue
		}
		t.Logf("promtool %s:\n%s", strings.Join(args, " "), strings.TrimSpace(out))
	}
	// Every alert has a unit test: alerts_test.yml names each one.
	tests, err := os.ReadFile(filepath.Join(repoRoot, alertTestsFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range loadAlerts(t) {
		if !regexp.MustCompile(`alertname:\s*` + a.Alert + `\s`).Match(tests) {
			t.Errorf("alert %s has no test in %s", a.Alert, alertTestsFile)
		}
	}
}

// TestMonitoringQueriesReturnData runs a real Prometheus (1 s scrapes, the
// alerting rules loaded) against a Sluice in front of the e2e Tomcat, under
// load made to produce every kind of event the dashboard draws, then runs
// every dashboard query and every alert expression through Prometheus' HTTP
// API.
//
// "Returns data" means: the query succeeds and its result has at least one
// series. For a dashboard query that is the query itself, with Grafana's
// variables set to "all" ($instance, $backend: ".*") and $__rate_interval to
// 10s (4 scrapes, as Grafana would pick for a 1 s scrape interval, plus
// margin). For a variable's label_values(metric, label), it is the metric.
// An alert is only true when something is wrong, so its expression must
// evaluate without error, and with its final threshold comparison dropped
// (every expression in alerts.yml is `<series> <op> <number>`) it must
// return data: the series it watches exist under these names and labels.
// Prometheus must also report every rule as evaluated without error.
func TestMonitoringQueriesReturnData(t *testing.T) {
	prometheus := requireTool(t, "prometheus")
	flaky := startFlakyServer(t)
	s := startSluice(t, fmt.Sprintf(`backends:
  %[1]s:
    protocol: h2c
    servers: [{ address: %[2]q }, { address: %[3]q }]
    h2c: { conns_per_server: 2, max_streams_per_conn: 100 }
  small:
    protocol: h1
    servers: [{ address: %[4]q }]
    h1: { conns_per_server: 1 }
    queue: { max_pending: 1, timeout: 2s }
  flaky:
    protocol: h1
    retries: 2
    servers: [{ address: %[4]q }, { address: %[5]q }]
routes:
  - { host: "small.test", backend: small }
  - { host: "flaky.test", backend: flaky }
  - { host: "*", backend: %[1]s }
`, backendName, addr(tc.A), addr(tc.B), addr(tc.H1), flaky))
	prom := startPrometheus(t, prometheus, s.Admin)

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	loadForMonitoring(ctx, t, &wg, s)

	// A rejected request (the parser's transfer_encoding) and a failed then a
	// good reload, so that the counters created on first use exist.
	badRequest(t, s.Listen)
	good, err := os.ReadFile(s.ConfigFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.ConfigFile, append(good, "no_such_key: 1\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, body := postReload(t, s); code != http.StatusBadRequest {
		t.Fatalf("reload of a broken config: %d %s, want 400", code, body)
	}
	if err := os.WriteFile(s.ConfigFile, good, 0o644); err != nil {
		t.Fatal(err)
	}
	if code, body := postReload(t, s); code != http.StatusOK {
		t.Fatalf("reload: %d %s", code, body)
	}

	// Scrapes under load fill the rate windows: wait until every
	// dashboard query and every alert's series has data, or 40 s have
	// passed, after which the subtests name what has none.
	gatewaytest.WaitFor(t, 30*time.Second, "Prometheus scraping sluice", func() bool {
		r, err := prom.query(`up{job="sluice"} == 1`)
		return err == nil && len(r) == 1
	})
	var exprs []string
	for _, q := range dashboardQueries(t) {
		exprs = append(exprs, q.expr)
	}
	for _, a := range loadAlerts(t) {
		if m := finalComparison.FindStringSubmatch(strings.TrimSpace(a.Expr)); m != nil {
			exprs = append(exprs, m[1])
		}
	}
	giveUp := time.Now().Add(40 * time.Second)
	gatewaytest.WaitFor(t, time.Minute, "data for every query, or 40 s", func() bool {
		if time.Now().After(giveUp) {
			return true
		}
		for _, e := range exprs {
			if res, err := prom.query(e); err != nil || len(res) == 0 {
				return false
			}
		}
		return true
	})

	t.Run("dashboard", func(t *testing.T) {
		queries := dashboardQueries(t)
		if len(queries) < 15 {
			t.Fatalf("only %d queries found in %s", len(queries), dashboardFile)
		}
		for _, q := range queries {
			res, err := prom.query(q.expr)
			switch {
			case err != nil:
				t.Errorf("%s: %s: %v", q.where, q.expr, err)
			case len(res) == 0:
				t.Errorf("%s: %s: no data", q.where, q.expr)
			default:
				t.Logf("%s: %d series", q.where, len(res))
			}
		}
	})

	t.Run("alerts", func(t *testing.T) {
		for _, a := range loadAlerts(t) {
			if _, err := prom.query(a.Expr); err != nil {
				t.Errorf("alert %s: %v", a.Alert, err)
			}
			m := finalComparison.FindStringSubmatch(strings.TrimSpace(a.Expr))
			if m == nil {
				t.Errorf("alert %s: expression does not end in `<op> <number>`: %s", a.Alert, a.Expr)
				continue
			}
			res, err := prom.query(m[1])
			switch {
			case err != nil:
				t.Errorf("alert %s without %q: %v", a.Alert, m[2], err)
			case len(res) == 0:
				t.Errorf("alert %s: %s: no data", a.Alert, m[1])
			default:
				t.Logf("alert %s: %d series under watch", a.Alert, len(res))
			}
		}
		// The failed reload above is what this alert is for.
		if res, err := prom.query(ruleExpr(t, "SluiceConfigReloadFailed")); err != nil || len(res) == 0 {
			t.Errorf("SluiceConfigReloadFailed is not true after a failed reload (%v, %d series)", err, len(res))
		}
		// Prometheus evaluated every rule it loaded without error.
		var rules struct {
			Groups []struct {
				Rules []struct {
					Name, Health, LastError string
				}
			}
		}
		gatewaytest.WaitFor(t, 10*time.Second, "every rule evaluated", func() bool {
			if err := prom.get("/api/v1/rules", nil, &rules); err != nil {
				t.Fatal(err)
			}
			n := 0
			for _, g := range rules.Groups {
				for _, r := range g.Rules {
					if r.Health != "unknown" {
						n++
					}
				}
			}
			return n == len(loadAlerts(t))
		})
		for _, g := range rules.Groups {
			for _, r := range g.Rules {
				if r.Health != "ok" {
					t.Errorf("Prometheus rule %s: health %s: %s", r.Name, r.Health, r.LastError)
				}
			}
		}
	})
}

// finalComparison splits an alert expression into its series and its
// threshold: the last comparison with a number.
var finalComparison = regexp.MustCompile(`(?s)^(.*\S)\s*((?:==|!=|>=|<=|>|<)\s*[0-9.eE+-]+)$`)

type alertRule struct {
	Alert string `yaml:"alert"`
	Expr  string `yaml:"expr"`
}

func loadAlerts(t testing.TB) []alertRule {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, alertsFile))
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Groups []struct {
			Rules []alertRule `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(b, &f); err != nil {
		t.Fatalf("%s: %v", alertsFile, err)
	}
	var out []alertRule
	for _, g := range f.Groups {
		out = append(out, g.Rules...)
	}
	if len(out) == 0 {
		t.Fatalf("%s: no rules", alertsFile)
	}
	return out
}

func ruleExpr(t testing.TB, name string) string {
	for _, a := range loadAlerts(t) {
		if a.Alert == name {
			return a.Expr
		}
	}
	t.Fatalf("no alert %s in %s", name, alertsFile)
	return ""
}

type dashQuery struct{ where, expr string }

// grafanaVars are the values the dashboard's variables take in the test:
// "All" for the selectors, and a rate window of 4+ scrapes.
var grafanaVars = map[string]string{
	"instance":        ".*",
	"backend":         ".*",
	"__rate_interval": "10s",
}

var (
	grafanaVar  = regexp.MustCompile(`\$\{(\w+)\}|\$(\w+)`)
	labelValues = regexp.MustCompile(`^label_values\((.+),\s*(\w+)\)$`)
)

// dashboardQueries returns every panel target's expr and every variable's
// label_values query (as the metric selector) from the dashboard, with the
// Grafana variables substituted.
func dashboardQueries(t testing.TB) []dashQuery {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, dashboardFile))
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Title   string
			Targets []struct{ RefID, Expr string }
		}
		Templating struct {
			List []struct {
				Name, Type string
				Query      json.RawMessage
			}
		}
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	subst := func(where, s string) string {
		return grafanaVar.ReplaceAllStringFunc(s, func(v string) string {
			m := grafanaVar.FindStringSubmatch(v)
			name := m[1] + m[2]
			val, ok := grafanaVars[name]
			if !ok {
				t.Errorf("%s: variable $%s has no test value (add it to grafanaVars)", where, name)
			}
			return val
		})
	}
	var out []dashQuery
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		var q struct{ Query string }
		if err := json.Unmarshal(v.Query, &q); err != nil {
			t.Fatalf("%s: variable %s: %v", dashboardFile, v.Name, err)
		}
		where := "variable " + v.Name
		m := labelValues.FindStringSubmatch(q.Query)
		if m == nil {
			t.Errorf("%s: query %q is not label_values(metric, label)", where, q.Query)
			continue
		}
		out = append(out, dashQuery{where, fmt.Sprintf("count by (%s) (%s)", m[2], subst(where, m[1]))})
	}
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			where := fmt.Sprintf("panel %q target %s", p.Title, tg.RefID)
			if tg.Expr == "" {
				t.Errorf("%s: no expr", where)
				continue
			}
			out = append(out, dashQuery{where, subst(where, tg.Expr)})
		}
	}
	return out
}

// loadForMonitoring keeps requests going until ctx ends: keep-alive HTTP/1.1
// and h2c clients on the h2c backend (a few slow, so streams overlap),
// bursts of slow requests on the one-connection "small" backend (queue wait
// and 503 queue full) and requests to the "flaky" backend (retries).
func loadForMonitoring(ctx context.Context, t *testing.T, wg *sync.WaitGroup, s *sluiceProc) {
	do := func(c *http.Client, host, path string) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+path, nil)
		if err != nil {
			return
		}
		req.Host = host
		resp, err := c.Do(req)
		if err != nil {
			return
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	loop := func(c *http.Client, host, path string, pause time.Duration) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				do(c, host, path)
				select {
				case <-ctx.Done():
				case <-time.After(pause):
				}
			}
		}()
	}
	h1, h2 := h1Client(), h2cClient()
	for range 4 {
		loop(h1, "tomcat.test", "/", 10*time.Millisecond)
		loop(h2, "tomcat.test", "/slow?ms=50", 0)
	}
	for range 4 {
		loop(h1Client(), "small.test", "/slow?ms=300", 200*time.Millisecond)
	}
	loop(h1, "flaky.test", "/", 50*time.Millisecond)
}

// startFlakyServer listens on a loopback port and closes every connection
// as soon as it has read something: requests sent to it fail and are
// retried on the backend's other server. It stops with the test.
func startFlakyServer(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", anyPort)
	if err != nil {
		t.Fatal(err)
	}
	// Each connection's goroutine ends at the peer's close or its 5 s
	// deadline; the cleanup waits for all of them.
	var wg sync.WaitGroup
	t.Cleanup(func() { l.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.SetDeadline(time.Now().Add(5 * time.Second))
			wg.Go(func() {
				defer c.Close()
				c.Read(make([]byte, 1024))
			})
		}
	})
	return l.Addr().String()
}

// badRequest sends a request the smuggling guard refuses (both
// Content-Length and Transfer-Encoding).
func badRequest(t *testing.T, listen string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", listen, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprint(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
	b, _ := io.ReadAll(c)
	if !strings.HasPrefix(string(b), "HTTP/1.1 400") {
		t.Fatalf("smuggling attempt answered %q, want 400", firstLine(string(b)))
	}
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\r\n")
	return l
}

type promProc struct {
	base string // http://host:port
	cmd  *exec.Cmd
}

// startPrometheus runs Prometheus on a free loopback port with its own
// config and data directory, scraping target every second and evaluating
// alerts.yml every second; it is stopped with the test.
func startPrometheus(t *testing.T, bin, target string) *promProc {
	t.Helper()
	dir := t.TempDir()
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files:
  - %q
scrape_configs:
  - job_name: sluice
    static_configs:
      - targets: [%q]
`, filepath.Join(repoRoot, alertsFile), target)
	cfgFile := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	listen := addr(mustFreePort(t))
	out := &tailBuffer{max: 64 << 10}
	cmd := exec.Command(bin, "--config.file="+cfgFile, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+listen, "--log.level=warn")
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	exited := gatewaytest.Start(t, "prometheus", cmd, out.String)
	p := &promProc{base: "http://" + listen, cmd: cmd}
	gatewaytest.WaitFor(t, 30*time.Second, "Prometheus ready", func() bool {
		select {
		case <-exited:
			t.Fatalf("prometheus exited: %v\n%s", cmd.ProcessState, out.String())
		default:
		}
		resp, err := http.Get(p.base + "/-/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return p
}

// get calls a Prometheus API path and decodes its "data" into data.
func (p *promProc) get(path string, params url.Values, data any) error {
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(p.base + path + "?" + params.Encode())
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var r struct {
		Status, Error, ErrorType string
		Data                     json.RawMessage
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return fmt.Errorf("%s: %s: %v", path, resp.Status, err)
	}
	if r.Status != "success" {
		return fmt.Errorf("%s: %s: %s", r.ErrorType, resp.Status, r.Error)
	}
	return json.Unmarshal(r.Data, data)
}

// query runs an instant query now and returns its series (or the one
// scalar).
func (p *promProc) query(q string) ([]json.RawMessage, error) {
	var d struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	}
	if err := p.get("/api/v1/query", url.Values{"query": {q}}, &d); err != nil {
		return nil, err
	}
	if d.ResultType == "scalar" || d.ResultType == "string" {
		return []json.RawMessage{d.Result}, nil
	}
	var series []json.RawMessage
	if err := json.Unmarshal(d.Result, &series); err != nil {
		return nil, err
	}
	return series, nil
}
