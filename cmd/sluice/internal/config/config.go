// Package config loads, validates and prints Sluice's configuration.
//
// A configuration is built from three layers, later ones winning: built-in
// defaults, a YAML file, and environment variables. Every key has a
// default except backends[*].servers and routes, so a minimal file names
// one backend with one server and one route.
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
// read it as seconds, koanf's decoder as nanoseconds.
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
	"net/netip"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Config is the whole gateway configuration. After Load, Parse or Quick
// every field holds a validated value: absent keys carry their defaults.
type Config struct {
	// Listen is the client-facing host:port, serving HTTP/1.1 and h2c with
	// prior knowledge on the same socket. An empty host means all
	// interfaces; port 0 picks a free port. Zero value: invalid.
	Listen string
	// Admin is the host:port serving /metrics, /healthz and /readyz. The
	// host is required so that exposing metrics beyond localhost is an
	// explicit choice (0.0.0.0). Zero value: invalid.
	Admin string
	// Backends maps a backend name ([a-zA-Z0-9_-]+) to its server pool.
	// Zero value (nil or empty): invalid, at least one is required.
	Backends map[string]Backend
	// Routes are matched in order; the first match wins. Zero value:
	// invalid, at least one is required.
	Routes []Route
	// ShutdownGrace is how long in-flight requests may finish after
	// SIGTERM/SIGINT before their connections are cut; must be positive.
	// Zero value: invalid; the default is 30s.
	ShutdownGrace time.Duration
	// TLSListen is the host:port of the TLS listener (HTTP/1.1 and h2 by
	// ALPN), and with HTTP3 the UDP port of HTTP/3. Zero value: no TLS
	// listener.
	TLSListen string
	// TLSCerts are the certificates of TLSListen and HTTP/3, chosen by SNI;
	// required when either is on. Load checks that every pair loads, so a
	// bad file fails at start and at reload rather than at a handshake.
	TLSCerts []CertPair
	// HTTP3 serves HTTP/3 over QUIC on TLSListen's port (UDP) and
	// advertises it with Alt-Svc on TCP responses. Requires TLSListen.
	HTTP3 bool
	// ProxyProtocol requires a PROXY protocol v1 or v2 header on every
	// connection to Listen and TLSListen (behind an L4 load balancer).
	// Requires ProxyProtocolFrom.
	ProxyProtocol bool
	// ProxyProtocolFrom are the networks (the load balancers) whose PROXY
	// header is honoured; with ProxyProtocol, connections from any other
	// peer are closed. A bare address in the file means a single host.
	// Zero value (nil): none, which is invalid with ProxyProtocol; any
	// peer is written 0.0.0.0/0 and ::/0.
	ProxyProtocolFrom []netip.Prefix
	// Limits bound what one client may cost.
	Limits Limits
	// TrustedProxies are the networks whose X-Forwarded-For is kept and
	// appended to; from any other peer it is replaced. A bare address in
	// the file means a single host (/32 or /128). Zero value (nil): trust
	// nobody.
	TrustedProxies []netip.Prefix
	// ErrorPages maps a status code (400..599) to the body Sluice sends
	// instead of its short text when it answers with that status itself
	// (no route, queue full, upstream unreachable or timing out). The
	// files are read by Load/Parse, so a missing page fails at start,
	// not at the first error. Zero value (nil): no custom pages.
	ErrorPages map[int]ErrorPage
	// AccessLog is the per-request log. Fixed for the life of the
	// process except the file, which SIGHUP reopens (log rotation).
	AccessLog AccessLog
	// Pprof serves net/http/pprof under /debug/pprof/ on the admin
	// listener. Zero value: off, the default (profiles expose internals
	// and cost CPU while taken).
	Pprof bool
}

// AccessLog configures the access log: one line per request.
type AccessLog struct {
	// Mode is "off" (the default), "all", "errors" (status >= 500 and
	// clients that left, 499) or "sample" (errors plus 1 in Sample of the
	// rest).
	Mode string
	// Sample keeps 1 in Sample non-error requests in "sample" mode,
	// 1..1000000. The default is 100.
	Sample int
	// Format is "json" (one object per line, the default) or "text"
	// (key=value).
	Format string
	// Path is "stdout" (the default), "stderr", or a file, appended to
	// and created if missing; a relative path in a config file is taken
	// relative to the file's directory.
	Path string
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

// CertPair is one certificate chain and its private key, PEM files.
type CertPair struct {
	// Cert is the certificate chain file, leaf first. Relative paths in
	// a config file are taken relative to the file's directory.
	Cert string
	// Key is the private key file of Cert.
	Key string
}

// Limits bound client connections and requests. They are fixed for the
// life of the listeners: changing them needs a restart.
type Limits struct {
	// MaxConns caps open client connections across the TCP listeners;
	// beyond it new connections are closed at once. 1..10000000; the
	// default is 100000.
	MaxConns int
	// ReadHeaderTimeout bounds reading a request's headers (and a new
	// connection's first request), which cuts slowloris clients; must be
	// positive. The default is 10s.
	ReadHeaderTimeout time.Duration
	// IdleTimeout closes a keep-alive client connection idle this long;
	// must be positive. The default is 120s.
	IdleTimeout time.Duration
	// MaxHeaderBytes caps a request's header block, 4096..1048576; more
	// gets 431. The upper bound is the smuggling guard's: it follows
	// request heads up to 1 MiB. The default is 32768 (32 KiB).
	MaxHeaderBytes int
	// MaxHeaderCount caps a request's header fields, 1..10000; more gets
	// 431. The default is 100.
	MaxHeaderCount int
	// MaxRequestBody caps request bodies in bytes; more gets 413. Zero
	// means no limit, the default.
	MaxRequestBody int64
	// H2MaxConcurrentStreams caps concurrent streams per HTTP/2 and
	// HTTP/3 client connection, 1..10000. The default is 250.
	H2MaxConcurrentStreams int
	// H2MaxResetsPerSecond closes an HTTP/2 client connection that resets
	// more streams than this within a second (rapid reset, CVE-2023-44487),
	// 0..1000000; 0 turns the check off, leaving Go's own bound. The
	// default is 100.
	H2MaxResetsPerSecond int
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

// Backend is a pool of equivalent servers, typically Tomcat instances.
type Backend struct {
	// Protocol is how to talk to the servers: "auto" (try h2c with prior
	// knowledge, fall back to HTTP/1.1 and re-probe), "h2c" or "h1".
	// Zero value: invalid; the default is "auto".
	Protocol string
	// Balance picks a server per request: "round_robin" (weighted by
	// Server.Weight) or "least_request". Zero value: invalid; the default
	// is "round_robin".
	Balance string
	// ProbeInterval is how often, in auto mode, a server found to speak
	// only HTTP/1.1 is probed for h2c again. Must be at least 1s. Zero
	// value: invalid; the default is 1m.
	ProbeInterval time.Duration
	// Servers are the pool members, addresses unique; at least one
	// unless Discovery names a DNS name.
	Servers []Server
	// Discovery finds more servers in DNS.
	Discovery Discovery
	// H2C sizes the multiplexed connections used when a server speaks h2c.
	H2C H2C
	// H1 sizes the HTTP/1.1 keep-alive pool used when it does not.
	H1 H1
	// Queue bounds requests waiting for a free stream or connection.
	Queue Queue
	// Timeouts bound the phases of an upstream exchange.
	Timeouts Timeouts
	// Retries is how many more servers a failed request may be tried on,
	// 0..10. Only requests that are safe to repeat are retried: see
	// IdempotentMethods and RetryBodyLimit. The default is 2.
	Retries int
	// RetryBodyLimit is the largest request body, in bytes, kept in
	// memory so that the request can be sent again, 0..16777216 (16 MiB).
	// Zero means a request with a body is never retried once sent. The
	// default is 65536.
	RetryBodyLimit int
	// IdempotentMethods are extra methods, upper-cased, treated as safe
	// to retry besides GET, HEAD, OPTIONS, PUT and DELETE. Zero value
	// (nil): none; Parse never yields an empty non-nil slice.
	IdempotentMethods []string
	// Health configures active health checks of each server.
	Health Health
	// Passive configures ejecting servers that fail real requests.
	Passive Passive
}

// Health configures active health checks: every Interval each server is
// sent Method Path and must answer ExpectStatus within Timeout.
type Health struct {
	// Enabled turns the checks on. The default is false: servers are
	// then judged only by connection failures and Passive.
	Enabled bool
	// Path is the request target; it starts with "/". Zero value:
	// invalid; the default is "/".
	Path string
	// Method is an HTTP method token, upper-cased by Parse. Zero value:
	// invalid; the default is "GET".
	Method string
	// Host is the Host header; empty means the server's address.
	Host string
	// ExpectStatus is the status a healthy server answers, 100..599.
	// Zero value: invalid; the default is 200.
	ExpectStatus int
	// Interval is the time between checks of one server; must be
	// positive. Zero value: invalid; the default is 1s.
	Interval time.Duration
	// Timeout bounds one check; positive and at most Interval, so checks
	// of one server never overlap. Zero value: invalid; the default is 1s.
	Timeout time.Duration
	// Fall is how many consecutive failed checks mark a server down,
	// 1..100. Zero value: invalid; the default is 2.
	Fall int
	// Rise is how many consecutive passed checks bring it back, 1..100.
	// Zero value: invalid; the default is 2.
	Rise int
	// SlowStart ramps a recovered server's share of traffic up over this
	// long, so a cold JVM is not flooded at once; zero means at once.
	// The default is 10s.
	SlowStart time.Duration
}

// Passive configures outlier ejection from real traffic: a server that
// fails ConsecutiveFailures requests in a row is taken out for EjectFor,
// doubling on each repeat up to MaxEjectFor and halving again for every
// EjectFor it then spends in rotation. While ejected or unreachable it is
// probed every ProbeInterval and returns as soon as probes pass.
type Passive struct {
	// ConsecutiveFailures is the failure streak that ejects a server,
	// 0..1000; zero turns passive ejection off. The default is 5.
	ConsecutiveFailures int
	// EjectFor is the first ejection's length; must be positive. Zero
	// value: invalid; the default is 10s.
	EjectFor time.Duration
	// MaxEjectFor caps the doubled ejection; at least EjectFor. Zero
	// value: invalid; the default is 5m.
	MaxEjectFor time.Duration
	// MaxEjectedPercent caps the share of a backend's servers ejected at
	// once, 0..100, so that a backend-wide problem does not eject every
	// server. The default is 50.
	MaxEjectedPercent int
	// ProbeInterval is how often a server that is ejected or unreachable
	// is probed in the background (a connect with the h2c preface, or the
	// health request when Health is enabled), backing off to twice this
	// while probes fail; 100ms..1m. Zero value: invalid; the default is 1s.
	ProbeInterval time.Duration
}

// Discovery makes a backend find its servers in DNS, re-resolving the name
// every Interval, or at the answer's TTL if shorter (but at most once a
// second). Servers that appear are probed, warmed and join over slow
// start; servers that go drain. A failed or empty answer keeps the
// servers found before.
type Discovery struct {
	// DNS is the name to resolve, fully qualified (no search domains):
	// a headless Service's name, or an SRV name such as
	// _http._tcp.tomcat.default.svc.cluster.local. Zero value: no
	// discovery.
	DNS string
	// Type is "a" (A and AAAA records, one server per address on Port)
	// or "srv" (each SRV target's addresses, on the record's port unless
	// Port is set; the lowest priority's are primaries, the others
	// backups; the record's weight is the server's, capped at 1000). The
	// default is "a".
	Type string
	// Port is the servers' port, 1..65535, required with type a; with
	// srv, 0 (the default) takes the records' ports.
	Port int
	// Interval is the longest time between two resolutions, at least
	// 1s. The default is 5s.
	Interval time.Duration
	// Resolver is the name server as ip:port. Zero value: the system's
	// (the nameservers of /etc/resolv.conf).
	Resolver string
}

// Discovery record types.
const (
	DiscoveryA   = "a"
	DiscoverySRV = "srv"
)

// Server is one upstream server.
type Server struct {
	// Address is host:port; the host is required, the port is 1..65535.
	// Zero value: invalid.
	Address string
	// Weight is the server's share under round_robin, 1..1000. Zero
	// value: invalid; the default is 1.
	Weight int
	// Backup servers take requests only while no other server can. At
	// least one server of a backend must not be a backup. The default is
	// false.
	Backup bool
}

// H2C sizes a backend's h2c connections.
type H2C struct {
	// ConnsPerServer is how many long-lived h2c connections are kept to
	// each server, 1..64. Zero value: invalid; the default is 2.
	ConnsPerServer int
	// MaxStreamsPerConn caps concurrent streams per connection, 1..10000,
	// below whatever the server advertises. Zero value: invalid; the
	// default is 100.
	MaxStreamsPerConn int
	// PingInterval is how often an h2c connection that has received
	// nothing for that long is sent a PING, to find dead connections
	// before requests do. Zero turns pings off; otherwise at least 1s.
	// The default is 30s.
	PingInterval time.Duration
	// PingTimeout is how long a PING may go unanswered before the
	// connection is closed; must be positive. Zero value: invalid; the
	// default is 5s.
	PingTimeout time.Duration
}

// H1 sizes a backend's HTTP/1.1 keep-alive pool.
type H1 struct {
	// ConnsPerServer caps open HTTP/1.1 connections per server, 1..100000.
	// Zero value: invalid; the default is 64.
	ConnsPerServer int
	// IdleTimeout closes a pooled connection unused for this long; must be
	// positive. Zero value: invalid; the default is 90s.
	IdleTimeout time.Duration
	// MaxTunnels caps, per server, the HTTP/1.1 connections held for
	// protocol switches (WebSocket), which are dialled apart from the
	// pools whatever the backend's protocol, 1..1000000. Zero value:
	// invalid; the default is 1024.
	MaxTunnels int
}

// Queue bounds the requests waiting for upstream capacity.
type Queue struct {
	// MaxPending caps waiting requests, 0..1000000. Zero is valid and
	// means no queueing: a request that finds no capacity is rejected at
	// once. The default is 10000.
	MaxPending int
	// Timeout is the longest a request waits in the queue; must be
	// positive. Zero value: invalid; the default is 5s.
	Timeout time.Duration
}

// Timeouts bound an upstream exchange.
type Timeouts struct {
	// Connect bounds dialing a server; must be positive. Zero value:
	// invalid; the default is 2s.
	Connect time.Duration
	// ResponseHeader bounds the wait for response headers once the
	// request is sent; must be positive. Zero value: invalid; the default
	// is 30s.
	ResponseHeader time.Duration
	// Idle bounds the time a stream may go without a byte moving in
	// either direction; must be positive. Zero value: invalid; the
	// default is 60s.
	Idle time.Duration
	// Total bounds a whole request, headers and bodies; zero means no
	// limit, so long downloads and streams are not cut. The default is 0.
	Total time.Duration
}

// Route sends matching requests to a backend.
type Route struct {
	// Host is "*" (any host), a hostname matched case-insensitively
	// without port (Parse stores it lowercased), or "*.example.com"
	// (any subdomain of example.com, not example.com itself). Zero value:
	// invalid; the default is "*".
	Host string
	// PathPrefix matches request paths starting with it; it starts with
	// "/". Zero value: invalid; the default is "/".
	PathPrefix string
	// Backend names an entry of Config.Backends. Zero value: invalid.
	Backend string
}

// Default returns the top-level defaults with no backends and no routes,
// which is not yet a valid configuration.
func Default() *Config {
	return &Config{
		Listen:        ":8080",
		Admin:         "127.0.0.1:9001",
		Backends:      map[string]Backend{},
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

// DefaultBackend returns a backend with every default applied and no
// servers.
func DefaultBackend() Backend {
	return Backend{
		Protocol:      ProtocolAuto,
		Balance:       BalanceRoundRobin,
		ProbeInterval: time.Minute,
		H2C: H2C{
			ConnsPerServer: 2, MaxStreamsPerConn: 100,
			PingInterval: 30 * time.Second, PingTimeout: 5 * time.Second,
		},
		H1:    H1{ConnsPerServer: 64, IdleTimeout: 90 * time.Second, MaxTunnels: 1024},
		Queue: Queue{MaxPending: 10000, Timeout: 5 * time.Second},
		Timeouts: Timeouts{
			Connect: 2 * time.Second, ResponseHeader: 30 * time.Second,
			Idle: 60 * time.Second,
		},
		Retries:        2,
		RetryBodyLimit: 64 << 10,
		Discovery:      Discovery{Type: DiscoveryA, Interval: 5 * time.Second},
		Health: Health{
			Path: "/", Method: "GET", ExpectStatus: 200,
			Interval: time.Second, Timeout: time.Second,
			Fall: 2, Rise: 2, SlowStart: 10 * time.Second,
		},
		Passive: Passive{
			ConsecutiveFailures: 5,
			EjectFor:            10 * time.Second,
			MaxEjectFor:         5 * time.Minute,
			MaxEjectedPercent:   50,
			ProbeInterval:       time.Second,
		},
	}
}

func defaultServer() Server { return Server{Weight: 1} }

func defaultRoute() Route { return Route{Host: "*", PathPrefix: "/"} }

// Values of Backend.Protocol and Backend.Balance.
const (
	ProtocolAuto = "auto"
	ProtocolH2C  = "h2c"
	ProtocolH1   = "h1"

	BalanceRoundRobin   = "round_robin"
	BalanceLeastRequest = "least_request"
)

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
	b := DefaultBackend()
	b.Protocol = protocol
	b.H2C.ConnsPerServer = conns
	for _, addr := range servers {
		s := defaultServer()
		s.Address = addr
		b.Servers = append(b.Servers, s)
	}
	c := Default()
	c.Listen, c.Admin = listen, admin
	c.Backends[QuickBackend] = b
	r := defaultRoute()
	r.Backend = QuickBackend
	c.Routes = []Route{r}

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

// The yaml* types fix the key names and order of Marshal's output and
// print durations as text; the exported types stay free of tags.
type yamlConfig struct {
	Listen         string                 `yaml:"listen"`
	TLSListen      string                 `yaml:"tls_listen"`
	TLSCerts       []yamlCertPair         `yaml:"tls_certs"`
	HTTP3          bool                   `yaml:"http3"`
	ProxyProtocol  bool                   `yaml:"proxy_protocol"`
	ProxyFrom      []string               `yaml:"proxy_protocol_from,flow"`
	Admin          string                 `yaml:"admin"`
	ShutdownGrace  string                 `yaml:"shutdown_grace"`
	Limits         yamlLimits             `yaml:"limits"`
	TrustedProxies []string               `yaml:"trusted_proxies,flow"`
	ErrorPages     map[int]string         `yaml:"error_pages"`
	AccessLog      yamlAccessLog          `yaml:"access_log"`
	Pprof          bool                   `yaml:"pprof"`
	Backends       map[string]yamlBackend `yaml:"backends"`
	Routes         []yamlRoute            `yaml:"routes"`
}

type yamlAccessLog struct {
	Mode   string `yaml:"mode"`
	Sample int    `yaml:"sample"`
	Format string `yaml:"format"`
	Path   string `yaml:"path"`
}

type yamlCertPair struct {
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
}

type yamlLimits struct {
	MaxConns               int    `yaml:"max_conns"`
	ReadHeaderTimeout      string `yaml:"read_header_timeout"`
	IdleTimeout            string `yaml:"idle_timeout"`
	MaxHeaderBytes         int    `yaml:"max_header_bytes"`
	MaxHeaderCount         int    `yaml:"max_header_count"`
	MaxRequestBody         int64  `yaml:"max_request_body"`
	H2MaxConcurrentStreams int    `yaml:"h2_max_concurrent_streams"`
	H2MaxResetsPerSecond   int    `yaml:"h2_max_resets_per_second"`
}

type yamlBackend struct {
	Protocol      string       `yaml:"protocol"`
	Balance       string       `yaml:"balance"`
	ProbeInterval string       `yaml:"probe_interval"`
	Servers       []yamlServer `yaml:"servers,omitempty"`
	Discovery     struct {
		DNS      string `yaml:"dns"`
		Type     string `yaml:"type"`
		Port     int    `yaml:"port"`
		Interval string `yaml:"interval"`
		Resolver string `yaml:"resolver"`
	} `yaml:"discovery"`
	H2C struct {
		ConnsPerServer    int    `yaml:"conns_per_server"`
		MaxStreamsPerConn int    `yaml:"max_streams_per_conn"`
		PingInterval      string `yaml:"ping_interval"`
		PingTimeout       string `yaml:"ping_timeout"`
	} `yaml:"h2c"`
	H1 struct {
		ConnsPerServer int    `yaml:"conns_per_server"`
		IdleTimeout    string `yaml:"idle_timeout"`
		MaxTunnels     int    `yaml:"max_tunnels"`
	} `yaml:"h1"`
	Queue struct {
		MaxPending int    `yaml:"max_pending"`
		Timeout    string `yaml:"timeout"`
	} `yaml:"queue"`
	Timeouts struct {
		Connect        string `yaml:"connect"`
		ResponseHeader string `yaml:"response_header"`
		Idle           string `yaml:"idle"`
		Total          string `yaml:"total"`
	} `yaml:"timeouts"`
	Retries           int      `yaml:"retries"`
	RetryBodyLimit    int      `yaml:"retry_body_limit"`
	IdempotentMethods []string `yaml:"idempotent_methods,flow"`
	Health            struct {
		Enabled      bool   `yaml:"enabled"`
		Path         string `yaml:"path"`
		Method       string `yaml:"method"`
		Host         string `yaml:"host"`
		ExpectStatus int    `yaml:"expect_status"`
		Interval     string `yaml:"interval"`
		Timeout      string `yaml:"timeout"`
		Fall         int    `yaml:"fall"`
		Rise         int    `yaml:"rise"`
		SlowStart    string `yaml:"slow_start"`
	} `yaml:"health"`
	Passive struct {
		ConsecutiveFailures int    `yaml:"consecutive_failures"`
		EjectFor            string `yaml:"eject_for"`
		MaxEjectFor         string `yaml:"max_eject_for"`
		MaxEjectedPercent   int    `yaml:"max_ejected_percent"`
		ProbeInterval       string `yaml:"probe_interval"`
	} `yaml:"passive"`
}

type yamlServer struct {
	Address string `yaml:"address"`
	Weight  int    `yaml:"weight"`
	Backup  bool   `yaml:"backup"`
}

type yamlRoute struct {
	Host       string `yaml:"host"`
	PathPrefix string `yaml:"path_prefix"`
	Backend    string `yaml:"backend"`
}

// Marshal renders c as YAML that Parse accepts and that yields c again:
// the effective configuration, defaults included. Error pages are printed
// as their paths; parsing the output reads the files again.
func (c *Config) Marshal() ([]byte, error) {
	l := c.Limits
	out := yamlConfig{
		Listen:        c.Listen,
		TLSListen:     c.TLSListen,
		TLSCerts:      []yamlCertPair{},
		HTTP3:         c.HTTP3,
		ProxyProtocol: c.ProxyProtocol,
		Admin:         c.Admin,
		ShutdownGrace: formatDuration(c.ShutdownGrace),
		Limits: yamlLimits{
			MaxConns:               l.MaxConns,
			ReadHeaderTimeout:      formatDuration(l.ReadHeaderTimeout),
			IdleTimeout:            formatDuration(l.IdleTimeout),
			MaxHeaderBytes:         l.MaxHeaderBytes,
			MaxHeaderCount:         l.MaxHeaderCount,
			MaxRequestBody:         l.MaxRequestBody,
			H2MaxConcurrentStreams: l.H2MaxConcurrentStreams,
			H2MaxResetsPerSecond:   l.H2MaxResetsPerSecond,
		},
		// Printed as [] rather than null when empty, which reads as "none".
		TrustedProxies: []string{},
		ProxyFrom:      []string{},
		ErrorPages:     map[int]string{},
		AccessLog:      yamlAccessLog(c.AccessLog),
		Pprof:          c.Pprof,
		Backends:       map[string]yamlBackend{},
	}
	for _, p := range c.TLSCerts {
		out.TLSCerts = append(out.TLSCerts, yamlCertPair(p))
	}
	for _, p := range c.TrustedProxies {
		out.TrustedProxies = append(out.TrustedProxies, p.String())
	}
	for _, p := range c.ProxyProtocolFrom {
		out.ProxyFrom = append(out.ProxyFrom, p.String())
	}
	for code, p := range c.ErrorPages {
		out.ErrorPages[code] = p.Path
	}
	for name, b := range c.Backends {
		out.Backends[name] = marshalBackend(b)
	}
	for _, r := range c.Routes {
		out.Routes = append(out.Routes, yamlRoute(r))
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(out); err != nil {
		return nil, fmt.Errorf("marshal config: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("marshal config: %w", err)
	}
	return buf.Bytes(), nil
}

func marshalBackend(b Backend) yamlBackend {
	var y yamlBackend
	y.Protocol, y.Balance = b.Protocol, b.Balance
	y.ProbeInterval = formatDuration(b.ProbeInterval)
	for _, s := range b.Servers {
		y.Servers = append(y.Servers, yamlServer(s))
	}
	d := b.Discovery
	y.Discovery.DNS, y.Discovery.Type, y.Discovery.Port, y.Discovery.Resolver = d.DNS, d.Type, d.Port, d.Resolver
	y.Discovery.Interval = formatDuration(d.Interval)
	y.H2C.ConnsPerServer, y.H2C.MaxStreamsPerConn = b.H2C.ConnsPerServer, b.H2C.MaxStreamsPerConn
	y.H2C.PingInterval, y.H2C.PingTimeout = formatDuration(b.H2C.PingInterval), formatDuration(b.H2C.PingTimeout)
	y.H1.ConnsPerServer, y.H1.IdleTimeout = b.H1.ConnsPerServer, formatDuration(b.H1.IdleTimeout)
	y.H1.MaxTunnels = b.H1.MaxTunnels
	y.Queue.MaxPending, y.Queue.Timeout = b.Queue.MaxPending, formatDuration(b.Queue.Timeout)
	y.Timeouts.Connect = formatDuration(b.Timeouts.Connect)
	y.Timeouts.ResponseHeader = formatDuration(b.Timeouts.ResponseHeader)
	y.Timeouts.Idle = formatDuration(b.Timeouts.Idle)
	y.Timeouts.Total = formatDuration(b.Timeouts.Total)
	y.Retries, y.RetryBodyLimit = b.Retries, b.RetryBodyLimit
	// Printed as [] rather than null when empty, which reads as "none".
	y.IdempotentMethods = append([]string{}, b.IdempotentMethods...)
	h := b.Health
	y.Health.Enabled, y.Health.Path, y.Health.Method, y.Health.Host = h.Enabled, h.Path, h.Method, h.Host
	y.Health.ExpectStatus = h.ExpectStatus
	y.Health.Interval, y.Health.Timeout = formatDuration(h.Interval), formatDuration(h.Timeout)
	y.Health.Fall, y.Health.Rise, y.Health.SlowStart = h.Fall, h.Rise, formatDuration(h.SlowStart)
	p := b.Passive
	y.Passive.ConsecutiveFailures, y.Passive.MaxEjectedPercent = p.ConsecutiveFailures, p.MaxEjectedPercent
	y.Passive.EjectFor, y.Passive.MaxEjectFor = formatDuration(p.EjectFor), formatDuration(p.MaxEjectFor)
	y.Passive.ProbeInterval = formatDuration(p.ProbeInterval)
	return y
}

// formatDuration drops the zero components time.Duration.String keeps
// ("1m0s" becomes "1m"), so printed defaults read like the documentation.
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
