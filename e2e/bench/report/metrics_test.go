package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const metricsText = `# HELP sluice_upstream_connections_opened_total Upstream connections opened (successful dials).
# TYPE sluice_upstream_connections_opened_total counter
sluice_upstream_connections_opened_total{backend="tomcat",protocol="h1",server="127.0.0.1:19104"} 61
sluice_upstream_connections_opened_total{backend="tomcat",protocol="h1",server="127.0.0.1:19105"} 63
sluice_upstream_connections_opened_total_extra 1000
sluice_upstream_keepalive_closes_total{backend="tomcat",server="a{b}"} 7 1700000000000
sluice_plain 2.5
`

func TestCounterSum(t *testing.T) {
	for _, tc := range []struct {
		name, text, metric string
		want               float64
		err                bool
	}{
		{name: "labelled series summed", text: metricsText, metric: "sluice_upstream_connections_opened_total", want: 124},
		{name: "braces in a label value, timestamp", text: metricsText, metric: "sluice_upstream_keepalive_closes_total", want: 7},
		{name: "no labels", text: metricsText, metric: "sluice_plain", want: 2.5},
		{name: "absent counter is 0", text: metricsText, metric: "sluice_requests_total", want: 0},
		{name: "bad value", text: "x_total{a=\"b\"} many\n", metric: "x_total", err: true},
		{name: "no value", text: "x_total{a=\"b\"}\n", metric: "x_total", err: true},
		{name: "unterminated labels", text: "x_total{a=\"b\" 3\n", metric: "x_total", err: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := CounterSum(tc.text, tc.metric)
			if tc.err {
				if err == nil {
					t.Fatalf("got %v, want an error", got)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}

func TestPeerLabelsAndSluiceCounters(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"peers.tsv": "id\tlabel\tbackend\n" +
			"sluice\tSluice (h2c)\t\n" +
			"haproxy-h1\tHAProxy h1\t\n" +
			"sluice\tSluice (HTTP/1.1 pool)\ttomcat-h1\n",
		"raw.tsv": "round\tbackend\tscenario\tpeer\tstatus\trps\tp50_ms\tp99_ms\trequests\terrors\tbackend_syns\tbackend_tw\tsluice_opened\tsluice_ka_closes\tproxy_cpu_s\tproxy_hwm_kib\tother_cpu_s\tnote\n" +
			"1\ttomcat-h1\th1-close\tsluice\tok\t1000\t1\t2\t10000\t0\t130\t120\t128\t100\t1.0\t10240\t0\t\n" +
			"2\ttomcat-h1\th1-close\tsluice\tok\t1000\t1\t2\t10000\t0\t110\t100\t110\t96\t1.0\t10240\t0\t\n" +
			"1\ttomcat-h1\th1-close\thaproxy-h1\tok\t1000\t1\t2\t10000\t0\t900\t800\t\t\t1.0\t10240\t0\t\n" +
			"1\ttomcat\th1-close\tsluice\tok\t1000\t1\t2\t10000\t0\t0\t0\t\t\t1.0\t10240\t0\t\n",
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var out strings.Builder
	if err := writeTables(&out, dir); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	tomcat := s[strings.Index(s, "#### Backend: tomcat\n"):]
	h1 := strings.TrimSuffix(s, tomcat)
	for _, tc := range []struct {
		section, text, want string
		present             bool
	}{
		{"tomcat-h1", h1, "| h1-close | Sluice (HTTP/1.1 pool) | 1000 | 1.00 | 1.0 | 2.0 | 0 | 120 | 110 |", true},
		{"tomcat-h1", h1, "| h1-close | HAProxy h1 | 1000 | 1.00 |", true},
		{"tomcat-h1", h1, "Sluice's own counters over the measured run (medians; sluice_upstream_connections_opened_total, sluice_upstream_keepalive_closes_total): h1-close: 119 opened, 98 ended by the server's keep-alive limit.", true},
		{"tomcat", tomcat, "| h1-close | Sluice (h2c) | 1000 |", true},
		{"tomcat", tomcat, "Sluice's own counters", false},
	} {
		if strings.Contains(tc.text, tc.want) != tc.present {
			t.Errorf("%s section: contains %q = %v, want %v:\n%s", tc.section, tc.want, !tc.present, tc.present, tc.text)
		}
	}
}
