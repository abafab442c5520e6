// Package progress is the live view of long activities (sends, uploads,
// restores, verifies): the worker running one keeps its byte counter on a
// Board and serves it over HTTP on the loopback interface, and the CLI
// reads it about once a second. Temporal heartbeats stay what they are for
// (liveness and resume details): the SDK sends one at most every 0.8 x the
// heartbeat timeout, so what the server holds can be that old, while the
// Board is read straight from the counter.
//
// A heartbeat carries the URL of its activity's live entry (Progress.Live
// in package activities), so the CLI finds the right worker without any
// configuration; a CLI that cannot reach it (another host, a container)
// falls back to the heartbeat.
package progress

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// Snapshot is one activity's progress at one moment.
type Snapshot struct {
	Workflow string `json:"workflow"`
	Activity string `json:"activity"`
	Attempt  int32  `json:"attempt"`
	Phase    string `json:"phase"`
	Detail   string `json:"detail,omitempty"`
	Bytes    int64  `json:"bytes"`
	Total    int64  `json:"total,omitempty"` // 0: unknown
	// BytesPerSec is the rate over the last few seconds (since the start
	// until there are samples).
	BytesPerSec float64   `json:"bytes_per_sec"`
	ETASeconds  float64   `json:"eta_seconds,omitempty"` // 0: unknown
	Started     time.Time `json:"started"`
	At          time.Time `json:"at"`
}

// ETA is the estimated time left, 0 when unknown.
func (s Snapshot) ETA() time.Duration { return time.Duration(s.ETASeconds * float64(time.Second)) }

// Key names an activity: its workflow and activity ids.
type Key struct{ Workflow, Activity string }

// Entry is what a running activity registers.
type Entry struct {
	Key
	Attempt       int32
	Phase, Detail string
	Total         int64
	Bytes         *atomic.Int64
}

type tracked struct {
	Entry
	started time.Time
	mu      sync.Mutex
	samples []sample // recent (time, bytes), oldest first
}

type sample struct {
	at time.Time
	n  int64
}

// rateWindow is how far back the rate looks.
const rateWindow = 5 * time.Second

func (t *tracked) snapshot(now time.Time) Snapshot {
	n := t.Bytes.Load()
	t.mu.Lock()
	if len(t.samples) == 0 || now.Sub(t.samples[len(t.samples)-1].at) >= 200*time.Millisecond {
		t.samples = append(t.samples, sample{now, n})
	}
	for len(t.samples) > 2 && now.Sub(t.samples[1].at) >= rateWindow {
		t.samples = t.samples[1:]
	}
	first := sample{t.started, 0}
	if len(t.samples) > 1 && now.Sub(t.samples[0].at) >= rateWindow/2 {
		first = t.samples[0]
	}
	t.mu.Unlock()
	s := Snapshot{Workflow: t.Workflow, Activity: t.Activity, Attempt: t.Attempt, Phase: t.Phase, Detail: t.Detail,
		Bytes: n, Total: t.Total, Started: t.started, At: now}
	if dt := now.Sub(first.at).Seconds(); dt > 0 {
		s.BytesPerSec = float64(n-first.n) / dt
	}
	if s.Total > n && s.BytesPerSec > 0 {
		s.ETASeconds = float64(s.Total-n) / s.BytesPerSec
	}
	return s
}

// Board holds the worker's running activities. The zero Board is ready;
// its HTTP listener starts with the first Track.
type Board struct {
	mu      sync.Mutex
	entries map[Key]*tracked
	start   sync.Once
	base    string // http://127.0.0.1:port/progress, "" when not serving
	err     error
}

// Track registers e until the returned function is called, and returns
// the URL its live progress is served at ("" when the listener failed:
// progress then shows through heartbeats only).
func (b *Board) Track(e Entry) (liveURL string, done func()) {
	b.start.Do(func() { b.base, b.err = b.serve("127.0.0.1:0") })
	t := &tracked{Entry: e, started: time.Now()}
	b.mu.Lock()
	if b.entries == nil {
		b.entries = map[Key]*tracked{}
	}
	b.entries[e.Key] = t
	b.mu.Unlock()
	done = func() {
		b.mu.Lock()
		if b.entries[e.Key] == t {
			delete(b.entries, e.Key)
		}
		b.mu.Unlock()
	}
	if b.base == "" {
		return "", done
	}
	return b.base + "?" + url.Values{"workflow": {e.Workflow}, "activity": {e.Activity}}.Encode(), done
}

// Get returns the live snapshot of an activity.
func (b *Board) Get(k Key) (Snapshot, bool) {
	b.mu.Lock()
	t, ok := b.entries[k]
	b.mu.Unlock()
	if !ok {
		return Snapshot{}, false
	}
	return t.snapshot(time.Now()), true
}

// ServeErr is why the listener did not start (nil when it did).
func (b *Board) ServeErr() error { return b.err }

// serve listens on addr for the process's lifetime: GET
// /progress?workflow=W&activity=A answers a Snapshot as JSON, 404 when
// that activity is not running here.
func (b *Board) serve(addr string) (string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /progress", func(w http.ResponseWriter, r *http.Request) {
		s, ok := b.Get(Key{r.URL.Query().Get("workflow"), r.URL.Query().Get("activity")})
		if !ok {
			http.Error(w, "not running here", http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(s)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	return "http://" + ln.Addr().String() + "/progress", nil
}

// Fetch reads a live snapshot from a worker (the CLI side).
func Fetch(ctx context.Context, liveURL string) (Snapshot, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, liveURL, nil)
	if err != nil {
		return Snapshot{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return Snapshot{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return Snapshot{}, fmt.Errorf("live progress: %s", resp.Status)
	}
	var s Snapshot
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		return Snapshot{}, fmt.Errorf("live progress: %w", err)
	}
	return s, nil
}
