package upstream

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/sluice-gw/sluice/upstream/dnsclient"
)

// DNS discovery. A backend with a DiscoveryConfig runs one goroutine, owned
// by the backend (spawned into b.wg, stopped through its own context,
// derived from b.ctx, when an Update changes or removes the discovery, or
// by Close), which resolves the name now and then again after the
// interval or the answer's TTL, whichever is shorter. Each answer that
// changes the set of servers goes through the same path as a reload
// (applyLocked): servers that stay keep their connections, new ones are
// probed and warmed and ramp up over slow start, removed ones drain. A
// failed or empty answer changes nothing: the last good set stays.

// Discovery record types.
const (
	DNSTypeA   = "a"   // A and AAAA records, on DiscoveryConfig.Port
	DNSTypeSRV = "srv" // SRV records: targets and, without Port, their ports
)

// Results of a resolution, the label values of
// sluice_discovery_resolutions_total.
const (
	resolvedOK    = "ok"
	resolvedEmpty = "empty"
	resolvedError = "error"
)

// minRefresh is the shortest time between two resolutions, whatever the
// TTL: a TTL of zero (dnsmasq's default for its hosts files) must not turn
// into a busy loop.
const minRefresh = time.Second

// lookupTimeout bounds one exchange with one name server.
const lookupTimeout = 2 * time.Second

// maxSRVWeight caps a weight taken from an SRV record at the config's
// largest server weight.
const maxSRVWeight = 1000

// DiscoveryConfig makes a backend find its servers in DNS, beside or in
// place of Config.Servers. It is the file's backends.NAME.discovery.
type DiscoveryConfig struct {
	// Name is the DNS name to resolve, taken as fully qualified (no search
	// domains). Empty means no discovery.
	Name string `yaml:"dns" check:"dnsname"`
	// Type is DNSTypeA (the default: A and AAAA records, one server per
	// address on Port) or DNSTypeSRV (each SRV target's addresses on
	// the record's port, or on Port when set; the lowest priority's
	// records are primaries, others backups; the record's weight is the
	// server's, capped at 1000).
	Type string `yaml:"type" check:"a|srv"`
	// Port is the servers' port, required with DNSTypeA.
	Port int `yaml:"port" check:"0..65535"`
	// Interval is the longest time between resolutions; a shorter TTL
	// in the answer brings the next one forward (but never under 1s).
	Interval time.Duration `yaml:"interval" check:"1s.."`
	// Resolver is the name server, ip:port. Empty means the system's:
	// the nameservers of /etc/resolv.conf, read at each resolution.
	Resolver string `yaml:"resolver" check:"nameserver"`
}

func (c *DiscoveryConfig) validate(backend string) error {
	if c.Name == "" {
		return nil
	}
	switch c.Type {
	case DNSTypeA:
		if c.Port <= 0 || c.Port > 65535 {
			return fmt.Errorf("upstream %s: discovery of %s: port %d out of 1..65535", backend, c.Name, c.Port)
		}
	case DNSTypeSRV:
		if c.Port < 0 || c.Port > 65535 {
			return fmt.Errorf("upstream %s: discovery of %s: port %d out of 0..65535", backend, c.Name, c.Port)
		}
	default:
		return fmt.Errorf("upstream %s: discovery of %s: unknown record type %q", backend, c.Name, c.Type)
	}
	return nil
}

// lookupFunc resolves a discovery's name once.
type lookupFunc func(ctx context.Context) (dnsclient.Answer, error)

// dnsLookup asks DNS for c's records.
func dnsLookup(c DiscoveryConfig) lookupFunc {
	return func(ctx context.Context) (dnsclient.Answer, error) {
		cl := &dnsclient.Client{Servers: []string{c.Resolver}, Timeout: lookupTimeout}
		if c.Resolver == "" {
			cl.Servers = dnsclient.SystemServers()
		}
		if c.Type == DNSTypeSRV {
			return cl.LookupSRV(ctx, c.Name)
		}
		return cl.LookupHost(ctx, c.Name)
	}
}

// discovery is one running discovery loop and what it last found.
type discovery struct {
	cfg    DiscoveryConfig
	lookup lookupFunc
	cancel context.CancelFunc // stops the loop

	// found is the last good set, sorted by address; guarded by the
	// backend's updateMu.
	found []ServerConfig
	// every is the delay after the last good answer, kept after a
	// failure too; owned by the loop.
	every time.Duration

	mu sync.Mutex // guards status
	// status is what the stats page shows.
	status DiscoveryStats
}

// DiscoveryStats is the state of a backend's DNS discovery.
type DiscoveryStats struct {
	Name string `json:"name"`
	Type string `json:"type"`
	// Servers is how many servers the last good answer gave.
	Servers int `json:"servers"`
	// LastResolution and LastSuccess are when the last resolution ended,
	// and the last that gave servers; zero before the first.
	LastResolution time.Time `json:"last_resolution"`
	LastSuccess    time.Time `json:"last_success"`
	// LastError is why the last resolution failed ("" when it did not):
	// the lookup's error, or that the answer had no record.
	LastError string `json:"last_error,omitempty"`
	// Failures counts the failed or empty resolutions since the last
	// good one.
	Failures int `json:"failures"`
	// Resolutions counts resolutions by result (ok, empty, error).
	Resolutions map[string]uint64 `json:"resolutions"`
}

// discoveryChangedLocked reports whether c differs from the running
// discovery's configuration in a way that needs a new loop.
func (b *Backend) discoveryChangedLocked(c DiscoveryConfig) bool {
	if b.disc == nil {
		return c.Name != ""
	}
	return b.disc.cfg != c
}

// rediscoverLocked starts, restarts or stops the discovery loop to match
// b.base. A restarted loop keeps the servers found so far until its first
// good answer, so that a change of interval or resolver does not empty the
// backend.
func (b *Backend) rediscoverLocked() {
	c := b.base.Discovery
	if !b.started || !b.discoveryChangedLocked(c) {
		return
	}
	var found []ServerConfig
	if b.disc != nil {
		b.disc.cancel()
		found = b.disc.found
		b.disc = nil
	}
	if c.Name == "" {
		return
	}
	ctx, cancel := context.WithCancel(b.ctx)
	d := &discovery{cfg: c, lookup: b.lookupFor(c), cancel: cancel, found: found, every: c.Interval}
	d.status = DiscoveryStats{Name: c.Name, Type: c.Type, Servers: len(found), Resolutions: map[string]uint64{}}
	b.disc = d
	if !b.spawn(func() { b.discover(ctx, d) }) {
		cancel()
	}
}

// withDiscoveredLocked is cfg with the discovered servers appended, less
// those whose address cfg.Servers already lists.
func (b *Backend) withDiscoveredLocked(cfg Config) Config {
	if b.disc == nil || len(b.disc.found) == 0 {
		return cfg
	}
	static := make(map[string]bool, len(cfg.Servers))
	for _, s := range cfg.Servers {
		static[s.Address] = true
	}
	servers := slices.Clip(cfg.Servers)
	for _, s := range b.disc.found {
		if !static[s.Address] {
			servers = append(servers, s)
		}
	}
	cfg.Servers = servers
	return cfg
}

// discover resolves now, then again after each answer's refresh delay,
// until ctx ends.
func (b *Backend) discover(ctx context.Context, d *discovery) {
	every(ctx, 0, func() time.Duration { return b.resolve(ctx, d) })
}

// resolve asks once, applies a good answer that changes the set, and
// returns when to ask again: after the interval or the answer's TTL,
// whichever is shorter; after a failure, as after the last good answer
// (the interval before any).
func (b *Backend) resolve(ctx context.Context, d *discovery) time.Duration {
	ans, err := d.lookup(ctx)
	if ctx.Err() != nil {
		return d.cfg.Interval
	}
	servers := discovered(d.cfg, ans)
	result := resolvedOK
	switch {
	case errors.Is(err, dnsclient.ErrNotFound):
		result, err = resolvedEmpty, fmt.Errorf("no such name: %w", err)
	case err != nil:
		result = resolvedError
	case len(servers) == 0:
		result, err = resolvedEmpty, errors.New("no records in the answer")
	}
	b.obs.m.resolved(b.name, result)
	now := time.Now()

	b.updateMu.Lock()
	if b.disc != d {
		// Replaced or stopped by an Update while asking.
		b.updateMu.Unlock()
		return d.cfg.Interval
	}
	changed := result == resolvedOK && !slices.Equal(d.found, servers)
	if changed {
		d.found = servers
		b.applyLocked(b.withDiscoveredLocked(b.base))
	}
	kept := len(d.found)
	b.updateMu.Unlock()

	d.mu.Lock()
	st := &d.status
	st.LastResolution = now
	st.Resolutions[result]++
	if result == resolvedOK {
		st.LastSuccess, st.LastError, st.Failures, st.Servers = now, "", 0, kept
	} else {
		st.LastError = err.Error()
		st.Failures++
	}
	failures := st.Failures
	d.mu.Unlock()

	if result != resolvedOK {
		b.log.Warn("DNS discovery failed: keeping the servers found before", "backend", b.name,
			"name", d.cfg.Name, "result", result, "err", err, "servers", kept, "failures_in_a_row", failures)
		return d.every
	}
	if changed {
		b.log.Info("DNS discovery changed the servers", "backend", b.name, "name", d.cfg.Name,
			"servers", kept, "ttl", ans.TTL)
	}
	d.every = refreshDelay(d.cfg.Interval, ans.TTL)
	return d.every
}

// refreshDelay is when to ask again after a good answer: after the
// interval, or the TTL if shorter, but not under minRefresh.
func refreshDelay(interval, ttl time.Duration) time.Duration {
	return max(min(interval, ttl), minRefresh)
}

// discovered turns an answer into servers sorted by address.
func discovered(c DiscoveryConfig, ans dnsclient.Answer) []ServerConfig {
	minPrio := -1
	for _, e := range ans.Endpoints {
		if minPrio < 0 || int(e.Priority) < minPrio {
			minPrio = int(e.Priority)
		}
	}
	var out []ServerConfig
	for _, e := range ans.Endpoints {
		port := uint16(c.Port)
		if port == 0 {
			port = e.Port
		}
		if port == 0 || !e.Addr.IsValid() {
			continue
		}
		s := ServerConfig{Address: netip.AddrPortFrom(e.Addr.Unmap(), port).String(), Weight: 1}
		if c.Type == DNSTypeSRV {
			s.Weight = min(max(int(e.Weight), 1), maxSRVWeight)
			s.Backup = int(e.Priority) > minPrio
		}
		if !slices.ContainsFunc(out, func(x ServerConfig) bool { return x.Address == s.Address }) {
			out = append(out, s)
		}
	}
	slices.SortFunc(out, func(a, b ServerConfig) int { return cmp.Compare(a.Address, b.Address) })
	return out
}

// discoveryStats snapshots the discovery, nil without one.
func (b *Backend) discoveryStats() *DiscoveryStats {
	b.updateMu.Lock()
	d := b.disc
	b.updateMu.Unlock()
	if d == nil {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	st := d.status
	st.Resolutions = make(map[string]uint64, 3)
	for _, r := range []string{resolvedOK, resolvedEmpty, resolvedError} {
		st.Resolutions[r] = d.status.Resolutions[r]
	}
	return &st
}
