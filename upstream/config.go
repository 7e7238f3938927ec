package upstream

import (
	"fmt"
	"net/http"
	"time"
)

// Protocols a backend can force, or detect with Auto.
const (
	Auto = "auto"
	H2C  = "h2c"
	H1   = "h1"
)

// Balance policies.
const (
	RoundRobin   = "round_robin"
	LeastRequest = "least_request"
)

// Config describes one backend. It is also the schema of a backend in
// Sluice's config file (cmd/sluice/internal/config): the `yaml` tags name
// the keys (a dot nests a key under a section), the `check` tags say what
// a file may set. DefaultConfig gives the defaults; New and Update also
// put them in place of zero values where zero has no meaning of its own.
type Config struct {
	// Name labels metrics and logs.
	Name string `yaml:"-"`
	// Protocol is Auto (default), H2C or H1.
	Protocol string `yaml:"protocol" check:"auto|h2c|h1"`
	// Balance is RoundRobin (default, weighted) or LeastRequest.
	Balance string `yaml:"balance" check:"round_robin|least_request"`
	// ProbeInterval is how often an HTTP/1.1-only server of an auto backend
	// is probed for h2c again.
	ProbeInterval time.Duration `yaml:"probe_interval" check:"1s.."`
	// Servers must not be empty unless Discovery names servers.
	Servers []ServerConfig `yaml:"servers"`
	H2C     H2CConfig      `yaml:"h2c"`
	H1      H1Config       `yaml:"h1"`
	Queue   QueueConfig    `yaml:"queue"`
	// ConnectTimeout bounds a dial or probe.
	ConnectTimeout time.Duration `yaml:"timeouts.connect" check:"positive"`
	// ResponseHeaderTimeout bounds the wait for response headers.
	ResponseHeaderTimeout time.Duration `yaml:"timeouts.response_header" check:"positive"`
	// IdleTimeout ends a response whose body delivers no byte for this
	// long. Zero means no limit (in a file it must be positive).
	IdleTimeout time.Duration `yaml:"timeouts.idle" check:"positive"`
	// TotalTimeout bounds a whole request: queueing, every attempt and the
	// response body. Zero means no limit.
	TotalTimeout time.Duration `yaml:"timeouts.total" check:"0(no limit)|positive"`
	// DrainTimeout is how long a server removed by Update may finish the
	// requests it carries; its connections close as they idle, and all
	// of them once this has passed. The file's shutdown_grace.
	DrainTimeout time.Duration `yaml:"-"`
	// Retries is how many times a failed request may be sent again.
	Retries int `yaml:"retries" check:"0..10"`
	// RetryBodyLimit is the largest request body read whole before the
	// request is sent, so that it can be retried and capped by
	// H2C.MaxBodyStreamsPerConn (h2c/client's HeldBody). Zero never
	// buffers.
	RetryBodyLimit int64 `yaml:"retry_body_limit" check:"0..16777216"`
	// RetryBodyMemory bounds the bytes of request bodies the backend
	// holds for retries at once. A body that finds it full is streamed
	// to the server as it comes if its client is on HTTP/1.1 (not
	// retried once sent), else refused (ErrBodyMemoryFull). Zero means
	// no bound.
	RetryBodyMemory int64 `yaml:"retry_body_memory" check:"0..1099511627776"`
	// IdempotentMethods are methods retried like GET besides the RFC 9110
	// idempotent ones, upper-case.
	IdempotentMethods []string `yaml:"idempotent_methods" check:"methods"`
	// Health configures active health checks.
	Health  HealthConfig  `yaml:"health"`
	Passive PassiveConfig `yaml:"passive"`

	// Discovery finds more servers in DNS (discovery.go).
	Discovery DiscoveryConfig `yaml:"discovery"`
}

// H2CConfig bounds the h2c pool of each server.
type H2CConfig struct {
	// ConnsPerServer caps connections per server.
	ConnsPerServer int `yaml:"conns_per_server" check:"1..64"`
	// MaxStreamsPerConn caps concurrent streams per connection, below the
	// server's own SETTINGS_MAX_CONCURRENT_STREAMS.
	MaxStreamsPerConn int `yaml:"max_streams_per_conn" check:"1..10000"`
	// MaxBodyStreamsPerConn caps, within those, the streams carrying a
	// request body held for retries (RetryBodyLimit) or of known length
	// up to 64 KiB (h2c/client's MaxBodyStreams); zero means no cap.
	MaxBodyStreamsPerConn int `yaml:"max_body_streams_per_conn" check:"0..10000"`
	// PingInterval sends a PING on a connection that received nothing for
	// this long; zero sends none.
	PingInterval time.Duration `yaml:"ping_interval" check:"0(off)|1s.."`
	// PingTimeout closes a connection whose PING went unanswered this long.
	PingTimeout time.Duration `yaml:"ping_timeout" check:"positive"`
}

// H1Config bounds the HTTP/1.1 pool of each server.
type H1Config struct {
	// ConnsPerServer caps connections per server.
	ConnsPerServer int `yaml:"conns_per_server" check:"1..100000"`
	// IdleTimeout closes connections idle this long.
	IdleTimeout time.Duration `yaml:"idle_timeout" check:"positive"`
	// MaxTunnels caps the connections a server holds for protocol
	// switches (WebSocket), which are dialled apart from the pool whatever
	// the server's protocol.
	MaxTunnels int `yaml:"max_tunnels" check:"1..1000000"`
}

// QueueConfig bounds the backend's wait queue.
type QueueConfig struct {
	// MaxPending caps waiting requests; zero means none may wait.
	MaxPending int `yaml:"max_pending" check:"0..1000000"`
	// Timeout is the longest wait for a slot.
	Timeout time.Duration `yaml:"timeout" check:"positive"`
}

// DefaultConfig returns a backend's defaults, with no name and no servers:
// the values of the keys a config file leaves out.
func DefaultConfig() Config {
	return Config{
		Protocol:      Auto,
		Balance:       RoundRobin,
		ProbeInterval: time.Minute,
		H2C: H2CConfig{
			ConnsPerServer: 2, MaxStreamsPerConn: 100, MaxBodyStreamsPerConn: 6,
			PingInterval: 30 * time.Second, PingTimeout: 5 * time.Second,
		},
		H1:                    H1Config{ConnsPerServer: 64, IdleTimeout: 90 * time.Second, MaxTunnels: 1024},
		Queue:                 QueueConfig{MaxPending: 10000, Timeout: 5 * time.Second},
		ConnectTimeout:        2 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
		IdleTimeout:           60 * time.Second,
		DrainTimeout:          30 * time.Second,
		Retries:               2,
		RetryBodyLimit:        16 << 20,
		RetryBodyMemory:       256 << 20,
		Health: HealthConfig{
			Path: "/", Method: http.MethodGet, ExpectStatus: http.StatusOK,
			Interval: time.Second, Timeout: time.Second,
			Fall: 2, Rise: 2, SlowStart: 10 * time.Second,
		},
		Passive: PassiveConfig{
			ConsecutiveFailures: 5,
			EjectFor:            10 * time.Second,
			MaxEjectFor:         5 * time.Minute,
			MaxEjectedPercent:   50,
			ProbeInterval:       time.Second,
		},
		Discovery: DiscoveryConfig{Type: DNSTypeA, Interval: 5 * time.Second},
	}
}

// DefaultServerConfig returns a server's defaults, with no address.
func DefaultServerConfig() ServerConfig { return ServerConfig{Weight: 1} }

// setDefaults puts DefaultConfig's values in place of the zero values
// that mean "the default". Zero keeps its own meaning (off, none, no
// limit) in the pings, the body-stream cap, the queue length, the idle and total timeouts,
// retries, passive ejection and slow start.
func (c *Config) setDefaults() {
	d := DefaultConfig()
	orDefault(&c.Protocol, d.Protocol)
	orDefault(&c.Balance, d.Balance)
	orDefault(&c.ProbeInterval, d.ProbeInterval)
	orDefault(&c.H2C.ConnsPerServer, d.H2C.ConnsPerServer)
	orDefault(&c.H2C.MaxStreamsPerConn, d.H2C.MaxStreamsPerConn)
	orDefault(&c.H2C.PingTimeout, d.H2C.PingTimeout)
	orDefault(&c.H1.ConnsPerServer, d.H1.ConnsPerServer)
	orDefault(&c.H1.MaxTunnels, d.H1.MaxTunnels)
	orDefault(&c.H1.IdleTimeout, d.H1.IdleTimeout)
	orDefault(&c.Queue.Timeout, d.Queue.Timeout)
	orDefault(&c.ConnectTimeout, d.ConnectTimeout)
	orDefault(&c.ResponseHeaderTimeout, d.ResponseHeaderTimeout)
	orDefault(&c.DrainTimeout, d.DrainTimeout)
	orDefault(&c.Passive.EjectFor, d.Passive.EjectFor)
	if c.Passive.MaxEjectFor < c.Passive.EjectFor {
		c.Passive.MaxEjectFor = max(d.Passive.MaxEjectFor, c.Passive.EjectFor)
	}
	orDefault(&c.Passive.ProbeInterval, d.Passive.ProbeInterval)
	h, dh := &c.Health, d.Health
	orDefault(&h.Path, dh.Path)
	orDefault(&h.Method, dh.Method)
	orDefault(&h.ExpectStatus, dh.ExpectStatus)
	orDefault(&h.Interval, dh.Interval)
	orDefault(&h.Timeout, dh.Timeout)
	orDefault(&h.Fall, dh.Fall)
	orDefault(&h.Rise, dh.Rise)
	orDefault(&c.Discovery.Type, d.Discovery.Type)
	orDefault(&c.Discovery.Interval, d.Discovery.Interval)
}

// orDefault sets *p to def when it is zero or, for numbers, negative.
func orDefault[T int | time.Duration | string](p *T, def T) {
	var zero T
	if *p <= zero {
		*p = def
	}
}

func (c *Config) validate() error {
	if len(c.Servers) == 0 && c.Discovery.Name == "" {
		return fmt.Errorf("upstream %s: no servers", c.Name)
	}
	if err := c.Discovery.validate(c.Name); err != nil {
		return err
	}
	switch c.Protocol {
	case Auto, H2C, H1:
	default:
		return fmt.Errorf("upstream %s: unknown protocol %q", c.Name, c.Protocol)
	}
	switch c.Balance {
	case RoundRobin, LeastRequest:
	default:
		return fmt.Errorf("upstream %s: unknown balance policy %q", c.Name, c.Balance)
	}
	return nil
}

// ServerConfig is one upstream server of a backend.
type ServerConfig struct {
	// Address is host:port.
	Address string `yaml:"address"`
	// Weight is the share of requests for round robin. Zero means 1.
	Weight int `yaml:"weight" check:"1..1000"`
	// Backup servers take requests only when no primary is usable.
	Backup bool `yaml:"backup"`
}

// HealthConfig configures active health checks, with HAProxy's semantics.
// Checks travel over the pooled connections (an h2c stream, or an idle
// HTTP/1.1 connection), never a connection of their own, so checking does
// not churn ports.
type HealthConfig struct {
	// Enabled turns checks on; the zero value checks nothing.
	Enabled bool `yaml:"enabled"`
	// Path is the request path. Empty means "/".
	Path string `yaml:"path" check:"target"`
	// Method is the request method. Empty means GET.
	Method string `yaml:"method" check:"method"`
	// Host is the Host header. Empty means the server's address.
	Host string `yaml:"host" check:"hostport"`
	// ExpectStatus is the status a healthy server answers. Zero means 200.
	ExpectStatus int `yaml:"expect_status" check:"100..599"`
	// Interval between checks of one server. Zero means 1s.
	Interval time.Duration `yaml:"interval" check:"positive"`
	// Timeout of one check, at most Interval. Zero means 1s.
	Timeout time.Duration `yaml:"timeout" check:"positive"`
	// Fall is how many failed checks in a row take a server out. Zero
	// means 2.
	Fall int `yaml:"fall" check:"1..100"`
	// Rise is how many passed checks in a row bring it back. Zero means 2.
	Rise int `yaml:"rise" check:"1..100"`
	// SlowStart ramps a returning server's weight up over this long. Zero
	// means no ramp.
	SlowStart time.Duration `yaml:"slow_start" check:"0(off)|positive"`
}

// PassiveConfig ejects servers that keep failing (connect errors, resets,
// 502/503/504 from the server). Zero values pick the defaults.
type PassiveConfig struct {
	// ConsecutiveFailures ejects a server after this many failures in a
	// row. Zero turns passive health off.
	ConsecutiveFailures int `yaml:"consecutive_failures" check:"0..1000"`
	// EjectFor is the first ejection's length; it doubles on each repeat,
	// and the doubling decays by half for every EjectFor the server then
	// spends in rotation. Zero means 10s.
	EjectFor time.Duration `yaml:"eject_for" check:"positive"`
	// MaxEjectFor caps the doubling, at least EjectFor. Zero means 5m.
	MaxEjectFor time.Duration `yaml:"max_eject_for"`
	// MaxEjectedPercent caps the share of a backend's servers ejected at
	// once, so a backend-wide problem never empties it. Zero ejects none.
	MaxEjectedPercent int `yaml:"max_ejected_percent" check:"0..100"`
	// ProbeInterval is how often a server that is ejected or down is
	// probed in the background, backing off to twice this while probes
	// fail. Zero means 1s.
	ProbeInterval time.Duration `yaml:"probe_interval" check:"100ms..1m"`
}
