package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"
)

// The stats page, rendered by a real headless Chromium while traffic runs,
// shows the numbers /stats.json serves. The screenshot is kept in
// e2e/artifacts/ (git-ignored).
func TestStatsPageInChromium(t *testing.T) {
	browser, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("chromium not installed: run `make deps` (Debian package chromium)")
	}
	s := startSluice(t, upstream{Protocol: "h2c", Ports: []int{tc.A, tc.B}, H2Conns: 2}.yaml())
	done := make(chan *loadResult, 1)
	go func() { done <- runLoad(t, s.URL, loadSpec{Clients: 300, Duration: 8 * time.Second, KeepAlive: true}) }()
	defer func() { (<-done).requireClean(t) }()
	time.Sleep(3 * time.Second)

	art := filepath.Join(repoRoot, "e2e", "artifacts")
	os.MkdirAll(art, 0o755)
	page := "http://" + s.Admin + "/"
	flags := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + t.TempDir(), "--virtual-time-budget=3000", "--window-size=1100,700"}
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
