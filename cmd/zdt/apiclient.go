package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/zdt-project/zdt/cmd/zdt/internal/api"
	"github.com/zdt-project/zdt/site"
	"github.com/zdt-project/zdt/site/apiauth"
	"github.com/zdt-project/zdt/site/config"
	"github.com/zdt-project/zdt/site/ctxsleep"
)

// The CLI acts as an API identity when it is given a bearer token: its
// operations then go through a controller's API, which checks the
// identity's role and records it, instead of writing etcd directly (which
// needs etcd's client certificate, and is recorded as operator:USER@HOST).
const (
	tokenEnv     = "ZDT_TOKEN"
	tokenFileEnv = "ZDT_TOKEN_FILE"
)

// apiSession is the CLI talking to the sites' APIs with a token.
type apiSession struct {
	cfg    *config.Cluster
	token  string
	client *http.Client
}

// openAPISession returns the session of the token in $ZDT_TOKEN, or in the
// file $ZDT_TOKEN_FILE; nil when neither is set.
func openAPISession(cfg *config.Cluster) (*apiSession, error) {
	token := os.Getenv(tokenEnv)
	if token == "" {
		if path := os.Getenv(tokenFileEnv); path != "" {
			data, err := os.ReadFile(path)
			if err != nil {
				return nil, fmt.Errorf("$%s: %w", tokenFileEnv, err)
			}
			token = string(data)
		}
	}
	token = strings.TrimSpace(token)
	if token == "" {
		return nil, nil
	}
	tlsCfg, err := apiauth.ClusterTLS(cfg)
	if err != nil {
		return nil, err
	}
	return &apiSession{cfg: cfg, token: token, client: &http.Client{Transport: &http.Transport{TLSClientConfig: tlsCfg}}}, nil
}

// apiError is an error answer of the API.
type apiError struct {
	status   int
	msg      string
	blockers []string
}

func (e *apiError) Error() string { return e.msg }

// errorAnswer is the *apiError of an error answer's body: its JSON error,
// or its text when it is not the API's.
func errorAnswer(status int, body []byte) *apiError {
	var e api.Error
	if json.Unmarshal(body, &e) != nil || e.Error == "" {
		e.Error = strings.TrimSpace(string(body))
	}
	return &apiError{status: status, msg: e.Error, blockers: e.Blockers}
}

// call sends a request to the first site whose API answers, in the
// config's order (a dark site's does not; one without etcd answers 503),
// and decodes a 2xx answer into out. An error answer is an *apiError.
func (s *apiSession) call(ctx context.Context, method, path string, body, out any) error {
	resp, err := s.send(ctx, method, path, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode >= 300 {
		return errorAnswer(resp.StatusCode, data)
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(data, out)
}

// send sends a request to the first site whose API answers, and returns
// its answer, whatever its status but 503.
func (s *apiSession) send(ctx context.Context, method, path string, body any) (*http.Response, error) {
	var raw []byte
	if body != nil {
		var err error
		if raw, err = json.Marshal(body); err != nil {
			return nil, err
		}
	}
	var errs []error
	for _, st := range s.cfg.Sites {
		req, err := http.NewRequestWithContext(ctx, method, apiauth.BaseURL(st)+api.Prefix+path, bytes.NewReader(raw))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Authorization", "Bearer "+s.token)
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := s.client.Do(req)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("site %s: %w", st.Name, err))
			continue
		case resp.StatusCode == http.StatusServiceUnavailable:
			msg, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			errs = append(errs, fmt.Errorf("site %s: %s", st.Name, strings.TrimSpace(string(msg))))
			continue
		}
		return resp, nil
	}
	return nil, fmt.Errorf("no site's API answered: %w", errors.Join(errs...))
}

// notFoundUsage makes a 404 answer a usage error, as an unknown op or
// site is without the API.
func notFoundUsage(err error) error {
	var ae *apiError
	if errors.As(err, &ae) && ae.status == http.StatusNotFound {
		return usageErrorf("%s (zdt ops list shows the ops)", ae.msg)
	}
	return err
}

// abort asks for a running op to be aborted through the API (zdt ops
// abort).
func (s *apiSession) abort(ctx context.Context, id, reason string, dryRun bool) (site.AbortResult, error) {
	var res site.AbortResult
	err := s.call(ctx, http.MethodPost, "/ops/"+url.PathEscape(id)+"/abort", api.AbortRequest{Reason: reason, DryRun: dryRun}, &res)
	return res, notFoundUsage(err)
}

// approve approves the confirm step an op waits at through the API.
func (s *apiSession) approve(ctx context.Context, id, reason string) (*site.Op, error) {
	var op site.Op
	if err := s.call(ctx, http.MethodPost, "/ops/"+url.PathEscape(id)+"/approve", api.Reason{Reason: reason}, &op); err != nil {
		return nil, notFoundUsage(err)
	}
	return &op, nil
}

// confirmFence confirms a site's fence through the API (zdt fence
// confirm).
func (s *apiSession) confirmFence(ctx context.Context, siteName string, dryRun bool) (site.FenceConfirmation, error) {
	var res site.FenceConfirmation
	err := s.call(ctx, http.MethodPost, "/sites/"+url.PathEscape(siteName)+"/confirm-fence", api.ConfirmFenceRequest{DryRun: dryRun}, &res)
	return res, err
}

// requestOp asks for an op through the API: POST path with body, which
// carries dry_run. A refusal fills res.Blockers and is errNotNow.
func (s *apiSession) requestOp(ctx context.Context, progress io.Writer, res opRequest, follow bool, path string, body map[string]any) (opRequest, error) {
	body["dry_run"] = res.DryRun
	var got site.OpRequest
	err := s.call(ctx, http.MethodPost, path, body, &got)
	var ae *apiError
	switch {
	case errors.As(err, &ae) && ae.status == http.StatusConflict && len(ae.blockers) > 0:
		res.Blockers = ae.blockers
		return res, fmt.Errorf("%s: %w", strings.Join(ae.blockers, "; "), errNotNow)
	case err != nil:
		return res, err
	}
	res.Blockers, res.Op = []string{}, got.Op
	if res.DryRun || !follow {
		return res, nil
	}
	if progress != nil {
		fmt.Fprintf(progress, "op %s (%s) requested as %s; waiting for the coordinator\n", res.Op.ID, res.Op.Kind, res.Op.Who)
	}
	res.Op, err = s.followOp(ctx, res.Op.ID, progress)
	if err != nil {
		return res, err
	}
	if res.Op.Outcome != site.OpSucceeded {
		return res, fmt.Errorf("op %s %s: %s", res.Op.ID, res.Op.Outcome, res.Op.Error)
	}
	return res, nil
}

// op reads the op whose ID, or unique prefix of it, is arg, with the
// revision it was last written at. An unknown or ambiguous ID is a usage
// error, as without the API.
func (s *apiSession) op(ctx context.Context, arg string) (*site.Op, error) {
	if arg == "" {
		return nil, usageErrorf("an empty op ID: give an op ID (zdt ops list shows them)")
	}
	resp, err := s.send(ctx, http.MethodGet, "/ops/"+url.PathEscape(arg), nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("GET /ops/%s: %w", arg, err)
	}
	switch {
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusBadRequest:
		return nil, usageErrorf("%s (zdt ops list --all lists them all)", errorAnswer(resp.StatusCode, data).msg)
	case resp.StatusCode >= 300:
		return nil, errorAnswer(resp.StatusCode, data)
	}
	var op site.Op
	if err := json.Unmarshal(data, &op); err != nil {
		return nil, fmt.Errorf("GET /ops/%s: %w", arg, err)
	}
	op.Rev, _ = strconv.ParseInt(resp.Header.Get(api.RevisionHeader), 10, 64)
	return &op, nil
}

// reconnectPause is how long a broken stream waits before it is opened
// again.
const reconnectPause = 500 * time.Millisecond

// watchOp is site.Store.WatchOp through the API: fn gets the op as it
// stands and each new version of it, from the op's stream, until fn says
// stop or ctx ends; fn does not see a version twice.
func (s *apiSession) watchOp(ctx context.Context, id string, fn func(*site.Op) (bool, error), broken func(error)) error {
	var seen int64 // the revision of the version fn saw last
	path := "/ops/" + url.PathEscape(id) + "/stream"
	return s.follow(ctx, "the stream of op "+id, func() string { return path }, func(ev sseEvent) (bool, error) {
		if ev.name != "op" {
			return false, nil
		}
		var op site.Op
		if err := json.Unmarshal([]byte(ev.data), &op); err != nil {
			return true, fmt.Errorf("the stream of op %s: %w", id, err)
		}
		op.Rev, _ = strconv.ParseInt(ev.id, 10, 64)
		if op.Rev != 0 && op.Rev == seen {
			return false, nil
		}
		seen = op.Rev
		return fn(&op)
	}, broken)
}

// follow reads the stream at path() until handle says stop or fails, or
// ctx ends. A stream that breaks, or whose watch broke behind it (a
// "broken" event), is told to broken, and is opened again at path() (at
// another site if need be) after a pause. It returns the error of the
// first request when no site answers it, and an error answer at once.
func (s *apiSession) follow(ctx context.Context, what string, path func() string, handle func(sseEvent) (stop bool, err error), broken func(error)) error {
	for first := true; ; first = false {
		resp, err := s.send(ctx, http.MethodGet, path(), nil)
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case err != nil && first:
			return err
		case err == nil:
			stop, serr := readStream(resp, func(ev sseEvent) (bool, error) {
				if ev.name == "broken" {
					broken(errors.New(brokenMessage(ev.data)))
					return false, nil
				}
				return handle(ev)
			})
			var ae *apiError
			switch {
			case stop || errors.As(serr, &ae):
				return serr
			case ctx.Err() != nil:
				return ctx.Err()
			case serr == nil:
				serr = errors.New("the stream ended")
			}
			err = fmt.Errorf("%s: %w", what, serr)
		}
		broken(err)
		if err := ctxsleep.For(ctx, reconnectPause); err != nil {
			return err
		}
	}
}

// followOp follows an op's stream until it ends, writing each step as it
// ends to w (nil: nowhere), and returns the op as it ended.
func (s *apiSession) followOp(ctx context.Context, id string, w io.Writer) (*site.Op, error) {
	shown := map[int]bool{}
	var last *site.Op
	err := s.watchOp(ctx, id, func(op *site.Op) (bool, error) {
		last = op
		for i, st := range op.Steps {
			if w != nil && !shown[i] && st.Status != site.StepPending && st.Status != site.StepRunning {
				shown[i] = true
				fmt.Fprintf(w, "  %-16s %-8s %s\n", st.Name, st.Status, st.Detail)
			}
		}
		return op.Finished(), nil
	}, func(error) {})
	if ctx.Err() != nil && (last == nil || !last.Finished()) {
		return last, fmt.Errorf("op %s has not ended: %w (follow it with zdt ops watch %s)", id, ctx.Err(), id)
	}
	return last, err
}

// sseEvent is one event of a server-sent event stream.
type sseEvent struct {
	name, id, data string
}

// readStream reads a server-sent event stream, calling fn with each event
// until fn says stop or fails, or the stream ends (stop false, and the
// reason it broke, if known). A stream answered with an error status is an
// *apiError.
func readStream(resp *http.Response, fn func(sseEvent) (stop bool, err error)) (stop bool, err error) {
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		data, _ := io.ReadAll(resp.Body)
		return false, errorAnswer(resp.StatusCode, data)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 16<<20) // an op with many steps is one line
	var ev sseEvent
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if ev.name != "" || ev.data != "" {
				if stop, err := fn(ev); stop || err != nil {
					return true, err
				}
			}
			ev = sseEvent{}
		case strings.HasPrefix(line, "event: "):
			ev.name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "id: "):
			ev.id = strings.TrimPrefix(line, "id: ")
		case strings.HasPrefix(line, "data: "):
			ev.data = strings.TrimPrefix(line, "data: ")
		}
	}
	return false, sc.Err()
}

// brokenMessage is the error of a "broken" event's data.
func brokenMessage(data string) string {
	var b struct {
		Error string `json:"error"`
	}
	if json.Unmarshal([]byte(data), &b) != nil || b.Error == "" {
		return data
	}
	return b.Error
}

// eventQuery is the query of /events and /events/stream that filters as f
// does, but for its time.
func eventQuery(f site.EventFilter) url.Values {
	q := url.Values{}
	for name, values := range map[string][]string{"site": f.Sites, "service": f.Services, "kind": f.Kinds} {
		for _, v := range values {
			q.Add(name, v)
		}
	}
	return q
}

// events is site.Store.EventsSince through the API: the last limit events
// (0: all) that match f, and the revision they were read at.
func (s *apiSession) events(ctx context.Context, f site.EventFilter, limit int) ([]site.Event, int64, error) {
	q := eventQuery(f)
	q.Set("limit", strconv.Itoa(limit))
	if !f.Since.IsZero() {
		q.Set("since", f.Since.UTC().Format(time.RFC3339Nano))
	}
	resp, err := s.send(ctx, http.MethodGet, "/events?"+q.Encode(), nil)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, 0, fmt.Errorf("GET /events: %w", err)
	}
	if resp.StatusCode >= 300 {
		return nil, 0, errorAnswer(resp.StatusCode, data)
	}
	var events []site.Event
	if err := json.Unmarshal(data, &events); err != nil {
		return nil, 0, fmt.Errorf("GET /events: %w", err)
	}
	rev, err := strconv.ParseInt(resp.Header.Get(api.RevisionHeader), 10, 64)
	if err != nil {
		return nil, 0, fmt.Errorf("GET /events: the answer has no revision (%s): %w", api.RevisionHeader, err)
	}
	return events, rev, nil
}

// followEvents is site.Store.FollowEvents through the API, filtered by the
// controller: fn gets each event written after rev that matches f (but for
// its time), from the event stream, until fn fails or ctx ends. A stream
// opened again starts after the last event seen.
func (s *apiSession) followEvents(ctx context.Context, rev int64, f site.EventFilter, fn func(site.Event) error, broken func(error)) error {
	q := eventQuery(f)
	path := func() string {
		q.Set("after", strconv.FormatInt(rev, 10))
		return "/events/stream?" + q.Encode()
	}
	return s.follow(ctx, "the event stream", path, func(ev sseEvent) (bool, error) {
		if ev.name != "event" {
			return false, nil
		}
		var e site.Event
		if err := json.Unmarshal([]byte(ev.data), &e); err != nil {
			return true, fmt.Errorf("the event stream: %w", err)
		}
		if r, err := strconv.ParseInt(ev.id, 10, 64); err == nil {
			e.Rev, rev = r, r
		}
		if err := fn(e); err != nil {
			return true, err
		}
		return false, nil
	}, broken)
}
