package runbooks

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/zdt-project/zdt/site"
)

// newTestOutside returns an Outside closed when the test ends.
func newTestOutside(t *testing.T, cfg OutsideConfig) *Outside {
	t.Helper()
	o := NewOutside(cfg)
	t.Cleanup(o.Close)
	return o
}

// outsideOp returns an op of a runbook, with params.
func outsideOp() *site.Op {
	return &site.Op{
		ID: "op-1", Kind: "switchover", Runbook: "move-db", Who: "alice",
		Params: map[string]string{"site": "b", "dark-site": "c"},
	}
}

// eventually calls cond every 10ms until it holds, failing the test after 10s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("still waiting after 10s for %s", what)
		}
	}
}

// waitEnded polls the step until it has ended, and returns its result.
func waitEnded(t *testing.T, o *Outside, op *site.Op, st *site.Step) (ok bool, detail string) {
	t.Helper()
	eventually(t, "step "+st.ID+" to end", func() bool {
		var ended bool
		ended, ok, detail = o.Poll(op, st)
		return ended
	})
	return ok, detail
}

// processGone reports whether pid has exited (a zombie left unreaped by an
// init that does not reap counts as gone).
func processGone(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return true
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return errors.Is(err, os.ErrNotExist)
	}
	// pid (comm) state ...: comm may hold spaces, so look after the last ')'.
	s := string(stat)
	rest := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	return len(rest) > 0 && rest[0] == "Z"
}

// readPID waits for a shell to write a pid to file, and returns it.
func readPID(t *testing.T, file string) int {
	t.Helper()
	var pid int
	eventually(t, "the pid file", func() bool {
		b, err := os.ReadFile(file)
		if err != nil || !strings.HasSuffix(string(b), "\n") {
			return false
		}
		pid, err = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil
	})
	return pid
}

func TestNotifySuccess(t *testing.T) {
	var (
		mu   sync.Mutex
		got  map[string]any
		ctyp string
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		ctyp = r.Header.Get("Content-Type")
		if err := json.NewDecoder(r.Body).Decode(&got); err != nil || r.Method != http.MethodPost {
			http.Error(w, fmt.Sprintf("%s: %v", r.Method, err), http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)

	o := newTestOutside(t, OutsideConfig{})
	st := &site.Step{Name: "notify", ID: "tell", Started: time.Now(),
		Params: map[string]string{"url": srv.URL + "/hook", "message": "moving the database"}}
	ok, detail := waitEnded(t, o, outsideOp(), st)
	if !ok || detail != "notified "+srv.URL+"/hook: 204 No Content" {
		t.Fatalf("Poll = %v, %q; want ok and notified", ok, detail)
	}
	mu.Lock()
	defer mu.Unlock()
	if ctyp != "application/json" {
		t.Errorf("Content-Type = %q", ctyp)
	}
	want := map[string]any{
		"op": "op-1", "runbook": "move-db", "kind": "switchover", "step": "tell",
		"message": "moving the database", "who": "alice",
		"params": map[string]any{"site": "b", "dark-site": "c"},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) { // fmt sorts map keys
		t.Errorf("body = %v, want %v", got, want)
	}
}

func TestNotifyFailures(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/fail":
			http.Error(w, "database on fire "+strings.Repeat("x", 1000), http.StatusInternalServerError)
		case "/block":
			select {
			case <-r.Context().Done():
			case <-release:
			}
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // runs before srv.Close

	tests := []struct {
		name, path string
		timeout    time.Duration
		want       []string
	}{
		{"status", "/fail", 0, []string{"500 Internal Server Error", "database on fire"}},
		{"timeout", "/block", 100 * time.Millisecond, []string{"no answer within the 100ms timeout"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := newTestOutside(t, OutsideConfig{})
			st := &site.Step{Name: "notify", ID: tc.name, Started: time.Now(), Timeout: tc.timeout,
				Params: map[string]string{"url": srv.URL + tc.path}}
			ok, detail := waitEnded(t, o, outsideOp(), st)
			if ok {
				t.Fatalf("Poll ok, detail %q; want a failure", detail)
			}
			for _, w := range tc.want {
				if !strings.Contains(detail, w) {
					t.Errorf("detail %q does not say %q", detail, w)
				}
			}
			if n := strings.Count(detail, "x"); n > maxNotifyBody {
				t.Errorf("detail quotes %d bytes of the body, want at most %d", n, maxNotifyBody)
			}
		})
	}
}

func TestShellResults(t *testing.T) {
	tests := []struct {
		name, command string
		ok            bool
		want          []string
	}{
		{"success", `echo hello; echo "op=$ZDT_OP rb=$ZDT_RUNBOOK step=$ZDT_STEP site=$ZDT_PARAM_SITE dark=$ZDT_PARAM_DARK_SITE"`,
			true, []string{"exit 0 after ", "; output:\nhello\nop=op-1 rb=move-db step=success site=b dark=c\n"}},
		{"exit", "echo oops >&2; exit 3", false, []string{"exit 3 after ", "oops"}},
		{"quiet", "true", true, []string{"exit 0 after "}},
		{"truncated", `head -c 10000 /dev/zero | tr '\0' x; printf END`,
			true, []string{"output:\n…(5907 bytes cut)\nxxx", "xEND"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := newTestOutside(t, OutsideConfig{AllowShell: true})
			st := &site.Step{Name: "shell", ID: tc.name, Started: time.Now(),
				Params: map[string]string{"command": tc.command}}
			ok, detail := waitEnded(t, o, outsideOp(), st)
			if ok != tc.ok {
				t.Errorf("ok = %v, want %v (detail %q)", ok, tc.ok, detail)
			}
			for _, w := range tc.want {
				if !strings.Contains(detail, w) {
					t.Errorf("detail %q does not say %q", detail, w)
				}
			}
			if n := strings.Count(detail, "x"); n > maxShellOutput {
				t.Errorf("detail keeps %d bytes of output, want at most %d", n, maxShellOutput)
			}
		})
	}
}

func TestShellTimeoutKillsGroup(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pid")
	o := newTestOutside(t, OutsideConfig{AllowShell: true})
	st := &site.Step{Name: "shell", ID: "slow", Started: time.Now(), Timeout: 300 * time.Millisecond,
		Params: map[string]string{"command": "sleep 30 & echo $! > " + pidFile + "; wait"}}
	ok, detail := waitEnded(t, o, outsideOp(), st)
	if ok || !strings.HasPrefix(detail, "killed after the 300ms timeout") {
		t.Fatalf("Poll = %v, %q; want killed after the timeout", ok, detail)
	}
	pid := readPID(t, pidFile)
	eventually(t, "the sleep child to be gone", func() bool { return processGone(pid) })
}

func TestShellRefused(t *testing.T) {
	o := newTestOutside(t, OutsideConfig{})
	st := &site.Step{Name: "shell", ID: "s", Started: time.Now(), Params: map[string]string{"command": "true"}}
	ended, ok, detail := o.Poll(outsideOp(), st)
	want := "shell steps are not allowed by this cluster's config (runbooks.allow_shell is false)"
	if !ended || ok || detail != want {
		t.Fatalf("Poll = %v, %v, %q; want ended, failed, %q", ended, ok, detail, want)
	}
}

func TestOutsideNotOutsideStep(t *testing.T) {
	o := newTestOutside(t, OutsideConfig{AllowShell: true})
	ended, ok, detail := o.Poll(outsideOp(), &site.Step{Name: "promote", ID: "p"})
	if !ended || ok || !strings.Contains(detail, "not an outside step") {
		t.Fatalf("Poll = %v, %v, %q; want ended, failed, not an outside step", ended, ok, detail)
	}
}

// countLines returns the number of lines in file, 0 if it is missing.
func countLines(t *testing.T, file string) int {
	t.Helper()
	b, err := os.ReadFile(file)
	if errors.Is(err, os.ErrNotExist) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), "\n")
}

func TestOutsideNewStartedIsNewRun(t *testing.T) {
	runs := filepath.Join(t.TempDir(), "runs")
	o := newTestOutside(t, OutsideConfig{AllowShell: true})
	op := outsideOp()
	st := &site.Step{Name: "shell", Started: time.Now(), // no ID: known by name and params
		Params: map[string]string{"command": "echo run >> " + runs}}
	if ok, detail := waitEnded(t, o, op, st); !ok {
		t.Fatalf("first run failed: %s", detail)
	}
	// Asked again (a failed journal write): the same result, not a new run.
	if ended, ok, _ := o.Poll(op, st); !ended || !ok {
		t.Fatalf("Poll again = %v, %v; want the kept result", ended, ok)
	}
	if n := countLines(t, runs); n != 1 {
		t.Fatalf("%d runs after asking again, want 1", n)
	}

	st.Started = st.Started.Add(time.Minute)
	if ended, _, _ := o.Poll(op, st); ended {
		t.Fatal("Poll of a step started anew reported the old result")
	}
	if ok, detail := waitEnded(t, o, op, st); !ok {
		t.Fatalf("second run failed: %s", detail)
	}
	if n := countLines(t, runs); n != 2 {
		t.Fatalf("%d runs, want 2", n)
	}
}

func TestOutsideCloseCancelsShell(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pid")
	o := NewOutside(OutsideConfig{AllowShell: true})
	t.Cleanup(o.Close) // if the test fails before it closes o
	op := outsideOp()
	st := &site.Step{Name: "shell", ID: "slow", Started: time.Now(),
		Params: map[string]string{"command": "sleep 30 & echo $! > " + pidFile + "; wait"}}
	if ended, _, _ := o.Poll(op, st); ended {
		t.Fatal("a sleep 30 step ended at once")
	}
	pid := readPID(t, pidFile)

	closed := make(chan struct{})
	go func() { o.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return within 10s")
	}
	eventually(t, "the sleep child to be gone", func() bool { return processGone(pid) })
	if ended, _, detail := o.Poll(op, st); ended {
		t.Fatalf("Poll after Close reported a result: %q", detail)
	}
}

func TestOutsideForgetsResults(t *testing.T) {
	var (
		mu   sync.Mutex
		hits int
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits++
		mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	o := newTestOutside(t, OutsideConfig{})
	var nowMu sync.Mutex
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	o.now = func() time.Time { nowMu.Lock(); defer nowMu.Unlock(); return now }
	advance := func(d time.Duration) { nowMu.Lock(); defer nowMu.Unlock(); now = now.Add(d) }

	op := outsideOp()
	st := &site.Step{Name: "notify", ID: "tell", Started: now, Params: map[string]string{"url": srv.URL}}
	if ok, detail := waitEnded(t, o, op, st); !ok {
		t.Fatalf("notify failed: %s", detail)
	}
	advance(resultTTL - time.Second)
	if ended, _, _ := o.Poll(op, st); !ended {
		t.Fatal("the result was forgotten before its time")
	}
	advance(2 * time.Second)
	if ended, _, _ := o.Poll(op, st); ended {
		t.Fatal("the result was kept past its time")
	}
	waitEnded(t, o, op, st)
	mu.Lock()
	defer mu.Unlock()
	if hits != 2 {
		t.Fatalf("%d notifications, want 2", hits)
	}
}

func TestOutsideKeepsAtMostMaxResults(t *testing.T) {
	o := newTestOutside(t, OutsideConfig{})
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	o.mu.Lock()
	defer o.mu.Unlock()
	for i := range maxResults + 5 {
		o.runs[outsideKey{op: "op", step: strconv.Itoa(i)}] = &outsideRun{ended: true, end: base.Add(time.Duration(i) * time.Second)}
	}
	o.runs[outsideKey{op: "op", step: "running"}] = &outsideRun{}
	o.pruneLocked(base)
	if len(o.runs) != maxResults+1 {
		t.Fatalf("%d runs kept, want %d results and the running one", len(o.runs), maxResults)
	}
	for i := range 5 {
		if o.runs[outsideKey{op: "op", step: strconv.Itoa(i)}] != nil {
			t.Errorf("result %d, among the oldest, was kept", i)
		}
	}
	if o.runs[outsideKey{op: "op", step: "running"}] == nil {
		t.Error("the running step was dropped")
	}
}

func TestOutsideEnvName(t *testing.T) {
	for in, want := range map[string]string{"site": "SITE", "dark-site": "DARK_SITE", "a.b c9": "A_B_C9", "é": "_"} {
		if got := envName(in); got != want {
			t.Errorf("envName(%q) = %q, want %q", in, got, want)
		}
	}
}
