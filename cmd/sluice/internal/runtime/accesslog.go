package runtime

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/sluice-gw/sluice/cmd/sluice/internal/config"
	"github.com/sluice-gw/sluice/gateway"
)

// logFlushInterval bounds how long an access log line may sit in the
// buffer. Writing each line straight through would cost a syscall per
// request; a second is what operators tailing the log notice least.
const logFlushInterval = time.Second

// logSink is the access log's destination: stdout, stderr or a file,
// buffered, flushed every logFlushInterval and on close. reopen (SIGHUP)
// opens the file again by name, so logrotate can move it away.
type logSink struct {
	path string
	log  *slog.Logger

	mu  sync.Mutex // guards out, f and w
	out io.Writer
	f   *os.File // nil for stdout and stderr: never closed here
	w   *bufio.Writer

	stop chan struct{}
	done chan struct{}
}

func openLogSink(path string, log *slog.Logger) (*logSink, error) {
	s := &logSink{path: path, log: log, stop: make(chan struct{}), done: make(chan struct{})}
	switch path {
	case config.PathStdout:
		s.out = os.Stdout
	case config.PathStderr:
		s.out = os.Stderr
	default:
		f, err := openLogFile(path)
		if err != nil {
			return nil, err
		}
		s.f, s.out = f, f
	}
	s.w = bufio.NewWriterSize(s.out, 64<<10)
	go s.flusher()
	return s, nil
}

func openLogFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("access_log.path: %w", err)
	}
	return f, nil
}

func (s *logSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func (s *logSink) flusher() {
	defer close(s.done)
	t := time.NewTicker(logFlushInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			s.flush()
		case <-s.stop:
			return
		}
	}
}

// flush writes out the buffer. bufio's errors are sticky, so after a failed
// write (disk full) the buffer is dropped and logging resumes with the next
// line instead of staying broken.
func (s *logSink) flush() {
	s.mu.Lock()
	err := s.w.Flush()
	if err != nil {
		s.w.Reset(s.out)
	}
	s.mu.Unlock()
	if err != nil {
		s.log.Warn("access log write failed; buffered lines dropped", "path", s.path, "err", err)
	}
}

// reopen flushes and opens the file again by name; for stdout and stderr
// it only flushes. On error the old file stays in use.
func (s *logSink) reopen() error {
	// Decided by the path, not s.f: SIGHUP and POST /reload may reopen
	// concurrently, and s.f is only read under mu.
	if s.path == config.PathStdout || s.path == config.PathStderr {
		s.flush()
		return nil
	}
	f, err := openLogFile(s.path)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.w.Flush()
	old := s.f
	s.f, s.out = f, f
	s.w.Reset(f)
	s.mu.Unlock()
	return old.Close()
}

// Close stops the flusher and writes out what is buffered.
func (s *logSink) Close() error {
	close(s.stop)
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.w.Flush()
	if s.f != nil {
		if cerr := s.f.Close(); err == nil {
			err = cerr
		}
	}
	return err
}

// newAccessLog opens the access log cfg describes; nil, nil when it is off.
func newAccessLog(cfg config.AccessLog, log *slog.Logger) (*gateway.AccessLog, *logSink, error) {
	if cfg.Mode == config.AccessLogOff {
		return nil, nil, nil
	}
	sink, err := openLogSink(cfg.Path, log)
	if err != nil {
		return nil, nil, err
	}
	al, err := gateway.NewAccessLog(gateway.AccessLogConfig{
		Mode: cfg.Mode, SampleN: cfg.Sample, JSON: cfg.Format == config.FormatJSON, Out: sink,
	})
	if err != nil {
		sink.Close()
		return nil, nil, fmt.Errorf("access_log: %w", err)
	}
	return al, sink, nil
}
