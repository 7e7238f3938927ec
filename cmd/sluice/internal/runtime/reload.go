package runtime

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/sluice-gw/sluice/cmd/sluice/internal/config"
	"github.com/sluice-gw/sluice/gateway"
	"github.com/sluice-gw/sluice/upstream"
)

// errNoReload is the answer to a reload in quick mode.
var errNoReload = errors.New("reload: no config file (quick mode); restart with new flags instead")

// errShuttingDown is the answer to a reload asked for during shutdown.
var errShuttingDown = errors.New("reload: shutting down")

// reload reads the configuration again and applies it, or keeps the running
// one and says why. One reload runs at a time; others wait their turn.
func (lv *live) reload() error {
	select {
	case lv.reloading <- struct{}{}:
	case <-lv.closed:
		return errShuttingDown
	}
	defer func() { <-lv.reloading }()
	if lv.sink != nil {
		// Whatever the config says: logrotate sends SIGHUP after moving
		// the file away.
		if err := lv.sink.reopen(); err != nil {
			lv.log.Error("access log not reopened; still writing the old file", "err", err)
		}
	}
	err := lv.reloadOnce()
	if err != nil {
		lv.reloads.WithLabelValues("error").Inc()
		lv.log.Error("reload failed; still running the previous config", "err", err)
		return err
	}
	lv.reloads.WithLabelValues("success").Inc()
	lv.log.Info("reloaded config", "backends", lv.names())
	return nil
}

func (lv *live) reloadOnce() error {
	if lv.load == nil {
		return errNoReload
	}
	cfg, err := lv.load()
	if err != nil {
		return err
	}
	if changed := planReload(lv.config(), cfg).restart; len(changed) > 0 {
		return fmt.Errorf("reload: these keys need a restart to change: %s; the running config is kept", strings.Join(changed, "; "))
	}
	var useCerts func()
	if lv.certs != nil {
		// Read the files again even when their names did not change:
		// renewed certificates are usually written over the old ones.
		// They are put in use by apply, once nothing else can fail: a
		// failed reload keeps the old certificates with the old config.
		set, err := gateway.ReadCerts(cfg.TLSCerts)
		if err != nil {
			return fmt.Errorf("reload: tls_certs: %w", err)
		}
		useCerts = func() { lv.certs.Use(set) }
	}
	return lv.apply(cfg, useCerts)
}

// reloadPlan is what applying a configuration over the running one does,
// decided from the two configs alone.
type reloadPlan struct {
	// restart lists the keys that differ but are fixed once the listeners
	// and servers are built, as "key old -> new": a reload changing any
	// of them is refused whole.
	restart []string
	// update lists the backends kept: updated in place, so the servers
	// that stay keep their connections (upstream.Backend.Update decides
	// which servers stay, are added and are drained).
	update []string
	// add lists the backends started.
	add []string
	// remove lists the backends retired: they take no new request at once
	// and close after shutdown_grace.
	remove []string
}

// planReload compares next with cur, the running configuration; cur is nil
// at start, when every backend is added. Every list is sorted.
func planReload(cur, next *config.Config) reloadPlan {
	var p reloadPlan
	var running map[string]upstream.Config
	if cur != nil {
		p.restart = restartKeys(cur, next)
		running = cur.Backends
	}
	for name := range next.Backends {
		if _, ok := running[name]; ok {
			p.update = append(p.update, name)
		} else {
			p.add = append(p.add, name)
		}
	}
	for name := range running {
		if _, ok := next.Backends[name]; !ok {
			p.remove = append(p.remove, name)
		}
	}
	slices.Sort(p.update)
	slices.Sort(p.add)
	slices.Sort(p.remove)
	return p
}

// restartKeys lists the keys whose change needs a restart, with their old
// and new values: they are fixed in the listeners and servers when these
// are built.
func restartKeys(cur, next *config.Config) []string {
	var out []string
	diff := func(key string, a, b any) {
		if a != b {
			out = append(out, fmt.Sprintf("%s %v -> %v", key, a, b))
		}
	}
	diff("listen", cur.Listen, next.Listen)
	diff("admin", cur.Admin, next.Admin)
	diff("tls_listen", quoted(cur.TLSListen), quoted(next.TLSListen))
	diff("http3", cur.HTTP3, next.HTTP3)
	diff("proxy_protocol", cur.ProxyProtocol, next.ProxyProtocol)
	diff("pprof", cur.Pprof, next.Pprof)
	diff("access_log.mode", cur.AccessLog.Mode, next.AccessLog.Mode)
	diff("access_log.sample", cur.AccessLog.Sample, next.AccessLog.Sample)
	diff("access_log.format", cur.AccessLog.Format, next.AccessLog.Format)
	diff("access_log.path", cur.AccessLog.Path, next.AccessLog.Path)
	a, b := cur.Limits, next.Limits
	diff("limits.max_conns", a.MaxConns, b.MaxConns)
	diff("limits.read_header_timeout", a.ReadHeaderTimeout, b.ReadHeaderTimeout)
	diff("limits.idle_timeout", a.IdleTimeout, b.IdleTimeout)
	diff("limits.max_header_bytes", a.MaxHeaderBytes, b.MaxHeaderBytes)
	diff("limits.max_header_count", a.MaxHeaderCount, b.MaxHeaderCount)
	diff("limits.max_request_body", a.MaxRequestBody, b.MaxRequestBody)
	diff("limits.h2_max_concurrent_streams", a.H2MaxConcurrentStreams, b.H2MaxConcurrentStreams)
	diff("limits.h2_max_resets_per_second", a.H2MaxResetsPerSecond, b.H2MaxResetsPerSecond)
	if !slices.Equal(cur.TrustedProxies, next.TrustedProxies) {
		out = append(out, fmt.Sprintf("trusted_proxies %v -> %v", cur.TrustedProxies, next.TrustedProxies))
	}
	if !slices.Equal(cur.ProxyProtocolFrom, next.ProxyProtocolFrom) {
		out = append(out, fmt.Sprintf("proxy_protocol_from %v -> %v", cur.ProxyProtocolFrom, next.ProxyProtocolFrom))
	}
	return out
}

func quoted(s string) string { return fmt.Sprintf("%q", s) }
