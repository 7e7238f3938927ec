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

// TestReqCtx: a request's context over a connection's that cannot end
// has the connection's values and no deadline; its Done channel, asked
// for before or after, closes at cancel and not before; Err and
// context.Cause are nil until then, context.Canceled after; contexts
// derived from it, before or after, have ended when cancel returns; its
// watcher is called by cancel unless stopped.
func TestReqCtx(t *testing.T) {
	type key struct{}
	for _, tt := range []struct {
		name       string
		doneBefore bool
		stopWatch  bool
	}{
		{"Done after", false, false},
		{"Done before", true, false},
		{"watcher stopped", true, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rc := &reqCtx{conn: context.WithValue(context.Background(), key{}, "v")}
			var ctx context.Context = rc
			if ctx.Value(key{}) != "v" || ctx.Err() != nil || context.Cause(ctx) != nil {
				t.Fatalf("live: value %v, Err %v, Cause %v", ctx.Value(key{}), ctx.Err(), context.Cause(ctx))
			}
			if _, ok := ctx.Deadline(); ok {
				t.Error("a deadline")
			}
			var done <-chan struct{}
			if tt.doneBefore {
				done = ctx.Done()
				select {
				case <-done:
					t.Fatal("Done closed before cancel")
				default:
				}
			}
			child, cancelChild := context.WithCancel(ctx)
			defer cancelChild()
			timed, cancelTimed := context.WithTimeout(ctx, time.Hour)
			defer cancelTimed()
			called := 0
			rc.OnCancel(endedFunc(func() { called++ }))
			if tt.stopWatch && !rc.StopOnCancel() {
				t.Error("StopOnCancel: false with a watcher set")
			}

			rc.cancel()
			if !tt.doneBefore {
				done = ctx.Done()
			}
			select {
			case <-done:
			default:
				t.Error("Done open after cancel")
			}
			if ctx.Err() != context.Canceled || context.Cause(ctx) != context.Canceled {
				t.Errorf("ended: Err %v, Cause %v", ctx.Err(), context.Cause(ctx))
			}
			late, cancelLate := context.WithCancel(ctx)
			defer cancelLate()
			for _, d := range []context.Context{child, timed, late} {
				if d.Err() != context.Canceled {
					t.Errorf("derived context when cancel returned: %v", d.Err())
				}
			}
			if want := map[bool]int{false: 1, true: 0}[tt.stopWatch]; called != want {
				t.Errorf("watcher called %d times, want %d", called, want)
			}
			if ctx.Value(key{}) != "v" {
				t.Error("the connection's value lost at the end")
			}
		})
	}
}
