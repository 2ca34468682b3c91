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
	"os"
	"strings"

	"github.com/zdt-project/zdt/cmd/zdt/internal/api"
	"github.com/zdt-project/zdt/site"
	"github.com/zdt-project/zdt/site/apiauth"
	"github.com/zdt-project/zdt/site/config"
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

// opChange writes a request into a running op through the API: action is
// approve or abort. An unknown op is a usage error, as without the API.
func (s *apiSession) opChange(ctx context.Context, id, action, reason string) (*site.Op, error) {
	var op site.Op
	err := s.call(ctx, http.MethodPost, "/ops/"+id+"/"+action, map[string]string{"reason": reason}, &op)
	var ae *apiError
	if errors.As(err, &ae) && ae.status == http.StatusNotFound {
		return nil, usageErrorf("%s (zdt ops list shows the ops)", ae.msg)
	}
	if err != nil {
		return nil, err
	}
	return &op, nil
}

// confirmFence confirms a site's fence through the API (zdt fence
// confirm).
func (s *apiSession) confirmFence(ctx context.Context, cfg *config.Cluster, siteName string, dryRun bool) (fenceConfirmResult, error) {
	res := fenceConfirmResult{Site: siteName, RequireConfirmation: cfg.Fencing.RequireConfirmation, Action: fenceConfirmed}
	if dryRun {
		return res, usageErrorf("--dry-run: not through the API (unset $%s to read etcd directly)", tokenEnv)
	}
	err := s.call(ctx, http.MethodPost, "/sites/"+siteName+"/confirm-fence", nil, &res.Fence)
	if err != nil {
		return res, err
	}
	if res.Fence.Confirmed != nil {
		res.Who = res.Fence.Confirmed.By
	}
	return res, nil
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

// followOp follows an op's stream until it ends, writing each step as it
// ends to w (nil: nowhere), and returns the op as it ended. A broken
// stream is opened again, at another site if need be.
func (s *apiSession) followOp(ctx context.Context, id string, w io.Writer) (*site.Op, error) {
	shown := map[int]bool{}
	var last *site.Op
	for {
		resp, err := s.send(ctx, http.MethodGet, "/ops/"+id+"/stream", nil)
		if err != nil {
			if ctx.Err() != nil {
				return last, fmt.Errorf("op %s has not ended: %w (follow it with zdt ops watch %s)", id, ctx.Err(), id)
			}
			return last, err
		}
		done, err := readOpStream(resp, func(op *site.Op) {
			last = op
			for i, st := range op.Steps {
				if w != nil && !shown[i] && st.Status != site.StepPending && st.Status != site.StepRunning {
					shown[i] = true
					fmt.Fprintf(w, "  %-16s %-8s %s\n", st.Name, st.Status, st.Detail)
				}
			}
		})
		var ae *apiError
		switch {
		case done:
			return last, nil
		case ctx.Err() != nil:
			return last, fmt.Errorf("op %s has not ended: %w (follow it with zdt ops watch %s)", id, ctx.Err(), id)
		case errors.As(err, &ae):
			return last, err
		} // the stream broke: open it again
	}
}

// readOpStream reads an op stream, calling fn with each version of the op;
// done once the op ended.
func readOpStream(resp *http.Response, fn func(*site.Op)) (done bool, err error) {
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		data, _ := io.ReadAll(resp.Body)
		return false, errorAnswer(resp.StatusCode, data)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 16<<20) // an op with many steps is one line
	event := ""
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: ") && event == "op":
			var op site.Op
			if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &op); err != nil {
				return false, fmt.Errorf("the op stream: %w", err)
			}
			fn(&op)
		case strings.HasPrefix(line, "data: ") && event == "end":
			return true, nil
		}
	}
	return false, sc.Err()
}
