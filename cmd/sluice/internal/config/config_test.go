package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/gateway"
	"github.com/sluice-gw/sluice/upstream"
)

const oneServer = "servers: [{address: \"10.0.0.11:8080\"}]\n"

// withBackend returns a valid file whose backend "tomcat" has fields
// (YAML at backend level, servers included when wanted) and which ends
// with the top-level YAML in extra.
func withBackend(fields, extra string) string {
	var b strings.Builder
	b.WriteString("backends:\n  tomcat:\n")
	for line := range strings.Lines(fields) {
		b.WriteString("    " + line)
	}
	b.WriteString("\nroutes:\n  - backend: tomcat\n")
	b.WriteString(extra)
	return b.String()
}

// valid is the smallest accepted file.
var valid = withBackend(oneServer, "")

func fieldErrors(t *testing.T, err error) []FieldError {
	t.Helper()
	var errs *Errors
	if !errors.As(err, &errs) {
		t.Fatalf("error %v (%T) is not *Errors", err, err)
	}
	return errs.List
}

// rejectCase is a configuration Parse must refuse with an error naming key
// (and saying msg) from source.
type rejectCase struct {
	name, yaml string
	env        []string
	key, msg   string
	source     string // "" means sluice.yaml
	wantAll    string // if set, the exact Error() line expected among the output
}

// checkRejects parses every case and looks for its error.
func checkRejects(t *testing.T, tests []rejectCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse([]byte(tt.yaml), "sluice.yaml", tt.env)
			if err == nil {
				t.Fatalf("accepted:\n%s\ngot %+v", tt.yaml, cfg)
			}
			want := tt.source
			if want == "" {
				want = "sluice.yaml"
			}
			found := false
			for _, fe := range fieldErrors(t, err) {
				if fe.Key == tt.key && fe.Source == want && strings.Contains(fe.Msg, tt.msg) {
					found = true
				}
			}
			if !found {
				t.Errorf("no error {%s %s %q} in:\n%v", want, tt.key, tt.msg, err)
			}
			if tt.wantAll != "" && !strings.Contains(err.Error()+"\n", tt.wantAll+"\n") {
				t.Errorf("missing line %q in:\n%v", tt.wantAll, err)
			}
		})
	}
}

func TestParseRejects(t *testing.T) {
	checkRejects(t, []rejectCase{
		// Unknown keys.
		{name: "unknown top-level key", yaml: valid + "listn: \":8080\"\n", key: "listn", msg: "did you mean listen"},
		{name: "unknown backend key", yaml: withBackend(oneServer+"protocl: h1", ""), key: "backends.tomcat.protocl", msg: "did you mean backends.tomcat.protocol"},
		{name: "unknown section key", yaml: withBackend(oneServer+"h2c: {conns: 4}", ""), key: "backends.tomcat.h2c.conns", msg: "unknown key"},
		{name: "unknown section", yaml: withBackend(oneServer+"http2: {conns_per_server: 4}", ""), key: "backends.tomcat.http2.conns_per_server", msg: "unknown key"},
		{name: "unknown server key", yaml: withBackend("servers: [{address: \"a:1\", wieght: 2}]", ""), key: "backends.tomcat.servers[0].wieght", msg: "did you mean"},
		{name: "unknown route key", yaml: "backends: {t: {" + strings.TrimSuffix(oneServer, "\n") + "}}\nroutes: [{backend: t, path: /x}]\n", key: "routes[0].path", msg: "unknown key"},

		// Wrong types.
		{name: "string as number", yaml: valid + "listen: 8080\n", key: "listen", msg: "must be a string, got number 8080"},
		{name: "int as word", yaml: withBackend(oneServer+"h2c: {conns_per_server: two}", ""), key: "backends.tomcat.h2c.conns_per_server", msg: "must be an integer"},
		{name: "int quoted", yaml: withBackend(oneServer+"h2c: {conns_per_server: \"4\"}", ""), key: "backends.tomcat.h2c.conns_per_server", msg: "must be an integer, got string"},
		{name: "int as float", yaml: withBackend("servers: [{address: \"a:1\", weight: 1.5}]", ""), key: "backends.tomcat.servers[0].weight", msg: "must be an integer"},
		{name: "huge int", yaml: withBackend(oneServer+"queue: {max_pending: 18446744073709551615}", ""), key: "backends.tomcat.queue.max_pending", msg: "out of range"},
		{name: "section not mapping", yaml: withBackend(oneServer+"h1: 5", ""), key: "backends.tomcat.h1", msg: "must be a mapping"},
		{name: "backend not mapping", yaml: "backends: {tomcat: 5}\nroutes: [{backend: tomcat}]\n", key: "backends.tomcat", msg: "must be a mapping"},
		{name: "backends is a list", yaml: "backends: [tomcat]\nroutes: [{backend: tomcat}]\n", key: "backends", msg: "must be a mapping of backend names"},
		{name: "servers not list", yaml: withBackend("servers: \"10.0.0.1:80\"", ""), key: "backends.tomcat.servers", msg: "must be a list"},
		{name: "server not mapping", yaml: withBackend("servers: [\"10.0.0.1:80\"]", ""), key: "backends.tomcat.servers[0]", msg: "must be a mapping with address"},
		{name: "routes not list", yaml: "backends: {t: {" + strings.TrimSuffix(oneServer, "\n") + "}}\nroutes: {backend: t}\n", key: "routes", msg: "must be a list"},
		{name: "mapping for string", yaml: withBackend(oneServer+"protocol: {h2c: true}", ""), key: "backends.tomcat.protocol", msg: "must be a string, got a mapping"},
		{name: "mapping for top-level string", yaml: valid + "listen: {port: 80}\n", key: "listen", msg: "must be a string, got a mapping"},
		{name: "mapping for duration", yaml: withBackend(oneServer+"queue: {timeout: {s: 5}}", ""), key: "backends.tomcat.queue.timeout", msg: "must be a duration"},
		{name: "bad YAML", yaml: "listen: [\n", key: "", msg: "invalid YAML"},

		// Durations.
		{name: "bare integer duration", yaml: withBackend(oneServer+"queue: {timeout: 5}", ""), key: "backends.tomcat.queue.timeout", msg: "bare number 5"},
		{name: "bare quoted duration", yaml: withBackend(oneServer+"queue: {timeout: \"5\"}", ""), key: "backends.tomcat.queue.timeout", msg: "bare number 5"},
		{name: "english duration", yaml: withBackend(oneServer+"queue: {timeout: 5 seconds}", ""), key: "backends.tomcat.queue.timeout", msg: `invalid duration "5 seconds"`},
		{name: "boolean duration", yaml: withBackend(oneServer+"h1: {idle_timeout: true}", ""), key: "backends.tomcat.h1.idle_timeout", msg: "must be a duration"},
		{name: "zero duration", yaml: withBackend(oneServer+"h1: {idle_timeout: 0s}", ""), key: "backends.tomcat.h1.idle_timeout", msg: "must be positive"},
		{name: "negative duration", yaml: withBackend(oneServer+"timeouts: {connect: -1s}", ""), key: "backends.tomcat.timeouts.connect", msg: "must be positive"},
		{name: "zero response header", yaml: withBackend(oneServer+"timeouts: {response_header: 0s}", ""), key: "backends.tomcat.timeouts.response_header", msg: "must be positive"},
		{name: "zero queue timeout", yaml: withBackend(oneServer+"queue: {timeout: 0ms}", ""), key: "backends.tomcat.queue.timeout", msg: "must be positive"},
		{name: "probe too often", yaml: withBackend(oneServer+"probe_interval: 500ms", ""), key: "backends.tomcat.probe_interval", msg: "at least 1s"},

		// Addresses.
		{name: "listen without port", yaml: valid + "listen: \"8080\"\n", key: "listen", msg: `missing port in address "8080"`},
		{name: "listen with scheme", yaml: valid + "listen: \"http://0.0.0.0:8080\"\n", key: "listen", msg: "without a scheme"},
		{name: "listen empty", yaml: valid + "listen: \"\"\n", key: "listen", msg: "is required"},
		{name: "listen bad port", yaml: valid + "listen: \":http\"\n", key: "listen", msg: "port must be a number"},
		{name: "admin without host", yaml: valid + "admin: \":9001\"\n", key: "admin", msg: "missing host"},
		{name: "admin port too big", yaml: valid + "admin: \"127.0.0.1:70000\"\n", key: "admin", msg: "port must be a number from 0 to 65535"},
		{name: "admin same port as listen", yaml: valid + "listen: \":9001\"\n", key: "admin", msg: "conflicts with listen"},
		{
			name: "server without port", yaml: withBackend("servers: [{address: \"10.0.0.11\"}]", ""),
			key: "backends.tomcat.servers[0].address", msg: "missing port",
			wantAll: `sluice.yaml: backends.tomcat.servers[0].address: missing port in address "10.0.0.11"`,
		},
		{name: "server without host", yaml: withBackend("servers: [{address: \":8080\"}]", ""), key: "backends.tomcat.servers[0].address", msg: "missing host"},
		{name: "server port zero", yaml: withBackend("servers: [{address: \"a:0\"}]", ""), key: "backends.tomcat.servers[0].address", msg: "from 1 to 65535"},
		{name: "server named port", yaml: withBackend("servers: [{address: \"a:http\"}]", ""), key: "backends.tomcat.servers[0].address", msg: "port must be a number"},
		{name: "server too many colons", yaml: withBackend("servers: [{address: \"::1:80\"}]", ""), key: "backends.tomcat.servers[0].address", msg: "too many colons"},
		{name: "server without address", yaml: withBackend("servers: [{weight: 2}]", ""), key: "backends.tomcat.servers[0].address", msg: "is required"},
		{name: "duplicate server", yaml: withBackend("servers: [{address: \"a:1\"}, {address: \"b:1\"}, {address: \"a:1\"}]", ""), key: "backends.tomcat.servers[2].address", msg: "duplicates servers[0]"},
		{name: "duplicate server spelt differently", yaml: withBackend("servers: [{address: \"Tomcat:8080\"}, {address: \"tomcat:08080\"}]", ""), key: "backends.tomcat.servers[1].address", msg: "duplicates servers[0]"},

		// Enums and ranges.
		{name: "protocol", yaml: withBackend(oneServer+"protocol: h3", ""), key: "backends.tomcat.protocol", msg: `must be one of auto, h2c, h1, got "h3"`},
		{name: "balance", yaml: withBackend(oneServer+"balance: random", ""), key: "backends.tomcat.balance", msg: "must be one of round_robin, least_request"},
		{name: "weight zero", yaml: withBackend("servers: [{address: \"a:1\", weight: 0}]", ""), key: "backends.tomcat.servers[0].weight", msg: "between 1 and 1000"},
		{name: "weight too big", yaml: withBackend("servers: [{address: \"a:1\", weight: 1001}]", ""), key: "backends.tomcat.servers[0].weight", msg: "between 1 and 1000"},
		{name: "h2c conns zero", yaml: withBackend(oneServer+"h2c: {conns_per_server: 0}", ""), key: "backends.tomcat.h2c.conns_per_server", msg: "between 1 and 64"},
		{name: "h2c conns too many", yaml: withBackend(oneServer+"h2c: {conns_per_server: 65}", ""), key: "backends.tomcat.h2c.conns_per_server", msg: "between 1 and 64"},
		{name: "h2c streams zero", yaml: withBackend(oneServer+"h2c: {max_streams_per_conn: 0}", ""), key: "backends.tomcat.h2c.max_streams_per_conn", msg: "between 1 and 10000"},
		{name: "h2c streams too many", yaml: withBackend(oneServer+"h2c: {max_streams_per_conn: 10001}", ""), key: "backends.tomcat.h2c.max_streams_per_conn", msg: "between 1 and 10000"},
		{name: "h1 conns zero", yaml: withBackend(oneServer+"h1: {conns_per_server: 0}", ""), key: "backends.tomcat.h1.conns_per_server", msg: "between 1 and 100000"},
		{name: "h1 conns too many", yaml: withBackend(oneServer+"h1: {conns_per_server: 100001}", ""), key: "backends.tomcat.h1.conns_per_server", msg: "between 1 and 100000"},
		{name: "h1 tunnels zero", yaml: withBackend(oneServer+"h1: {max_tunnels: 0}", ""), key: "backends.tomcat.h1.max_tunnels", msg: "between 1 and 1000000"},
		{name: "env h1 tunnels", yaml: valid, env: []string{"SLUICE_BACKENDS__TOMCAT__H1__MAX_TUNNELS=-1"}, key: "backends.tomcat.h1.max_tunnels", msg: "between 1 and 1000000", source: "env SLUICE_BACKENDS__TOMCAT__H1__MAX_TUNNELS"},
		{name: "queue negative", yaml: withBackend(oneServer+"queue: {max_pending: -1}", ""), key: "backends.tomcat.queue.max_pending", msg: "between 0 and 1000000"},
		{name: "queue too long", yaml: withBackend(oneServer+"queue: {max_pending: 1000001}", ""), key: "backends.tomcat.queue.max_pending", msg: "between 0 and 1000000"},

		// Structure.
		{name: "no backends", yaml: "routes: [{backend: tomcat}]\n", key: "backends", msg: "at least one backend"},
		{name: "empty backends", yaml: "backends: {}\nroutes: [{backend: tomcat}]\n", key: "backends", msg: "at least one backend"},
		{name: "backend without servers", yaml: "backends: {tomcat: {protocol: h1}}\nroutes: [{backend: tomcat}]\n", key: "backends.tomcat.servers", msg: "at least one server"},
		{name: "bad backend name", yaml: "backends: {\"tom cat\": {" + strings.TrimSuffix(oneServer, "\n") + "}}\nroutes: [{backend: tom cat}]\n", key: "backends.tom cat", msg: "invalid backend name"},
		{name: "dotted backend name", yaml: "backends: {a.b: {" + strings.TrimSuffix(oneServer, "\n") + "}}\nroutes: [{backend: a.b}]\n", key: "backends", msg: `invalid backend name "a.b"`},
		{name: "no routes", yaml: "backends: {tomcat: {" + strings.TrimSuffix(oneServer, "\n") + "}}\n", key: "routes", msg: "at least one route"},
		{name: "route to missing backend", yaml: withBackend(oneServer, "") + "  - backend: tomcatt\n", key: "routes[1].backend", msg: `no backend named "tomcatt" (have tomcat)`},
		{name: "route without backend", yaml: withBackend(oneServer, "") + "  - path_prefix: /x\n", key: "routes[1].backend", msg: "is required"},
		{name: "route host with port", yaml: withBackend(oneServer, "") + "  - {host: \"example.com:80\", backend: tomcat}\n", key: "routes[1].host", msg: "without port"},
		{name: "route host inner wildcard", yaml: withBackend(oneServer, "") + "  - {host: \"a.*.com\", backend: tomcat}\n", key: "routes[1].host", msg: "wildcard"},
		{name: "route host bad chars", yaml: withBackend(oneServer, "") + "  - {host: \"exa_mple.com\", backend: tomcat}\n", key: "routes[1].host", msg: "invalid hostname"},
		{name: "route host empty", yaml: withBackend(oneServer, "") + "  - {host: \"\", backend: tomcat}\n", key: "routes[1].host", msg: "is required"},
		{name: "route path relative", yaml: withBackend(oneServer, "") + "  - {path_prefix: api, backend: tomcat}\n", key: "routes[1].path_prefix", msg: `must start with "/"`},
		{name: "duplicate route", yaml: withBackend(oneServer, "") + "  - {host: \"*\", path_prefix: /, backend: tomcat}\n", key: "routes[1]", msg: "same host and path_prefix as routes[0]"},

		// Environment.
		{name: "env unknown key", yaml: valid, env: []string{"SLUICE_LISTN=:1"}, key: "listn", msg: "unknown key", source: "env SLUICE_LISTN"},
		{name: "env bad address", yaml: valid, env: []string{"SLUICE_LISTEN=9090"}, key: "listen", msg: "missing port", source: "env SLUICE_LISTEN"},
		{name: "env not an integer", yaml: valid, env: []string{"SLUICE_BACKENDS__TOMCAT__H2C__CONNS_PER_SERVER=four"}, key: "backends.tomcat.h2c.conns_per_server", msg: "must be an integer", source: "env SLUICE_BACKENDS__TOMCAT__H2C__CONNS_PER_SERVER"},
		{name: "env out of range", yaml: valid, env: []string{"SLUICE_BACKENDS__TOMCAT__H2C__CONNS_PER_SERVER=0"}, key: "backends.tomcat.h2c.conns_per_server", msg: "between 1 and 64", source: "env SLUICE_BACKENDS__TOMCAT__H2C__CONNS_PER_SERVER"},
		{name: "env bare duration", yaml: valid, env: []string{"SLUICE_BACKENDS__TOMCAT__QUEUE__TIMEOUT=5"}, key: "backends.tomcat.queue.timeout", msg: "bare number", source: "env SLUICE_BACKENDS__TOMCAT__QUEUE__TIMEOUT"},
		{name: "env unknown backend", yaml: valid, env: []string{"SLUICE_BACKENDS__NGINX__PROTOCOL=h1"}, key: "backends.nginx", msg: "but not add them", source: "env SLUICE_BACKENDS__NGINX__PROTOCOL"},
		{name: "env list", yaml: valid, env: []string{"SLUICE_BACKENDS__TOMCAT__SERVERS=a:1"}, key: "backends.tomcat.servers", msg: "cannot be set from the environment", source: "env SLUICE_BACKENDS__TOMCAT__SERVERS"},
		{name: "env into a list", yaml: valid, env: []string{"SLUICE_BACKENDS__TOMCAT__SERVERS__0__WEIGHT=2"}, key: "backends.tomcat.servers", msg: "cannot be set from the environment: it is a list in sluice.yaml", source: "env SLUICE_BACKENDS__TOMCAT__SERVERS__0__WEIGHT"},
		{name: "env routes", yaml: valid, env: []string{"SLUICE_ROUTES=x"}, key: "routes", msg: "cannot be set from the environment", source: "env SLUICE_ROUTES"},
		{name: "env empty level", yaml: valid, env: []string{"SLUICE_BACKENDS____PROTOCOL=h1"}, key: "", msg: "cannot map", source: "env SLUICE_BACKENDS____PROTOCOL"},
		{name: "env set twice", yaml: valid, env: []string{"SLUICE_LISTEN=:1", "SLUICE_listen=:2"}, key: "listen", msg: "also set by SLUICE_LISTEN", source: "env SLUICE_listen"},
		{name: "env ambiguous backend", yaml: "backends: {a: {" + strings.TrimSuffix(oneServer, "\n") + "}, A: {" + strings.TrimSuffix(oneServer, "\n") + "}}\nroutes: [{backend: a}]\n", env: []string{"SLUICE_BACKENDS__A__PROTOCOL=h1"}, key: "backends.a", msg: "ambiguous", source: "env SLUICE_BACKENDS__A__PROTOCOL"},
		{name: "env enum", yaml: valid, env: []string{"SLUICE_BACKENDS__TOMCAT__PROTOCOL=H2C"}, key: "backends.tomcat.protocol", msg: "must be one of", source: "env SLUICE_BACKENDS__TOMCAT__PROTOCOL"},
	})
}

func TestParseReportsEveryError(t *testing.T) {
	y := `
listn: ":8080"
admin: ":9001"
backends:
  tomcat:
    protocol: h3
    servers:
      - { address: "10.0.0.11", weight: 1 }
    queue: { timeout: 5 }
routes:
  - { host: "*", path_prefix: "/", backend: nope }
`
	_, err := Parse([]byte(y), "sluice.yaml", []string{"SLUICE_BACKENDS__TOMCAT__H2C__CONNS=4"})
	want := []string{
		`sluice.yaml: admin: missing host in address ":9001" (use 0.0.0.0:9001 for all interfaces)`,
		`env SLUICE_BACKENDS__TOMCAT__H2C__CONNS: backends.tomcat.h2c.conns: unknown key`,
		`sluice.yaml: backends.tomcat.protocol: must be one of auto, h2c, h1, got "h3"`,
		`sluice.yaml: backends.tomcat.queue.timeout: must be a duration with a unit, like "5s" or "250ms", got bare number 5`,
		`sluice.yaml: backends.tomcat.servers[0].address: missing port in address "10.0.0.11"`,
		`sluice.yaml: listn: unknown key (did you mean listen?)`,
		`sluice.yaml: routes[0].backend: no backend named "nope" (have tomcat)`,
	}
	if got := err.Error(); got != strings.Join(want, "\n") {
		t.Errorf("got:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
	var fe FieldError
	if !errors.As(err, &fe) || fe.Key != "admin" {
		t.Errorf("errors.As(FieldError) = %+v", fe)
	}
}

func TestParseSortsListIndexesNumerically(t *testing.T) {
	var servers strings.Builder
	servers.WriteString("servers:\n")
	for range 11 {
		servers.WriteString("  - address: nohost\n")
	}
	_, err := Parse([]byte(withBackend(servers.String(), "")), "s.yaml", nil)
	list := fieldErrors(t, err)
	if len(list) != 11 || list[2].Key != "backends.tomcat.servers[2].address" || list[10].Key != "backends.tomcat.servers[10].address" {
		t.Errorf("order:\n%v", err)
	}
}

func defaultsWith(servers ...string) *Config {
	b := upstream.DefaultConfig()
	for _, s := range servers {
		b.Servers = append(b.Servers, upstream.ServerConfig{Address: s, Weight: 1})
	}
	c := Default()
	c.Backends["tomcat"] = b
	c.Routes = []gateway.Route{{Host: "*", PathPrefix: "/", Backend: "tomcat"}}
	c.complete()
	return c
}

func TestDefaults(t *testing.T) {
	tests := []struct {
		name string
		yaml string
	}{
		{"minimal", valid},
		{"null sections", withBackend(oneServer+"h2c:\nh1: {}\nqueue: ~\ntimeouts:\nhealth: {}\npassive:\nidempotent_methods: []", "listen:\nerror_pages: {}\n")},
	}
	want := defaultsWith("10.0.0.11:8080")
	if want.Listen != ":8080" || want.Admin != "127.0.0.1:9001" || want.ShutdownGrace != 30*time.Second || want.ErrorPages != nil {
		t.Fatalf("Default() = %+v", want)
	}
	b := want.Backends["tomcat"]
	if b.Protocol != "auto" || b.Balance != "round_robin" || b.ProbeInterval != time.Minute ||
		b.H2C != (upstream.H2CConfig{ConnsPerServer: 2, MaxStreamsPerConn: 100, MaxBodyStreamsPerConn: 6, PingInterval: 30 * time.Second, PingTimeout: 5 * time.Second}) || b.H1 != (upstream.H1Config{ConnsPerServer: 64, IdleTimeout: 90 * time.Second, MaxTunnels: 1024}) ||
		b.Queue != (upstream.QueueConfig{MaxPending: 10000, Timeout: 5 * time.Second}) ||
		b.ConnectTimeout != 2*time.Second || b.ResponseHeaderTimeout != 30*time.Second || b.IdleTimeout != 60*time.Second || b.TotalTimeout != 0 ||
		b.Retries != 2 || b.RetryBodyLimit != 16<<20 || b.RetryBodyMemory != 256<<20 || b.IdempotentMethods != nil ||
		b.Health != (upstream.HealthConfig{Path: "/", Method: "GET", ExpectStatus: 200, Interval: time.Second, Timeout: time.Second, Fall: 2, Rise: 2, SlowStart: 10 * time.Second}) ||
		b.Passive != (upstream.PassiveConfig{ConsecutiveFailures: 5, EjectFor: 10 * time.Second, MaxEjectFor: 5 * time.Minute, MaxEjectedPercent: 50, ProbeInterval: time.Second}) ||
		b.Name != "tomcat" || b.DrainTimeout != 30*time.Second {
		t.Fatalf("upstream.DefaultConfig() = %+v", b)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(tt.yaml), "sluice.yaml", nil)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got %+v\nwant %+v", got, want)
			}
		})
	}
}

func TestEnvOverride(t *testing.T) {
	tests := []struct {
		name  string
		yaml  string
		env   []string
		check func(*Config) bool
	}{
		{"top level", valid, []string{"SLUICE_LISTEN=:9090"}, func(c *Config) bool { return c.Listen == ":9090" }},
		{"nested int", valid, []string{"SLUICE_BACKENDS__TOMCAT__H2C__CONNS_PER_SERVER=4"},
			func(c *Config) bool { return c.Backends["tomcat"].H2C.ConnsPerServer == 4 }},
		{"beats the file", withBackend(oneServer+"h2c: {conns_per_server: 8}", ""), []string{"SLUICE_BACKENDS__TOMCAT__H2C__CONNS_PER_SERVER=4"},
			func(c *Config) bool { return c.Backends["tomcat"].H2C.ConnsPerServer == 4 }},
		{"nested duration", valid, []string{"SLUICE_BACKENDS__TOMCAT__QUEUE__TIMEOUT=250ms"},
			func(c *Config) bool { return c.Backends["tomcat"].Queue.Timeout == 250*time.Millisecond }},
		{"zero allowed", valid, []string{"SLUICE_BACKENDS__TOMCAT__QUEUE__MAX_PENDING=0"},
			func(c *Config) bool { return c.Backends["tomcat"].Queue.MaxPending == 0 }},
		{"string", valid, []string{"SLUICE_BACKENDS__TOMCAT__PROTOCOL=h1"},
			func(c *Config) bool { return c.Backends["tomcat"].Protocol == "h1" }},
		{"mixed-case backend name", "backends: {Tomcat-A: {" + strings.TrimSuffix(oneServer, "\n") + "}}\nroutes: [{backend: Tomcat-A}]\n",
			[]string{"SLUICE_BACKENDS__TOMCAT-A__BALANCE=least_request"},
			func(c *Config) bool { return c.Backends["Tomcat-A"].Balance == "least_request" && len(c.Backends) == 1 }},
		{"unrelated variables ignored", valid, []string{"HOME=/root", "SLUICE_LOG_LEVEL=debug", "sluice_listen=:1", "SLUICE_ADMIN=127.0.0.1:9"},
			func(c *Config) bool { return c.Listen == ":8080" && c.Admin == "127.0.0.1:9" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.yaml), "sluice.yaml", tt.env)
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(c) {
				t.Errorf("env %v not applied: %+v", tt.env, c)
			}
		})
	}
}

const fullExample = `
listen: "0.0.0.0:8080"
admin: "127.0.0.1:9001"
shutdown_grace: 45s
backends:
  tomcat:
    protocol: h2c
    balance: least_request
    probe_interval: 30s
    servers:
      - { address: "10.0.0.11:8080", weight: 3 }
      - { address: "tomcat-2.internal:8080" }
      - { address: "[fd00::12]:8080", weight: 1000, backup: true }
    h2c: { conns_per_server: 4, max_streams_per_conn: 250, max_body_streams_per_conn: 0, ping_interval: 0s, ping_timeout: 2s }
    h1:  { conns_per_server: 128, idle_timeout: 2m, max_tunnels: 5000 }
    queue: { max_pending: 0, timeout: 1500ms }
    timeouts: { connect: 1s, response_header: 1m30s, idle: 2m, total: 10m }
    retries: 0
    retry_body_limit: 0
    retry_body_memory: 67108864
    idempotent_methods: [post, PATCH, Post]
    health:
      enabled: true
      path: /health?deep=1
      method: head
      host: tomcat.internal
      expect_status: 204
      interval: 5s
      timeout: 5s
      fall: 3
      rise: 1
      slow_start: 0s
    passive: { consecutive_failures: 0, eject_for: 1s, max_eject_for: 1s, max_ejected_percent: 100, probe_interval: 500ms }
  legacy_app:
    protocol: h1
    servers:
      - address: "10.0.1.5:8009"
routes:
  - { host: "Legacy.Example.com", path_prefix: "/", backend: legacy_app }
  - { host: "*.example.com", path_prefix: "/api/", backend: tomcat }
  - { backend: tomcat }
access_log: { mode: sample, sample: 10, format: text, path: stderr }
pprof: true
`

func TestFullExample(t *testing.T) {
	got, err := Parse([]byte(fullExample), "sluice.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	legacy := upstream.DefaultConfig()
	legacy.Name, legacy.DrainTimeout = "legacy_app", 45*time.Second
	legacy.Protocol = "h1"
	legacy.Servers = []upstream.ServerConfig{{Address: "10.0.1.5:8009", Weight: 1}}
	want := &Config{
		Listen:        "0.0.0.0:8080",
		Admin:         "127.0.0.1:9001",
		ShutdownGrace: 45 * time.Second,
		Limits:        DefaultLimits(),
		AccessLog:     AccessLog{Mode: "sample", Sample: 10, Format: "text", Path: "stderr"},
		Pprof:         true,
		Backends: map[string]upstream.Config{
			"tomcat": {
				Name:          "tomcat",
				DrainTimeout:  45 * time.Second,
				Protocol:      "h2c",
				Balance:       "least_request",
				ProbeInterval: 30 * time.Second,
				Servers: []upstream.ServerConfig{
					{Address: "10.0.0.11:8080", Weight: 3},
					{Address: "tomcat-2.internal:8080", Weight: 1},
					{Address: "[fd00::12]:8080", Weight: 1000, Backup: true},
				},
				H2C:   upstream.H2CConfig{ConnsPerServer: 4, MaxStreamsPerConn: 250, PingInterval: 0, PingTimeout: 2 * time.Second},
				H1:    upstream.H1Config{ConnsPerServer: 128, IdleTimeout: 2 * time.Minute, MaxTunnels: 5000},
				Queue: upstream.QueueConfig{MaxPending: 0, Timeout: 1500 * time.Millisecond},

				ConnectTimeout: time.Second, ResponseHeaderTimeout: 90 * time.Second, IdleTimeout: 2 * time.Minute, TotalTimeout: 10 * time.Minute,

				Retries:           0,
				RetryBodyLimit:    0,
				RetryBodyMemory:   64 << 20,
				IdempotentMethods: []string{"POST", "PATCH"},
				Health: upstream.HealthConfig{
					Enabled: true, Path: "/health?deep=1", Method: "HEAD", Host: "tomcat.internal",
					ExpectStatus: 204, Interval: 5 * time.Second, Timeout: 5 * time.Second,
					Fall: 3, Rise: 1, SlowStart: 0,
				},
				Passive:   upstream.PassiveConfig{ConsecutiveFailures: 0, EjectFor: time.Second, MaxEjectFor: time.Second, MaxEjectedPercent: 100, ProbeInterval: 500 * time.Millisecond},
				Discovery: upstream.DefaultConfig().Discovery,
			},
			"legacy_app": legacy,
		},
		Routes: []gateway.Route{
			{Host: "legacy.example.com", PathPrefix: "/", Backend: "legacy_app"},
			{Host: "*.example.com", PathPrefix: "/api/", Backend: "tomcat"},
			{Host: "*", PathPrefix: "/", Backend: "tomcat"},
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
}

func TestMarshalRoundTrip(t *testing.T) {
	for _, src := range []string{valid, fullExample} {
		c, err := Parse([]byte(src), "sluice.yaml", []string{"SLUICE_BACKENDS__TOMCAT__H1__IDLE_TIMEOUT=1h0m30s"})
		if err != nil {
			t.Fatal(err)
		}
		checkRoundTrip(t, c, "probe_interval: ", "idle_timeout: 1h0m30s\n", "timeout: ", "response_header: ")
	}
}

// checkRoundTrip marshals c, looks for each of wants in the output, and
// parses the output back into c.
func checkRoundTrip(t *testing.T, c *Config, wants ...string) {
	t.Helper()
	out, err := c.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range wants {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	back, err := Parse(out, "marshalled", nil)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !reflect.DeepEqual(back, c) {
		t.Errorf("round trip changed config:\n%s", out)
	}
}

func TestFormatDuration(t *testing.T) {
	tests := map[time.Duration]string{
		5 * time.Second:                   "5s",
		time.Minute:                       "1m",
		90 * time.Second:                  "1m30s",
		time.Hour:                         "1h",
		time.Hour + 30*time.Second:        "1h0m30s",
		10*time.Hour + 5*time.Minute:      "10h5m",
		1500 * time.Millisecond:           "1.5s",
		250 * time.Millisecond:            "250ms",
		10 * time.Minute:                  "10m",
		2*time.Hour + 10*time.Millisecond: "2h0m0.01s",
	}
	for d, want := range tests {
		if got := FormatDuration(d); got != want {
			t.Errorf("FormatDuration(%v) = %q, want %q", d, got, want)
		}
		if back, err := time.ParseDuration(want); err != nil || back != d {
			t.Errorf("%q does not parse back to %v", want, d)
		}
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(good, []byte(valid), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte(valid+"listen: x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.yaml")

	if _, err := Load(good, nil); err != nil {
		t.Errorf("Load(good) = %v", err)
	}
	if _, err := Load(missing, nil); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("Load(missing) = %v, want the path named", err)
	}
	_, err := Load(bad, nil)
	if err == nil || !strings.HasPrefix(err.Error(), bad+": listen: ") {
		t.Errorf("Load(bad) = %v, want errors prefixed with the path", err)
	}
}

func TestQuick(t *testing.T) {
	tests := []struct {
		name     string
		listen   string
		admin    string
		protocol string
		servers  []string
		conns    int
		key      string // "" means valid
		msg      string
	}{
		{name: "valid", listen: ":8080", admin: "127.0.0.1:9001", protocol: "auto", servers: []string{"a:1", "b:2"}, conns: 2},
		{name: "no servers", listen: ":8080", admin: "127.0.0.1:9001", protocol: "auto", conns: 2, key: "--to", msg: "at least one server"},
		{name: "bad server", listen: ":8080", admin: "127.0.0.1:9001", protocol: "h2c", servers: []string{"a"}, conns: 2, key: "--to", msg: `missing port in address "a"`},
		{name: "duplicate server", listen: ":8080", admin: "127.0.0.1:9001", protocol: "h2c", servers: []string{"a:1", "a:1"}, conns: 2, key: "--to", msg: "duplicates"},
		{name: "bad protocol", listen: ":8080", admin: "127.0.0.1:9001", protocol: "http3", servers: []string{"a:1"}, conns: 2, key: "--protocol", msg: "must be one of"},
		{name: "bad conns", listen: ":8080", admin: "127.0.0.1:9001", protocol: "h1", servers: []string{"a:1"}, conns: 0, key: "--conns", msg: "between 1 and 64"},
		{name: "bad listen", listen: "8080", admin: "127.0.0.1:9001", protocol: "h1", servers: []string{"a:1"}, conns: 1, key: "--listen", msg: "missing port"},
		{name: "bad admin", listen: ":8080", admin: ":9001", protocol: "h1", servers: []string{"a:1"}, conns: 1, key: "--admin", msg: "missing host"},
		{name: "admin off loopback", listen: ":8080", admin: "0.0.0.0:9001", protocol: "h1", servers: []string{"a:1"}, conns: 1, key: "--admin", msg: "not a loopback address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Quick(tt.listen, tt.admin, tt.protocol, tt.servers, tt.conns)
			if tt.key == "" {
				if err != nil {
					t.Fatal(err)
				}
				want := Default()
				want.Listen, want.Admin = tt.listen, tt.admin
				b := upstream.DefaultConfig()
				b.Name = "default"
				b.Protocol, b.H2C.ConnsPerServer = tt.protocol, tt.conns
				b.Servers = []upstream.ServerConfig{{Address: "a:1", Weight: 1}, {Address: "b:2", Weight: 1}}
				want.Backends["default"] = b
				want.Routes = []gateway.Route{{Host: "*", PathPrefix: "/", Backend: "default"}}
				if !reflect.DeepEqual(c, want) {
					t.Errorf("got %+v\nwant %+v", c, want)
				}
				return
			}
			if err == nil {
				t.Fatal("accepted")
			}
			line := "command line: " + tt.key + ": "
			if !strings.Contains(err.Error(), line) || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q lacks %q / %q", err, line, tt.msg)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	c := defaultsWith("a:1")
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	c.Routes[0].Backend = "missing"
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "config: routes[0].backend: ") {
		t.Errorf("Validate() = %v", err)
	}
}

// TestGateway: the file's client-edge keys reach gateway.Config; in the
// file h2_max_resets_per_second 0 is off, which the gateway spells as a
// negative limit (its zero is the default).
func TestGateway(t *testing.T) {
	page := writeTemp(t, t.TempDir(), "503.html", "busy\n")
	for perSecond, want := range map[int]int{0: -1, 1: 1, 100: 100, 5000: 5000} {
		c, err := Parse([]byte(fmt.Sprintf("%slimits: {h2_max_resets_per_second: %d, max_conns: 7}\ntrusted_proxies: [10.0.0.0/8]\nerror_pages: {503: %s}\n", valid, perSecond, page)), "sluice.yaml", nil)
		if err != nil {
			t.Fatal(err)
		}
		g := c.Gateway()
		if g.ResetLimit != want || g.MaxConns != 7 || g.MaxHeaderBytes != 32<<10 || len(g.TrustedProxies) != 1 ||
			!reflect.DeepEqual(g.Routes, c.Routes) || len(g.ErrorPages) != 1 {
			t.Errorf("h2_max_resets_per_second %d: Gateway() = %+v", perSecond, g)
		}
	}
}

// TestCheckRules pins the `check` tag grammar and its messages.
func TestCheckRules(t *testing.T) {
	tests := []struct {
		rule string
		v    any
		want string // "" means valid; "panic" a malformed tag
	}{
		{"1..64", 64, ""},
		{"1..64", 0, "must be between 1 and 64, got 0"},
		{"1..64", int64(65), "must be between 1 and 64, got 65"},
		{"positive", time.Nanosecond, ""},
		{"positive", time.Duration(0), "must be positive, got 0s"},
		{"1s..", time.Second, ""},
		{"1s..", 500 * time.Millisecond, "must be at least 1s, got 500ms"},
		{"100ms..1m", 2 * time.Minute, "must be between 100ms and 1m, got 2m0s"},
		{"0(off)|1s..", time.Duration(0), ""},
		{"0(off)|1s..", time.Millisecond, "must be 0 (off) or at least 1s, got 1ms"},
		{"0(no limit)|positive", int64(-1), "must be 0 (no limit) or positive, got -1"},
		{"auto|h2c", "h2c", ""},
		{"auto|h2c", "h3", `must be one of auto, h2c, got "h3"`},
		{"method", "get x", `invalid method name "get x"`},
		{"1..x", 1, "panic"},
		{"above", 1, "panic"},
		{"off|1s..", time.Second, "panic"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s %v", tt.rule, tt.v), func(t *testing.T) {
			c := &checker{source: func(string) string { return "test" }}
			defer func() {
				if r := recover(); (r != nil) != (tt.want == "panic") {
					t.Errorf("panic %v, want %q", r, tt.want)
				}
			}()
			c.checkField("k", &field{name: "k", check: tt.rule}, reflect.ValueOf(tt.v))
			got := ""
			if len(c.errs) > 0 {
				got = c.errs[0].Msg
			}
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}
