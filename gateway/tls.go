package gateway

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
)

// CertPair names a certificate chain and its key, PEM files. Its tags
// are the keys of a tls_certs entry in Sluice's config file.
type CertPair struct {
	CertFile string `yaml:"cert"`
	KeyFile  string `yaml:"key"`
}

// Certs holds the TLS certificates of the listeners, chosen by SNI, and
// swaps them atomically on reload: handshakes in progress keep the set they
// started with, no connection is dropped.
type Certs struct {
	cur atomic.Pointer[certSet]
}

type certSet struct {
	exact    map[string]*tls.Certificate // lower-case DNS name
	wildcard map[string]*tls.Certificate // ".example.com" for *.example.com
	first    *tls.Certificate            // for clients without SNI
}

// LoadCerts reads every pair; errors name the file and say what is wrong
// (missing file, key not matching the certificate).
func LoadCerts(pairs []CertPair) (*Certs, error) {
	c := &Certs{}
	if err := c.Reload(pairs); err != nil {
		return nil, err
	}
	return c, nil
}

// Reload reads the pairs again and swaps them in, or keeps the old set and
// returns why not.
func (c *Certs) Reload(pairs []CertPair) error {
	set, err := ReadCerts(pairs)
	if err != nil {
		return err
	}
	c.Use(set)
	return nil
}

// CertSet is a set of certificates read by ReadCerts, not yet in use: a
// reload reads them first and swaps them in (Use) only once everything
// else it changes has been checked.
type CertSet struct{ set *certSet }

// Use puts set in use for new handshakes.
func (c *Certs) Use(set CertSet) { c.cur.Store(set.set) }

// ReadCerts reads every pair, as LoadCerts does, without using them.
func ReadCerts(pairs []CertPair) (CertSet, error) {
	if len(pairs) == 0 {
		return CertSet{}, errors.New("tls: no certificates")
	}
	set := &certSet{exact: map[string]*tls.Certificate{}, wildcard: map[string]*tls.Certificate{}}
	for _, p := range pairs {
		cert, err := tls.LoadX509KeyPair(p.CertFile, p.KeyFile)
		if err != nil {
			return CertSet{}, fmt.Errorf("tls: certificate %s with key %s: %w", p.CertFile, p.KeyFile, err)
		}
		leaf, err := x509.ParseCertificate(cert.Certificate[0])
		if err != nil {
			return CertSet{}, fmt.Errorf("tls: certificate %s: %w", p.CertFile, err)
		}
		cert.Leaf = leaf
		if set.first == nil {
			set.first = &cert
		}
		names := leaf.DNSNames
		if len(names) == 0 && leaf.Subject.CommonName != "" {
			names = []string{leaf.Subject.CommonName}
		}
		for _, n := range names {
			n = strings.ToLower(n)
			if strings.HasPrefix(n, "*.") {
				set.wildcard[n[1:]] = &cert
			} else {
				set.exact[n] = &cert
			}
		}
	}
	return CertSet{set: set}, nil
}

// GetCertificate is tls.Config.GetCertificate: exact name, then wildcard,
// then the first certificate.
func (c *Certs) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	set := c.cur.Load()
	name := strings.ToLower(strings.TrimSuffix(hello.ServerName, "."))
	if cert, ok := set.exact[name]; ok {
		return cert, nil
	}
	if i := strings.IndexByte(name, '.'); i > 0 {
		if cert, ok := set.wildcard[name[i:]]; ok {
			return cert, nil
		}
	}
	return set.first, nil
}

// TLSConfig is the listeners' TLS configuration: TLS 1.2 and 1.3, ALPN for
// the given protocols (h2, http/1.1, or h3), and for TLS 1.2 only ECDHE with
// AEAD ciphers. Go's defaults also allow CBC suites, which HTTP/2 forbids
// (RFC 9113 9.2.2); Go's HTTP/2 server would refuse them on a *tls.Conn,
// but it reads Sluice's TLS connections through the guard (tlslisten.go),
// so they are left out of the handshake instead. TLS 1.3 suites are all
// AEAD and not configurable.
func (c *Certs) TLSConfig(alpn ...string) *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		CipherSuites:   tls12Suites,
		GetCertificate: c.GetCertificate,
		NextProtos:     alpn,
	}
}

var tls12Suites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}
