package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Issue 16: a Tomcat that comes back carries traffic again within seconds,
// not after a doubled ejection. Quick mode (no flags but --to): no active
// health checks, so only passive ejection and the probes of an ejected or
// unreachable server decide.

// rejoinWithin is how soon after a restarted Tomcat first answers sluice
// must send it requests: the prober's backoff (2 s at most) plus its
// confirming probe (a quarter second), plus slack for a loaded machine.
const rejoinWithin = 3 * time.Second

// slowStartWebapp makes the private Tomcat take about delay longer to
// start: a webapp whose only JSP sleeps in jspInit, loaded on startup. Its
// context starts before the connectors, so the ports stay closed until it
// is done. No Java compiler is needed: Jasper compiles the JSP.
func slowStartWebapp(t *testing.T, pt *privateTomcat, delay time.Duration) {
	t.Helper()
	dir := filepath.Join(pt.base, "webapps", "slowstart", "WEB-INF")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	webXML := `<?xml version="1.0" encoding="UTF-8"?>
<web-app xmlns="https://jakarta.ee/xml/ns/jakartaee" version="6.0" metadata-complete="true">
  <servlet><servlet-name>sleep</servlet-name><jsp-file>/WEB-INF/sleep.jsp</jsp-file><load-on-startup>1</load-on-startup></servlet>
</web-app>
`
	jsp := fmt.Sprintf(`<%%! public void jspInit() {
    try { Thread.sleep(%d); } catch (InterruptedException e) { Thread.currentThread().interrupt(); }
} %%>slept
`, delay.Milliseconds())
	for name, body := range map[string]string{"web.xml": webXML, "sleep.jsp": jsp} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// serverRequests reads, from admin /stats.json, how many requests sluice
// has sent to server (attempts, ever) and the server's state.
func serverRequests(admin, server string) (uint64, string, error) {
	resp, err := http.Get("http://" + admin + "/stats.json")
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	var doc struct {
		Backends []struct {
			Servers []struct {
				Address  string `json:"address"`
				State    string `json:"state"`
				Requests uint64 `json:"requests"`
			} `json:"servers"`
		} `json:"backends"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		return 0, "", fmt.Errorf("stats.json: %w", err)
	}
	for _, b := range doc.Backends {
		for _, s := range b.Servers {
			if s.Address == server {
				return s.Requests, s.State, nil
			}
		}
	}
	return 0, "", fmt.Errorf("stats.json: no server %s", server)
}

// firstAnswer polls Tomcat's port directly until it answers GET /hello with
// 200, and returns when that was on load's timeline.
func firstAnswer(load *timedLoad, port int, until time.Time) (time.Duration, bool) {
	c := &http.Client{Timeout: time.Second, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	for time.Now().Before(until) {
		resp, err := c.Get("http://" + addr(port) + "/hello")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return load.since(), true
			}
		}
		time.Sleep(50 * time.Millisecond) // poll: the time of the first answer is the measurement
	}
	return 0, false
}

func TestKilledTomcatRejoinsWithinSeconds(t *testing.T) {
	pt := startPrivateTomcat(t)
	for _, tt := range []struct {
		name  string
		delay time.Duration // added to Tomcat's start
	}{
		{"normal start", 0},
		{"20s start", 20 * time.Second},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := startProxy(t, "--to", addr(pt.A), "--to", addr(tc.B))
			server := addr(pt.A)
			load := startTimedLoad(s.URL, restartClients, restartMix)
			sleepUntil := func(at time.Duration) { time.Sleep(at - load.since()) } // the test's timeline

			sleepUntil(3 * time.Second)
			killAt := load.since()
			if err := pt.kill9(); err != nil {
				load.stop()
				t.Fatal(err)
			}
			if tt.delay > 0 {
				slowStartWebapp(t, pt, tt.delay)
			}
			sleepUntil(killAt + 10*time.Second)
			before, state, err := serverRequests(s.Admin, server)
			if err != nil {
				load.stop()
				t.Fatal(err)
			}
			startAt := load.since()
			started := make(chan error, 1)
			go func() { started <- pt.start() }()
			answeredAt, answered := firstAnswer(load, pt.A, time.Now().Add(tt.delay+90*time.Second))

			// Requests reach it: sluice's count of requests sent to it
			// grows. A poll, as when is the measurement.
			var reachedAt time.Duration
			for deadline := time.Now().Add(rejoinWithin + 5*time.Second); answered && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
				n, _, err := serverRequests(s.Admin, server)
				if err != nil {
					t.Error(err)
					break
				}
				if n > before {
					reachedAt = load.since()
					break
				}
			}
			startErr := <-started
			// Keep the load on a little: nothing may fail after the return.
			time.Sleep(2 * time.Second) // the period under test
			ran := load.stop()

			t.Logf("private Tomcat :%d: SIGKILL at %v (state before restart: %s); start at %v, first answer at %v; sluice sends it requests at %v (%v after the answer)",
				pt.A, killAt.Round(time.Millisecond), state, startAt.Round(time.Millisecond), answeredAt.Round(time.Millisecond),
				reachedAt.Round(time.Millisecond), (reachedAt - answeredAt).Round(time.Millisecond))
			t.Logf("load: %d keep-alive clients: %s", restartClients, load.summary(ran))
			logRejoinMetrics(t, s)
			if startErr != nil {
				t.Fatal(startErr)
			}
			if !answered {
				t.Fatal("the restarted Tomcat never answered")
			}
			if tt.delay > 0 && answeredAt-startAt < tt.delay {
				t.Errorf("Tomcat answered %v after its start, not delayed by %v: the slow webapp did not work", answeredAt-startAt, tt.delay)
			}
			switch {
			case reachedAt == 0:
				t.Errorf("no request sent to the restarted Tomcat within %v of its first answer", rejoinWithin+5*time.Second)
			case reachedAt-answeredAt > rejoinWithin:
				t.Errorf("requests reached the restarted Tomcat %v after its first answer, want within %v", reachedAt-answeredAt, rejoinWithin)
			}
			if n := load.failed.Load(); n > 0 {
				kept, _ := load.failures()
				var lines []string
				for _, f := range kept {
					lines = append(lines, fmt.Sprintf("  at %v (kill%s): %s", f.at.Round(time.Millisecond), signed(f.at-killAt), f.msg))
				}
				t.Errorf("%d requests failed, want 0:\n%s", n, strings.Join(firstN(lines, 20), "\n"))
			}
		})
	}
}

// logRejoinMetrics logs the passive-health metrics of the quick-mode backend.
func logRejoinMetrics(t *testing.T, s *sluiceProc) {
	t.Helper()
	samples, err := scrape(s.Admin)
	if err != nil {
		t.Errorf("scrape: %v", err)
		return
	}
	var parts []string
	for _, smp := range samples {
		switch smp.name {
		case "sluice_ejections_total", "sluice_upstream_probes_total", "sluice_ejection_duration_seconds_sum",
			"sluice_ejection_duration_seconds_count", "sluice_retries_total":
			if smp.value > 0 {
				parts = append(parts, fmt.Sprintf("%s%v=%v", smp.name, smp.labels, smp.value))
			}
		}
	}
	t.Logf("metrics: %s", strings.Join(parts, "; "))
}
