package runtime

import (
	"testing"
	"time"

	"github.com/sluice-gw/sluice/upstream"
)

func TestBuildStatsFunnelRatio(t *testing.T) {
	bs := []upstream.Stats{
		{Name: "a", Servers: []upstream.ServerStats{{Conns: 2}, {Conns: 2}}},
		{Name: "b", Servers: []upstream.ServerStats{{Conns: 0}}},
	}
	d := buildStats(time.Unix(1, 0), 3000, bs)
	if d.UpstreamConnections != 4 || d.FunnelRatio != 750 {
		t.Errorf("got %d upstream, ratio %v", d.UpstreamConnections, d.FunnelRatio)
	}
	if d := buildStats(time.Unix(1, 0), 10, nil); d.FunnelRatio != 0 {
		t.Errorf("ratio without upstream connections: %v", d.FunnelRatio)
	}
}
