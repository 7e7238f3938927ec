package runtime

import (
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-gw/sluice/cmd/sluice/internal/config"
	"github.com/sluice-gw/sluice/upstream"
)

// reloadBase is the running config of the reload tests: two backends on
// ports nothing listens on, so their servers fail fast and quietly.
const reloadBase = `
listen: "127.0.0.1:8080"
admin: "127.0.0.1:9090"
backends:
  app:
    protocol: h2c
    servers: [{ address: "127.0.0.1:1" }, { address: "127.0.0.1:2" }]
  api:
    protocol: h2c
    servers: [{ address: "127.0.0.1:3" }]
routes:
  - { host: "*", path_prefix: "/api", backend: api }
  - { host: "*", path_prefix: "/", backend: app }
`

// loadYAML loads a config file holding yaml.
func loadYAML(t *testing.T, yaml string) *config.Config {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sluice.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// edit returns base with each old string replaced by its new one.
func edit(t *testing.T, base string, oldNew ...string) string {
	t.Helper()
	for i := 0; i < len(oldNew); i += 2 {
		if !strings.Contains(base, oldNew[i]) {
			t.Fatalf("edit: %q not in the base config", oldNew[i])
		}
		base = strings.Replace(base, oldNew[i], oldNew[i+1], 1)
	}
	return base
}

// TestPlanReload: which backends a reload keeps, adds and removes, and
// which changed keys refuse it. Servers inside a kept backend are
// upstream.Backend.Update's to decide (TestReloadServers).
func TestPlanReload(t *testing.T) {
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	writeCertPair(t, cert, key)
	page := filepath.Join(dir, "502.html")
	if err := os.WriteFile(page, []byte("down"), 0o600); err != nil {
		t.Fatal(err)
	}
	pair := fmt.Sprintf("\ntls_certs: [{ cert: %q, key: %q }]\n", cert, key)
	tests := []struct {
		name                         string
		next                         string // reloadBase edited
		update, add, remove, restart []string
	}{
		{name: "same config", next: reloadBase, update: []string{"api", "app"}},
		{
			name:   "servers and options of kept backends change in place",
			next:   edit(t, reloadBase, `"127.0.0.1:2" }]`, `"127.0.0.1:4" }]`+"\n    retries: 5"),
			update: []string{"api", "app"},
		},
		{
			name: "backend added",
			next: edit(t, reloadBase, "routes:\n", "  zeta: { servers: [{ address: \"127.0.0.1:5\" }] }\nroutes:\n"+
				"  - { host: \"new.example\", path_prefix: \"/\", backend: zeta }\n"),
			update: []string{"api", "app"}, add: []string{"zeta"},
		},
		{
			name: "backend removed",
			next: edit(t, reloadBase, "  api:\n    protocol: h2c\n    servers: [{ address: \"127.0.0.1:3\" }]\n", "",
				`  - { host: "*", path_prefix: "/api", backend: api }`+"\n", ""),
			update: []string{"app"}, remove: []string{"api"},
		},
		{
			name:   "backend renamed: removed and added",
			next:   edit(t, reloadBase, "  api:", "  api2:", "backend: api }", "backend: api2 }"),
			update: []string{"app"}, add: []string{"api2"}, remove: []string{"api"},
		},
		{
			name: "routes, error pages and shutdown_grace reload",
			next: edit(t, reloadBase, `path_prefix: "/api"`, `path_prefix: "/v2"`) +
				fmt.Sprintf("shutdown_grace: 3s\nerror_pages: { 502: %q }\n", page),
			update: []string{"api", "app"},
		},
		{
			name:    "listen",
			next:    edit(t, reloadBase, `listen: "127.0.0.1:8080"`, `listen: "127.0.0.1:8081"`),
			update:  []string{"api", "app"},
			restart: []string{"listen 127.0.0.1:8080 -> 127.0.0.1:8081"},
		},
		{
			name:    "admin",
			next:    edit(t, reloadBase, `admin: "127.0.0.1:9090"`, `admin: "127.0.0.1:9091"`),
			update:  []string{"api", "app"},
			restart: []string{"admin 127.0.0.1:9090 -> 127.0.0.1:9091"},
		},
		{
			name:    "tls_listen and http3",
			next:    reloadBase + "tls_listen: \"127.0.0.1:8443\"\nhttp3: true" + pair,
			update:  []string{"api", "app"},
			restart: []string{`tls_listen "" -> "127.0.0.1:8443"`, "http3 false -> true"},
		},
		{
			name:    "proxy protocol",
			next:    reloadBase + "proxy_protocol: true\nproxy_protocol_from: [10.0.0.0/8]\n",
			update:  []string{"api", "app"},
			restart: []string{"proxy_protocol false -> true", "proxy_protocol_from [] -> [10.0.0.0/8]"},
		},
		{
			name:    "pprof and trusted_proxies",
			next:    reloadBase + "pprof: true\ntrusted_proxies: [192.0.2.0/24]\n",
			update:  []string{"api", "app"},
			restart: []string{"pprof false -> true", "trusted_proxies [] -> [192.0.2.0/24]"},
		},
		{
			name:    "access log",
			next:    reloadBase + "access_log: { mode: all, format: text, path: stderr }\n",
			update:  []string{"api", "app"},
			restart: []string{"access_log.mode off -> all", "access_log.format json -> text", "access_log.path stdout -> stderr"},
		},
		{
			name:   "limits",
			next:   reloadBase + "limits: { max_conns: 5, idle_timeout: 1m, h2_max_resets_per_second: 0 }\n",
			update: []string{"api", "app"},
			restart: []string{"limits.max_conns 100000 -> 5", "limits.idle_timeout 2m0s -> 1m0s",
				"limits.h2_max_resets_per_second 100 -> 0"},
		},
		{
			name:   "backends change along with a refused key: the plan lists both",
			next:   edit(t, reloadBase, "  api:", "  api2:", "backend: api }", "backend: api2 }", `listen: "127.0.0.1:8080"`, `listen: "127.0.0.1:8081"`),
			update: []string{"app"}, add: []string{"api2"}, remove: []string{"api"},
			restart: []string{"listen 127.0.0.1:8080 -> 127.0.0.1:8081"},
		},
	}
	cur := loadYAML(t, reloadBase)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := planReload(cur, loadYAML(t, tt.next))
			check := func(what string, got, want []string) {
				if !slices.Equal(got, want) {
					t.Errorf("%s = %q, want %q", what, got, want)
				}
			}
			check("update", got.update, tt.update)
			check("add", got.add, tt.add)
			check("remove", got.remove, tt.remove)
			check("restart", got.restart, tt.restart)
		})
	}
	t.Run("start: every backend added", func(t *testing.T) {
		got := planReload(nil, cur)
		if !slices.Equal(got.add, []string{"api", "app"}) || got.update != nil || got.remove != nil || got.restart != nil {
			t.Errorf("planReload(nil, cfg) = %+v, want api and app added, nothing else", got)
		}
	})
}

// TestReloadServers applies reloads to live backends: a kept backend keeps
// the servers that stay (the same *upstream.Server, so their connections),
// starts the added ones and drops the removed ones; a backend removed
// leaves, one added joins, and a refused reload changes nothing.
func TestReloadServers(t *testing.T) {
	tests := []struct {
		name string
		next string // reloadBase edited
		// want lists each backend's servers after the reload; kept are
		// the addresses whose *upstream.Server must be the one from
		// before.
		want map[string][]string
		kept []string
		err  string
	}{
		{
			name: "server added",
			next: edit(t, reloadBase, `{ address: "127.0.0.1:2" }]`, `{ address: "127.0.0.1:2" }, { address: "127.0.0.1:4" }]`),
			want: map[string][]string{"app": {"127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:4"}, "api": {"127.0.0.1:3"}},
			kept: []string{"127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"},
		},
		{
			name: "server removed",
			next: edit(t, reloadBase, `[{ address: "127.0.0.1:1" }, { address: "127.0.0.1:2" }]`, `[{ address: "127.0.0.1:2" }]`),
			want: map[string][]string{"app": {"127.0.0.1:2"}, "api": {"127.0.0.1:3"}},
			kept: []string{"127.0.0.1:2", "127.0.0.1:3"},
		},
		{
			name: "server replaced, weight changed on one kept",
			next: edit(t, reloadBase, `[{ address: "127.0.0.1:1" }, { address: "127.0.0.1:2" }]`,
				`[{ address: "127.0.0.1:1", weight: 5 }, { address: "127.0.0.1:4" }]`),
			want: map[string][]string{"app": {"127.0.0.1:1", "127.0.0.1:4"}, "api": {"127.0.0.1:3"}},
			kept: []string{"127.0.0.1:1", "127.0.0.1:3"},
		},
		{
			name: "protocol changed: every server of the backend is new",
			next: edit(t, reloadBase, "protocol: h2c", "protocol: h1"),
			want: map[string][]string{"app": {"127.0.0.1:1", "127.0.0.1:2"}, "api": {"127.0.0.1:3"}},
			kept: []string{"127.0.0.1:3"},
		},
		{
			name: "backend removed and another added",
			next: edit(t, reloadBase, "  api:", "  api2:", "backend: api }", "backend: api2 }"),
			want: map[string][]string{"app": {"127.0.0.1:1", "127.0.0.1:2"}, "api2": {"127.0.0.1:3"}},
			kept: []string{"127.0.0.1:1", "127.0.0.1:2"},
		},
		{
			name: "listen changed: refused, nothing changes",
			next: edit(t, reloadBase, `listen: "127.0.0.1:8080"`, `listen: "127.0.0.1:8081"`, `"127.0.0.1:2" }]`, `"127.0.0.1:4" }]`),
			want: map[string][]string{"app": {"127.0.0.1:1", "127.0.0.1:2"}, "api": {"127.0.0.1:3"}},
			kept: []string{"127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"},
			err:  "reload: these keys need a restart to change: listen 127.0.0.1:8080 -> 127.0.0.1:8081; the running config is kept",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			next := loadYAML(t, tt.next)
			lv := newLive(prometheus.NewRegistry(), slog.New(slog.DiscardHandler), func() (*config.Config, error) { return next, nil })
			defer lv.close()
			if err := lv.start(loadYAML(t, reloadBase), ""); err != nil {
				t.Fatal(err)
			}
			before := servers(lv)
			err := lv.reload()
			switch {
			case tt.err == "" && err != nil:
				t.Fatalf("reload: %v", err)
			case tt.err != "" && (err == nil || err.Error() != tt.err):
				t.Fatalf("reload error = %v, want %q", err, tt.err)
			}
			after := servers(lv)
			got := map[string][]string{}
			for name, byAddr := range after {
				for addr := range byAddr {
					got[name] = append(got[name], addr)
				}
				slices.Sort(got[name])
			}
			if !maps.EqualFunc(got, tt.want, slices.Equal) {
				t.Errorf("servers = %v, want %v", got, tt.want)
			}
			for name, byAddr := range after {
				for addr, s := range byAddr {
					same := before[name][addr] == s
					if want := slices.Contains(tt.kept, addr); same != want {
						t.Errorf("%s %s: same *upstream.Server as before = %v, want %v", name, addr, same, want)
					}
				}
			}
		})
	}
}

// servers maps each live backend's servers by address.
func servers(lv *live) map[string]map[string]*upstream.Server {
	out := map[string]map[string]*upstream.Server{}
	for _, b := range lv.snapshot() {
		out[b.Name()] = map[string]*upstream.Server{}
		for _, s := range b.Servers() {
			out[b.Name()][s.Address()] = s
		}
	}
	return out
}
