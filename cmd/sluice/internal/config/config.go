// Package config loads, validates and prints Sluice's configuration.
//
// A configuration is built from three layers, later ones winning: built-in
// defaults, a YAML file, and environment variables. Every key has a
// default except backends[*].servers and routes, so a minimal file names
// one backend with one server and one route.
//
// # The schema
//
// The keys are declared once, as tagged fields of the types the gateway
// runs on: Config and its sections here, upstream.Config (a backend, so
// upstream.DefaultConfig holds the backend defaults and there is no copy
// of them here), gateway.Route and gateway.CertPair. The `yaml` tag names
// the key (a dot nests it: `yaml:"timeouts.connect"`); the `check` tag
// states the valid values (validate.go's checkField lists the rules).
// Load walks these declarations to decode, Marshal to print, validate to
// check, and a test compares them with the README's key table. The YAML
// is decoded to a tree, the environment is written into that tree, and
// the tree is decoded strictly: an unknown key is an error.
//
// To add a key: add the field with its tags to the struct of its section,
// its default to Default, DefaultLimits or upstream.DefaultConfig, and a
// row to the README's table. Only a rule that involves two keys, or that
// a tag cannot say, needs code in validate.go.
//
// # Environment overrides
//
// A variable SLUICE_<PATH>=<VALUE> overrides one key. PATH is the key path
// with a double underscore between levels, matched lowercased, so single
// underscores inside a key name survive:
//
//	SLUICE_LISTEN=:9090                               -> listen
//	SLUICE_BACKENDS__TOMCAT__H2C__CONNS_PER_SERVER=4  -> backends.tomcat.h2c.conns_per_server
//	SLUICE_BACKENDS__TOMCAT__QUEUE__TIMEOUT=10s       -> backends.tomcat.queue.timeout
//
// The backend name in PATH is matched case-insensitively against the
// backends in the file (environment variable names are conventionally
// upper case); the environment can tune a backend but cannot add one,
// because lists (servers, routes) cannot be expressed as variables. The
// value is converted to the key's type: decimal integers, durations as
// below, strings verbatim (an empty value is an empty string, not "unset").
// SLUICE_LOG_LEVEL belongs to the command, not to this package, and is
// skipped. Any other SLUICE_ variable that names no key is an error, so a
// misspelt override fails loudly instead of being ignored.
//
// # Durations
//
// Durations use Go syntax (time.ParseDuration): "250ms", "5s", "1m30s".
// A bare number such as 5 is rejected rather than guessed at: other tools
// read it as seconds, Go's time.Duration as nanoseconds.
//
// # Errors
//
// Load and Parse report every problem at once as *Errors, one line per
// problem in the form "SOURCE: KEY: MESSAGE", where SOURCE is the file name
// or "env SLUICE_..." for a value that came from the environment.
package config

import (
	"bytes"
	"fmt"
	"maps"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/sluice-gw/sluice/gateway"
	"github.com/sluice-gw/sluice/upstream"
)

// Config is the whole gateway configuration. After Load, Parse or Quick
// every field holds a validated value: absent keys carry their defaults.
// The order of the fields is the order Marshal prints them in.
type Config struct {
	// Listen is the client-facing host:port, serving HTTP/1.1 and h2c with
	// prior knowledge on the same socket. An empty host means all
	// interfaces; port 0 picks a free port.
	Listen string `yaml:"listen"`
	// TLSListen is the host:port of the TLS listener (HTTP/1.1 and h2 by
	// ALPN), and with HTTP3 the UDP port of HTTP/3. Empty: no TLS
	// listener.
	TLSListen string `yaml:"tls_listen"`
	// TLSCerts are the certificates of TLSListen and HTTP/3, chosen by SNI;
	// required when either is on. Load checks that every pair loads, so a
	// bad file fails at start and at reload rather than at a handshake.
	TLSCerts []gateway.CertPair `yaml:"tls_certs"`
	// HTTP3 serves HTTP/3 over QUIC on TLSListen's port (UDP) and
	// advertises it with Alt-Svc on TCP responses. Requires TLSListen.
	HTTP3 bool `yaml:"http3"`
	// ProxyProtocol requires a PROXY protocol v1 or v2 header on every
	// connection to Listen and TLSListen (behind an L4 load balancer).
	// Requires ProxyProtocolFrom.
	ProxyProtocol bool `yaml:"proxy_protocol"`
	// ProxyProtocolFrom are the networks (the load balancers) whose PROXY
	// header is honoured; with ProxyProtocol, connections from any other
	// peer are closed. A bare address in the file means a single host;
	// any peer is written 0.0.0.0/0 and ::/0.
	ProxyProtocolFrom []netip.Prefix `yaml:"proxy_protocol_from"`
	// Admin is the host:port serving /metrics, /healthz and /readyz. The
	// host is required so that exposing metrics beyond localhost is an
	// explicit choice (0.0.0.0).
	Admin string `yaml:"admin"`
	// AdminToken is the bearer token ("Authorization: Bearer TOKEN") that
	// the admin API, /stats.json, /reload and pprof require; /metrics,
	// /healthz and /readyz stay open. At least 16 printable ASCII
	// characters. Required, here or through AdminTokenFile, when Admin is
	// not a loopback address. Load fills it from AdminTokenFile; Marshal
	// never prints it. Empty: none; the admin endpoints then answer
	// loopback clients only.
	AdminToken string `yaml:"admin_token"`
	// AdminTokenFile is a file holding AdminToken (surrounding white
	// space trimmed), read at start and at each reload; not with
	// AdminToken. A relative path in a config file is taken relative to
	// the file's directory. Empty: none.
	AdminTokenFile string `yaml:"admin_token_file"`
	// ShutdownGrace is how long in-flight requests may finish after
	// SIGTERM/SIGINT before their connections are cut. Parse and Quick
	// also make it every backend's DrainTimeout; code that changes it
	// afterwards must change those too.
	ShutdownGrace time.Duration `yaml:"shutdown_grace" check:"positive"`
	// Limits bound what one client may cost.
	Limits Limits `yaml:"limits"`
	// TrustedProxies are the networks whose X-Forwarded-For is kept and
	// appended to; from any other peer it is replaced. A bare address in
	// the file means a single host (/32 or /128). Nil: trust nobody.
	TrustedProxies []netip.Prefix `yaml:"trusted_proxies"`
	// ErrorPages maps a status code (400..599) to the body Sluice sends
	// instead of its short text when it answers with that status itself.
	// The files are read by Load/Parse, so a missing page fails at start,
	// not at the first error.
	ErrorPages map[int]ErrorPage `yaml:"error_pages"`
	// AccessLog is the per-request log. Fixed for the life of the
	// process except the file, which SIGHUP reopens (log rotation).
	AccessLog AccessLog `yaml:"access_log"`
	// Pprof serves net/http/pprof under /debug/pprof/ on the admin
	// listener (profiles expose internals and cost CPU while taken).
	Pprof bool `yaml:"pprof"`
	// Backends maps a backend name ([a-zA-Z0-9_-]+) to its server pool,
	// in the upstream package's own type: Name is the map key and
	// DrainTimeout is ShutdownGrace. At least one is required.
	Backends map[string]upstream.Config `yaml:"backends"`
	// Routes are matched in order; the first match wins. At least one is
	// required.
	Routes []gateway.Route `yaml:"routes"`
}

// AccessLog configures the access log: one line per request.
type AccessLog struct {
	// Mode is "off", "all", "errors" (status >= 500 and clients that
	// left, 499) or "sample" (errors plus 1 in Sample of the rest).
	Mode string `yaml:"mode" check:"off|all|errors|sample"`
	// Sample keeps 1 in Sample non-error requests in "sample" mode.
	Sample int `yaml:"sample" check:"1..1000000"`
	// Format is "json" (one object per line) or "text" (key=value).
	Format string `yaml:"format" check:"json|text"`
	// Path is "stdout", "stderr", or a file, appended to and created if
	// missing; a relative path in a config file is taken relative to the
	// file's directory.
	Path string `yaml:"path"`
}

// Access log modes, formats and standard streams.
const (
	AccessLogOff    = "off"
	AccessLogAll    = "all"
	AccessLogErrors = "errors"
	AccessLogSample = "sample"
	FormatJSON      = "json"
	FormatText      = "text"
	PathStdout      = "stdout"
	PathStderr      = "stderr"
)

// Limits bound client connections and requests. They are fixed for the
// life of the listeners: changing them needs a restart.
type Limits struct {
	// MaxConns caps open client connections across the TCP listeners;
	// beyond it new connections are closed at once.
	MaxConns int `yaml:"max_conns" check:"1..10000000"`
	// ReadHeaderTimeout bounds reading a request's headers (and a new
	// connection's first request), which cuts slowloris clients.
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout" check:"positive"`
	// IdleTimeout closes a keep-alive client connection idle this long.
	IdleTimeout time.Duration `yaml:"idle_timeout" check:"positive"`
	// MaxHeaderBytes caps a request's header block; more gets 431. The
	// upper bound, MaxHeaderBytesLimit, is the smuggling guard's.
	MaxHeaderBytes int `yaml:"max_header_bytes" check:"4096..1048576"`
	// MaxHeaderCount caps a request's header fields; more gets 431.
	MaxHeaderCount int `yaml:"max_header_count" check:"1..10000"`
	// MaxRequestBody caps request bodies in bytes; more gets 413. Zero
	// means no limit.
	MaxRequestBody int64 `yaml:"max_request_body" check:"0(no limit)|positive"`
	// H2MaxConcurrentStreams caps concurrent streams per HTTP/2 and
	// HTTP/3 client connection.
	H2MaxConcurrentStreams int `yaml:"h2_max_concurrent_streams" check:"1..10000"`
	// H2MaxResetsPerSecond closes an HTTP/2 client connection that resets
	// more streams than this within a second (rapid reset, CVE-2023-44487);
	// 0 turns the check off, leaving Go's own bound.
	H2MaxResetsPerSecond int `yaml:"h2_max_resets_per_second" check:"0..1000000"`
}

// MaxHeaderBytesLimit is the largest max_header_bytes: the HTTP/1.1
// smuggling guard keeps up to this much of a request head (plus Go's
// 4 KiB slack) and refuses a longer one with 431; under a higher limit it
// would have to let larger heads through unchecked. It is also the bound
// HTTP/2 and HTTP/3 heads are read up to before the limit is applied.
const MaxHeaderBytesLimit = 1 << 20

// ErrorPage is one custom error body.
type ErrorPage struct {
	// Path is the file the body was read from, as resolved by Load:
	// relative paths in a config file are taken relative to the file's
	// directory. The extension decides the Content-Type.
	Path string
	// Body is the file's content, at most MaxErrorPageBytes.
	Body []byte
}

// MaxErrorPageBytes caps an error page file: the bodies live in memory
// for the life of the process and are sent under load, when a backend is
// already struggling.
const MaxErrorPageBytes = 1 << 20

// Default returns the top-level defaults with no backends and no routes,
// which is not yet a valid configuration. A backend's defaults are
// upstream.DefaultConfig.
func Default() *Config {
	return &Config{
		Listen:        ":8080",
		Admin:         "127.0.0.1:9001",
		Backends:      map[string]upstream.Config{},
		ShutdownGrace: 30 * time.Second,
		Limits:        DefaultLimits(),
		AccessLog:     AccessLog{Mode: AccessLogOff, Sample: 100, Format: FormatJSON, Path: PathStdout},
	}
}

// DefaultLimits returns the client limits' defaults.
func DefaultLimits() Limits {
	return Limits{
		MaxConns:               100000,
		ReadHeaderTimeout:      10 * time.Second,
		IdleTimeout:            120 * time.Second,
		MaxHeaderBytes:         32 << 10,
		MaxHeaderCount:         100,
		MaxRequestBody:         0,
		H2MaxConcurrentStreams: 250,
		H2MaxResetsPerSecond:   100,
	}
}

// defaultRoute is a route's defaults: every host, every path.
func defaultRoute() gateway.Route { return gateway.Route{Host: "*", PathPrefix: "/"} }

// complete fills what the file does not spell out: each backend's Name
// (its key) and DrainTimeout (shutdown_grace, which also bounds how long
// a server removed by a reload may finish its requests).
func (c *Config) complete() {
	for name, b := range c.Backends {
		b.Name, b.DrainTimeout = name, c.ShutdownGrace
		c.Backends[name] = b
	}
}

// QuickBackend is the backend name Quick uses.
const QuickBackend = "default"

// quickSource is the Source of errors from Quick.
const quickSource = "command line"

// Quick builds the single-backend configuration of "sluice proxy": every
// request goes to servers (host:port each, weight 1) with the given
// protocol and conns h2c connections per server; everything else keeps
// its default. It is validated like a file, and errors name the proxy
// flags (--listen, --admin, --protocol, --to, --conns) as keys.
func Quick(listen, admin, protocol string, servers []string, conns int) (*Config, error) {
	b := upstream.DefaultConfig()
	b.Protocol = protocol
	b.H2C.ConnsPerServer = conns
	for _, addr := range servers {
		s := upstream.DefaultServerConfig()
		s.Address = addr
		b.Servers = append(b.Servers, s)
	}
	c := Default()
	c.Listen, c.Admin = listen, admin
	c.Backends[QuickBackend] = b
	r := defaultRoute()
	r.Backend = QuickBackend
	c.Routes = []gateway.Route{r}
	c.complete()

	errs := validate(c, func(string) string { return quickSource })
	if len(errs) == 0 {
		return c, nil
	}
	for i := range errs {
		errs[i].Key = quickFlag(errs[i].Key)
	}
	return nil, newErrors(errs)
}

func quickFlag(key string) string {
	prefix := "backends." + QuickBackend + "."
	switch {
	case key == "listen", key == "admin":
		return "--" + key
	case key == "admin_token":
		// No flag sets a token: a non-loopback --admin needs a file.
		return "--admin"
	case key == prefix+"protocol":
		return "--protocol"
	case key == prefix+"h2c.conns_per_server":
		return "--conns"
	case strings.HasPrefix(key, prefix+"servers"):
		return "--to"
	}
	return key
}

// Validate checks c as Load would, for configurations built in code.
// Errors carry Source "config".
func (c *Config) Validate() error {
	if errs := validate(c, func(string) string { return "config" }); len(errs) > 0 {
		return newErrors(errs)
	}
	return nil
}

// RedactedToken stands for an admin_token in Marshal's output.
const RedactedToken = "<redacted>"

// Marshal renders c as YAML that Parse accepts and that yields c again:
// the effective configuration, defaults included, keys in schema order.
// Error pages are printed as their paths; parsing the output reads the
// files again. The one exception is admin_token, never printed: as
// RedactedToken when set in the file, as "" beside the admin_token_file
// it came from.
func (c *Config) Marshal() ([]byte, error) {
	shown := *c
	if shown.AdminTokenFile != "" {
		shown.AdminToken = ""
	} else if shown.AdminToken != "" {
		shown.AdminToken = RedactedToken
	}
	v := reflect.ValueOf(&shown).Elem()
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(encodeStruct(v, fieldsOf(v.Type()))); err != nil {
		return nil, fmt.Errorf("marshal config: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("marshal config: %w", err)
	}
	return buf.Bytes(), nil
}

func encodeStruct(v reflect.Value, fields []*field) *yaml.Node {
	n := &yaml.Node{Kind: yaml.MappingNode}
	for _, f := range fields {
		val := (*yaml.Node)(nil)
		if f.sub != nil {
			val = encodeStruct(v, f.sub)
		} else {
			val = encodeValue(v.Field(f.index))
		}
		n.Content = append(n.Content, scalar(f.name), val)
	}
	return n
}

func encodeValue(v reflect.Value) *yaml.Node {
	switch t := v.Type(); {
	case t == durationType:
		return scalar(FormatDuration(time.Duration(v.Int())))
	case t == pagesType:
		n := &yaml.Node{Kind: yaml.MappingNode}
		pages := v.Interface().(map[int]ErrorPage)
		for _, code := range slices.Sorted(maps.Keys(pages)) {
			n.Content = append(n.Content, scalar(code), scalar(pages[code].Path))
		}
		return n
	case isSection(t):
		return encodeStruct(v, fieldsOf(t))
	case t.Kind() == reflect.Map:
		n := &yaml.Node{Kind: yaml.MappingNode}
		for _, name := range sortedKeys(v) {
			n.Content = append(n.Content, scalar(name), encodeValue(v.MapIndex(reflect.ValueOf(name))))
		}
		return n
	case t.Kind() == reflect.Slice:
		// Printed as [] rather than null when empty, which reads as
		// "none"; lists of scalars on one line.
		n := &yaml.Node{Kind: yaml.SequenceNode}
		if !isSection(t.Elem()) {
			n.Style = yaml.FlowStyle
		}
		for i := range v.Len() {
			n.Content = append(n.Content, encodeValue(v.Index(i)))
		}
		return n
	}
	if s, ok := v.Interface().(fmt.Stringer); ok {
		return scalar(s.String())
	}
	return scalar(v.Interface())
}

func scalar(v any) *yaml.Node {
	var n yaml.Node
	if err := n.Encode(v); err != nil {
		panic(fmt.Sprintf("config: encode %T: %v", v, err))
	}
	return &n
}

// FormatDuration drops the zero components time.Duration.String keeps
// ("1m0s" becomes "1m"), so printed defaults read like the documentation.
func FormatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// Gateway returns the gateway's configuration; the caller adds what is
// not in the file (AltSvc, AccessLog). Only routes and error pages change
// after start.
func (c *Config) Gateway() gateway.Config {
	l := c.Limits
	g := gateway.Config{
		Routes:               c.Routes,
		MaxConns:             l.MaxConns,
		ReadHeaderTimeout:    l.ReadHeaderTimeout,
		IdleTimeout:          l.IdleTimeout,
		MaxHeaderBytes:       l.MaxHeaderBytes,
		MaxHeaderCount:       l.MaxHeaderCount,
		MaxRequestBody:       l.MaxRequestBody,
		MaxConcurrentStreams: l.H2MaxConcurrentStreams,
		// In the file 0 is off; in gateway.Config 0 is the default and
		// off is negative.
		ResetLimit:     l.H2MaxResetsPerSecond,
		TrustedProxies: c.TrustedProxies,
	}
	if g.ResetLimit == 0 {
		g.ResetLimit = -1
	}
	for code, p := range c.ErrorPages {
		if g.ErrorPages == nil {
			g.ErrorPages = make(map[int]gateway.ErrorPage, len(c.ErrorPages))
		}
		g.ErrorPages[code] = gateway.NewErrorPage(p.Path, p.Body)
	}
	return g
}
