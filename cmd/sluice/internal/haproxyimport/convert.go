package haproxyimport

import (
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/sluice-gw/sluice/cmd/sluice/internal/config"
)

// NoteKind says what a report line is about.
type NoteKind int

const (
	// Untranslated: the directive has no effect on the output.
	Untranslated NoteKind = iota
	// Funnel: a connection-reuse directive whose intent the funnel covers.
	Funnel
	// Translated: translated, with something the operator should know.
	Translated
)

// Note is one line of the report.
type Note struct {
	Line      int
	Directive string
	Kind      NoteKind
	Reason    string
}

func (n Note) String() string {
	verb := map[NoteKind]string{Untranslated: "not translated", Funnel: "becomes the funnel", Translated: "translated"}[n.Kind]
	return fmt.Sprintf("line %d: %s: %s: %s", n.Line, n.Directive, verb, n.Reason)
}

// Route is one translated route, in match order.
type Route struct {
	Host       string `yaml:"host"`
	PathPrefix string `yaml:"path_prefix"`
	Backend    string `yaml:"backend"`
}

// Result is a translation: the Sluice YAML, the routes it has (for
// tests and the report) and the report's notes in line order.
type Result struct {
	YAML   []byte
	Routes []Route
	Notes  []Note
}

// Convert translates an HAProxy configuration. dir is the directory of the
// configuration file: relative errorfile paths are made absolute against it
// (HAProxy resolves them against its working directory, which the
// packaged service sets to the configuration's). It fails when the input
// cannot be parsed or has no backend with a usable server.
func Convert(data []byte, dir string) (*Result, error) {
	f, err := Parse(data)
	if err != nil {
		return nil, err
	}
	c := &converter{dir: dir, named: map[string]*settings{}, backendIdx: map[string]int{}, errorPages: map[int]string{}}
	c.run(f)
	return c.finish()
}

// funnelReason is the report's word on HAProxy's connection-reuse options.
const funnelReason = "Sluice keeps a few long-lived h2c connections per server (an HTTP/1.1 keep-alive pool for servers without h2c) " +
	"and sends every client's requests over them, whatever the client does; nothing to configure"

// settings are the proxy settings a defaults section passes on and a
// backend, frontend or listen section refines.
type settings struct {
	connect, server, queue, check, httpRequest, keepAlive time.Duration
	retries                                               int // -1: unset
	balance                                               string
	chk                                                   *httpCheck
	expectStatus                                          int
	defServer                                             serverOpts
	defaultBackend                                        string
	defaultBackendLine                                    int
	maxconn                                               int
	tcp                                                   bool // mode tcp
}

type httpCheck struct{ method, path, host string }

// serverOpts are the options of a server line (or default-server) that
// Sluice takes, per backend.
type serverOpts struct {
	weight, maxconn, fall, rise int
	inter, slowstart            time.Duration
	check, backup               bool
	proto                       string // "h2" from `proto h2`
}

type outServer struct {
	Address string `yaml:"address"`
	Weight  int    `yaml:"weight,omitempty"`
	Backup  bool   `yaml:"backup,omitempty"`
}

type outH2C struct {
	MaxStreamsPerConn int `yaml:"max_streams_per_conn"`
}
type outH1 struct {
	ConnsPerServer int `yaml:"conns_per_server"`
}
type outQueue struct {
	Timeout string `yaml:"timeout"`
}
type outTimeouts struct {
	Connect        string `yaml:"connect,omitempty"`
	ResponseHeader string `yaml:"response_header,omitempty"`
	Idle           string `yaml:"idle,omitempty"`
}
type outHealth struct {
	Enabled      bool   `yaml:"enabled"`
	Method       string `yaml:"method,omitempty"`
	Path         string `yaml:"path"`
	Host         string `yaml:"host,omitempty"`
	ExpectStatus int    `yaml:"expect_status,omitempty"`
	Interval     string `yaml:"interval"`
	Timeout      string `yaml:"timeout"`
	Fall         int    `yaml:"fall"`
	Rise         int    `yaml:"rise"`
	SlowStart    string `yaml:"slow_start,omitempty"`
}

type outBackend struct {
	Protocol string      `yaml:"protocol,omitempty"`
	Balance  string      `yaml:"balance,omitempty"`
	Servers  []outServer `yaml:"servers,omitempty"`
	// Discovery comes from a server-template (discovery.go).
	Discovery *outDiscovery `yaml:"discovery,omitempty"`
	H2C       *outH2C       `yaml:"h2c,omitempty"`
	H1        *outH1        `yaml:"h1,omitempty"`
	Queue     *outQueue     `yaml:"queue,omitempty"`
	Timeouts  *outTimeouts  `yaml:"timeouts,omitempty"`
	Retries   *int          `yaml:"retries,omitempty"`
	Health    *outHealth    `yaml:"health,omitempty"`
}

type outLimits struct {
	MaxConns          int    `yaml:"max_conns,omitempty"`
	ReadHeaderTimeout string `yaml:"read_header_timeout,omitempty"`
	IdleTimeout       string `yaml:"idle_timeout,omitempty"`
}

type outConfig struct {
	Listen     string                 `yaml:"listen,omitempty"`
	Limits     *outLimits             `yaml:"limits,omitempty"`
	ErrorPages map[int]string         `yaml:"error_pages,omitempty"`
	Backends   map[string]*outBackend `yaml:"backends"`
	Routes     []Route                `yaml:"routes"`
}

type backendOut struct {
	name, haName string
	line         int
	b            *outBackend
}

type pendingRoute struct {
	Route
	line int // the use_backend or default_backend line
}

type converter struct {
	dir        string
	notes      []Note
	named      map[string]*settings // named defaults sections
	last       *settings            // the defaults in effect
	backends   []backendOut
	backendIdx map[string]int // HAProxy name -> index in backends
	routes     []pendingRoute
	errorPages map[int]string
	listen     string
	limits     outLimits
	frontends  int // frontends and listens with a bind seen
	globalMax  int
	resolvers  map[string]*resolvers // resolvers sections by name
}

func (c *converter) note(d Directive, kind NoteKind, format string, args ...any) {
	c.notes = append(c.notes, Note{Line: d.Line, Directive: d.String(), Kind: kind, Reason: fmt.Sprintf(format, args...)})
}

func newSettings() *settings { return &settings{retries: -1} }

func (c *converter) run(f *File) {
	c.last = newSettings()
	// Backends may name resolvers sections that come after them.
	for _, s := range f.Sections {
		if s.Kind == "resolvers" {
			c.resolversSection(s)
		}
	}
	for _, s := range f.Sections {
		switch s.Kind {
		case "resolvers":
		case "global":
			c.global(s)
		case "defaults":
			st := c.inherit(s)
			c.proxy(s, st)
			c.last = st
			if s.Name != "" {
				c.named[s.Name] = st
			}
		case "frontend", "backend", "listen":
			c.proxy(s, c.inherit(s))
		default:
			reason := "no Sluice equivalent"
			switch s.Kind {
			case "userlist":
				reason = "Sluice has no HTTP authentication"
			case "peers":
				reason = "Sluice has no stick tables to share"
			case "cache":
				reason = "Sluice does not cache responses"
			case "http-errors":
				reason = "use errorfile lines (translated to error_pages)"
			}
			c.notes = append(c.notes, Note{Line: s.Line, Directive: strings.TrimSpace(s.Kind + " " + s.Name),
				Kind: Untranslated, Reason: fmt.Sprintf("section with its %d lines: %s", len(s.Directives), reason)})
		}
	}
}

// inherit copies the defaults a section starts from: "from NAME"
// (HAProxy 2.x/3.x named defaults) or the last defaults section.
func (c *converter) inherit(s *Section) *settings {
	base := c.last
	if len(s.Args) >= 2 && s.Args[0] == "from" {
		if named, ok := c.named[s.Args[1]]; ok {
			base = named
		} else {
			c.notes = append(c.notes, Note{Line: s.Line, Directive: s.Kind + " " + s.Name + " from " + s.Args[1],
				Kind: Untranslated, Reason: "no defaults section named " + s.Args[1] + " before it; the last defaults apply"})
		}
	}
	st := *base
	if base.chk != nil {
		chk := *base.chk
		st.chk = &chk
	}
	return &st
}

func (c *converter) global(s *Section) {
	for _, d := range s.Directives {
		if d.Keyword() == "maxconn" && len(d.Words) == 2 {
			if n, err := strconv.Atoi(d.Words[1]); err == nil && n > 0 {
				c.globalMax = n
				continue
			}
		}
		c.note(d, Untranslated, "%s", globalReason(d.Keyword()))
	}
}

func globalReason(k string) string {
	switch {
	case k == "log" || k == "log-send-hostname" || k == "log-tag":
		return "Sluice logs to stderr and writes its access log per access_log"
	case k == "stats":
		return "Sluice's admin listener serves /metrics (Prometheus) and the stats page"
	case k == "daemon" || k == "user" || k == "group" || k == "chroot" || k == "pidfile" || k == "uid" || k == "gid" || k == "master-worker":
		return "process management is systemd's (deploy/systemd) or the container's"
	case k == "nbproc" || k == "nbthread" || k == "cpu-map":
		return "Sluice uses every CPU it is given (GOMAXPROCS)"
	case strings.HasPrefix(k, "ssl-") || k == "ca-base" || k == "crt-base":
		return "TLS is configured with tls_listen and tls_certs"
	case strings.HasPrefix(k, "tune."):
		return "no Sluice equivalent of HAProxy's buffer tuning"
	}
	return "no Sluice equivalent"
}

// proxy translates a defaults, frontend, backend or listen section.
func (c *converter) proxy(s *Section, st *settings) {
	isDefaults := s.Kind == "defaults"
	hasBackend := s.Kind == "backend" || s.Kind == "listen"
	hasFrontend := s.Kind == "frontend" || s.Kind == "listen"
	acls := map[string]*acl{}
	var servers []serverLine
	var tmpl serverLine // a server-template's discovery, if any
	var binds []Directive
	var uses []Directive
	for _, d := range s.Directives {
		w := d.Words
		switch k := d.Keyword(); {
		case k == "mode" && len(w) == 2:
			st.tcp = w[1] != "http"
		case k == "timeout" && len(w) == 3:
			c.timeout(d, st)
		case k == "retries" && len(w) == 2:
			if n, err := strconv.Atoi(w[1]); err == nil && n >= 0 {
				if n > 10 {
					c.note(d, Translated, "Sluice allows at most 10 retries; set to 10")
					n = 10
				}
				st.retries = n
			} else {
				c.note(d, Untranslated, "not a retry count")
			}
		case k == "balance" && len(w) >= 2:
			switch w[1] {
			case "roundrobin", "static-rr":
				st.balance = "round_robin"
			case "leastconn":
				st.balance = "least_request"
			default:
				c.note(d, Untranslated, "Sluice balances round_robin (weighted) or least_request; the backend keeps round_robin")
			}
		case k == "option" && len(w) >= 2 && w[1] == "httpchk":
			c.httpchk(d, st)
		case k == "http-check":
			c.httpCheckRule(d, st)
		case k == "option" && len(w) >= 2 && (w[1] == "http-server-close" || w[1] == "httpclose" || w[1] == "forceclose" ||
			w[1] == "http-keep-alive" || w[1] == "http-pretend-keepalive" || w[1] == "prefer-last-server"):
			c.note(d, Funnel, "%s", funnelReason)
		case k == "http-reuse":
			c.note(d, Funnel, "%s", funnelReason)
		case k == "errorfile" && len(w) == 3:
			c.errorfile(d)
		case k == "maxconn" && len(w) == 2 && !hasBackend:
			if n, err := strconv.Atoi(w[1]); err == nil && n > 0 {
				st.maxconn = n
			} else {
				c.note(d, Untranslated, "not a connection count")
			}
		case k == "default-server":
			var opts serverOpts
			opts, _ = c.serverOptions(d, w[1:], st.defServer)
			st.defServer = opts
		case k == "default_backend" && len(w) == 2 && (hasFrontend || isDefaults):
			st.defaultBackend, st.defaultBackendLine = w[1], d.Line
		case k == "server" && hasBackend:
			if sl, ok := c.server(d, st.defServer); ok {
				servers = append(servers, sl)
			}
		case k == "server-template" && hasBackend:
			c.addTemplate(d, st, &tmpl)
		case k == "bind" && hasFrontend:
			binds = append(binds, d)
		case k == "acl" && len(w) >= 3:
			c.acl(d, acls)
		case k == "use_backend" && hasFrontend:
			uses = append(uses, d)
		default:
			c.note(d, Untranslated, "%s", proxyReason(s.Kind, w))
		}
	}
	if st.tcp && !isDefaults {
		c.note(Directive{Line: s.Line, Words: []string{s.Kind, s.Name}}, Untranslated,
			"mode tcp: Sluice is an HTTP gateway; the whole section is left out")
		return
	}
	if hasFrontend {
		c.frontend(s, st, binds, uses, acls)
	}
	if hasBackend {
		if tmpl.disc != nil {
			servers = append(servers, tmpl)
		}
		c.backend(s, st, servers)
	}
}

func proxyReason(kind string, w []string) string {
	k := w[0]
	opt := ""
	if len(w) > 1 {
		opt = w[1]
	}
	switch {
	case k == "log" || k == "log-format" || k == "capture" || (k == "option" && (opt == "httplog" || opt == "dontlognull" || opt == "tcplog" || opt == "log-health-checks" || opt == "dontlog-normal")):
		return "Sluice's access log has its own fields (access_log.mode, format, path)"
	case k == "option" && opt == "forwardfor":
		return "not needed: Sluice always sets X-Forwarded-For, -Proto and -Host (trusted_proxies keeps a load balancer's)"
	case k == "option" && opt == "redispatch":
		return "not needed: Sluice sends a failed request again to another server where that is safe (retries)"
	case k == "stats" || k == "monitor-uri":
		return "Sluice's admin listener serves /metrics, /healthz, /readyz and the stats page"
	case k == "timeout":
		return "no Sluice timeout with this meaning"
	case k == "cookie" || k == "stick-table" || k == "stick" || k == "hash-type":
		return "Sluice has no sticky sessions"
	case k == "compression":
		return "Sluice does not compress responses"
	case strings.HasPrefix(k, "http-request") || strings.HasPrefix(k, "http-response") || strings.HasPrefix(k, "tcp-request") ||
		strings.HasPrefix(k, "tcp-response") || k == "http-after-response" || k == "redirect" || k == "reqadd" || k == "rspadd" ||
		k == "reqrep" || k == "rsprep" || k == "reqidel" || k == "rspidel":
		return "Sluice has no request or response rules"
	case k == "server" || k == "server-template" || k == "balance":
		return "only meaningful in a backend"
	case k == "bind" || k == "use_backend" || k == "default_backend":
		return "only meaningful in a frontend"
	case k == "maxconn":
		return "a backend's maxconn has no Sluice equivalent; its queue is bounded by queue.max_pending"
	case k == "option":
		return "no Sluice equivalent of option " + opt
	}
	return "no Sluice equivalent"
}

func (c *converter) timeout(d Directive, st *settings) {
	v, err := parseTime(d.Words[2])
	if err != nil || v <= 0 {
		c.note(d, Untranslated, "not a positive time")
		return
	}
	field := map[string]*time.Duration{
		"connect": &st.connect, "server": &st.server, "queue": &st.queue, "check": &st.check,
		"http-request": &st.httpRequest, "http-keep-alive": &st.keepAlive,
	}
	if p := field[d.Words[1]]; p != nil {
		*p = v
		return
	}
	switch d.Words[1] {
	case "client":
		c.note(d, Untranslated, "Sluice bounds idle clients with limits.idle_timeout (from timeout http-keep-alive) and slow request heads with limits.read_header_timeout (from timeout http-request)")
	case "tunnel":
		c.note(d, Untranslated, "a WebSocket is closed after limits.idle_timeout without traffic")
	default:
		c.note(d, Untranslated, "no Sluice timeout with this meaning")
	}
}

// httpchk reads `option httpchk [METHOD] [URI] [VERSION[\r\nHeader: v]]`.
func (c *converter) httpchk(d Directive, st *settings) {
	chk := &httpCheck{method: "OPTIONS", path: "/"}
	args := d.Words[2:]
	switch len(args) {
	case 0:
	case 1:
		chk.path = args[0]
	default:
		chk.method, chk.path = strings.ToUpper(args[0]), args[1]
		if len(args) >= 3 {
			c.checkHeaders(d, chk, strings.Join(args[2:], " "))
		}
	}
	if !strings.HasPrefix(chk.path, "/") {
		c.note(d, Untranslated, "the check path must start with /")
		return
	}
	st.chk = chk
}

// checkHeaders takes the Host header out of HAProxy 1.8's
// "HTTP/1.1\r\nHost:\ example.com" check version.
func (c *converter) checkHeaders(d Directive, chk *httpCheck, version string) {
	lines := strings.Split(strings.ReplaceAll(version, "\r\n", "\n"), "\n")
	for _, h := range lines[1:] {
		name, val, ok := strings.Cut(h, ":")
		switch {
		case strings.TrimSpace(h) == "":
		case ok && strings.EqualFold(strings.TrimSpace(name), "host"):
			chk.host = strings.TrimSpace(val)
		default:
			c.note(d, Translated, "health checks send no extra header %q", strings.TrimSpace(h))
		}
	}
}

// httpCheckRule reads HAProxy 2.x's http-check send and expect.
func (c *converter) httpCheckRule(d Directive, st *settings) {
	w := d.Words
	if len(w) < 2 {
		c.note(d, Untranslated, "incomplete")
		return
	}
	switch w[1] {
	case "send":
		if st.chk == nil {
			st.chk = &httpCheck{method: "OPTIONS", path: "/"}
		}
		for i := 2; i+1 < len(w); i += 2 {
			switch w[i] {
			case "meth":
				st.chk.method = strings.ToUpper(w[i+1])
			case "uri":
				st.chk.path = w[i+1]
			case "hdr":
				if i+2 < len(w) && strings.EqualFold(w[i+1], "host") {
					st.chk.host = w[i+2]
					i++
				} else {
					c.note(d, Translated, "health checks send no extra header %q", w[i+1])
					i++
				}
			default:
				c.note(d, Translated, "%s %s is not part of Sluice's health check", w[i], w[i+1])
			}
		}
	case "expect":
		if len(w) == 4 && w[2] == "status" {
			if n, err := strconv.Atoi(w[3]); err == nil && n >= 100 && n <= 599 {
				st.expectStatus = n
				return
			}
		}
		c.note(d, Untranslated, "Sluice's health check expects one status code (http-check expect status N)")
	default:
		c.note(d, Untranslated, "Sluice's health check is one request and one expected status")
	}
}

func (c *converter) errorfile(d Directive) {
	code, err := strconv.Atoi(d.Words[1])
	if err != nil || code < 400 || code > 599 {
		c.note(d, Untranslated, "Sluice replaces only the 4xx and 5xx answers it makes itself")
		return
	}
	path := d.Words[2]
	if !filepath.IsAbs(path) {
		if abs, err := filepath.Abs(filepath.Join(c.dir, path)); err == nil {
			path = abs
		}
	}
	if prev, ok := c.errorPages[code]; ok {
		if prev != path {
			c.note(d, Untranslated, "error pages are global in Sluice: error_pages.%d is already %s", code, prev)
		}
		return
	}
	c.errorPages[code] = path
	c.note(d, Translated, "error_pages.%d; HAProxy's file is a whole HTTP response and Sluice sends the file as the body: keep only the body, and name it .html, .json or .txt for its Content-Type", code)
}

// serverLine is a translated server line, or a server-template's
// discovery (disc set, addr empty).
type serverLine struct {
	d    Directive
	addr string
	opts serverOpts
	disc *outDiscovery
}

// Server options that take an argument and that Sluice does not use.
var serverArgOpts = map[string]bool{
	"addr": true, "port": true, "cookie": true, "crt": true, "ca-file": true, "crl-file": true, "resolvers": true,
	"init-addr": true, "alpn": true, "npn": true, "check-proto": true, "sni": true, "maxqueue": true, "minconn": true,
	"on-error": true, "on-marked-down": true, "on-marked-up": true, "error-limit": true, "observe": true,
	"resolve-prefer": true, "resolve-net": true, "source": true, "agent-port": true, "agent-inter": true, "agent-send": true,
	"agent-addr": true, "id": true, "namespace": true, "pool-max-conn": true, "pool-purge-delay": true, "pool-low-conn": true,
	"max-reuse": true, "ssl-min-ver": true, "ssl-max-ver": true, "ciphers": true, "ciphersuites": true, "verify": true,
	"verifyhost": true, "track": true, "redir": true, "fastinter": true, "downinter": true, "check-sni": true,
	"check-alpn": true, "proxy-v2-options": true, "tcp-ut": true, "set-proxy-v2-tlv-fmt": true, "guid": true,
	"hash-key": true, "log-proto": true, "ws": true, "shard": true, "curves": true, "sigalgs": true,
}

// serverOptions reads the options of a server or default-server line on
// top of base.
func (c *converter) serverOptions(d Directive, args []string, base serverOpts) (serverOpts, bool) {
	o := base
	ok := true
	num := func(i int, lo, hi int) (int, bool) {
		if i+1 >= len(args) {
			return 0, false
		}
		n, err := strconv.Atoi(args[i+1])
		return n, err == nil && n >= lo && n <= hi
	}
	dur := func(i int) (time.Duration, bool) {
		if i+1 >= len(args) {
			return 0, false
		}
		v, err := parseTime(args[i+1])
		return v, err == nil && v > 0
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		var good bool
		switch a {
		case "weight":
			o.weight, good = num(i, 0, 256)
		case "maxconn":
			o.maxconn, good = num(i, 0, 1<<30)
		case "fall":
			o.fall, good = num(i, 1, 100)
		case "rise":
			o.rise, good = num(i, 1, 100)
		case "inter":
			o.inter, good = dur(i)
		case "slowstart":
			o.slowstart, good = dur(i)
		case "proto":
			good = i+1 < len(args) && args[i+1] == "h2"
			if good {
				o.proto = "h2"
			}
		case "check":
			o.check = true
			continue
		case "no-check":
			o.check = false
			continue
		case "backup":
			o.backup = true
			continue
		case "no-backup":
			o.backup = false
			continue
		default:
			if serverArgOpts[a] {
				c.note(d, Untranslated, "option %s %s: no Sluice equivalent", a, at(args, i+1))
				i++
			} else {
				c.note(d, Untranslated, "option %s: %s", a, serverFlagReason(a))
				if a == "disabled" {
					ok = false
				}
			}
			continue
		}
		if !good {
			c.note(d, Untranslated, "option %s %s: out of range or not understood", a, at(args, i+1))
		}
		i++
	}
	return o, ok
}

func at(s []string, i int) string {
	if i < len(s) {
		return s[i]
	}
	return ""
}

func serverFlagReason(a string) string {
	switch a {
	case "ssl", "check-ssl", "no-ssl", "no-sslv3", "no-tlsv10", "no-tlsv11", "no-tlsv12", "no-tlsv13", "force-tlsv12", "force-tlsv13":
		return "Sluice speaks cleartext h2c or HTTP/1.1 to its servers"
	case "send-proxy", "send-proxy-v2", "send-proxy-v2-ssl", "check-send-proxy":
		return "Sluice sends X-Forwarded-For, not a PROXY header, to its servers"
	case "disabled":
		return "the server is left out"
	case "agent-check":
		return "Sluice has no agent checks"
	}
	return "no Sluice equivalent"
}

func (c *converter) server(d Directive, def serverOpts) (serverLine, bool) {
	w := d.Words
	if len(w) < 3 {
		c.note(d, Untranslated, "a server needs a name and an address")
		return serverLine{}, false
	}
	addr, err := serverAddress(w[2])
	if err != nil {
		c.note(d, Untranslated, "%v", err)
		return serverLine{}, false
	}
	opts, ok := c.serverOptions(d, w[3:], def)
	if !ok {
		return serverLine{}, false
	}
	if opts.weight == 0 && slices.Contains(w[3:], "weight") {
		c.note(d, Untranslated, "weight 0 takes no traffic; the server is left out")
		return serverLine{}, false
	}
	return serverLine{d: d, addr: addr, opts: opts}, true
}

// serverAddress turns HAProxy's address (host:port, ipv4@, ipv6@, an IPv6
// address with the port after its last colon) into host:port.
func serverAddress(a string) (string, error) {
	for _, p := range []string{"ipv4@", "ipv6@"} {
		a = strings.TrimPrefix(a, p)
	}
	if strings.Contains(a, "@") || strings.HasPrefix(a, "/") {
		return "", fmt.Errorf("address %q: Sluice connects to servers over TCP host:port only", a)
	}
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		i := strings.LastIndexByte(a, ':')
		if i < 0 {
			return "", fmt.Errorf("address %q has no port: HAProxy then uses the client's destination port, Sluice needs one", a)
		}
		host, port = a[:i], a[i+1:]
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", fmt.Errorf("address %q: port must be 1..65535 (port offsets and ranges are not translated)", a)
	}
	if host == "" || host == "*" {
		return "", fmt.Errorf("address %q has no host", a)
	}
	return net.JoinHostPort(host, port), nil
}

var notInBackendName = regexp.MustCompile(`[^A-Za-z0-9_-]`)

// sluiceName maps an HAProxy proxy name to a Sluice backend name (letters,
// digits, '_' and '-').
func sluiceName(n string) string { return notInBackendName.ReplaceAllString(n, "_") }

func (c *converter) backend(s *Section, st *settings, servers []serverLine) {
	hd := Directive{Line: s.Line, Words: []string{s.Kind, s.Name}}
	if s.Name == "" {
		c.note(hd, Untranslated, "a proxy needs a name")
		return
	}
	if _, dup := c.backendIdx[s.Name]; dup {
		c.note(hd, Untranslated, "a backend of this name is already translated")
		return
	}
	if len(servers) == 0 {
		c.note(hd, Untranslated, "no server translated: the backend and the routes to it are left out")
		return
	}
	name := sluiceName(s.Name)
	for _, b := range c.backends {
		if b.name == name {
			c.note(hd, Untranslated, "its Sluice name %q is taken by %s (line %d)", name, b.haName, b.line)
			return
		}
	}
	if name != s.Name {
		c.note(hd, Translated, "the Sluice backend is named %q (letters, digits, '_' and '-')", name)
	}
	b := &outBackend{Balance: st.balance}
	if b.Balance == "round_robin" {
		b.Balance = "" // Sluice's default
	}
	nonBackup := false
	first := servers[0].opts
	var maxconn int
	check, h2 := false, true
	for _, sv := range servers {
		w := sv.opts.weight
		if w == 1 {
			w = 0
		}
		if sv.disc != nil {
			b.Discovery = sv.disc
		} else {
			b.Servers = append(b.Servers, outServer{Address: sv.addr, Weight: w, Backup: sv.opts.backup})
		}
		nonBackup = nonBackup || !sv.opts.backup
		if sv.opts.maxconn > 0 && (maxconn == 0 || sv.opts.maxconn < maxconn) {
			maxconn = sv.opts.maxconn
		}
		check = check || sv.opts.check
		h2 = h2 && sv.opts.proto == "h2"
		o := sv.opts
		if o.inter != first.inter || o.fall != first.fall || o.rise != first.rise || o.maxconn != first.maxconn || o.check != first.check {
			c.note(sv.d, Translated,
				"check, inter, fall, rise and maxconn are per backend in Sluice: the backend takes the first server's (maxconn: the lowest)")
		}
	}
	if !nonBackup {
		c.note(hd, Translated, "every server is a backup: the first one is made a regular server")
		b.Servers[0].Backup = false
	}
	if h2 {
		b.Protocol = "h2c"
	}
	if maxconn > 0 {
		streams := min(10000, (maxconn+1)/2)
		b.H2C = &outH2C{MaxStreamsPerConn: max(1, streams)}
		b.H1 = &outH1{ConnsPerServer: min(100000, maxconn)}
		c.note(Directive{Line: servers[0].d.Line, Words: []string{"maxconn", strconv.Itoa(maxconn)}}, Translated,
			"at most %d requests at a time per server: h1.conns_per_server %d, and h2c.max_streams_per_conn %d on each of the 2 h2c connections; the funnel carries them on 2 connections instead of %d",
			maxconn, b.H1.ConnsPerServer, b.H2C.MaxStreamsPerConn, maxconn)
	}
	if st.queue > 0 {
		b.Queue = &outQueue{Timeout: formatDuration(st.queue)}
	}
	if st.connect > 0 || st.server > 0 {
		b.Timeouts = &outTimeouts{Connect: formatDuration(st.connect), ResponseHeader: formatDuration(st.server), Idle: formatDuration(st.server)}
	}
	if st.retries >= 0 {
		r := st.retries
		b.Retries = &r
	}
	if check {
		c.health(hd, b, st, first)
	}
	c.backendIdx[s.Name] = len(c.backends)
	c.backends = append(c.backends, backendOut{name: name, haName: s.Name, line: s.Line, b: b})
}

func (c *converter) health(hd Directive, b *outBackend, st *settings, o serverOpts) {
	if st.chk == nil {
		c.note(hd, Untranslated, "check without option httpchk is a TCP connect check: Sluice finds unreachable servers itself (passive health and probes), active checks need an HTTP path")
		return
	}
	inter := o.inter
	if inter == 0 {
		inter = 2 * time.Second // HAProxy's default
	}
	timeout := inter
	if st.check > 0 && st.check < inter {
		timeout = st.check
	}
	fall, rise := o.fall, o.rise
	if fall == 0 {
		fall = 3
	}
	if rise == 0 {
		rise = 2
	}
	h := &outHealth{Enabled: true, Path: st.chk.path, Host: st.chk.host, ExpectStatus: st.expectStatus,
		Interval: formatDuration(inter), Timeout: formatDuration(timeout), Fall: fall, Rise: rise, SlowStart: formatDuration(o.slowstart)}
	if st.chk.method != "GET" {
		h.Method = st.chk.method
	}
	if h.ExpectStatus == 200 {
		h.ExpectStatus = 0
	}
	if st.expectStatus == 0 {
		// HAProxy accepts any 2xx or 3xx; Sluice one status.
		h.ExpectStatus = 0
		c.note(hd, Translated, "health checks expect status 200 (HAProxy accepts any 2xx or 3xx; set health.expect_status if the check answers otherwise)")
	}
	b.Health = h
}

// acl is a translated ACL: the hosts or path prefixes it matches.
type acl struct {
	hosts, paths []string
	bad          string // why it cannot be used, if it cannot
}

func (c *converter) acl(d Directive, acls map[string]*acl) {
	name := d.Words[1]
	a := acls[name]
	if a == nil {
		a = &acl{}
		acls[name] = a
	}
	hosts, paths, err := aclValues(d.Words[2:])
	if err != nil {
		a.bad = fmt.Sprintf("acl %s (line %d) is not translated", name, d.Line)
		c.note(d, Untranslated, "%v", err)
		return
	}
	a.hosts = append(a.hosts, hosts...)
	a.paths = append(a.paths, paths...)
}

// aclValues reads CRITERION [flags] VALUE... for the criteria Sluice's
// routes can express: the Host header (exact, or a domain suffix with a
// leading dot) and a path prefix.
func aclValues(w []string) (hosts, paths []string, err error) {
	if len(w) == 0 {
		return nil, nil, errors.New("a condition without a criterion")
	}
	crit := strings.ToLower(w[0])
	var vals []string
	match := ""
	for i := 1; i < len(w); i++ {
		switch w[i] {
		case "-i":
		case "-m":
			if i+1 < len(w) {
				match = w[i+1]
				i++
			}
		case "--":
			vals = append(vals, w[i+1:]...)
			i = len(w)
		case "-f", "-M", "-u", "-n":
			return nil, nil, fmt.Errorf("flag %s: values from files and maps are not translated", w[i])
		default:
			vals = append(vals, w[i])
		}
	}
	if len(vals) == 0 {
		return nil, nil, errors.New("no value to match")
	}
	switch {
	case (crit == "hdr(host)" || crit == "req.hdr(host)") && (match == "" || match == "str"):
		for _, v := range vals {
			h := strings.ToLower(v)
			if hh, _, err := net.SplitHostPort(h); err == nil {
				h = hh // Sluice ignores the port
			}
			hosts = append(hosts, h)
		}
	case (crit == "hdr_end(host)" || ((crit == "hdr(host)" || crit == "req.hdr(host)") && match == "end")):
		for _, v := range vals {
			if !strings.HasPrefix(v, ".") {
				return nil, nil, fmt.Errorf("host suffix %q: Sluice matches a whole domain (*.example.com), write it with a leading dot", v)
			}
			hosts = append(hosts, "*"+strings.ToLower(v))
		}
	case crit == "path_beg" || ((crit == "path" || crit == "req.path") && match == "beg"):
		for _, v := range vals {
			if !strings.HasPrefix(v, "/") {
				return nil, nil, fmt.Errorf("path prefix %q does not start with /", v)
			}
		}
		paths = vals
	default:
		return nil, nil, fmt.Errorf("criterion %s: Sluice routes on the Host header (hdr(host), hdr_end(host)) and path prefixes (path_beg) only", w[0])
	}
	return hosts, paths, nil
}

func (c *converter) frontend(s *Section, st *settings, binds, uses []Directive, acls map[string]*acl) {
	first := c.frontends == 0
	if len(binds) > 0 {
		c.frontends++
	}
	for _, d := range binds {
		if !first || c.listen != "" {
			c.note(d, Untranslated, "Sluice has one cleartext listener (listen), taken from the first bind")
			continue
		}
		c.bind(d)
	}
	if first && len(binds) > 0 {
		if st.httpRequest > 0 {
			c.limits.ReadHeaderTimeout = formatDuration(st.httpRequest)
		}
		if st.keepAlive > 0 {
			c.limits.IdleTimeout = formatDuration(st.keepAlive)
		}
		c.limits.MaxConns = st.maxconn
	}
	for _, d := range uses {
		c.useBackend(d, acls)
	}
	switch {
	case s.Kind == "listen":
		c.routes = append(c.routes, pendingRoute{Route{Host: "*", PathPrefix: "/", Backend: s.Name}, s.Line})
	case st.defaultBackend != "":
		c.routes = append(c.routes, pendingRoute{Route{Host: "*", PathPrefix: "/", Backend: st.defaultBackend}, st.defaultBackendLine})
	}
}

func (c *converter) bind(d Directive) {
	w := d.Words
	if len(w) < 2 {
		c.note(d, Untranslated, "no address")
		return
	}
	for _, o := range w[2:] {
		switch o {
		case "ssl":
			c.note(d, Untranslated, "TLS: set tls_listen and tls_certs (an HAProxy crt PEM holds the key: give it as both cert and key)")
			return
		case "accept-proxy":
			c.note(d, Untranslated, "PROXY protocol: set proxy_protocol and proxy_protocol_from (the load balancers' networks)")
			return
		}
	}
	if len(w) > 2 {
		c.note(d, Translated, "listen %s; bind options %s have no Sluice equivalent", w[1], strings.Join(w[2:], " "))
	}
	addrs := strings.Split(w[1], ",")
	a := strings.TrimPrefix(strings.TrimPrefix(addrs[0], "ipv4@"), "ipv6@")
	if len(addrs) > 1 {
		c.note(d, Translated, "Sluice listens on one address: %s", addrs[0])
	}
	i := strings.LastIndexByte(a, ':')
	if i < 0 {
		c.note(d, Untranslated, "address %q has no port", a)
		return
	}
	host, port := a[:i], a[i+1:]
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		c.note(d, Untranslated, "port %q: Sluice listens on one port", port)
		return
	}
	if host == "*" || host == "0.0.0.0" || host == "::" {
		host = ""
	}
	c.listen = net.JoinHostPort(host, port)
}

// useBackend translates `use_backend NAME if COND`: COND is ACL names
// joined by AND (blanks) and OR (|| or "or"), or anonymous ACLs in braces.
func (c *converter) useBackend(d Directive, acls map[string]*acl) {
	w := d.Words
	if len(w) < 4 || w[2] != "if" {
		c.note(d, Untranslated, "only use_backend NAME if CONDITION is translated (no unless, no dynamic names)")
		return
	}
	if strings.Contains(w[1], "%") {
		c.note(d, Untranslated, "dynamic backend names are not translated")
		return
	}
	var terms [][]*acl
	var cur []*acl
	for i := 3; i < len(w); i++ {
		switch t := w[i]; {
		case t == "||" || t == "or":
			terms, cur = append(terms, cur), nil
		case t == "{":
			j := slices.Index(w[i:], "}")
			if j < 0 {
				c.note(d, Untranslated, "unterminated anonymous ACL")
				return
			}
			hosts, paths, err := aclValues(w[i+1 : i+j])
			if err != nil {
				c.note(d, Untranslated, "%v", err)
				return
			}
			cur = append(cur, &acl{hosts: hosts, paths: paths})
			i += j
		case strings.HasPrefix(t, "!"):
			c.note(d, Untranslated, "Sluice's routes cannot negate a condition")
			return
		default:
			a := acls[t]
			if a == nil {
				c.note(d, Untranslated, "ACL %s is not defined in this section", t)
				return
			}
			if a.bad != "" {
				c.note(d, Untranslated, "%s", a.bad)
				return
			}
			cur = append(cur, a)
		}
	}
	terms = append(terms, cur)
	var routes []Route
	for _, and := range terms {
		var hosts, paths []string
		for _, a := range and {
			if len(a.hosts) > 0 {
				if hosts != nil {
					c.note(d, Untranslated, "two Host conditions at once")
					return
				}
				hosts = a.hosts
			}
			if len(a.paths) > 0 {
				if paths != nil {
					c.note(d, Untranslated, "two path conditions at once")
					return
				}
				paths = a.paths
			}
		}
		if hosts == nil {
			hosts = []string{"*"}
		}
		if paths == nil {
			paths = []string{"/"}
		}
		for _, h := range hosts {
			for _, p := range paths {
				routes = append(routes, Route{Host: h, PathPrefix: p, Backend: w[1]})
			}
		}
	}
	for _, r := range routes {
		c.routes = append(c.routes, pendingRoute{r, d.Line})
	}
}

func (c *converter) finish() (*Result, error) {
	if len(c.backends) == 0 {
		return nil, errors.New("no backend with a server to translate")
	}
	out := outConfig{Listen: c.listen, Backends: map[string]*outBackend{}}
	if c.limits.MaxConns == 0 || (c.globalMax > 0 && c.globalMax < c.limits.MaxConns) {
		c.limits.MaxConns = c.globalMax
	}
	if c.limits != (outLimits{}) {
		l := c.limits
		out.Limits = &l
	}
	if len(c.errorPages) > 0 {
		out.ErrorPages = c.errorPages
	}
	for _, b := range c.backends {
		out.Backends[b.name] = b.b
	}
	seen := map[Route]string{} // host and path -> backend
	for _, r := range c.routes {
		i, ok := c.backendIdx[r.Backend]
		if !ok {
			c.notes = append(c.notes, Note{Line: r.line, Directive: "route to " + r.Backend, Kind: Untranslated,
				Reason: "backend " + r.Backend + " is not translated"})
			continue
		}
		r.Backend = c.backends[i].name
		key := Route{Host: r.Host, PathPrefix: r.PathPrefix}
		if prev, dup := seen[key]; dup {
			if prev != r.Backend {
				c.notes = append(c.notes, Note{Line: r.line, Directive: fmt.Sprintf("route %s%s to %s", r.Host, r.PathPrefix, r.Backend),
					Kind: Untranslated, Reason: "an earlier route (to " + prev + ") already matches the same host and path: Sluice has one set of routes for all its listeners"})
			}
			continue
		}
		seen[key] = r.Backend
		out.Routes = append(out.Routes, r.Route)
	}
	if len(out.Routes) == 0 {
		// Without a frontend, send everything to the first backend.
		out.Routes = []Route{{Host: "*", PathPrefix: "/", Backend: c.backends[0].name}}
		c.notes = append(c.notes, Note{Line: c.backends[0].line, Directive: "backend " + c.backends[0].haName, Kind: Translated,
			Reason: "no frontend route was translated: every request goes to this backend"})
	}
	y, err := yaml.Marshal(out)
	if err != nil {
		return nil, err
	}
	slices.SortStableFunc(c.notes, func(a, b Note) int { return a.Line - b.Line })
	header := "# Translated from HAProxy by `sluice import-haproxy`; the report on stderr lists what was not.\n"
	return &Result{YAML: append([]byte(header), y...), Routes: out.Routes, Notes: c.notes}, nil
}

// parseTime reads an HAProxy time: a number with an optional unit (us,
// ms, s, m, h, d); milliseconds without one.
func parseTime(s string) (time.Duration, error) {
	i := strings.IndexFunc(s, func(r rune) bool { return r < '0' || r > '9' })
	num, unit := s, "ms"
	if i >= 0 {
		num, unit = s[:i], s[i:]
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n > 1<<31 {
		return 0, fmt.Errorf("time %q: not a number", s)
	}
	mult := map[string]time.Duration{"us": time.Microsecond, "ms": time.Millisecond, "s": time.Second,
		"m": time.Minute, "h": time.Hour, "d": 24 * time.Hour}[unit]
	if mult == 0 {
		return 0, fmt.Errorf("time %q: unknown unit %q", s, unit)
	}
	return time.Duration(n) * mult, nil
}

// formatDuration writes d as config.FormatDuration does ("1m", not
// "1m0s"); "" for 0.
func formatDuration(d time.Duration) string {
	if d == 0 {
		return ""
	}
	return config.FormatDuration(d)
}
