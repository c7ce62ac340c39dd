// Package tailbuf keeps the end of a child process's output (Kratos,
// Chromium) for error messages: what came last explains a failure, and a
// long-running child must not grow memory without bound.
package tailbuf

import "sync"

// Buffer is an io.Writer keeping the last Max bytes written; safe for
// concurrent use (children write from their own goroutines).
type Buffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

// New keeps the last max bytes.
func New(max int) *Buffer { return &Buffer{max: max} }

func (t *Buffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if over := len(t.b) - t.max; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
	}
	return len(p), nil
}

// String is what is kept.
func (t *Buffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}
