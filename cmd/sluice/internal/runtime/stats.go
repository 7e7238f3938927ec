package runtime

import (
	_ "embed"
	"encoding/json"
	"net/http"
	"time"

	"github.com/sluice-gw/sluice/upstream"
)

// statsDoc is /stats.json: the funnel at a glance, per backend and server.
type statsDoc struct {
	Time                int64 `json:"time_unix_ms"`
	ClientConnections   int   `json:"client_connections"`
	UpstreamConnections int   `json:"upstream_connections"`
	// FunnelRatio is client connections per upstream connection: what
	// Sluice saves Tomcat.
	FunnelRatio float64          `json:"funnel_ratio"`
	Backends    []upstream.Stats `json:"backends"`
	// Connections lists every open upstream connection.
	Connections []connRow `json:"connections"`
	// History is the last 15 minutes, sampled every 2 s.
	History historyDoc `json:"history"`
}

// buildStats is a pure function of the snapshots, for testing.
func buildStats(now time.Time, clients int, backends []upstream.Stats) statsDoc {
	d := statsDoc{Time: now.UnixMilli(), ClientConnections: clients, Backends: backends}
	for _, b := range backends {
		for _, s := range b.Servers {
			d.UpstreamConnections += s.Conns
		}
	}
	if d.UpstreamConnections > 0 {
		d.FunnelRatio = float64(clients) / float64(d.UpstreamConnections)
	}
	return d
}

func statsJSON(lv *live, hist *history) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		bs := lv.snapshot()
		stats := make([]upstream.Stats, len(bs))
		var conns []upstream.ConnStats
		for i, b := range bs {
			stats[i] = b.Stats()
			conns = b.Conns(conns)
		}
		now := time.Now()
		d := buildStats(now, lv.g.ClientConns(), stats)
		d.Connections = connRows(now, conns)
		d.History = hist.doc()
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		json.NewEncoder(w).Encode(d)
	}
}

//go:embed stats.html
var statsPage []byte

func statsHTML(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/" {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(statsPage)
}
