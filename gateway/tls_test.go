package gateway

import (
	"crypto/tls"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluice-gw/sluice/gateway/gatewaytest"
)

// writeCert makes a self-signed certificate for names in dir.
func writeCert(t testing.TB, dir, base string, names ...string) CertPair {
	c := gatewaytest.WriteCert(t, dir, base, names...)
	return CertPair{CertFile: c.CertFile, KeyFile: c.KeyFile}
}

func TestCertsBySNI(t *testing.T) {
	dir := t.TempDir()
	a := writeCert(t, dir, "a", "a.example")
	w := writeCert(t, dir, "w", "*.wild.example")
	c, err := LoadCerts([]CertPair{a, w})
	if err != nil {
		t.Fatal(err)
	}
	for sni, want := range map[string]string{"a.example": "a.example", "x.wild.example": "*.wild.example", "A.EXAMPLE.": "a.example", "": "a.example", "other": "a.example"} {
		cert, err := c.GetCertificate(&tls.ClientHelloInfo{ServerName: sni})
		if err != nil || cert.Leaf.DNSNames[0] != want {
			t.Errorf("SNI %q: got %v %v, want %s", sni, cert.Leaf.DNSNames, err, want)
		}
	}
}

func TestCertErrorsNameTheFile(t *testing.T) {
	dir := t.TempDir()
	a := writeCert(t, dir, "a", "a.example")
	b := writeCert(t, dir, "b", "b.example")
	tests := map[string]CertPair{
		"missing":  {CertFile: filepath.Join(dir, "nope.crt"), KeyFile: a.KeyFile},
		"mismatch": {CertFile: a.CertFile, KeyFile: b.KeyFile},
	}
	for name, p := range tests {
		_, err := LoadCerts([]CertPair{p})
		if err == nil || !strings.Contains(err.Error(), p.CertFile) {
			t.Errorf("%s: error %v does not name %s", name, err, p.CertFile)
		}
	}
	// A failed reload keeps the old set.
	c, _ := LoadCerts([]CertPair{a})
	if err := c.Reload([]CertPair{tests["mismatch"]}); err == nil {
		t.Fatal("bad reload accepted")
	}
	if cert, _ := c.GetCertificate(&tls.ClientHelloInfo{ServerName: "a.example"}); cert == nil {
		t.Error("old certificates lost")
	}
}
