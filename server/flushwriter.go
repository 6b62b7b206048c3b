package server

import (
	"io"
	"net/http"
	"sync"
	"time"
)

// A log stream is written to the client in pieces of up to coalesceSize,
// and at the latest coalesceDelay after its first unsent byte.
const (
	coalesceSize  = 32 << 10
	coalesceDelay = 10 * time.Millisecond
)

// coalescingWriter sends what it is given to an HTTP response in large
// flushed writes. The kubelet flushes after every log line, so a container
// that logs fast makes one TLS record and one write per line; this writer
// flushes when coalesceSize bytes are pending, or coalesceDelay after the
// first pending byte, so that a slow stream still arrives at once. It is
// safe for the log reader and its own timer; after Close it writes nothing.
type coalescingWriter struct {
	mu     sync.Mutex
	w      io.Writer
	f      http.Flusher // may be nil
	buf    []byte
	timer  *time.Timer
	closed bool
	err    error
}

func newCoalescingWriter(w http.ResponseWriter) *coalescingWriter {
	f, _ := w.(http.Flusher)
	return &coalescingWriter{w: w, f: f}
}

func (c *coalescingWriter) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return 0, c.err
	}
	if c.closed {
		return 0, io.ErrClosedPipe
	}
	c.buf = append(c.buf, p...)
	if len(c.buf) >= coalesceSize {
		c.flushLocked()
		return len(p), c.err
	}
	if c.timer == nil {
		c.timer = time.AfterFunc(coalesceDelay, c.timedFlush)
	}
	return len(p), nil
}

func (c *coalescingWriter) timedFlush() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.timer = nil
	if !c.closed && c.err == nil {
		c.flushLocked()
	}
}

func (c *coalescingWriter) flushLocked() {
	if c.timer != nil {
		c.timer.Stop()
		c.timer = nil
	}
	if len(c.buf) > 0 {
		_, c.err = c.w.Write(c.buf)
		c.buf = c.buf[:0]
	}
	if c.err == nil && c.f != nil {
		c.f.Flush()
	}
}

// Close sends what is pending; the response must not be used by the writer
// after the handler returns, so the handler calls Close before it does.
func (c *coalescingWriter) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return c.err
	}
	if c.err == nil {
		c.flushLocked()
	}
	c.closed = true
	return c.err
}
