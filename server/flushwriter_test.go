package server

import (
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// recordingResponse counts the writes and flushes that reach the client.
type recordingResponse struct {
	*httptest.ResponseRecorder
	mu             sync.Mutex
	writes, flushs int
}

func (r *recordingResponse) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.writes++
	return r.ResponseRecorder.Write(p)
}

func (r *recordingResponse) Flush() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.flushs++
}

func (r *recordingResponse) counts() (int, int, string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.writes, r.flushs, r.Body.String()
}

func TestCoalescingWriter(t *testing.T) {
	rec := &recordingResponse{ResponseRecorder: httptest.NewRecorder()}
	w := newCoalescingWriter(rec)
	line := strings.Repeat("x", 99) + "\n"
	// 1000 lines of 100 bytes: a few 32 KiB writes, not 1000.
	for range 1000 {
		if _, err := w.Write([]byte(line)); err != nil {
			t.Fatal(err)
		}
	}
	writes, _, body := rec.counts()
	if writes < 2 || writes > 4 || len(body) < 96000 {
		t.Errorf("%d writes with %d bytes sent after 100000 bytes of lines, want 3 full pieces", writes, len(body))
	}
	// The rest goes out by itself shortly after, without more input.
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, _, body := rec.counts(); len(body) == 100000 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the pending tail was not sent")
		}
		time.Sleep(time.Millisecond)
	}
	if _, flushes, _ := rec.counts(); flushes < 3 {
		t.Errorf("%d flushes", flushes)
	}
	// One short line arrives within the delay, and Close sends the rest.
	start := time.Now()
	_, _ = w.Write([]byte("one\n"))
	for {
		if _, _, body := rec.counts(); strings.HasSuffix(body, "one\n") {
			break
		}
		if time.Since(start) > 5*time.Second {
			t.Fatal("a single line was not sent")
		}
		time.Sleep(time.Millisecond)
	}
	_, _ = w.Write([]byte("last\n"))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, body := rec.counts(); !strings.HasSuffix(body, "one\nlast\n") {
		t.Errorf("Close did not send the tail: %q", body[len(body)-10:])
	}
	if _, err := w.Write([]byte("late\n")); err == nil {
		t.Error("a write after Close succeeded")
	}
}
