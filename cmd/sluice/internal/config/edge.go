package config

import (
	"crypto/tls"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Decoding of the client-edge keys: trusted proxy networks and TLS
// certificate pairs.

// prefixes decodes a list of networks: CIDRs, or bare addresses meaning a
// single host. nil when empty.
func (d *decoder) prefixes(key string, v any) []netip.Prefix {
	items, ok := d.stringList(key, v)
	if !ok {
		d.failKey(key, "must be a list of networks, like [10.0.0.0/8, 192.0.2.7], got %s", describe(v))
		return nil
	}
	var out []netip.Prefix
	for i, item := range items {
		ikey := fmt.Sprintf("%s[%d]", key, i)
		s, ok := item.(string)
		if !ok {
			d.failKey(ikey, "must be a CIDR or an IP address, got %s", describe(item))
			continue
		}
		p, err := parsePrefix(strings.TrimSpace(s))
		if err != nil {
			d.failKey(ikey, "invalid network %q: want a CIDR like 10.0.0.0/8 or an IP address", s)
			continue
		}
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out
}

// parsePrefix parses a CIDR, or an address as a one-host prefix. The
// prefix is masked ("10.1.2.3/8" is 10.0.0.0/8) so that it prints as it
// matches; IPv4-mapped IPv6 addresses are unmapped, as peer addresses are
// before they are compared.
func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap().WithZone("")
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// checkCerts resolves relative certificate paths against the config
// file's directory and loads every pair, so that a missing file or a key
// that does not match its certificate stops the start (or fails the
// reload) with the key named, instead of failing TLS handshakes later.
func (d *decoder) checkCerts(c *Config) {
	for i := range c.TLSCerts {
		p := &c.TLSCerts[i]
		key := fmt.Sprintf("tls_certs[%d]", i)
		if d.failedUnder(key) || d.failedUnder("tls_certs") {
			continue
		}
		p.CertFile, p.KeyFile = d.resolve(p.CertFile), d.resolve(p.KeyFile)
		if p.CertFile == "" || p.KeyFile == "" {
			continue // validate names the missing field
		}
		if _, err := tls.LoadX509KeyPair(p.CertFile, p.KeyFile); err != nil {
			d.failKey(key, "certificate %s with key %s: %v", p.CertFile, p.KeyFile, err)
		}
	}
}

// checkAccessLog resolves a relative access log file against the config
// file's directory and checks that the directory exists, so that a typo
// fails the start with the key named rather than the first log line.
func (d *decoder) checkAccessLog(c *Config) {
	p := &c.AccessLog.Path
	if *p == "" || *p == PathStdout || *p == PathStderr || d.failedUnder("access_log.path") {
		return
	}
	*p = d.resolve(*p)
	dir := filepath.Dir(*p)
	if fi, err := os.Stat(dir); err != nil {
		d.failKey("access_log.path", "directory of %s: %v", *p, err)
	} else if !fi.IsDir() {
		d.failKey("access_log.path", "%s is not a directory", dir)
	}
}
