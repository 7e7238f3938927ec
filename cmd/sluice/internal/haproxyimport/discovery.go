package haproxyimport

import (
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// server-template with resolvers becomes DNS discovery: the template's
// name and port are discovery.dns and discovery.port (an SRV name, which
// starts with "_", gives type srv), the resolvers section's first
// nameserver is discovery.resolver and its timeout resolve the interval.

type outDiscovery struct {
	DNS      string `yaml:"dns"`
	Type     string `yaml:"type,omitempty"`
	Port     int    `yaml:"port,omitempty"`
	Interval string `yaml:"interval,omitempty"`
	Resolver string `yaml:"resolver,omitempty"`
}

// resolvers is what a resolvers section gives the discoveries that name it.
type resolvers struct {
	nameserver string        // ip:port of the first nameserver; "" means the system's
	interval   time.Duration // timeout resolve; 0: Sluice's default
}

// dnsName is what Sluice takes as discovery.dns.
var dnsName = regexp.MustCompile(`^[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9])?\.?$`)

// resolversSection reads a resolvers section, reporting each directive.
func (c *converter) resolversSection(s *Section) {
	r := &resolvers{}
	if c.resolvers == nil {
		c.resolvers = map[string]*resolvers{}
	}
	c.resolvers[s.Name] = r
	first := ""
	for _, d := range s.Directives {
		w := d.Words
		switch k := d.Keyword(); {
		case k == "nameserver" && len(w) >= 3:
			addr := strings.TrimPrefix(strings.TrimPrefix(w[2], "udp@"), "ipv4@")
			ap, err := netip.ParseAddrPort(addr)
			switch {
			case err != nil:
				c.note(d, Untranslated, "Sluice's discovery.resolver is an ip:port, not %q", w[2])
			case first != "":
				c.note(d, Untranslated, "Sluice asks one name server: the first, %s", first)
			default:
				first = w[1]
				r.nameserver = ap.String()
				c.note(d, Translated, "discovery.resolver %s of the backends whose server-template names %s", r.nameserver, s.Name)
			}
		case k == "parse-resolv-conf":
			c.note(d, Translated, "without a nameserver, discovery uses the system's resolver (/etc/resolv.conf), Sluice's default")
		case k == "timeout" && len(w) == 3 && w[1] == "resolve":
			v, err := parseTime(w[2])
			if err != nil || v <= 0 {
				c.note(d, Untranslated, "not a time")
				continue
			}
			r.interval = max(v, time.Second)
			c.note(d, Translated, "discovery.interval %s (at least 1s; a shorter TTL in the answer brings a resolution forward)", formatDuration(r.interval))
		case k == "timeout" || k == "resolve_retries":
			c.note(d, Untranslated, "Sluice bounds each query to 2s per name server and asks again at the next interval")
		case k == "hold":
			c.note(d, Untranslated, "Sluice keeps the servers of the last good answer until another good answer differs: failures and empty answers never remove servers")
		case k == "accepted_payload_size":
			c.note(d, Untranslated, "Sluice advertises 1232 bytes and asks again over TCP when an answer is truncated")
		default:
			c.note(d, Untranslated, "no Sluice equivalent")
		}
	}
}

// serverTemplate translates `server-template PREFIX NUM NAME[:PORT]
// [params]` with `resolvers R` into a discovery; the params are read like a
// server line's.
func (c *converter) serverTemplate(d Directive, def serverOpts) (serverLine, bool) {
	w := d.Words
	if len(w) < 4 {
		c.note(d, Untranslated, "a server-template needs a prefix, a count and a name")
		return serverLine{}, false
	}
	var params []string
	resolversName := ""
	for i := 4; i < len(w); i++ {
		switch w[i] {
		case "resolvers":
			resolversName = at(w, i+1)
			i++
		case "init-addr":
			// Sluice starts without the servers and adds them once
			// resolved, as init-addr none does.
			i++
		default:
			params = append(params, w[i])
		}
	}
	if resolversName == "" {
		c.note(d, Untranslated, "without resolvers HAProxy resolves the name once, at start: list the servers, or name a resolvers section for DNS discovery")
		return serverLine{}, false
	}
	r, ok := c.resolvers[resolversName]
	if !ok {
		c.note(d, Untranslated, "no resolvers section named %s", resolversName)
		return serverLine{}, false
	}
	name, port := w[3], 0
	if i := strings.LastIndexByte(name, ':'); i >= 0 {
		p, err := strconv.Atoi(name[i+1:])
		if err != nil || p < 1 || p > 65535 {
			c.note(d, Untranslated, "port %q: must be 1..65535", name[i+1:])
			return serverLine{}, false
		}
		name, port = name[:i], p
	}
	if len(name) > 254 || !dnsName.MatchString(name) {
		c.note(d, Untranslated, "%q is not a DNS name", name)
		return serverLine{}, false
	}
	disc := &outDiscovery{DNS: name, Port: port, Resolver: r.nameserver}
	if r.interval > 0 {
		disc.Interval = formatDuration(r.interval)
	}
	kind := "A and AAAA records, on port " + strconv.Itoa(port)
	if strings.HasPrefix(name, "_") {
		disc.Type = "srv"
		kind = "SRV records"
	} else if port == 0 {
		c.note(d, Untranslated, "%s has no port: A records need one", name)
		return serverLine{}, false
	}
	opts, ok := c.serverOptions(d, params, def)
	if !ok {
		return serverLine{}, false
	}
	if opts.backup {
		c.note(d, Untranslated, "backup: discovered servers are regular servers")
		opts.backup = false
	}
	c.note(d, Translated, "discovery of %s (%s): every address found is a server, where HAProxy fills at most %s slots", name, kind, w[2])
	return serverLine{d: d, opts: opts, disc: disc}, true
}

// addTemplate records a backend's server-template, one per backend.
func (c *converter) addTemplate(d Directive, st *settings, tmpl *serverLine) {
	if tmpl.disc != nil {
		c.note(d, Untranslated, "a Sluice backend has one discovery: the first server-template's (line %d)", tmpl.d.Line)
		return
	}
	if t, ok := c.serverTemplate(d, st.defServer); ok {
		*tmpl = t
	}
}
