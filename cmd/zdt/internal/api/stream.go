package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/zdt-project/zdt/site"
	"github.com/zdt-project/zdt/site/apiauth"
)

// stream is a server-sent event stream (text/event-stream): named events
// with a JSON body each, and a comment every heartbeat while quiet.
type stream struct {
	w  http.ResponseWriter
	rc *http.ResponseController
	mu sync.Mutex
}

// openStream answers the request as a stream and keeps it alive with
// heartbeats until stop is called, which the handler must do before it
// returns.
func (s *Server) openStream(ctx context.Context, w http.ResponseWriter) (st *stream, stop func(), err error) {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // tell proxies not to buffer
	w.WriteHeader(http.StatusOK)
	st = &stream{w: w, rc: http.NewResponseController(w)}
	if err := st.comment("stream open"); err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(s.cfg.Heartbeat)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if st.comment("heartbeat") != nil {
					return
				}
			}
		}
	}()
	return st, func() { cancel(); <-done }, nil
}

// send writes one event; id, when not "", lets a client resume.
func (st *stream) send(event, id string, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return err
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if id != "" {
		if _, err := fmt.Fprintf(st.w, "id: %s\n", id); err != nil {
			return err
		}
	}
	if _, err := fmt.Fprintf(st.w, "event: %s\ndata: %s\n\n", event, body); err != nil {
		return err
	}
	return st.rc.Flush()
}

func (st *stream) comment(text string) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	if _, err := fmt.Fprintf(st.w, ": %s\n\n", text); err != nil {
		return err
	}
	return st.rc.Flush()
}

// streamOp streams an op: an "op" event with the op as it stands, one with
// each new version, and "end" once it has an outcome. With ?from=created
// the stream starts with each version since the op was created, so that a
// viewer who came late still sees each step the op took; a client that
// reconnects with Last-Event-ID gets each version after that one (both as
// far as etcd's history holds them, else the op as it stands).
func (s *Server) streamOp(w http.ResponseWriter, r *http.Request, _ apiauth.Identity) error {
	op, err := s.opByID(r) // 404 before the stream opens
	if err != nil {
		return err
	}
	var from int64 // as it stands
	switch v := r.URL.Query().Get("from"); v {
	case "":
	case "created":
		from = op.CreateRev
	default:
		return errorf(http.StatusBadRequest, "from %q: want created, or leave it out for the op as it stands", v)
	}
	if v := r.Header.Get("Last-Event-ID"); v != "" {
		rev, err := strconv.ParseInt(v, 10, 64)
		if err != nil || rev < 0 {
			return errorf(http.StatusBadRequest, "Last-Event-ID %q: want a revision, a whole number", v)
		}
		from = rev + 1
	}
	st, closeStream, err := s.openStream(r.Context(), w)
	if err != nil {
		return nil // the client is gone
	}
	defer closeStream()
	err = s.cfg.Store.WatchOp(r.Context(), op.ID, from, func(op *site.Op) (bool, error) {
		if err := st.send("op", strconv.FormatInt(op.Rev, 10), op); err != nil {
			return true, err
		}
		if op.Finished() {
			return true, st.send("end", "", map[string]string{"outcome": string(op.Outcome)})
		}
		return false, nil
	}, s.broken(st, "op "+op.ID))
	s.streamEnded(r, err)
	return nil
}

// streamEvents streams the event log: an "event" for each event appended
// after ?after= (a revision, as each event's id gives it), by default
// after the request, that matches the filters of /events (eventFilter).
func (s *Server) streamEvents(w http.ResponseWriter, r *http.Request, _ apiauth.Identity) error {
	after, err := s.afterRev(r)
	if err != nil {
		return err
	}
	f, err := s.eventFilter(r)
	if err != nil {
		return err
	}
	st, closeStream, err := s.openStream(r.Context(), w)
	if err != nil {
		return nil
	}
	defer closeStream()
	err = s.cfg.Store.FollowEvents(r.Context(), after, func(e site.Event) error {
		if !f.Match(e) {
			return nil
		}
		return st.send("event", strconv.FormatInt(e.Rev, 10), e)
	}, s.broken(st, "the event log"))
	s.streamEnded(r, err)
	return nil
}

// afterRev is the revision after which a stream starts: the Last-Event-ID
// of a client that reconnects, or ?after=, or now.
func (s *Server) afterRev(r *http.Request) (int64, error) {
	v, name := r.Header.Get("Last-Event-ID"), "Last-Event-ID"
	if v == "" {
		v, name = r.URL.Query().Get("after"), "after"
	}
	if v == "" {
		v = r.Header.Get("Last-Event-ID")
	}
	if v != "" {
		rev, err := strconv.ParseInt(v, 10, 64)
		if err != nil || rev < 0 {
			return 0, errorf(http.StatusBadRequest, "%s %q: want a revision, a whole number", name, v)
		}
		return rev, nil
	}
	ctx, cancel := s.readCtx(r)
	defer cancel()
	resp, err := s.cfg.Store.Client().Get(ctx, s.cfg.Store.Keys().Events(), clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		return 0, err
	}
	return resp.Header.Revision, nil
}

// broken tells the client, as a "broken" event, that the watch behind its
// stream broke and is being restarted.
func (s *Server) broken(st *stream, what string) func(error) {
	return func(err error) {
		_ = st.send("broken", "", map[string]string{"error": fmt.Sprintf("watching %s: %v; reading again", what, err)})
	}
}

func (s *Server) streamEnded(r *http.Request, err error) {
	if err != nil && !errors.Is(err, context.Canceled) {
		s.cfg.Log.Debug("api stream ended", zap.String("path", r.URL.Path), zap.Error(err))
	}
}
