package testsupport

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/grafana/loki/pkg/push"
)

// LokiPushPath is where the receiver takes pushes, as Loki does.
const LokiPushPath = "/loki/api/v1/push"

// LokiEntry is one log entry the receiver accepted.
type LokiEntry struct {
	Labels   map[string]string `json:"labels"`
	Time     time.Time         `json:"ts"`
	Line     string            `json:"line"`
	Metadata map[string]string `json:"metadata,omitempty"`
	Request  int               `json:"request"` // 1-based number of the push request
}

// LokiReceiver is a loopback Loki: it decodes pushes in the real wire
// format (snappy-compressed push.PushRequest protobuf), records the entries
// of the requests it accepts, and can be told to answer an error status or
// to hang for the next requests. Safe for concurrent use.
type LokiReceiver struct {
	// URL is the push URL (http://127.0.0.1:PORT/loki/api/v1/push).
	URL string

	srv     *httptest.Server
	closing chan struct{}
	once    sync.Once

	mu       sync.Mutex // covers everything below
	entries  []LokiEntry
	requests int
	plan     []int // statuses for the next requests; 0 means hang
	hangAll  bool
	user     string
	password string
	changed  chan struct{} // closed and replaced whenever entries grow
	onEntry  func(LokiEntry)
}

// NewLokiReceiver starts a receiver on a free 127.0.0.1 port, stopped
// when the test ends.
func NewLokiReceiver(t testing.TB) *LokiReceiver {
	t.Helper()
	r, err := StartLokiReceiver("127.0.0.1:0")
	if err != nil {
		t.Fatalf("loki receiver: %v", err)
	}
	t.Cleanup(r.Close)
	return r
}

// StartLokiReceiver starts a receiver on addr (host:port; port 0 picks a
// free one). Close stops it.
func StartLokiReceiver(addr string) (*LokiReceiver, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	r := &LokiReceiver{closing: make(chan struct{}), changed: make(chan struct{})}
	r.srv = httptest.NewUnstartedServer(r)
	r.srv.Listener.Close()
	r.srv.Listener = ln
	r.srv.Start()
	r.URL = r.srv.URL + LokiPushPath
	return r, nil
}

// Close stops the receiver; hanging requests are released.
func (r *LokiReceiver) Close() {
	r.once.Do(func() {
		close(r.closing)
		r.srv.CloseClientConnections()
		r.srv.Close()
	})
}

// RequireBasicAuth makes the receiver answer 401 to pushes without these
// credentials.
func (r *LokiReceiver) RequireBasicAuth(user, password string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.user, r.password = user, password
}

// FailNext answers status (400, 429, 500...) to the next n push requests.
func (r *LokiReceiver) FailNext(n, status int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for range n {
		r.plan = append(r.plan, status)
	}
}

// HangNext holds the next n push requests without answering, until the
// client gives up or the receiver closes.
func (r *LokiReceiver) HangNext(n int) { r.FailNext(n, 0) }

// HangAll holds every push request from now on (on = false ends it).
func (r *LokiReceiver) HangAll(on bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.hangAll = on
}

// OnEntry calls f for each accepted entry (the standalone receiver writes
// them to a file).
func (r *LokiReceiver) OnEntry(f func(LokiEntry)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.onEntry = f
}

// Requests is the number of push requests received, answered or not.
func (r *LokiReceiver) Requests() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.requests
}

// Entries returns a copy of the accepted entries, in arrival order.
func (r *LokiReceiver) Entries() []LokiEntry {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]LokiEntry(nil), r.entries...)
}

// WaitForEntries waits until at least n entries arrived and returns them;
// it fails the test after timeout.
func (r *LokiReceiver) WaitForEntries(t testing.TB, n int, timeout time.Duration) []LokiEntry {
	t.Helper()
	got, ok := r.waitFor(timeout, func(es []LokiEntry) bool { return len(es) >= n })
	if !ok {
		t.Fatalf("loki receiver: %d entries after %s, want %d", len(got), timeout, n)
	}
	return got
}

// WaitForLine waits for an entry whose line contains substr.
func (r *LokiReceiver) WaitForLine(t testing.TB, substr string, timeout time.Duration) LokiEntry {
	t.Helper()
	var found LokiEntry
	_, ok := r.waitFor(timeout, func(es []LokiEntry) bool {
		for _, e := range es {
			if strings.Contains(e.Line, substr) {
				found = e
				return true
			}
		}
		return false
	})
	if !ok {
		t.Fatalf("loki receiver: no line containing %q after %s", substr, timeout)
	}
	return found
}

func (r *LokiReceiver) waitFor(timeout time.Duration, cond func([]LokiEntry) bool) ([]LokiEntry, bool) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		es := append([]LokiEntry(nil), r.entries...)
		ch := r.changed
		r.mu.Unlock()
		if cond(es) {
			return es, true
		}
		select {
		case <-ch:
		case <-deadline.C:
			return es, false
		}
	}
}

// ServeHTTP takes POST /loki/api/v1/push and GET /entries (JSON array).
func (r *LokiReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method == http.MethodGet && req.URL.Path == "/entries" {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(r.Entries())
		return
	}
	if req.Method != http.MethodPost || req.URL.Path != LokiPushPath {
		http.NotFound(w, req)
		return
	}
	body, err := io.ReadAll(io.LimitReader(req.Body, 64<<20))
	r.mu.Lock()
	r.requests++
	n := r.requests
	status := http.StatusNoContent
	hang := r.hangAll
	if !hang && len(r.plan) > 0 {
		status, r.plan = r.plan[0], r.plan[1:]
		hang = status == 0
	}
	user, password := r.user, r.password
	r.mu.Unlock()
	if hang {
		select {
		case <-req.Context().Done():
		case <-r.closing:
		}
		return
	}
	if user != "" || password != "" {
		if u, p, ok := req.BasicAuth(); !ok || u != user || p != password {
			http.Error(w, "invalid authentication credentials", http.StatusUnauthorized)
			return
		}
	}
	if status != http.StatusNoContent {
		http.Error(w, fmt.Sprintf("test receiver answers %d", status), status)
		return
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	entries, err := DecodeLokiPush(body, req.Header.Get("Content-Type"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	for i := range entries {
		entries[i].Request = n
	}
	r.entries = append(r.entries, entries...)
	close(r.changed)
	r.changed = make(chan struct{})
	onEntry := r.onEntry
	r.mu.Unlock()
	if onEntry != nil {
		for _, e := range entries {
			onEntry(e)
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

// DecodeLokiPush decodes a push request body: snappy-compressed protobuf
// (what loki-client-go sends by default).
func DecodeLokiPush(body []byte, contentType string) ([]LokiEntry, error) {
	if contentType != "" && !strings.HasPrefix(contentType, "application/x-protobuf") {
		return nil, fmt.Errorf("content type %q: want application/x-protobuf", contentType)
	}
	raw, err := snappy.Decode(nil, body)
	if err != nil {
		return nil, fmt.Errorf("snappy: %w", err)
	}
	var pr push.PushRequest
	if err := pr.Unmarshal(raw); err != nil {
		return nil, fmt.Errorf("push request: %w", err)
	}
	var out []LokiEntry
	for _, s := range pr.Streams {
		ls, err := ParseLokiLabels(s.Labels)
		if err != nil {
			return nil, err
		}
		for _, e := range s.Entries {
			le := LokiEntry{Labels: ls, Time: e.Timestamp, Line: e.Line}
			if len(e.StructuredMetadata) > 0 {
				le.Metadata = map[string]string{}
				for _, m := range e.StructuredMetadata {
					le.Metadata[m.Name] = m.Value
				}
			}
			out = append(out, le)
		}
	}
	return out, nil
}

// ParseLokiLabels parses a stream selector such as {app="a", level="info"}.
func ParseLokiLabels(s string) (map[string]string, error) {
	out := map[string]string{}
	rest := strings.TrimSpace(s)
	if !strings.HasPrefix(rest, "{") || !strings.HasSuffix(rest, "}") {
		return nil, fmt.Errorf("labels %q: not {...}", s)
	}
	rest = strings.TrimSpace(rest[1 : len(rest)-1])
	for rest != "" {
		name, after, ok := strings.Cut(rest, "=")
		if !ok {
			return nil, fmt.Errorf("labels %q: no '='", s)
		}
		q, err := strconv.QuotedPrefix(after)
		if err != nil {
			return nil, fmt.Errorf("labels %q: %w", s, err)
		}
		v, _ := strconv.Unquote(q)
		out[strings.TrimSpace(name)] = v
		rest = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(after[len(q):]), ","))
	}
	return out, nil
}
