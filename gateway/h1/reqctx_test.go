package h1

import (
	"context"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// cancelNotifier is h1compat/client.CancelNotifier (which imports this
// package), as upstream's queue looks for it on a request's context.
type cancelNotifier interface {
	OnCancel(w interface{ ContextEnded() }) bool
	StopOnCancel() bool
}

type endedFunc func()

func (f endedFunc) ContextEnded() { f() }

// TestRequestContextNotifies: a request's context tells a watcher of its
// end by a callback (upstream's queue then waits with a plain receive),
// when the client leaves, after the context has ended; contexts derived
// from it still end with it; a watcher set after the end is refused.
func TestRequestContextNotifies(t *testing.T) {
	type result struct {
		errAtCall, child error
		refused          bool
	}
	got := make(chan result, 1)
	addr := startServer(t, &Server{}, func(w http.ResponseWriter, r *http.Request) {
		cn, ok := r.Context().(cancelNotifier)
		if !ok {
			t.Errorf("the request's context %T tells of its end by no callback", r.Context())
			got <- result{}
			return
		}
		child, cancel := context.WithCancel(r.Context())
		defer cancel()
		called := make(chan error, 1)
		if !cn.OnCancel(endedFunc(func() { called <- r.Context().Err() })) {
			t.Error("OnCancel refused a live context")
		}
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		var res result
		select {
		case res.errAtCall = <-called:
		case <-time.After(5 * time.Second):
			t.Error("the watcher was not called when the client left")
		}
		<-child.Done()
		res.child = child.Err()
		res.refused = !cn.OnCancel(endedFunc(func() {}))
		got <- res
	})
	c, br := dial(t, addr)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
	if res, err := http.ReadResponse(br, nil); err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("%v %v", res, err)
	}
	c.Close()
	res := <-got
	if res.errAtCall != context.Canceled || res.child != context.Canceled || !res.refused {
		t.Errorf("context at the watcher's call %v, child %v, later OnCancel refused %v; want canceled, canceled, true",
			res.errAtCall, res.child, res.refused)
	}
}

// TestRequestContextOfEndingConn: over a connection context that can end
// by itself, the request's context is a plain cancelCtx: its end would
// not go through cancel, and a watcher would never be called.
func TestRequestContextOfEndingConn(t *testing.T) {
	connCtx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan bool, 1)
	addr := startServer(t, &Server{ConnContext: func(context.Context, net.Conn) context.Context { return connCtx }},
		func(w http.ResponseWriter, r *http.Request) {
			_, ok := r.Context().(cancelNotifier)
			done <- ok
		})
	c, br := dial(t, addr)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
	if res, err := http.ReadResponse(br, nil); err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("%v %v", res, err)
	}
	if <-done {
		t.Error("a request's context over an ending connection context is a cancelNotifier")
	}
}
