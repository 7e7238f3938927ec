package runtime

import (
	"errors"
	"log/slog"
	"maps"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sluice-gw/sluice/cmd/sluice/internal/config"
	"github.com/sluice-gw/sluice/gateway"
	"github.com/sluice-gw/sluice/upstream"
)

// TestReloadsRunOneAtATime: SIGHUP and POST /reload both call reload; a
// second one must wait for the first instead of interleaving with it.
func TestReloadsRunOneAtATime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		var running, peak atomic.Int32
		load := func() (*config.Config, error) {
			n := running.Add(1)
			defer running.Add(-1)
			if n > peak.Load() {
				peak.Store(n)
			}
			<-release
			return nil, errors.New("test: no config")
		}
		lv := newLive(prometheus.NewRegistry(), slog.New(slog.DiscardHandler), load)
		var wg sync.WaitGroup
		wg.Go(func() { lv.reload() }) // SIGHUP
		wg.Go(func() { lv.reload() }) // POST /reload
		synctest.Wait()
		if n := peak.Load(); n != 1 {
			t.Errorf("%d reloads ran at once", n)
		}
		close(release)
		wg.Wait()
		if got := testutil.ToFloat64(lv.reloads.WithLabelValues("error")); got != 2 {
			t.Errorf("%v failed reloads counted, want both", got)
		}
	})
}

// TestFailedReloadKeepsCertificates: a reload whose config cannot be
// applied must leave the certificates as they were, not renew them under
// the old config.
func TestFailedReloadKeepsCertificates(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	first := writeCertPair(t, certFile, keyFile)
	origin := echoOrigin(t)
	cfg, err := config.Quick(freeAddr(t), freeAddr(t), upstream.H2C, []string{origin}, 1)
	if err != nil {
		t.Fatal(err)
	}
	cfg.TLSListen = freeAddr(t)
	cfg.TLSCerts = []gateway.CertPair{{CertFile: certFile, KeyFile: keyFile}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	var next atomic.Pointer[config.Config]
	r := serveWithReload(t, cfg, &next)
	name := cfg.Routes[0].Backend
	tests := []struct {
		name  string
		spoil func(c *config.Config)
	}{
		// Both pass the reload's own checks (the test hands the config
		// over unvalidated) and fail in apply.
		{"backend update refused", func(c *config.Config) {
			bc := c.Backends[name]
			bc.Protocol = "h3"
			c.Backends[name] = bc
		}},
		{"route to an unknown backend", func(c *config.Config) {
			c.Routes = append([]gateway.Route{{Host: "*", PathPrefix: "/", Backend: "nope"}}, c.Routes...)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bad := *cfg
			bad.Backends = maps.Clone(cfg.Backends)
			// A server added in the same reload must not appear either.
			bc := bad.Backends[name]
			bc.Servers = append(slices.Clone(bc.Servers), upstream.ServerConfig{Address: freeAddr(t), Weight: 1})
			bad.Backends[name] = bc
			tt.spoil(&bad)
			next.Store(&bad)
			writeCertPair(t, certFile, keyFile)
			if code, body := postReloadTo(t, r.admin); code != http.StatusBadRequest {
				t.Fatalf("reload: %d %s, want it refused", code, body)
			}
			if got := servedSerial(t, cfg.TLSListen); got.Cmp(first) != 0 {
				t.Errorf("serial after a failed reload %v, want %v kept", got, first)
			}
			_, body, err := adminGet(r.admin, "/stats.json")
			if err != nil {
				t.Fatal(err)
			}
			if n := strings.Count(body, `"address"`); n != 1 {
				t.Errorf("%d servers after a failed reload, want the 1 of the running config: %s", n, body)
			}
		})
	}
}

// TestShutdownWaitsForReload: a reload still running when sluice shuts
// down finishes before the backends close, and none starts afterwards.
func TestShutdownWaitsForReload(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		load := func() (*config.Config, error) {
			<-release
			return nil, errors.New("test: no config")
		}
		lv := newLive(prometheus.NewRegistry(), slog.New(slog.DiscardHandler), load)
		reloaded := make(chan struct{})
		go func() {
			lv.reload()
			close(reloaded)
		}()
		synctest.Wait()
		closed := make(chan struct{})
		go func() {
			lv.close()
			close(closed)
		}()
		synctest.Wait()
		select {
		case <-closed:
			t.Fatal("shutdown closed the backends under a running reload")
		default:
		}
		close(release)
		<-reloaded
		<-closed
		if err := lv.reload(); !errors.Is(err, errShuttingDown) {
			t.Errorf("reload after shutdown: %v, want %v", err, errShuttingDown)
		}
	})
}
