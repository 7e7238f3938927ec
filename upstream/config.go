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

// Config describes one backend. Zero values pick the documented defaults.
type Config struct {
	// Name labels metrics and logs.
	Name string
	// Protocol is Auto (default), H2C or H1.
	Protocol string
	// Balance is RoundRobin (default, weighted) or LeastRequest.
	Balance string
	// ProbeInterval is how often an HTTP/1.1-only server of an auto backend
	// is probed for h2c again. Zero means one minute.
	ProbeInterval time.Duration
	// Servers must not be empty.
	Servers []ServerConfig
	H2C     H2CConfig
	H1      H1Config
	Queue   QueueConfig
	// ConnectTimeout bounds a dial or probe. Zero means 2s.
	ConnectTimeout time.Duration
	// ResponseHeaderTimeout bounds the wait for response headers. Zero
	// means 30s.
	ResponseHeaderTimeout time.Duration
	// IdleTimeout ends a response whose body delivers no byte for this
	// long. Zero means no limit.
	IdleTimeout time.Duration
	// TotalTimeout bounds a whole request: queueing, every attempt and the
	// response body. Zero means no limit.
	TotalTimeout time.Duration
	// DrainTimeout is how long a server removed by Update may finish the
	// requests it carries; its connections close as they idle, and all
	// of them once this has passed. Zero means 30s.
	DrainTimeout time.Duration
	// Health configures active health checks.
	Health HealthConfig
	// Retries is how many times a failed request may be sent again.
	Retries int
	// RetryBodyLimit is the largest request body buffered so that the
	// request can be retried. Zero never buffers.
	RetryBodyLimit int64
	// IdempotentMethods are methods retried like GET besides the RFC 9110
	// idempotent ones.
	IdempotentMethods []string
	Passive           PassiveConfig
}

// H2CConfig bounds the h2c pool of each server.
type H2CConfig struct {
	// ConnsPerServer caps connections per server. Zero means 2.
	ConnsPerServer int
	// MaxStreamsPerConn caps concurrent streams per connection, below the
	// server's own SETTINGS_MAX_CONCURRENT_STREAMS. Zero means 100.
	MaxStreamsPerConn int
	// PingInterval sends a PING on a connection that received nothing for
	// this long; zero sends none.
	PingInterval time.Duration
	// PingTimeout closes a connection whose PING went unanswered this long.
	// Zero means 5s.
	PingTimeout time.Duration
}

// H1Config bounds the HTTP/1.1 pool of each server.
type H1Config struct {
	// ConnsPerServer caps connections per server. Zero means 64.
	ConnsPerServer int
	// IdleTimeout closes connections idle this long. Zero means 90s.
	IdleTimeout time.Duration
	// MaxTunnels caps the connections a server holds for protocol
	// switches (WebSocket), which are dialled apart from the pool whatever
	// the server's protocol. Zero means 1024.
	MaxTunnels int
}

// QueueConfig bounds the backend's wait queue.
type QueueConfig struct {
	// MaxPending caps waiting requests; zero means none may wait.
	MaxPending int
	// Timeout is the longest wait for a slot. Zero means 5s.
	Timeout time.Duration
}

func (c *Config) setDefaults() {
	if c.Protocol == "" {
		c.Protocol = Auto
	}
	if c.Balance == "" {
		c.Balance = RoundRobin
	}
	if c.ProbeInterval <= 0 {
		c.ProbeInterval = time.Minute
	}
	if c.H2C.ConnsPerServer <= 0 {
		c.H2C.ConnsPerServer = 2
	}
	if c.H2C.MaxStreamsPerConn <= 0 {
		c.H2C.MaxStreamsPerConn = 100
	}
	if c.H1.ConnsPerServer <= 0 {
		c.H1.ConnsPerServer = 64
	}
	if c.H1.MaxTunnels <= 0 {
		c.H1.MaxTunnels = defaultMaxTunnels
	}
	if c.H1.IdleTimeout <= 0 {
		c.H1.IdleTimeout = 90 * time.Second
	}
	if c.Queue.Timeout <= 0 {
		c.Queue.Timeout = 5 * time.Second
	}
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = 2 * time.Second
	}
	if c.ResponseHeaderTimeout <= 0 {
		c.ResponseHeaderTimeout = 30 * time.Second
	}
	if c.H2C.PingTimeout <= 0 {
		c.H2C.PingTimeout = 5 * time.Second
	}
	if c.DrainTimeout <= 0 {
		c.DrainTimeout = 30 * time.Second
	}
	if c.Passive.EjectFor <= 0 {
		c.Passive.EjectFor = 10 * time.Second
	}
	if c.Passive.MaxEjectFor < c.Passive.EjectFor {
		c.Passive.MaxEjectFor = max(5*time.Minute, c.Passive.EjectFor)
	}
	if c.Passive.ProbeInterval <= 0 {
		c.Passive.ProbeInterval = time.Second
	}
	c.Health.setDefaults()
}

func (c *Config) validate() error {
	if len(c.Servers) == 0 {
		return fmt.Errorf("upstream %s: no servers", c.Name)
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
	Address string
	// Weight is the share of requests for round robin. Zero means 1.
	Weight int
	// Backup servers take requests only when no primary is usable.
	Backup bool
}

// HealthConfig configures active health checks, with HAProxy's semantics.
// Checks travel over the pooled connections (an h2c stream, or an idle
// HTTP/1.1 connection), never a connection of their own, so checking does
// not churn ports.
type HealthConfig struct {
	// Enabled turns checks on; the zero value checks nothing.
	Enabled bool
	// Path is the request path. Empty means "/".
	Path string
	// Method is the request method. Empty means GET.
	Method string
	// Host is the Host header. Empty means the server's address.
	Host string
	// ExpectStatus is the status a healthy server answers. Zero means 200.
	ExpectStatus int
	// Interval between checks of one server. Zero means 1s.
	Interval time.Duration
	// Timeout of one check. Zero means 1s.
	Timeout time.Duration
	// Fall is how many failed checks in a row take a server out. Zero
	// means 2.
	Fall int
	// Rise is how many passed checks in a row bring it back. Zero means 2.
	Rise int
	// SlowStart ramps a returning server's weight up over this long. Zero
	// means no ramp.
	SlowStart time.Duration
}

func (h *HealthConfig) setDefaults() {
	if h.Path == "" {
		h.Path = "/"
	}
	if h.Method == "" {
		h.Method = http.MethodGet
	}
	if h.ExpectStatus == 0 {
		h.ExpectStatus = http.StatusOK
	}
	if h.Interval <= 0 {
		h.Interval = time.Second
	}
	if h.Timeout <= 0 {
		h.Timeout = time.Second
	}
	if h.Fall <= 0 {
		h.Fall = 2
	}
	if h.Rise <= 0 {
		h.Rise = 2
	}
}

// PassiveConfig ejects servers that keep failing (connect errors, resets,
// 502/503/504 from the server). Zero values pick the defaults.
type PassiveConfig struct {
	// ConsecutiveFailures ejects a server after this many failures in a
	// row. Zero turns passive health off.
	ConsecutiveFailures int
	// EjectFor is the first ejection's length; it doubles on each repeat,
	// and the doubling decays by half for every EjectFor the server then
	// spends in rotation. Zero means 10s.
	EjectFor time.Duration
	// MaxEjectFor caps the doubling. Zero means 5m.
	MaxEjectFor time.Duration
	// MaxEjectedPercent caps the share of a backend's servers ejected at
	// once, so a backend-wide problem never empties it. Zero ejects none.
	MaxEjectedPercent int
	// ProbeInterval is how often a server that is ejected or down is
	// probed in the background, backing off to twice this while probes
	// fail. Zero means 1s.
	ProbeInterval time.Duration
}

// defaultMaxTunnels is H1Config.MaxTunnels' zero value.
const defaultMaxTunnels = 1024
