package upstream

import (
	"context"
	"errors"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"
)

// fakeConn is a clientConn without a network, for tests of what the
// backend does around connections (choice, queueing, health timers). It
// answers every request with status; a request holds one of limit slots
// from Reserve until its response body is closed, which calls the pool's
// state hook as a real connection would.
type fakeConn struct {
	mu       sync.Mutex // guards the fields below
	status   int
	limit    int
	inflight int
	closed   bool
	hook     func() // the pool's stateChanged, once the pool watches
}

var _ clientConn = (*fakeConn)(nil)

var errFakeClosed = errors.New("fake connection closed")

func (f *fakeConn) Reserve() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case f.closed:
		return errFakeClosed
	case f.inflight >= f.limit:
		return ErrNoCapacity
	}
	f.inflight++
	return nil
}

func (f *fakeConn) Release() {
	f.mu.Lock()
	f.inflight--
	hook := f.hook
	f.mu.Unlock()
	if hook != nil {
		hook()
	}
}

func (f *fakeConn) watch(hook func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hook = hook
}

func (f *fakeConn) Available() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.limit - f.inflight
}

func (f *fakeConn) InFlight() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.inflight
}

func (f *fakeConn) Err() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return errFakeClosed
	}
	return nil
}

func (f *fakeConn) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	return nil
}

func (f *fakeConn) setStatus(code int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.status = code
}

func (f *fakeConn) RoundTrip(req *http.Request) (*http.Response, error) {
	f.mu.Lock()
	code := f.status
	f.mu.Unlock()
	return &http.Response{StatusCode: code, Header: http.Header{}, Body: &fakeBody{f: f}, Request: req}, nil
}

// fakeBody is an empty body giving its slot back on Close.
type fakeBody struct {
	f    *fakeConn
	once sync.Once
}

func (b *fakeBody) Read([]byte) (int, error) { return 0, io.EOF }

func (b *fakeBody) Close() error {
	b.once.Do(b.f.Release)
	return nil
}

// installFake gives s a pool of one open fake connection with limit
// slots answering status, in place of the pool New made (which has
// dialled nothing), and returns the connection.
func installFake(t *testing.T, s *Server, status, limit int) *fakeConn {
	t.Helper()
	fc := &fakeConn{status: status, limit: limit}
	p := newPool(poolConfig{
		server: s, protocol: H2C, addr: s.addr, onChange: s.changed, obs: s.obs,
		limits: poolLimits{maxConns: 1, maxStreams: limit, connectTimeout: time.Second},
		dial: func(context.Context, *pconn) (clientConn, func(func()), error) {
			return fc, fc.watch, nil
		},
	})
	if old := s.cur.Swap(p); old != nil {
		old.close()
	}
	if err := p.grow(); err != nil {
		t.Fatal(err)
	}
	return fc
}
