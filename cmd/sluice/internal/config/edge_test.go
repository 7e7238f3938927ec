package config

import (
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/gateway"
	"github.com/sluice-gw/sluice/gateway/gatewaytest"
)

// writeCert writes a self-signed certificate for name and its key into
// dir as NAME.crt and NAME.key, and returns their paths.
func writeCert(t *testing.T, dir, name string) (certFile, keyFile string) {
	c := gatewaytest.WriteCert(t, dir, name, name)
	return c.CertFile, c.KeyFile
}

func TestDefaultLimits(t *testing.T) {
	c, err := Parse([]byte(valid), "sluice.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	want := Limits{
		MaxConns: 100000, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second,
		MaxHeaderBytes: 32 << 10, MaxHeaderCount: 100, MaxRequestBody: 0, H2MaxConcurrentStreams: 250,
		H2MaxResetsPerSecond: 100,
	}
	if c.Limits != want || c.TLSListen != "" || c.TLSCerts != nil || c.HTTP3 || c.ProxyProtocol || c.ProxyProtocolFrom != nil || c.TrustedProxies != nil {
		t.Errorf("edge defaults: %+v %q %v %v %v %v %v", c.Limits, c.TLSListen, c.TLSCerts, c.HTTP3, c.ProxyProtocol, c.ProxyProtocolFrom, c.TrustedProxies)
	}
}

func TestEdgeFullExample(t *testing.T) {
	dir := t.TempDir()
	aCert, aKey := writeCert(t, dir, "a.example")
	writeCert(t, dir, "b.example")
	y := withBackend(oneServer, `
listen: ":80"
tls_listen: ":443"
tls_certs:
  - { cert: `+aCert+`, key: `+aKey+` }
  - { cert: b.example.crt, key: b.example.key }
http3: true
proxy_protocol: true
proxy_protocol_from: [10.0.0.0/8, "::/0"]
limits:
  max_conns: 5000
  read_header_timeout: 2s
  idle_timeout: 30s
  max_header_bytes: 65536
  max_header_count: 50
  max_request_body: 10485760
  h2_max_concurrent_streams: 100
  h2_max_resets_per_second: 0
trusted_proxies: [10.0.0.0/8, 192.0.2.7, "2001:db8::/32", 10.1.2.3/16, "::ffff:198.51.100.1"]
`)
	file := filepath.Join(dir, "sluice.yaml")
	if err := os.WriteFile(file, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(file, nil)
	if err != nil {
		t.Fatal(err)
	}
	wantCerts := []gateway.CertPair{{CertFile: aCert, KeyFile: aKey}, {CertFile: filepath.Join(dir, "b.example.crt"), KeyFile: filepath.Join(dir, "b.example.key")}}
	wantLimits := Limits{5000, 2 * time.Second, 30 * time.Second, 65536, 50, 10 << 20, 100, 0}
	var wantNets []netip.Prefix
	for _, s := range []string{"10.0.0.0/8", "192.0.2.7/32", "2001:db8::/32", "10.1.0.0/16", "198.51.100.1/32"} {
		wantNets = append(wantNets, netip.MustParsePrefix(s))
	}
	if c.Listen != ":80" || c.TLSListen != ":443" || !c.HTTP3 || !c.ProxyProtocol ||
		!reflect.DeepEqual(c.TLSCerts, wantCerts) || c.Limits != wantLimits || !reflect.DeepEqual(c.TrustedProxies, wantNets) ||
		!reflect.DeepEqual(c.ProxyProtocolFrom, []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::/0")}) {
		t.Fatalf("got %+v", c)
	}
	checkRoundTrip(t, c, "tls_listen: :443\n", "http3: true\n", "read_header_timeout: 2s\n", "trusted_proxies: [10.0.0.0/8, 192.0.2.7/32,",
		"proxy_protocol_from: [10.0.0.0/8, '::/0']\n")
}

func TestParseRejectsEdge(t *testing.T) {
	dir := t.TempDir()
	cert, key := writeCert(t, dir, "a.example")
	otherCert, _ := writeCert(t, dir, "b.example")
	certs := "tls_certs: [{cert: " + cert + ", key: " + key + "}]\n"
	checkRejects(t, []rejectCase{
		{name: "http3 without tls_listen", yaml: valid + "http3: true\n" + certs, key: "http3", msg: "requires tls_listen"},
		{name: "tls_listen without certs", yaml: valid + "tls_listen: \":8443\"\n", key: "tls_certs", msg: "at least one {cert, key} pair is required"},
		{name: "tls_listen bad address", yaml: valid + "tls_listen: \"8443\"\n" + certs, key: "tls_listen", msg: "missing port"},
		{name: "tls_listen same as listen", yaml: valid + "listen: \":8443\"\ntls_listen: \"0.0.0.0:8443\"\n" + certs, key: "tls_listen", msg: "conflicts with listen"},
		{name: "tls_listen same as admin", yaml: valid + "tls_listen: \"127.0.0.1:9001\"\n" + certs, key: "tls_listen", msg: "conflicts with admin"},
		{name: "cert missing", yaml: valid + "tls_listen: \":8443\"\ntls_certs: [{cert: /nonexistent/x.crt, key: " + key + "}]\n", key: "tls_certs[0]", msg: "certificate /nonexistent/x.crt with key " + key + ": open /nonexistent/x.crt"},
		{name: "key does not match", yaml: valid + "tls_listen: \":8443\"\ntls_certs: [{cert: " + otherCert + ", key: " + key + "}]\n", key: "tls_certs[0]", msg: "private key does not match"},
		{name: "cert field missing", yaml: valid + "tls_listen: \":8443\"\ntls_certs: [{key: " + key + "}]\n", key: "tls_certs[0].cert", msg: "is required"},
		{name: "cert unknown field", yaml: valid + "tls_certs: [{cert: " + cert + ", kye: " + key + "}]\n", key: "tls_certs[0].kye", msg: "did you mean tls_certs[0].key"},
		{name: "certs not a list", yaml: valid + "tls_certs: " + cert + "\n", key: "tls_certs", msg: "must be a list"},
		{name: "certs from env", yaml: valid, env: []string{"SLUICE_TLS_CERTS=/a.crt"}, key: "tls_certs", msg: "cannot be set from the environment", source: "env SLUICE_TLS_CERTS"},
		{name: "http3 not bool", yaml: valid + "http3: yes please\n", key: "http3", msg: "must be true or false"},
		{name: "limits not mapping", yaml: valid + "limits: 5\n", key: "limits", msg: "must be a mapping"},
		{name: "limits unknown key", yaml: valid + "limits: {max_con: 5}\n", key: "limits.max_con", msg: "did you mean limits.max_conns"},
		{name: "max_conns zero", yaml: valid + "limits: {max_conns: 0}\n", key: "limits.max_conns", msg: "between 1 and 10000000"},
		{name: "read_header_timeout zero", yaml: valid + "limits: {read_header_timeout: 0s}\n", key: "limits.read_header_timeout", msg: "must be positive"},
		{name: "idle_timeout bare", yaml: valid + "limits: {idle_timeout: 120}\n", key: "limits.idle_timeout", msg: "bare number 120"},
		{name: "max_header_bytes above guard", yaml: valid + "limits: {max_header_bytes: 2097152}\n", key: "limits.max_header_bytes", msg: "between 4096 and 1048576"},
		{name: "max_header_count zero", yaml: valid + "limits: {max_header_count: 0}\n", key: "limits.max_header_count", msg: "between 1 and 10000"},
		{name: "max_request_body negative", yaml: valid + "limits: {max_request_body: -1}\n", key: "limits.max_request_body", msg: "must be 0 (no limit)"},
		{name: "streams zero", yaml: valid + "limits: {h2_max_concurrent_streams: 0}\n", key: "limits.h2_max_concurrent_streams", msg: "between 1 and 10000"},
		{name: "resets negative", yaml: valid + "limits: {h2_max_resets_per_second: -1}\n", key: "limits.h2_max_resets_per_second", msg: "between 0 and 1000000"},
		{name: "bad CIDR", yaml: valid + "trusted_proxies: [10.0.0.0/8, 10.0.0.0/33]\n", key: "trusted_proxies[1]", msg: `invalid network "10.0.0.0/33"`},
		{name: "host name as proxy", yaml: valid + "trusted_proxies: [lb.internal]\n", key: "trusted_proxies[0]", msg: "want a CIDR"},
		{name: "proxies not a list", yaml: valid + "trusted_proxies: 10.0.0.0/8\n", key: "trusted_proxies", msg: "must be a list of networks"},
		{name: "bad proxy from env", yaml: valid, env: []string{"SLUICE_TRUSTED_PROXIES=10.0.0.0/8,nope"}, key: "trusted_proxies[1]", msg: "invalid network", source: "env SLUICE_TRUSTED_PROXIES"},
		{name: "proxy_protocol without proxy_protocol_from", yaml: valid + "proxy_protocol: true\n", key: "proxy_protocol_from", msg: "is required with proxy_protocol: true"},
		{name: "proxy_protocol from env without proxy_protocol_from", yaml: valid, env: []string{"SLUICE_PROXY_PROTOCOL=true"}, key: "proxy_protocol_from", msg: "write 0.0.0.0/0 and ::/0"},
		{name: "proxy_protocol_from bad CIDR", yaml: valid + "proxy_protocol: true\nproxy_protocol_from: [10.0.0.0/40]\n", key: "proxy_protocol_from[0]", msg: `invalid network "10.0.0.0/40"`},
		{name: "proxy_protocol_from bad from env", yaml: valid, env: []string{"SLUICE_PROXY_PROTOCOL_FROM=10.0.0.0/8,lb"}, key: "proxy_protocol_from[1]", msg: "invalid network", source: "env SLUICE_PROXY_PROTOCOL_FROM"},
		{name: "access log bad mode", yaml: valid + "access_log: {mode: verbose}\n", key: "access_log.mode", msg: "must be one of off, all, errors, sample"},
		{name: "access log bad format", yaml: valid + "access_log: {mode: all, format: xml}\n", key: "access_log.format", msg: "must be one of json, text"},
		{name: "access log sample zero", yaml: valid + "access_log: {mode: sample, sample: 0}\n", key: "access_log.sample", msg: "between 1 and 1000000"},
		{name: "access log dir missing", yaml: valid + "access_log: {mode: all, path: /nonexistent/dir/access.log}\n", key: "access_log.path", msg: "directory of /nonexistent/dir/access.log"},
		{name: "access log empty path", yaml: valid + "access_log: {path: \"\"}\n", key: "access_log.path", msg: "is required"},
		{name: "access log unknown key", yaml: valid + "access_log: {mdoe: all}\n", key: "access_log.mdoe", msg: "did you mean access_log.mode"},
		{name: "pprof not bool", yaml: valid + "pprof: sometimes\n", key: "pprof", msg: "must be true or false"},
		{name: "access log mode from env", yaml: valid, env: []string{"SLUICE_ACCESS_LOG__MODE=loud"}, key: "access_log.mode", msg: "must be one of", source: "env SLUICE_ACCESS_LOG__MODE"},
		{name: "limit from env", yaml: valid, env: []string{"SLUICE_LIMITS__MAX_HEADER_COUNT=0"}, key: "limits.max_header_count", msg: "between 1 and 10000", source: "env SLUICE_LIMITS__MAX_HEADER_COUNT"},
	})
}

func TestEnvOverrideEdge(t *testing.T) {
	dir := t.TempDir()
	cert, key := writeCert(t, dir, "a.example")
	y := valid + "tls_certs: [{cert: " + cert + ", key: " + key + "}]\n"
	c, err := Parse([]byte(y), "sluice.yaml", []string{
		"SLUICE_TLS_LISTEN=:8443", "SLUICE_HTTP3=true", "SLUICE_PROXY_PROTOCOL=1",
		"SLUICE_LIMITS__MAX_CONNS=500", "SLUICE_LIMITS__READ_HEADER_TIMEOUT=3s",
		"SLUICE_LIMITS__MAX_REQUEST_BODY=1048576", "SLUICE_TRUSTED_PROXIES=10.0.0.0/8, 192.0.2.1",
		"SLUICE_PROXY_PROTOCOL_FROM=10.0.0.0/8, 2001:db8::/32",
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.TLSListen != ":8443" || !c.HTTP3 || !c.ProxyProtocol || c.Limits.MaxConns != 500 ||
		c.Limits.ReadHeaderTimeout != 3*time.Second || c.Limits.MaxRequestBody != 1<<20 ||
		len(c.TrustedProxies) != 2 || c.TrustedProxies[1] != netip.MustParsePrefix("192.0.2.1/32") ||
		len(c.ProxyProtocolFrom) != 2 || c.ProxyProtocolFrom[1] != netip.MustParsePrefix("2001:db8::/32") {
		t.Errorf("env not applied: %+v", c)
	}
}

func TestAccessLogPathRelativeToFile(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "logs"), 0o755); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "sluice.yaml")
	if err := os.WriteFile(file, []byte(valid+"access_log: {mode: errors, path: logs/access.log}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(file, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := AccessLog{Mode: "errors", Sample: 100, Format: "json", Path: filepath.Join(dir, "logs", "access.log")}
	if c.AccessLog != want {
		t.Errorf("access_log = %+v, want %+v", c.AccessLog, want)
	}
	if c.Pprof {
		t.Error("pprof on by default")
	}
}
