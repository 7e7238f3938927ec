package upstream

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/sluice-gw/sluice/gateway/gatewaytest"
)

// TestConnectionReuseMetrics: the negotiated stream limit is exported per
// server while connections are open, and each connection's request count
// and lifetime land in the histograms when it closes.
func TestConnectionReuseMetrics(t *testing.T) {
	tests := []struct {
		name          string
		protocol      string
		serverStreams int
		cfgStreams    int
		wantMax       float64
	}{
		{"h2c server limit below config", H2C, 7, 100, 7},
		{"h2c config below server", H2C, 50, 20, 20},
		{"h1", H1, 0, 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := newFakeServer(t, tt.protocol == H2C, tt.serverStreams)
			reg := prometheus.NewRegistry()
			m := NewMetrics(reg)
			b, err := New(Config{
				Name: "b", Protocol: tt.protocol,
				Servers: []ServerConfig{{Address: fs.addr()}},
				H2C:     H2CConfig{ConnsPerServer: 1, MaxStreamsPerConn: tt.cfgStreams},
				H1:      H1Config{ConnsPerServer: 1},
				Queue:   QueueConfig{MaxPending: 10, Timeout: 5 * time.Second},
			}, m, quietLog())
			if err != nil {
				t.Fatal(err)
			}
			b.Start()
			const n = 5
			for range n {
				resp, _, err := get(context.Background(), b, "/", nil)
				if err != nil || resp.StatusCode != 200 {
					t.Fatalf("request: %v %v", resp, err)
				}
			}
			if got := gathered(t, reg, "sluice_upstream_max_streams").GetGauge().GetValue(); got != tt.wantMax {
				t.Errorf("sluice_upstream_max_streams = %v, want %v", got, tt.wantMax)
			}
			opened := time.Now()
			// The server closes the connection (Backend.Close would
			// delete the server's series along with it).
			t.Cleanup(b.Close)
			fs.CloseClientConnections()
			gatewaytest.WaitFor(t, 5*time.Second, "connection closed", func() bool {
				return gathered(t, reg, "sluice_upstream_connection_requests").GetHistogram().GetSampleCount() > 0
			})
			reqs := gathered(t, reg, "sluice_upstream_connection_requests").GetHistogram()
			if reqs.GetSampleCount() != 1 || reqs.GetSampleSum() != n {
				t.Errorf("connection_requests: %d samples, sum %v; want 1 connection with %d requests", reqs.GetSampleCount(), reqs.GetSampleSum(), n)
			}
			life := gathered(t, reg, "sluice_upstream_connection_lifetime_seconds").GetHistogram()
			if life.GetSampleCount() != 1 || life.GetSampleSum() <= 0 || life.GetSampleSum() > time.Since(opened).Seconds()+10 {
				t.Errorf("connection_lifetime: %d samples, sum %v", life.GetSampleCount(), life.GetSampleSum())
			}
		})
	}
}

// gathered is the one series of the metric family name in reg.
func gathered(t *testing.T, reg *prometheus.Registry, name string) *dto.Metric {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			if len(mf.GetMetric()) != 1 {
				t.Fatalf("%s: %d series, want 1", name, len(mf.GetMetric()))
			}
			return mf.GetMetric()[0]
		}
	}
	t.Fatalf("%s not gathered", name)
	return nil
}
