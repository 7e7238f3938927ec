package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/upstream"
)

// Tests for the resilience keys: shutdown_grace, error_pages, retries,
// pings, stream timeouts, health checks, passive ejection and backups.

func TestParseRejectsResilience(t *testing.T) {
	const be = "backends.tomcat."
	checkRejects(t, []rejectCase{
		{name: "shutdown grace zero", yaml: valid + "shutdown_grace: 0s\n", key: "shutdown_grace", msg: "must be positive"},
		{name: "shutdown grace bare number", yaml: valid + "shutdown_grace: 30\n", key: "shutdown_grace", msg: "bare number 30"},
		{name: "shutdown grace typo", yaml: valid + "shutdown_grase: 1s\n", key: "shutdown_grase", msg: "did you mean shutdown_grace"},

		{name: "retries negative", yaml: withBackend(oneServer+"retries: -1", ""), key: be + "retries", msg: "between 0 and 10"},
		{name: "retries too many", yaml: withBackend(oneServer+"retries: 11", ""), key: be + "retries", msg: "between 0 and 10"},
		{name: "retries typo", yaml: withBackend(oneServer+"retires: 1", ""), key: be + "retires", msg: "did you mean " + be + "retries"},
		{name: "retry body limit negative", yaml: withBackend(oneServer+"retry_body_limit: -1", ""), key: be + "retry_body_limit", msg: "between 0 and 16777216"},
		{name: "retry body limit too big", yaml: withBackend(oneServer+"retry_body_limit: 16777217", ""), key: be + "retry_body_limit", msg: "between 0 and 16777216"},
		{name: "idempotent methods not a list", yaml: withBackend(oneServer+"idempotent_methods: POST", ""), key: be + "idempotent_methods", msg: "must be a list of method names"},
		{name: "idempotent method not a string", yaml: withBackend(oneServer+"idempotent_methods: [POST, 5]", ""), key: be + "idempotent_methods[1]", msg: "must be a method name, got number 5"},
		{name: "idempotent method not a token", yaml: withBackend(oneServer+"idempotent_methods: [\"PO ST\"]", ""), key: be + "idempotent_methods[0]", msg: `invalid method name "PO ST"`},
		{name: "idempotent method empty", yaml: withBackend(oneServer+"idempotent_methods: [\"\"]", ""), key: be + "idempotent_methods[0]", msg: "invalid method name"},

		{name: "ping interval too short", yaml: withBackend(oneServer+"h2c: {ping_interval: 500ms}", ""), key: be + "h2c.ping_interval", msg: "0 (off) or at least 1s"},
		{name: "ping interval negative", yaml: withBackend(oneServer+"h2c: {ping_interval: -1s}", ""), key: be + "h2c.ping_interval", msg: "0 (off) or at least 1s"},
		{name: "ping timeout zero", yaml: withBackend(oneServer+"h2c: {ping_timeout: 0s}", ""), key: be + "h2c.ping_timeout", msg: "must be positive"},
		{name: "idle timeout zero", yaml: withBackend(oneServer+"timeouts: {idle: 0s}", ""), key: be + "timeouts.idle", msg: "must be positive"},
		{name: "total timeout negative", yaml: withBackend(oneServer+"timeouts: {total: -1s}", ""), key: be + "timeouts.total", msg: "0 (no limit) or positive"},

		{name: "health not a mapping", yaml: withBackend(oneServer+"health: true", ""), key: be + "health", msg: "must be a mapping"},
		{name: "health unknown key", yaml: withBackend(oneServer+"health: {uri: /}", ""), key: be + "health.uri", msg: "unknown key"},
		{name: "health enabled quoted", yaml: withBackend(oneServer+"health: {enabled: \"yes\"}", ""), key: be + "health.enabled", msg: `must be true or false, got string "yes"`},
		{name: "health enabled number", yaml: withBackend(oneServer+"health: {enabled: 1}", ""), key: be + "health.enabled", msg: "must be true or false, got number 1"},
		{name: "health path relative", yaml: withBackend(oneServer+"health: {path: health}", ""), key: be + "health.path", msg: `must start with "/"`},
		{name: "health path with space", yaml: withBackend(oneServer+"health: {path: \"/a b\"}", ""), key: be + "health.path", msg: "without spaces"},
		{name: "health method not a token", yaml: withBackend(oneServer+"health: {method: \"GET /\"}", ""), key: be + "health.method", msg: "invalid method name"},
		{name: "health method empty", yaml: withBackend(oneServer+"health: {method: \"\"}", ""), key: be + "health.method", msg: "invalid method name"},
		{name: "health host with path", yaml: withBackend(oneServer+"health: {host: \"a/b\"}", ""), key: be + "health.host", msg: "host name or host:port"},
		{name: "health status too low", yaml: withBackend(oneServer+"health: {expect_status: 99}", ""), key: be + "health.expect_status", msg: "between 100 and 599"},
		{name: "health status too high", yaml: withBackend(oneServer+"health: {expect_status: 600}", ""), key: be + "health.expect_status", msg: "between 100 and 599"},
		{name: "health interval zero", yaml: withBackend(oneServer+"health: {interval: 0s}", ""), key: be + "health.interval", msg: "must be positive"},
		{name: "health timeout zero", yaml: withBackend(oneServer+"health: {timeout: 0s}", ""), key: be + "health.timeout", msg: "must be positive"},
		{name: "health timeout above interval", yaml: withBackend(oneServer+"health: {interval: 1s, timeout: 2s}", ""), key: be + "health.timeout", msg: "must not exceed interval 1s, got 2s"},
		{name: "health fall zero", yaml: withBackend(oneServer+"health: {fall: 0}", ""), key: be + "health.fall", msg: "between 1 and 100"},
		{name: "health rise too big", yaml: withBackend(oneServer+"health: {rise: 101}", ""), key: be + "health.rise", msg: "between 1 and 100"},
		{name: "health slow start negative", yaml: withBackend(oneServer+"health: {slow_start: -1s}", ""), key: be + "health.slow_start", msg: "0 (off) or positive"},

		{name: "passive failures negative", yaml: withBackend(oneServer+"passive: {consecutive_failures: -1}", ""), key: be + "passive.consecutive_failures", msg: "between 0 and 1000"},
		{name: "passive failures too many", yaml: withBackend(oneServer+"passive: {consecutive_failures: 1001}", ""), key: be + "passive.consecutive_failures", msg: "between 0 and 1000"},
		{name: "passive eject zero", yaml: withBackend(oneServer+"passive: {eject_for: 0s}", ""), key: be + "passive.eject_for", msg: "must be positive"},
		{name: "passive max below eject", yaml: withBackend(oneServer+"passive: {eject_for: 1m, max_eject_for: 30s}", ""), key: be + "passive.max_eject_for", msg: "at least eject_for 1m0s"},
		{name: "passive percent too big", yaml: withBackend(oneServer+"passive: {max_ejected_percent: 101}", ""), key: be + "passive.max_ejected_percent", msg: "between 0 and 100"},
		{name: "passive probe interval too short", yaml: withBackend(oneServer+"passive: {probe_interval: 50ms}", ""), key: be + "passive.probe_interval", msg: "between 100ms and 1m, got 50ms"},
		{name: "passive probe interval too long", yaml: withBackend(oneServer+"passive: {probe_interval: 2m}", ""), key: be + "passive.probe_interval", msg: "between 100ms and 1m, got 2m0s"},
		{name: "passive probe interval bare number", yaml: withBackend(oneServer+"passive: {probe_interval: 1}", ""), key: be + "passive.probe_interval", msg: "bare number"},
		{name: "passive percent negative", yaml: withBackend(oneServer+"passive: {max_ejected_percent: -1}", ""), key: be + "passive.max_ejected_percent", msg: "between 0 and 100"},

		{name: "backup not a bool", yaml: withBackend("servers: [{address: \"a:1\", backup: 1}]", ""), key: be + "servers[0].backup", msg: "must be true or false"},
		{name: "only backups", yaml: withBackend("servers: [{address: \"a:1\", backup: true}, {address: \"b:1\", backup: true}]", ""), key: be + "servers", msg: "every server is a backup"},

		{name: "error pages not a mapping", yaml: valid + "error_pages: [a]\n", key: "error_pages", msg: "must be a mapping of status codes to files"},
		{name: "error page code not a number", yaml: valid + "error_pages: {oops: /nonexistent}\n", key: "error_pages.oops", msg: `unknown status code "oops"`},
		{name: "error page code out of range", yaml: valid + "error_pages: {302: /nonexistent}\n", key: "error_pages.302", msg: "unknown status code 302"},
		{name: "error page code too big", yaml: valid + "error_pages: {600: /nonexistent}\n", key: "error_pages.600", msg: "unknown status code 600"},
		{name: "error page missing file", yaml: valid + "error_pages: {503: /nonexistent/503.html}\n", key: "error_pages.503", msg: "open /nonexistent/503.html: no such file or directory"},
		{name: "error page directory", yaml: valid + "error_pages: {503: /}\n", key: "error_pages.503", msg: "not a regular file"},
		{name: "error page empty path", yaml: valid + "error_pages: {503: \"\"}\n", key: "error_pages.503", msg: "must name a file"},
		{name: "error page mapping", yaml: valid + "error_pages: {503: {file: x}}\n", key: "error_pages.503", msg: "must be a file path, got a mapping"},
		{name: "error page number", yaml: valid + "error_pages: {503: 5}\n", key: "error_pages.503", msg: "must be a file path, got number 5"},

		{name: "env bool", yaml: valid, env: []string{"SLUICE_BACKENDS__TOMCAT__HEALTH__ENABLED=yes"}, key: be + "health.enabled", msg: `must be true or false, got "yes"`, source: "env SLUICE_BACKENDS__TOMCAT__HEALTH__ENABLED"},
		{name: "env retries range", yaml: valid, env: []string{"SLUICE_BACKENDS__TOMCAT__RETRIES=11"}, key: be + "retries", msg: "between 0 and 10", source: "env SLUICE_BACKENDS__TOMCAT__RETRIES"},
		{name: "env shutdown grace", yaml: valid, env: []string{"SLUICE_SHUTDOWN_GRACE=30"}, key: "shutdown_grace", msg: "bare number", source: "env SLUICE_SHUTDOWN_GRACE"},
		{name: "env error page missing", yaml: valid, env: []string{"SLUICE_ERROR_PAGES__502=/nonexistent/502.html"}, key: "error_pages.502", msg: "no such file", source: "env SLUICE_ERROR_PAGES__502"},
		{name: "env method list bad token", yaml: valid, env: []string{"SLUICE_BACKENDS__TOMCAT__IDEMPOTENT_METHODS=POST,A B"}, key: be + "idempotent_methods[1]", msg: "invalid method name", source: "env SLUICE_BACKENDS__TOMCAT__IDEMPOTENT_METHODS"},
	})
}

func TestEnvOverrideResilience(t *testing.T) {
	page := writeTemp(t, t.TempDir(), "503.html", "down\n")
	tests := []struct {
		env   string
		check func(*Config) bool
	}{
		{"SLUICE_SHUTDOWN_GRACE=5s", func(c *Config) bool { return c.ShutdownGrace == 5*time.Second }},
		{"SLUICE_BACKENDS__TOMCAT__RETRIES=0", func(c *Config) bool { return c.Backends["tomcat"].Retries == 0 }},
		{"SLUICE_BACKENDS__TOMCAT__RETRY_BODY_LIMIT=1024", func(c *Config) bool { return c.Backends["tomcat"].RetryBodyLimit == 1024 }},
		{"SLUICE_BACKENDS__TOMCAT__IDEMPOTENT_METHODS=post, patch,POST", func(c *Config) bool {
			return reflect.DeepEqual(c.Backends["tomcat"].IdempotentMethods, []string{"POST", "PATCH"})
		}},
		{"SLUICE_BACKENDS__TOMCAT__IDEMPOTENT_METHODS=", func(c *Config) bool { return c.Backends["tomcat"].IdempotentMethods == nil }},
		{"SLUICE_BACKENDS__TOMCAT__H2C__PING_INTERVAL=0s", func(c *Config) bool { return c.Backends["tomcat"].H2C.PingInterval == 0 }},
		{"SLUICE_BACKENDS__TOMCAT__H2C__PING_TIMEOUT=2s", func(c *Config) bool { return c.Backends["tomcat"].H2C.PingTimeout == 2*time.Second }},
		{"SLUICE_BACKENDS__TOMCAT__TIMEOUTS__IDLE=5m", func(c *Config) bool { return c.Backends["tomcat"].IdleTimeout == 5*time.Minute }},
		{"SLUICE_BACKENDS__TOMCAT__TIMEOUTS__TOTAL=1h", func(c *Config) bool { return c.Backends["tomcat"].TotalTimeout == time.Hour }},
		{"SLUICE_BACKENDS__TOMCAT__HEALTH__ENABLED=true", func(c *Config) bool { return c.Backends["tomcat"].Health.Enabled }},
		{"SLUICE_BACKENDS__TOMCAT__HEALTH__PATH=/ping", func(c *Config) bool { return c.Backends["tomcat"].Health.Path == "/ping" }},
		{"SLUICE_BACKENDS__TOMCAT__HEALTH__METHOD=head", func(c *Config) bool { return c.Backends["tomcat"].Health.Method == "HEAD" }},
		{"SLUICE_BACKENDS__TOMCAT__HEALTH__HOST=app.internal", func(c *Config) bool { return c.Backends["tomcat"].Health.Host == "app.internal" }},
		{"SLUICE_BACKENDS__TOMCAT__HEALTH__EXPECT_STATUS=204", func(c *Config) bool { return c.Backends["tomcat"].Health.ExpectStatus == 204 }},
		{"SLUICE_BACKENDS__TOMCAT__HEALTH__TIMEOUT=500ms", func(c *Config) bool { return c.Backends["tomcat"].Health.Timeout == 500*time.Millisecond }},
		{"SLUICE_BACKENDS__TOMCAT__HEALTH__FALL=5", func(c *Config) bool { return c.Backends["tomcat"].Health.Fall == 5 }},
		{"SLUICE_BACKENDS__TOMCAT__HEALTH__SLOW_START=0s", func(c *Config) bool { return c.Backends["tomcat"].Health.SlowStart == 0 }},
		{"SLUICE_BACKENDS__TOMCAT__PASSIVE__CONSECUTIVE_FAILURES=0", func(c *Config) bool { return c.Backends["tomcat"].Passive.ConsecutiveFailures == 0 }},
		{"SLUICE_BACKENDS__TOMCAT__PASSIVE__MAX_EJECT_FOR=1h", func(c *Config) bool { return c.Backends["tomcat"].Passive.MaxEjectFor == time.Hour }},
		{"SLUICE_BACKENDS__TOMCAT__PASSIVE__MAX_EJECTED_PERCENT=100", func(c *Config) bool { return c.Backends["tomcat"].Passive.MaxEjectedPercent == 100 }},
		{"SLUICE_BACKENDS__TOMCAT__PASSIVE__PROBE_INTERVAL=250ms", func(c *Config) bool {
			return c.Backends["tomcat"].Passive.ProbeInterval == 250*time.Millisecond
		}},
		{"SLUICE_ERROR_PAGES__503=" + page, func(c *Config) bool {
			p, ok := c.ErrorPages[503]
			return ok && p.Path == page && string(p.Body) == "down\n" && len(c.ErrorPages) == 1
		}},
	}
	for _, tt := range tests {
		t.Run(tt.env, func(t *testing.T) {
			c, err := Parse([]byte(valid), "sluice.yaml", []string{tt.env})
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(c) {
				t.Errorf("not applied: %+v", c)
			}
		})
	}
}

func writeTemp(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestErrorPagesLoad(t *testing.T) {
	dir := t.TempDir()
	abs503 := writeTemp(t, dir, "pages/503.html", "<h1>busy</h1>\n")
	writeTemp(t, dir, "conf/404.txt", "nothing here\n")
	writeTemp(t, dir, "conf/empty.html", "")
	tooBig := writeTemp(t, dir, "big.html", strings.Repeat("x", MaxErrorPageBytes+1))
	exact := writeTemp(t, dir, "exact.html", strings.Repeat("y", MaxErrorPageBytes))

	// Relative paths in a loaded file are relative to that file's directory.
	yml := valid + "error_pages:\n  503: " + abs503 + "\n  404: 404.txt\n  \"502\": empty.html\n  504: " + exact + "\n  500: ~\n"
	cfgPath := writeTemp(t, dir, "conf/sluice.yaml", yml)
	c, err := Load(cfgPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[int]ErrorPage{
		503: {Path: abs503, Body: []byte("<h1>busy</h1>\n")},
		404: {Path: filepath.Join(dir, "conf", "404.txt"), Body: []byte("nothing here\n")},
		502: {Path: filepath.Join(dir, "conf", "empty.html"), Body: []byte{}},
		504: {Path: exact, Body: []byte(strings.Repeat("y", MaxErrorPageBytes))},
	}
	if !reflect.DeepEqual(c.ErrorPages, want) {
		t.Errorf("ErrorPages = %+v\nwant %+v", c.ErrorPages, want)
	}

	// Marshal prints the resolved paths; parsing them reads the files again.
	out, err := c.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	back, err := Parse(out, "marshalled", nil)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !reflect.DeepEqual(back, c) {
		t.Errorf("round trip changed config:\n%s", out)
	}

	// Errors name the loaded file and the key, and all are reported at once.
	bad := writeTemp(t, dir, "conf/bad.yaml", valid+"error_pages: {503: missing.html, 504: "+tooBig+"}\n")
	_, err = Load(bad, nil)
	if err == nil {
		t.Fatal("accepted a missing and an oversized page")
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != 2 ||
		!strings.HasPrefix(lines[0], bad+": error_pages.503: open "+filepath.Join(dir, "conf", "missing.html")) ||
		!strings.HasPrefix(lines[1], bad+": error_pages.504: "+tooBig+" is larger than") {
		t.Errorf("errors:\n%v", err)
	}
}

func TestValidateErrorPages(t *testing.T) {
	tests := []struct {
		name  string
		pages map[int]ErrorPage
		msg   string // "" means valid
	}{
		{"none", nil, ""},
		{"body only", map[int]ErrorPage{503: {Body: []byte("x")}}, ""},
		{"lowest", map[int]ErrorPage{400: {Path: "a"}}, ""},
		{"highest", map[int]ErrorPage{599: {Path: "a"}}, ""},
		{"below range", map[int]ErrorPage{399: {Path: "a"}}, "config: error_pages.399: unknown status code 399"},
		{"above range", map[int]ErrorPage{600: {Path: "a"}}, "config: error_pages.600: unknown status code 600"},
		{"nothing", map[int]ErrorPage{503: {}}, "config: error_pages.503: must name a file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := defaultsWith("a:1")
			c.ErrorPages = tt.pages
			err := c.Validate()
			switch {
			case tt.msg == "" && err != nil:
				t.Errorf("Validate() = %v", err)
			case tt.msg != "" && (err == nil || !strings.Contains(err.Error(), tt.msg)):
				t.Errorf("Validate() = %v, want %q", err, tt.msg)
			}
		})
	}
}

func TestBackupServers(t *testing.T) {
	c, err := Parse([]byte(withBackend("servers: [{address: \"a:1\"}, {address: \"b:1\", backup: true}]", "")), "sluice.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	got := c.Backends["tomcat"].Servers
	want := []upstream.ServerConfig{{Address: "a:1", Weight: 1}, {Address: "b:1", Weight: 1, Backup: true}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("servers %+v, want %+v", got, want)
	}
}
