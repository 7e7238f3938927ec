package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/sluice-gw/sluice/upstream"
)

// Tests for backends[*].discovery, DNS discovery of servers.

func TestParseRejectsDiscovery(t *testing.T) {
	const be = "backends.tomcat."
	checkRejects(t, []rejectCase{
		{name: "no servers and no discovery", yaml: withBackend("protocol: h2c", ""), key: be + "servers", msg: "or discovery.dns"},
		{name: "not a mapping", yaml: withBackend("discovery: tomcat", ""), key: be + "discovery", msg: "must be a mapping"},
		{name: "unknown key", yaml: withBackend("discovery: {name: tomcat, port: 8080}", ""), key: be + "discovery.name", msg: "unknown key"},
		{name: "bad name", yaml: withBackend("discovery: {dns: \"tom cat\", port: 8080}", ""), key: be + "discovery.dns", msg: `invalid DNS name "tom cat"`},
		{name: "type a needs a port", yaml: withBackend("discovery: {dns: tomcat.test}", ""), key: be + "discovery.port", msg: "is required with type a"},
		{name: "port too big", yaml: withBackend("discovery: {dns: _http._tcp.tomcat.test, type: srv, port: 70000}", ""), key: be + "discovery.port", msg: "between 0 and 65535"},
		{name: "unknown type", yaml: withBackend("discovery: {dns: tomcat.test, type: mx, port: 8080}", ""), key: be + "discovery.type", msg: `must be one of a, srv, got "mx"`},
		{name: "interval too short", yaml: withBackend("discovery: {dns: tomcat.test, port: 8080, interval: 500ms}", ""), key: be + "discovery.interval", msg: "at least 1s"},
		{name: "resolver is a name", yaml: withBackend("discovery: {dns: tomcat.test, port: 8080, resolver: \"ns1:53\"}", ""), key: be + "discovery.resolver", msg: "must be ip:port"},
		{name: "resolver without port", yaml: withBackend("discovery: {dns: tomcat.test, port: 8080, resolver: 10.0.0.53}", ""), key: be + "discovery.resolver", msg: "must be ip:port"},
		{name: "env port not a number", yaml: withBackend("discovery: {dns: tomcat.test, port: 8080}", ""),
			env: []string{"SLUICE_BACKENDS__TOMCAT__DISCOVERY__PORT=http"}, key: be + "discovery.port", source: "env SLUICE_BACKENDS__TOMCAT__DISCOVERY__PORT"},
	})
}

func TestDiscoveryParses(t *testing.T) {
	tests := []struct {
		name, fields string
		env          []string
		want         upstream.DiscoveryConfig
	}{
		{"defaults", "discovery: {dns: tomcat.default.svc.cluster.local, port: 8080}", nil,
			upstream.DiscoveryConfig{Name: "tomcat.default.svc.cluster.local", Type: upstream.DNSTypeA, Port: 8080, Interval: 5 * time.Second}},
		{"srv without port, with resolver", "discovery: {dns: _http._tcp.tomcat.test., type: srv, interval: 30s, resolver: \"[fd00::53]:5353\"}", nil,
			upstream.DiscoveryConfig{Name: "_http._tcp.tomcat.test.", Type: upstream.DNSTypeSRV, Interval: 30 * time.Second, Resolver: "[fd00::53]:5353"}},
		{"beside servers, interval from env", oneServer + "discovery: {dns: tomcat.test, port: 8080}",
			[]string{"SLUICE_BACKENDS__TOMCAT__DISCOVERY__INTERVAL=2s"},
			upstream.DiscoveryConfig{Name: "tomcat.test", Type: upstream.DNSTypeA, Port: 8080, Interval: 2 * time.Second}},
		{"none", oneServer, nil, upstream.DiscoveryConfig{Type: upstream.DNSTypeA, Interval: 5 * time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(withBackend(tt.fields, "")), "sluice.yaml", tt.env)
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Backends["tomcat"].Discovery; !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
			checkRoundTrip(t, c, "discovery:\n")
		})
	}
}

// TestKubernetesConfigMap: the sluice.yaml of deploy/kubernetes passes
// `sluice check` and discovers the Tomcats of the headless Service. The
// admin token file it names is the mounted Secret; a file of the test's
// stands in for it.
func TestKubernetesConfigMap(t *testing.T) {
	data, err := os.ReadFile("../../../../deploy/kubernetes/configmap.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var cm struct {
		Data map[string]string `yaml:"data"`
	}
	if err := yaml.Unmarshal(data, &cm); err != nil {
		t.Fatal(err)
	}
	const mounted = "/etc/sluice-admin/admin-token"
	src := cm.Data["sluice.yaml"]
	if !strings.Contains(src, mounted) {
		t.Fatalf("configmap.yaml no longer reads the admin token from %s", mounted)
	}
	token := filepath.Join(t.TempDir(), "admin-token")
	if err := os.WriteFile(token, []byte("a-token-of-the-secret-0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Parse([]byte(strings.ReplaceAll(src, mounted, token)), "configmap.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	if d := c.Backends["tomcat"].Discovery; d.Name != "tomcat.default.svc.cluster.local" || d.Port != 8080 {
		t.Errorf("discovery %+v", d)
	}
}
