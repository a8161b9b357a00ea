package testsupport

import (
	"bytes"
	"sync"
)

// Buffer is a bytes.Buffer that a process's or a logger's writes and the
// test's reads may use at once. The zero value is ready to use.
type Buffer struct {
	mu sync.Mutex // covers b
	b  bytes.Buffer
}

func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns a copy of what was written so far.
func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Len is the number of bytes written so far.
func (s *Buffer) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Len()
}
