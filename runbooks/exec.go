package runbooks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/zdt-project/zdt/site"
)

// The default timeouts of the outside steps, when a step sets none.
const (
	defaultNotifyTimeout = 30 * time.Second
	defaultShellTimeout  = 5 * time.Minute
)

const (
	// resultTTL is how long a result is kept once Poll has returned it: the
	// coordinator may ask again after a failed journal write.
	resultTTL = 10 * time.Minute
	// maxResults bounds the results kept; the oldest go first.
	maxResults = 1000
	// maxShellOutput is how much of a shell step's output is kept (the end).
	maxShellOutput = 4 << 10
	// maxNotifyBody is how much of a failed notify's response is quoted.
	maxNotifyBody = 512
	// shellWaitDelay bounds the wait for a shell's output to close once the
	// shell has exited or been killed (a process that left the group may
	// hold it open).
	shellWaitDelay = 2 * time.Second
)

// OutsideConfig configures Outside.
type OutsideConfig struct {
	// AllowShell permits shell steps (config: runbooks.allow_shell); when
	// false a shell step fails at once saying so.
	AllowShell bool
	// Shell is the shell binary, default "/bin/sh".
	Shell string
	// Client is the HTTP client for notify steps; default a client with no
	// timeout of its own (the step's timeout applies via context).
	Client *http.Client
	// Log may be nil.
	Log *zap.Logger
}

// Outside runs the runbook steps that reach outside the cluster (notify,
// shell) in the background: one step's work may outlast a coordinator's
// action, which has a short deadline, so the coordinator polls the step
// until it has ended. Its methods are safe for concurrent use.
type Outside struct {
	cfg    OutsideConfig
	log    *zap.Logger
	now    func() time.Time
	ctx    context.Context // cancelled by Close; the base of every step's work
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	closed bool
	runs   map[outsideKey]*outsideRun
}

// outsideKey identifies one run of one step.
type outsideKey struct {
	op, step string
	started  time.Time // UTC, without a monotonic reading: comparable
}

// outsideRun is one step's work: running, or ended with its result.
type outsideRun struct {
	ended    bool
	ok       bool
	detail   string
	end      time.Time // when the work ended
	returned time.Time // when Poll first returned the result; zero before
}

// NewOutside returns an Outside; Close stops it.
func NewOutside(cfg OutsideConfig) *Outside {
	if cfg.Shell == "" {
		cfg.Shell = "/bin/sh"
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{}
	}
	log := cfg.Log
	if log == nil {
		log = zap.NewNop()
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Outside{
		cfg:    cfg,
		log:    log,
		now:    time.Now,
		ctx:    ctx,
		cancel: cancel,
		runs:   make(map[outsideKey]*outsideRun),
	}
}

// Poll starts the step's work unless it already runs or has ended, and
// reports its result once it has ended: ended is false while it runs. A
// step is identified by op.ID, st.ID (if empty, by the step's Name and
// Params) and st.Started: a step journaled as started anew (by another
// coordinator after a crash, say) is a new run. After Close, Poll starts
// nothing and reports no step as ended.
func (o *Outside) Poll(op *site.Op, st *site.Step) (ended, ok bool, detail string) {
	var (
		work    func(context.Context) (bool, string)
		timeout = st.Timeout
	)
	switch st.Name {
	case "notify":
		if timeout <= 0 {
			timeout = defaultNotifyTimeout
		}
		n := newNotifyBody(op, st)
		work = func(ctx context.Context) (bool, string) {
			return o.notify(ctx, n, timeout)
		}
	case "shell":
		if !o.cfg.AllowShell {
			return true, false, "shell steps are not allowed by this cluster's config (runbooks.allow_shell is false)"
		}
		if timeout <= 0 {
			timeout = defaultShellTimeout
		}
		command, env := st.Params["command"], shellEnv(op, st)
		work = func(ctx context.Context) (bool, string) {
			return o.shell(ctx, command, env, timeout)
		}
	default:
		return true, false, fmt.Sprintf("%q is not an outside step (notify or shell)", st.Name)
	}

	key := outsideKey{op: op.ID, step: stepKey(st), started: st.Started.Round(0).UTC()}
	o.mu.Lock()
	defer o.mu.Unlock()
	now := o.now()
	o.pruneLocked(now)
	if o.closed {
		return false, false, "stopping"
	}
	r := o.runs[key]
	switch {
	case r == nil:
		r = &outsideRun{}
		o.runs[key] = r
		o.start(key, r, timeout, work)
		return false, false, "started"
	case !r.ended:
		return false, false, "running"
	}
	if r.returned.IsZero() {
		r.returned = now
	}
	return true, r.ok, r.detail
}

// Close cancels every running step and waits for them. Results of steps
// cut short by Close are never reported.
func (o *Outside) Close() {
	o.mu.Lock()
	o.closed = true
	o.mu.Unlock()
	o.cancel()
	o.wg.Wait()
}

// start runs the work in the background, bounded by timeout and by Close.
// o.mu is held.
func (o *Outside) start(key outsideKey, r *outsideRun, timeout time.Duration, work func(context.Context) (bool, string)) {
	log := o.log.With(zap.String("op", key.op), zap.String("step", key.step))
	log.Debug("outside step started", zap.Duration("timeout", timeout))
	o.wg.Add(1)
	go func() {
		defer o.wg.Done()
		ctx, cancel := context.WithTimeout(o.ctx, timeout)
		defer cancel()
		ok, detail := work(ctx)
		log.Debug("outside step ended", zap.Bool("ok", ok))

		o.mu.Lock()
		defer o.mu.Unlock()
		r.ended, r.ok, r.detail, r.end = true, ok, detail, o.now()
		o.pruneLocked(r.end)
	}()
}

// pruneLocked forgets the results returned more than resultTTL ago, and
// then the oldest results beyond maxResults. o.mu is held.
func (o *Outside) pruneLocked(now time.Time) {
	n := 0
	for k, r := range o.runs {
		switch {
		case !r.ended:
		case !r.returned.IsZero() && now.Sub(r.returned) > resultTTL:
			delete(o.runs, k)
		default:
			n++
		}
	}
	for ; n > maxResults; n-- {
		var oldest outsideKey
		var oldestEnd time.Time
		for k, r := range o.runs {
			if r.ended && (oldestEnd.IsZero() || r.end.Before(oldestEnd)) {
				oldest, oldestEnd = k, r.end
			}
		}
		delete(o.runs, oldest)
	}
}

// stepKey names a step in its op: its ID, or else its name and params.
func stepKey(st *site.Step) string {
	if st.ID != "" {
		return st.ID
	}
	params, _ := json.Marshal(st.Params) // a map[string]string always marshals, keys sorted
	return st.Name + " " + string(params)
}

// notifyBody is the body of a notify step's POST.
type notifyBody struct {
	url     string
	Op      string            `json:"op"`
	Runbook string            `json:"runbook"`
	Kind    string            `json:"kind"`
	Step    string            `json:"step"`
	Message string            `json:"message"`
	Who     string            `json:"who"`
	Params  map[string]string `json:"params"`
}

// newNotifyBody copies what a notify step sends: the caller may change op and
// st once Poll has returned.
func newNotifyBody(op *site.Op, st *site.Step) *notifyBody {
	return &notifyBody{
		url:     st.Params["url"],
		Op:      op.ID,
		Runbook: op.Runbook,
		Kind:    op.Kind,
		Step:    st.ID,
		Message: st.Params["message"],
		Who:     op.Who,
		Params:  maps.Clone(op.Params),
	}
}

// notify POSTs n as JSON to its URL; a 2xx answer is success.
func (o *Outside) notify(ctx context.Context, n *notifyBody, timeout time.Duration) (bool, string) {
	if n.url == "" {
		return false, "notify step has no url param"
	}
	u, err := url.Parse(n.url)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return false, fmt.Sprintf("notify step's url %q is not an http(s) URL", n.url)
	}
	// The journal shows where it went, not the secrets a webhook URL may
	// carry in its query or user info (chat webhooks put tokens there).
	shownURL := *u
	shownURL.User, shownURL.RawQuery = nil, ""
	if u.RawQuery != "" {
		shownURL.RawQuery = "..."
	}
	shown := shownURL.String()
	body, err := json.Marshal(n)
	if err != nil {
		return false, fmt.Sprintf("notify %s: encode: %v", shown, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return false, fmt.Sprintf("notify %s: %v", shown, err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := o.cfg.Client.Do(req)
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return false, fmt.Sprintf("notify %s: no answer within the %v timeout", shown, timeout)
		}
		return false, fmt.Sprintf("notify %s: %v", shown, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return true, fmt.Sprintf("notified %s: %s", shown, resp.Status)
	}
	text, _ := io.ReadAll(io.LimitReader(resp.Body, maxNotifyBody))
	detail := fmt.Sprintf("notify %s: %s", shown, resp.Status)
	if t := strings.TrimSpace(string(text)); t != "" {
		detail += ": " + t
	}
	return false, detail
}

// shellEnv is the environment of a shell step: the controller's, plus the
// op's and step's names and the op's params.
func shellEnv(op *site.Op, st *site.Step) []string {
	env := append(os.Environ(),
		"ZDT_OP="+op.ID,
		"ZDT_RUNBOOK="+op.Runbook,
		"ZDT_STEP="+st.ID,
	)
	for _, k := range slices.Sorted(maps.Keys(op.Params)) {
		env = append(env, "ZDT_PARAM_"+envName(k)+"="+op.Params[k])
	}
	return env
}

// envName upper-cases a param name and turns what is not an ASCII letter
// or digit into '_'.
func envName(name string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z':
			return r - 'a' + 'A'
		case r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
			return r
		}
		return '_'
	}, name)
}

// shell runs command with the configured shell in its own process group;
// when ctx ends, the whole group is killed.
func (o *Outside) shell(ctx context.Context, command string, env []string, timeout time.Duration) (bool, string) {
	if command == "" {
		return false, "shell step has no command param"
	}
	var out outputTail
	cmd := exec.CommandContext(ctx, o.cfg.Shell, "-c", command)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = shellWaitDelay
	began := time.Now()
	err := cmd.Run()
	took := time.Since(began).Round(time.Millisecond)

	var detail string
	ok := false
	switch ps := cmd.ProcessState; {
	case ps == nil:
		return false, fmt.Sprintf("start %s: %v", o.cfg.Shell, err)
	case ps.Exited():
		ok = ps.ExitCode() == 0
		detail = fmt.Sprintf("exit %d after %v", ps.ExitCode(), took)
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		detail = fmt.Sprintf("killed after the %v timeout", timeout)
	case errors.Is(ctx.Err(), context.Canceled):
		detail = fmt.Sprintf("killed after %v: the controller is stopping", took)
	default:
		detail = fmt.Sprintf("%v after %v", ps, took) // "signal: terminated"
	}
	if s := out.String(); s != "" {
		detail += "; output:\n" + s
	}
	return ok, detail
}

// outputTail keeps the last maxShellOutput bytes written to it.
type outputTail struct {
	buf []byte
	cut int
}

// Write keeps the end of p; it never fails.
func (t *outputTail) Write(p []byte) (int, error) {
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - maxShellOutput; over > 0 {
		t.cut += over
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

// String is what was kept, saying how much was cut before it.
func (t *outputTail) String() string {
	if t.cut == 0 {
		return string(t.buf)
	}
	return fmt.Sprintf("…(%d bytes cut)\n%s", t.cut, t.buf)
}
