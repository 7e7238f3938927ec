package adminapi

import (
	"crypto/sha256"
	"crypto/subtle"
	"net"
	"net/http"
	"strings"
)

// Guard protects the admin endpoints that show or change state (the API,
// /stats.json, /reload, pprof); /metrics, /healthz, /readyz and the stats
// page's static HTML stay open.
//
//   - With a token, a request needs "Authorization: Bearer TOKEN"; else
//     401. The comparison takes the same time however much of the token
//     matches.
//   - Without one (allowed by the config only when the admin listener is
//     on loopback), a request must reach a loopback address and name a
//     loopback host, so that a web page cannot reach the API by DNS
//     rebinding; else 403.
//   - Either way, cross-origin browser requests that change state are
//     refused (CSRF): 403.
type Guard struct {
	// Token returns the bearer token required, or "" for none. It is
	// called per request, so a reload can change it.
	Token func() string
	cop   http.CrossOriginProtection
}

// Realm is the WWW-Authenticate realm of 401 answers.
const Realm = "sluice admin"

// Wrap returns h behind the guard.
func (g *Guard) Wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := g.cop.Check(r); err != nil {
			writeError(w, http.StatusForbidden, "cross-origin request refused: "+err.Error())
			return
		}
		token := g.Token()
		if token == "" {
			if !loopbackRequest(r) {
				writeError(w, http.StatusForbidden, "without admin_token the admin API answers only requests to a loopback address and host")
				return
			}
			h.ServeHTTP(w, r)
			return
		}
		given, ok := bearer(r.Header.Get("Authorization"))
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="`+Realm+`"`)
			writeError(w, http.StatusUnauthorized, "this admin endpoint needs \"Authorization: Bearer\" with the admin_token")
			return
		}
		if !sameToken(given, token) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="`+Realm+`", error="invalid_token"`)
			writeError(w, http.StatusUnauthorized, "wrong admin token")
			return
		}
		h.ServeHTTP(w, r)
	})
}

// bearer extracts the token of an "Authorization: Bearer TOKEN" value; the
// scheme is case-insensitive (RFC 9110 section 11.1).
func bearer(header string) (string, bool) {
	scheme, token, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

// sameToken compares the tokens' hashes in constant time, so that neither
// the content nor the length of the token leaks through timing.
func sameToken(given, want string) bool {
	a, b := sha256.Sum256([]byte(given)), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

// loopbackRequest reports whether r arrived on a loopback address and
// names a loopback host.
func loopbackRequest(r *http.Request) bool {
	local, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if !ok || !IsLoopback(local.String()) {
		return false
	}
	return IsLoopback(r.Host)
}

// IsLoopback reports whether addr, a host or host:port, is a loopback IP
// address or "localhost".
func IsLoopback(addr string) bool {
	host := addr
	if h, _, err := net.SplitHostPort(addr); err == nil {
		host = h
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
