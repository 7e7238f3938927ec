package haproxyimport

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/cmd/sluice/internal/config"
	"github.com/sluice-gw/sluice/upstream"
)

// TestConvertTestdata converts each realistic configuration in testdata,
// loads the output with the config package (what `sluice check` does) and
// compares its routes, some translated values and the report.
func TestConvertTestdata(t *testing.T) {
	type note struct {
		line int
		kind NoteKind
		has  string // in the reason
	}
	tests := []struct {
		file   string
		routes []Route
		check  func(t *testing.T, c *config.Config)
		notes  []note
	}{
		{
			file:   "haproxy18.cfg",
			routes: []Route{{"*", "/", "tomcats"}},
			check: func(t *testing.T, c *config.Config) {
				b := c.Backends["tomcats"]
				if got := []string{b.Servers[0].Address, b.Servers[1].Address}; !reflect.DeepEqual(got, []string{"10.0.0.11:8080", "10.0.0.12:8080"}) {
					t.Errorf("servers %v", got)
				}
				want := []any{time.Minute, 5 * time.Second, time.Minute, 3, 200, 100, true, "/hello", "GET", "localhost", 2 * time.Second, 3, 2,
					10 * time.Second, 10 * time.Second, 3000, c.Listen}
				got := []any{b.Queue.Timeout, b.ConnectTimeout, b.ResponseHeaderTimeout, b.Retries, b.H1.ConnsPerServer, b.H2C.MaxStreamsPerConn,
					b.Health.Enabled, b.Health.Path, b.Health.Method, b.Health.Host, b.Health.Interval, b.Health.Fall, b.Health.Rise,
					c.Limits.ReadHeaderTimeout, c.Limits.IdleTimeout, c.Limits.MaxConns, ":80"}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("got  %v\nwant %v", got, want)
				}
				if _, ok := c.ErrorPages[503]; !ok {
					t.Errorf("error_pages.503 not translated")
				}
			},
			notes: []note{
				{19, Funnel, "long-lived h2c connections"},
				{26, Untranslated, "limits.idle_timeout"},
				{40, Translated, "h2c.max_streams_per_conn 100"},
				{9, Untranslated, "systemd"},
			},
		},
		{
			file: "haproxy2x.cfg",
			routes: []Route{
				{"shop.example.com", "/admin/", "be_admin"},
				{"shop.example.com", "/manager/", "be_admin"},
				{"api.example.com", "/", "be_api"},
				{"shop.example.com", "/", "be_shop"},
				{"*.shop.example.com", "/", "be_shop"},
				{"*", "/", "be_shop"},
			},
			check: func(t *testing.T, c *config.Config) {
				api, shop := c.Backends["be_api"], c.Backends["be_shop"]
				want := []any{"h2c", "least_request", "/api/health", "api.example.com", 204, 3 * time.Second, 2, 3, 250,
					3, false, true, "round_robin", ":8080", 2 * time.Second}
				got := []any{api.Protocol, api.Balance, api.Health.Path, api.Health.Host, api.Health.ExpectStatus, api.Health.Interval,
					api.Health.Fall, api.Health.Rise, api.H2C.MaxStreamsPerConn,
					shop.Servers[0].Weight, shop.Health.Enabled, shop.Servers[2].Backup, shop.Balance, c.Listen, c.Limits.IdleTimeout}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("got  %v\nwant %v", got, want)
				}
			},
			notes: []note{
				{17, Funnel, "long-lived h2c connections"},
				{22, Untranslated, "one cleartext listener"},
				{27, Untranslated, "path_end"},
				{30, Untranslated, "is_static (line 27)"},
				{43, Untranslated, "TCP connect check"},
				{45, Untranslated, "sticky"},
			},
		},
		{
			file: "haproxy3x.cfg",
			routes: []Route{
				{"app.example.org", "/api/", "app_api"},
				{"app.example.org", "/", "app_web"},
				{"*", "/dyn/", "app_dns"},
				{"*", "/", "app_web"},
			},
			check: func(t *testing.T, c *config.Config) {
				web, api := c.Backends["app_web"], c.Backends["app_api"]
				if _, ok := c.Backends["db"]; ok {
					t.Error("the TCP listen section was translated")
				}
				dns := c.Backends["app_dns"]
				if want := (upstream.DiscoveryConfig{Name: "tomcat.default.svc.cluster.local", Type: "a", Port: 8080, Interval: 5 * time.Second,
					Resolver: "10.0.0.2:53"}); dns.Discovery != want || len(dns.Servers) != 0 {
					t.Errorf("app_dns: discovery %+v, servers %v", dns.Discovery, dns.Servers)
				}
				want := []any{1, "HEAD", 30 * time.Second, 3 * time.Second, 20 * time.Second, 1, 64, 32, ":9080"}
				got := []any{len(web.Servers), web.Health.Method, web.Health.SlowStart, web.Queue.Timeout, web.ResponseHeaderTimeout,
					api.Retries, api.H1.ConnsPerServer, api.H2C.MaxStreamsPerConn, c.Listen}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("got  %v\nwant %v", got, want)
				}
			},
			notes: []note{
				{9, Translated, "discovery.resolver 10.0.0.2:53"},
				{10, Untranslated, "last good answer"},
				{18, Funnel, "long-lived h2c connections"},
				{41, Untranslated, "left out"},
				{46, Untranslated, "PROXY header"},
				{49, Translated, "discovery of tomcat.default.svc.cluster.local (A and AAAA records, on port 8080)"},
				{55, Untranslated, "mode tcp"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			path := filepath.Join("testdata", tt.file)
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			res, err := Convert(data, "testdata")
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := config.Parse(res.YAML, tt.file+".yaml", nil)
			if err != nil {
				t.Fatalf("output does not pass sluice check: %v\n%s", err, res.YAML)
			}
			var routes []Route
			for _, r := range cfg.Routes {
				routes = append(routes, Route{r.Host, r.PathPrefix, r.Backend})
			}
			if !reflect.DeepEqual(routes, tt.routes) {
				t.Errorf("routes\ngot  %v\nwant %v", routes, tt.routes)
			}
			tt.check(t, cfg)
			for _, want := range tt.notes {
				found := false
				for _, n := range res.Notes {
					found = found || (n.Line == want.line && n.Kind == want.kind && strings.Contains(n.Reason, want.has))
				}
				if !found {
					t.Errorf("no note on line %d (kind %d) with %q", want.line, want.kind, want.has)
				}
			}
			if t.Failed() {
				for _, n := range res.Notes {
					t.Log(n)
				}
			}
		})
	}
}

// TestEveryLineAccountedFor: each directive of the test configurations is
// either translated or reported, so nothing is dropped silently. Translated
// directives are listed here by keyword.
func TestEveryLineAccountedFor(t *testing.T) {
	translated := map[string]bool{
		"mode": true, "timeout": true, "retries": true, "balance": true, "http-check": true, "maxconn": true,
		"default-server": true, "default_backend": true, "server": true, "bind": true, "acl": true, "use_backend": true,
		"errorfile": true,
	}
	files, _ := filepath.Glob("testdata/*.cfg")
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		res, err := Convert(data, "testdata")
		if err != nil {
			t.Fatal(err)
		}
		reported := map[int]bool{}
		for _, n := range res.Notes {
			reported[n.Line] = true
		}
		f, _ := Parse(data)
		for _, s := range f.Sections {
			for _, d := range s.Directives {
				k := d.Keyword()
				if k == "option" && d.Words[1] == "httpchk" {
					k = "http-check"
				}
				if !translated[k] && !reported[d.Line] && !reported[s.Line] {
					t.Errorf("%s:%d: %s is neither translated nor reported", file, d.Line, d)
				}
			}
		}
	}
}

func TestParseWords(t *testing.T) {
	tests := []struct {
		line string
		want []string
	}{
		{`  server a 10.0.0.1:80 check # comment`, []string{"server", "a", "10.0.0.1:80", "check"}},
		{`option httpchk GET /h HTTP/1.1\r\nHost:\ www`, []string{"option", "httpchk", "GET", "/h", "HTTP/1.1\r\nHost: www"}},
		{`http-request set-header X "a b" 'c#d'`, []string{"http-request", "set-header", "X", "a b", "c#d"}},
		{`acl x hdr(host) -i a\#b`, []string{"acl", "x", "hdr(host)", "-i", "a#b"}},
		{"\t", nil},
	}
	for _, tt := range tests {
		got, err := splitWords(tt.line)
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("splitWords(%q) = %q, %v; want %q", tt.line, got, err, tt.want)
		}
	}
	if _, err := splitWords(`a "b`); err == nil {
		t.Error("unterminated quote accepted")
	}
	if _, err := Parse([]byte("server a b:1\n")); err == nil {
		t.Error("directive outside a section accepted")
	}
}

func TestParseTime(t *testing.T) {
	for in, want := range map[string]time.Duration{"5000": 5 * time.Second, "5s": 5 * time.Second, "1m": time.Minute,
		"250ms": 250 * time.Millisecond, "2h": 2 * time.Hour, "1d": 24 * time.Hour, "100us": 100 * time.Microsecond} {
		if got, err := parseTime(in); err != nil || got != want {
			t.Errorf("parseTime(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "s", "5x", "-1s"} {
		if _, err := parseTime(bad); err == nil {
			t.Errorf("parseTime(%q) accepted", bad)
		}
	}
}

// TestServerTemplate: server-template with resolvers becomes discovery;
// the forms Sluice cannot take are reported and leave the backend out.
func TestServerTemplate(t *testing.T) {
	const resolversK8s = "resolvers k8s\n  nameserver kube 10.96.0.10:53\n  timeout resolve 500ms\n  resolve_retries 3\n"
	tests := []struct {
		name, cfg string
		want      *upstream.DiscoveryConfig // nil: no backend translated
		servers   int
		note      string
	}{
		{"A records", resolversK8s + "backend b\n  server-template tc 10 tomcat.default.svc.cluster.local:8080 resolvers k8s check inter 5s\n",
			&upstream.DiscoveryConfig{Name: "tomcat.default.svc.cluster.local", Type: "a", Port: 8080, Interval: time.Second, Resolver: "10.96.0.10:53"}, 0,
			"every address found is a server, where HAProxy fills at most 10 slots"},
		{"SRV records, resolvers after the backend", "backend b\n  server-template tc 1-3 _http._tcp.tomcat.default.svc.cluster.local resolvers k8s init-addr none\n" + resolversK8s,
			&upstream.DiscoveryConfig{Name: "_http._tcp.tomcat.default.svc.cluster.local", Type: "srv", Interval: time.Second, Resolver: "10.96.0.10:53"}, 0,
			"SRV records"},
		{"system resolver beside a server", "resolvers sys\n  parse-resolv-conf\nbackend b\n  server s1 10.0.0.1:8080 backup\n  server-template tc 3 tomcat.test:8080 resolvers sys\n",
			&upstream.DiscoveryConfig{Name: "tomcat.test", Type: "a", Port: 8080, Interval: 5 * time.Second}, 1, "system's resolver"},
		{"second template", resolversK8s + "backend b\n  server-template a 3 a.test:80 resolvers k8s\n  server-template b 3 b.test:80 resolvers k8s\n",
			&upstream.DiscoveryConfig{Name: "a.test", Type: "a", Port: 80, Interval: time.Second, Resolver: "10.96.0.10:53"}, 0, "one discovery: the first server-template's (line 6)"},
		{"no resolvers", "backend b\n  server-template tc 3 tomcat.test:8080\n", nil, 0, "resolves the name once"},
		{"unknown resolvers", "backend b\n  server-template tc 3 tomcat.test:8080 resolvers nope\n", nil, 0, "no resolvers section named nope"},
		{"A without port", resolversK8s + "backend b\n  server-template tc 3 tomcat.test resolvers k8s\n", nil, 0, "A records need one"},
		{"resolver by name", "resolvers r\n  nameserver ns dns.internal:53\nbackend b\n  server-template tc 3 tomcat.test:8080 resolvers r\n",
			&upstream.DiscoveryConfig{Name: "tomcat.test", Type: "a", Port: 8080, Interval: 5 * time.Second}, 0, "ip:port"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := Convert([]byte(tt.cfg), "")
			var notes []string
			if res != nil {
				for _, n := range res.Notes {
					notes = append(notes, n.String())
				}
			}
			if !strings.Contains(strings.Join(notes, "\n"), tt.note) && !(err != nil && tt.want == nil) {
				t.Errorf("no note with %q in:\n%s", tt.note, strings.Join(notes, "\n"))
			}
			if tt.want == nil {
				if err == nil {
					t.Fatalf("translated:\n%s", res.YAML)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := config.Parse(res.YAML, "template.yaml", nil)
			if err != nil {
				t.Fatalf("output does not pass sluice check: %v\n%s", err, res.YAML)
			}
			b := cfg.Backends["b"]
			if b.Discovery != *tt.want || len(b.Servers) != tt.servers {
				t.Errorf("discovery %+v with %d servers, want %+v with %d\n%s", b.Discovery, len(b.Servers), *tt.want, tt.servers, res.YAML)
			}
		})
	}
}

func TestConvertNoBackend(t *testing.T) {
	_, err := Convert([]byte("frontend f\n  bind :80\n  default_backend b\nbackend b\n  server-template s 3 tc.local:8080 resolvers dns\n"), "")
	if err == nil || !strings.Contains(err.Error(), "no backend") {
		t.Fatalf("err = %v", err)
	}
}

// FuzzConvert: the parser and translator never panic, and whatever they
// translate is YAML the config package reads (its validation may still
// refuse values such as addresses).
func FuzzConvert(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.cfg")
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("frontend f\n bind :80\n use_backend b if { hdr(host) -i a } || x\nbackend b\n server s [::1]:80 weight 2\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		res, err := Convert(data, "testdata")
		if err != nil {
			return
		}
		if _, err := config.Parse(res.YAML, "fuzz.yaml", nil); err != nil && strings.Contains(err.Error(), "invalid YAML") {
			t.Fatalf("output is not YAML: %v\n%s", err, res.YAML)
		}
		for _, n := range res.Notes {
			if n.Line < 1 {
				t.Fatalf("note without a line: %v", n)
			}
		}
	})
}

func TestBackendNames(t *testing.T) {
	res, err := Convert([]byte("backend be.web\n server a 10.0.0.1:80\nbackend be_web\n server b 10.0.0.2:80\n"), "")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(res.YAML, "names.yaml", nil)
	if err != nil {
		t.Fatalf("%v\n%s", err, res.YAML)
	}
	if len(cfg.Backends) != 1 || len(cfg.Backends["be_web"].Servers) != 1 || cfg.Backends["be_web"].Servers[0].Address != "10.0.0.1:80" {
		t.Errorf("backends %v", cfg.Backends)
	}
	var got []string
	for _, n := range res.Notes {
		got = append(got, n.String())
	}
	want := []string{
		`line 1: backend be.web: translated: the Sluice backend is named "be_web" (letters, digits, '_' and '-')`,
		`line 1: backend be.web: translated: no frontend route was translated: every request goes to this backend`,
		`line 3: backend be_web: not translated: its Sluice name "be_web" is taken by be.web (line 1)`,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("notes\ngot  %q\nwant %q", got, want)
	}
}
