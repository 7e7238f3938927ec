// Package adminapi is Sluice's runtime admin API, served on the admin
// listener beside /metrics and the stats page:
//
//	GET  /api/backends                                    the /stats.json document
//	POST /api/backends/{backend}/servers/{server}/drain   no new requests to the server
//	POST /api/backends/{backend}/servers/{server}/enable  back in rotation
//	POST /api/backends/{backend}/servers/{server}/weight  body {"weight": N}, 1..1000
//
// {server} is the server's address as configured (host:port). Answers and
// errors are JSON; errors are {"error": "..."}. Guard protects the API
// (and the other endpoints that show or change state) with a bearer token.
package adminapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/sluice-gw/sluice/upstream"
)

// Control is what the API acts on: the running backends' servers.
type Control interface {
	// SetDrain drains (true) or enables (false) a server of a backend and
	// returns its state afterwards.
	SetDrain(backend, server string, drain bool) (upstream.ServerStats, error)
	// SetWeight sets a server's weight, 1..upstream.MaxWeight.
	SetWeight(backend, server string, weight int) (upstream.ServerStats, error)
}

// ErrUnknownBackend is what a Control returns for a backend it does not
// run; the API answers 404, as for upstream.ErrUnknownServer.
var ErrUnknownBackend = errors.New("unknown backend")

// maxBody caps a request body: {"weight": 1000} is 16 bytes.
const maxBody = 1 << 10

// serverPath is the prefix of the per-server actions.
const serverPath = "/api/backends/{backend}/servers/{server}/"

// Handler serves the API under /api/: GET /api/backends with backends
// (the /stats.json handler) and the server actions through c. Mount it
// behind a Guard.
func Handler(c Control, backends http.Handler) http.Handler {
	mux := http.NewServeMux()
	route := func(method, path string, h http.HandlerFunc) {
		mux.Handle(method+" "+path, h)
		// The same path with any other method: a JSON 405 in place of
		// the mux's plain text one.
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			allow := method
			if method == http.MethodGet {
				allow += ", " + http.MethodHead
			}
			w.Header().Set("Allow", allow)
			writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %s not allowed; use %s", r.Method, allow))
		})
	}
	route(http.MethodGet, "/api/backends", backends.ServeHTTP)
	for action, drain := range map[string]bool{"drain": true, "enable": false} {
		route(http.MethodPost, serverPath+action, func(w http.ResponseWriter, r *http.Request) {
			answer(w, r, func(backend, server string) (upstream.ServerStats, error) {
				return c.SetDrain(backend, server, drain)
			})
		})
	}
	route(http.MethodPost, serverPath+"weight", func(w http.ResponseWriter, r *http.Request) {
		weight, err := decodeWeight(http.MaxBytesReader(w, r.Body, maxBody))
		if err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		answer(w, r, func(backend, server string) (upstream.ServerStats, error) {
			return c.SetWeight(backend, server, weight)
		})
	})
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such API endpoint: "+r.URL.Path)
	})
	return mux
}

// serverDoc is the answer to an action: the server's state afterwards.
type serverDoc struct {
	Backend string `json:"backend"`
	upstream.ServerStats
}

// answer runs an action on the server the path names and writes its
// state, or the error with its status.
func answer(w http.ResponseWriter, r *http.Request, act func(backend, server string) (upstream.ServerStats, error)) {
	backend, server := r.PathValue("backend"), r.PathValue("server")
	ss, err := act(backend, server)
	if err != nil {
		writeError(w, status(err), err.Error())
		return
	}
	writeJSON(w, http.StatusOK, serverDoc{Backend: backend, ServerStats: ss})
}

// status maps a Control error to an HTTP status.
func status(err error) int {
	switch {
	case errors.Is(err, ErrUnknownBackend), errors.Is(err, upstream.ErrUnknownServer):
		return http.StatusNotFound
	case errors.Is(err, upstream.ErrWeightRange):
		return http.StatusBadRequest
	}
	return http.StatusInternalServerError
}

// decodeWeight reads {"weight": N} and nothing else.
func decodeWeight(body io.Reader) (int, error) {
	var in struct {
		Weight *int `json:"weight"`
	}
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	err := dec.Decode(&in)
	if err == nil && dec.Decode(&struct{}{}) != io.EOF {
		err = errors.New("data after the JSON object")
	}
	if err == nil && in.Weight == nil {
		err = errors.New("no weight")
	}
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = errors.New("empty body")
		}
		return 0, fmt.Errorf("body must be {\"weight\": N} with N from 1 to %d: %w", upstream.MaxWeight, err)
	}
	return *in.Weight, nil
}

type errorDoc struct {
	Error string `json:"error"`
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, errorDoc{Error: strings.TrimPrefix(msg, "upstream: ")})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// Backends is the Control of the running gateway: it acts on the backends
// the function lists (the live set, which a reload may change).
type Backends func() []*upstream.Backend

var _ Control = Backends(nil)

func (l Backends) backend(name string) (*upstream.Backend, error) {
	for _, b := range l() {
		if b.Name() == name {
			return b, nil
		}
	}
	return nil, fmt.Errorf("%w %q", ErrUnknownBackend, name)
}

// SetDrain implements Control.
func (l Backends) SetDrain(backend, server string, drain bool) (upstream.ServerStats, error) {
	b, err := l.backend(backend)
	if err != nil {
		return upstream.ServerStats{}, err
	}
	return b.SetDrain(server, drain)
}

// SetWeight implements Control.
func (l Backends) SetWeight(backend, server string, weight int) (upstream.ServerStats, error) {
	b, err := l.backend(backend)
	if err != nil {
		return upstream.ServerStats{}, err
	}
	return b.SetWeight(server, weight)
}
