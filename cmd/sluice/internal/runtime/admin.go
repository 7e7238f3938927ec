package runtime

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/pprof"
	"strings"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sluice-gw/sluice/cmd/sluice/internal/adminapi"
)

// backendState is what readiness needs to know about one backend.
type backendState struct {
	name  string
	ready bool
}

// readiness decides /readyz: the listeners are up and accepting (none in
// listenersDown, as "name: why") and every backend has at least one server
// that may take requests. It returns the reasons when not.
func readiness(listening bool, listenersDown []string, backends []backendState) (bool, []string) {
	var why []string
	if !listening {
		why = append(why, "listeners not serving")
	}
	for _, l := range listenersDown {
		why = append(why, "listener "+l)
	}
	for _, b := range backends {
		if !b.ready {
			why = append(why, fmt.Sprintf("backend %q has no usable server", b.name))
		}
	}
	return len(why) == 0, why
}

// adminHandler serves /metrics, /healthz, /readyz, the stats page,
// /stats.json, the admin API under /api/ and POST /reload. With withPprof
// it also serves net/http/pprof under /debug/pprof/. All but /metrics,
// /healthz, /readyz and the page's HTML are behind the admin token
// (adminapi.Guard).
func adminHandler(reg *prometheus.Registry, lv *live, hist *history, listening *atomic.Bool, withPprof bool) http.Handler {
	mux := http.NewServeMux()
	guard := &adminapi.Guard{Token: func() string { return lv.config().AdminToken }}
	guarded := func(pattern string, h http.HandlerFunc) { mux.Handle(pattern, guard.Wrap(h)) }
	if withPprof {
		guarded("GET /debug/pprof/", pprof.Index)
		guarded("GET /debug/pprof/cmdline", pprof.Cmdline)
		guarded("GET /debug/pprof/profile", pprof.Profile)
		guarded("GET /debug/pprof/symbol", pprof.Symbol)
		guarded("POST /debug/pprof/symbol", pprof.Symbol)
		guarded("GET /debug/pprof/trace", pprof.Trace)
	}
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		backends := lv.snapshot()
		states := make([]backendState, len(backends))
		for i, b := range backends {
			states[i] = backendState{name: b.Name(), ready: b.Ready()}
		}
		ok, why := readiness(listening.Load(), lv.gm.Listeners().Down(), states)
		if !ok {
			http.Error(w, "not ready: "+strings.Join(why, "; "), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	stats := statsJSON(lv, hist)
	guarded("GET /stats.json", stats)
	mux.Handle("/api/", guard.Wrap(adminapi.Handler(adminapi.Backends(lv.snapshot), stats)))
	mux.HandleFunc("GET /{$}", statsHTML)
	guarded("POST /reload", func(w http.ResponseWriter, r *http.Request) {
		if err := lv.reload(); err != nil {
			status := http.StatusBadRequest
			switch {
			case errors.Is(err, errNoReload):
				status = http.StatusConflict
			case errors.Is(err, errShuttingDown):
				status = http.StatusServiceUnavailable
			}
			http.Error(w, "reload failed, previous config still running:\n"+err.Error(), status)
			return
		}
		fmt.Fprintln(w, "reloaded")
	})
	return mux
}
