package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/gateway/gatewaytest"
)

// apiCall sends method path to s's admin listener, with token as a bearer
// token when not empty.
func apiCall(t testing.TB, s *sluiceProc, method, path, token, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+s.Admin+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// serverPath is the admin API path of server addr of the test backend.
func serverPath(addr, action string) string {
	return "/api/backends/" + backendName + "/servers/" + addr + "/" + action
}

// mustAct runs a server action through the API and fails on an error.
func mustAct(t testing.TB, s *sluiceProc, token, addr, action, body string) {
	t.Helper()
	if code, out := apiCall(t, s, "POST", serverPath(addr, action), token, body); code != http.StatusOK {
		t.Fatalf("%s %s: %d %s", action, addr, code, out)
	}
}

// serverRow is one server as GET /api/backends reports it.
type serverRow struct {
	Address  string `json:"address"`
	State    string `json:"state"`
	Drained  bool   `json:"drained"`
	Weight   int    `json:"weight"`
	Conns    int    `json:"connections"`
	Active   int    `json:"active_streams"`
	Requests uint64 `json:"requests"`
}

func serverRowOf(t testing.TB, s *sluiceProc, token, addr string) serverRow {
	t.Helper()
	code, body := apiCall(t, s, "GET", "/api/backends", token, "")
	var doc struct {
		Backends []struct {
			Servers []serverRow `json:"servers"`
		} `json:"backends"`
	}
	if err := json.Unmarshal([]byte(body), &doc); code != http.StatusOK || err != nil {
		t.Fatalf("GET /api/backends: %d %v %s", code, err, tail(body, 500))
	}
	for _, b := range doc.Backends {
		for _, r := range b.Servers {
			if r.Address == addr {
				return r
			}
		}
	}
	t.Fatalf("server %s not in /api/backends: %s", addr, tail(body, 1000))
	return serverRow{}
}

// Draining a server under load fails no request: requests in flight on it
// (some hold Tomcat for 300 ms) finish, its streams go to 0 and stay there
// while its connections stay open, and enabling it brings traffic back.
func TestDrainUnderLoadLosesNoRequest(t *testing.T) {
	s := startSluice(t, upstream{Protocol: "h2c", Ports: []int{tc.A, tc.B}, H2Conns: 2}.yaml())
	a := addr(tc.A)
	labelsA := map[string]string{"backend": s.Backend, "server": a}
	spec := loadSpec{Clients: 500, Duration: 14 * time.Second, KeepAlive: true, Next: func(client, seq int) loadReq {
		if client%5 == 0 {
			return loadReq{Path: "/slow?ms=300", Want: "slow\n"}
		}
		return loadReq{}
	}}
	done := make(chan *loadResult, 1)
	go func() { done <- runLoad(t, s.URL, spec) }()

	gatewaytest.WaitFor(t, 10*time.Second, "streams in flight on "+a, func() bool { return serverRowOf(t, s, "", a).Active > 0 })
	mustAct(t, s, "", a, "drain", "")
	drained := time.Now()
	gatewaytest.WaitFor(t, 5*time.Second, "the drained server's streams at 0", func() bool { return serverRowOf(t, s, "", a).Active == 0 })
	t.Logf("streams on the drained server at 0 after %v", time.Since(drained).Round(time.Millisecond))
	held := serverRowOf(t, s, "", a)
	for range 30 { // 3 s
		time.Sleep(100 * time.Millisecond) // sampling a period: no event says "still at 0"
		r := serverRowOf(t, s, "", a)
		if r.Active != 0 || r.Requests != held.Requests || r.State != "drain" || r.Conns == 0 {
			t.Fatalf("drained server under load: %+v (at 0 streams: %+v); want no stream, no new request, connections kept", r, held)
		}
	}
	if v := requireMetric(t, s.Admin, "sluice_upstream_streams_active", labelsA); v != 0 {
		t.Errorf("sluice_upstream_streams_active of the drained server: %v", v)
	}
	if v := requireMetric(t, s.Admin, "sluice_server_drained", labelsA); v != 1 {
		t.Errorf("sluice_server_drained: %v, want 1", v)
	}
	if v := requireMetric(t, s.Admin, "sluice_server_up", labelsA); v != 1 {
		t.Errorf("sluice_server_up of the healthy drained server: %v, want 1", v)
	}
	mustAct(t, s, "", a, "enable", "")
	gatewaytest.WaitFor(t, 5*time.Second, "traffic back on the enabled server", func() bool {
		r := serverRowOf(t, s, "", a)
		return r.Requests > held.Requests && r.State == "up"
	})
	select {
	case <-done:
		t.Fatal("the load ended before the server was enabled again: lengthen it")
	default:
	}
	res := <-done
	res.requireClean(t)
	if v := requireMetric(t, s.Admin, "sluice_server_drained", labelsA); v != 0 {
		t.Errorf("sluice_server_drained after enable: %v, want 0", v)
	}
}

// A drain and a weight set at run time survive a reload (the server
// stays), and are gone after a restart.
func TestReloadKeepsDrain(t *testing.T) {
	cfg := upstream{Protocol: "h2c", Ports: []int{tc.A, tc.B}, H2Conns: 2}.yaml()
	s := startSluice(t, cfg)
	a, b := addr(tc.A), addr(tc.B)
	mustAct(t, s, "", a, "drain", "")
	mustAct(t, s, "", b, "weight", `{"weight": 7}`)
	rewriteConfig(t, s, strings.Replace(cfg, "response_header: 30s", "response_header: 20s", 1))
	if code, body := postReload(t, s); code != http.StatusOK {
		t.Fatalf("POST /reload: %d %s", code, body)
	}
	before := serverRowOf(t, s, "", a)
	runLoad(t, s.URL, loadSpec{Clients: 50, Duration: time.Second, KeepAlive: true}).requireClean(t)
	ra, rb := serverRowOf(t, s, "", a), serverRowOf(t, s, "", b)
	if ra.State != "drain" || !ra.Drained || ra.Requests != before.Requests {
		t.Errorf("drained server after a reload: %+v (before the load: %d requests)", ra, before.Requests)
	}
	if rb.Weight != 7 {
		t.Errorf("weight after a reload: %d, want 7", rb.Weight)
	}
	s.stop()
	s2 := startSluice(t, cfg)
	if r := serverRowOf(t, s2, "", a); r.State != "up" || r.Drained {
		t.Errorf("after a restart: %+v, want up", r)
	}
}

// An admin listener off loopback without a token refuses to start, naming
// the key; with admin_token_file it starts, and the API needs the token
// while /metrics, /healthz and /readyz stay open.
func TestAdminOffLoopbackNeedsToken(t *testing.T) {
	requireSluice(t)
	dir := t.TempDir()
	backend := upstream{Protocol: "h2c", Ports: []int{tc.A}}.yaml()
	file := filepath.Join(dir, "sluice.yaml")
	noToken := fmt.Sprintf("listen: %q\nadmin: \"0.0.0.0:0\"\n", anyPort) + backend
	if err := os.WriteFile(file, []byte(noToken), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, sluiceBin, "run", "--config", file)
	cmd.Env = sluiceEnv()
	out, err := cmd.CombinedOutput()
	if err == nil || ctx.Err() != nil {
		t.Fatalf("sluice with admin on 0.0.0.0 and no token: err %v, ctx %v; output:\n%s", err, ctx.Err(), out)
	}
	want := file + `: admin_token: required when admin "0.0.0.0:0" is not a loopback address`
	if !strings.Contains(string(out), want) {
		t.Errorf("output lacks %q:\n%s", want, out)
	}

	const token = "e2e-admin-token-0123456789"
	if err := os.WriteFile(filepath.Join(dir, "token"), []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf("listen: %q\nadmin: \"0.0.0.0:0\"\nadmin_token_file: token\n", anyPort) + backend
	if err := os.WriteFile(file, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	s := launchSluice(t, []string{"run", "--config", file}, cfg)
	// Bound to every address, reached through loopback.
	_, port, err := net.SplitHostPort(s.Admin)
	if err != nil {
		t.Fatal(err)
	}
	s.Admin = net.JoinHostPort("127.0.0.1", port)
	for _, c := range []struct {
		method, path, token string
		want                int
	}{
		{"GET", "/metrics", "", 200}, {"GET", "/healthz", "", 200}, {"GET", "/readyz", "", 200},
		{"GET", "/api/backends", "", 401}, {"GET", "/api/backends", "wrong-token-0123456789", 401},
		{"GET", "/api/backends", token, 200}, {"GET", "/stats.json", "", 401},
		{"POST", serverPath(addr(tc.A), "drain"), "", 401}, {"POST", serverPath(addr(tc.A), "drain"), token, 200},
		{"POST", serverPath("10.9.9.9:1", "drain"), token, 404}, {"POST", "/reload", "", 401},
	} {
		if code, body := apiCall(t, s, c.method, c.path, c.token, ""); code != c.want {
			t.Errorf("%s %s (token %q): %d %s, want %d", c.method, c.path, c.token, code, body, c.want)
		}
	}
}

// The stats page's drain and enable buttons, clicked in headless Chromium
// on a listener with an admin token: the page asks for the token, and the
// buttons change the server's state as the API reports it.
func TestStatsPageDrainButtonsInChromium(t *testing.T) {
	const token = "page-admin-token-0123456789"
	s := startSluice(t, upstream{Protocol: "h2c", Ports: []int{tc.A, tc.B}, H2Conns: 2}.yaml()+"admin_token: "+token+"\n")
	a := addr(tc.A)
	br := startBrowser(t, 1280, 900)
	br.navigate("http://" + s.Admin + "/")
	br.waitTrue("the token prompt", `!document.getElementById("auth").hidden`, 10*time.Second)
	br.eval(`document.getElementById("token").value = `+jsString(token)+`; document.getElementById("auth").requestSubmit()`, nil)
	button := func(action string) string {
		return `document.querySelector('button[data-action="` + action + `"][data-server=` + jsString(a) + `]')`
	}
	br.waitTrue("the drain button", button("drain")+` && document.getElementById("auth").hidden`, 10*time.Second)
	br.eval(button("drain")+".click()", nil)
	gatewaytest.WaitFor(t, 5*time.Second, "the server drained through the page", func() bool { return serverRowOf(t, s, token, a).Drained })
	br.waitTrue("the page showing drain", button("enable")+` && `+button("enable")+`.closest("tr").querySelector("td.drain")`, 10*time.Second)
	art := filepath.Join(repoRoot, "e2e", "artifacts")
	os.MkdirAll(art, 0o755)
	br.screenshot(filepath.Join(art, "stats-drain-1280x900.png"))
	br.eval(button("enable")+".click()", nil)
	gatewaytest.WaitFor(t, 5*time.Second, "the server enabled through the page", func() bool { return !serverRowOf(t, s, token, a).Drained })
	br.waitTrue("the page showing up", button("drain")+` && `+button("drain")+`.closest("tr").querySelector("td.up")`, 10*time.Second)
	var msg string
	br.eval(`document.getElementById("msg").textContent`, &msg)
	if msg != "" {
		t.Errorf("page message: %q", msg)
	}
}
