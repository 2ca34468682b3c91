package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/zdt-project/zdt/e2e/lab"
	"github.com/zdt-project/zdt/site"
	"github.com/zdt-project/zdt/site/apiauth"
)

// TestLabAPIIdentities runs the CLI as the lab's API identities: with a
// token ($ZDT_TOKEN) its commands go through a controller's API over TLS,
// which checks the role and records who asked. A viewer reads but may not
// switch over; an operator switches over, and the op and the event log name
// it; an operator may not declare a failover. The lab's client certificate
// is its admin.
func TestLabAPIIdentities(t *testing.T) {
	zdt, l := startLab(t, "127.0.24.0")
	ctx, cancel := context.WithTimeout(t.Context(), 120*time.Second)
	defer cancel()
	cli := etcdClient(t, l, "a", "b", "c")
	keys := site.NewKeys(l.Cluster())
	waitKey(ctx, t, cli, keys.Assignment("web"), func(int64) bool { return true })

	// A viewer reads the status through the API.
	out, errOut, code := runAs(ctx, t, l, zdt, "viewer", "status", "-o", "json", "--config", l.ConfigPath())
	var st site.Status
	if err := json.Unmarshal([]byte(out), &st); err != nil || len(st.Sites) != 3 || (code != 0 && code != 3) {
		t.Fatalf("zdt status as the viewer: exit %d, %v\n%s%s", code, err, out, errOut)
	}
	// The table comes made by the controller, cut by the filters, with the
	// exit status of the whole cluster's health (the sites may still be
	// coming up).
	out, errOut, tcode := runAs(ctx, t, l, zdt, "viewer", "status", "--site", "b", "--config", l.ConfigPath())
	if (tcode != 0 && tcode != 3) || !regexp.MustCompile(`(?m)^b +up `).MatchString(out) || regexp.MustCompile(`(?m)^[ac] +(up|dark|fenced) `).MatchString(out) {
		t.Errorf("zdt status --site b as the viewer: exit %d; want 0 or 3, and site b alone\n%s%s", tcode, out, errOut)
	}
	out, errOut, tcode = runAs(ctx, t, l, zdt, "viewer", "status", "--site", "x", "--config", l.ConfigPath())
	if tcode != 2 || out != "" || !strings.Contains(errOut, `--site "x": unknown site (sites are a, b, c)`) {
		t.Errorf("zdt status --site x as the viewer: exit %d; want 2, saying so\n%s%s", tcode, out, errOut)
	}
	// ... but may not move anything, nor may an operator declare a site dark.
	out, errOut, code = runAs(ctx, t, l, zdt, "viewer", "switchover", "--service", "web", "--to", "b", "--config", l.ConfigPath())
	if code != 1 || !strings.Contains(errOut, "POST /switchover needs the role operator; viewer is viewer") {
		t.Errorf("zdt switchover as the viewer: exit %d\n%s%s", code, out, errOut)
	}
	out, errOut, code = runAs(ctx, t, l, zdt, "operator", "failover", "--site", "c", "--dry-run", "--config", l.ConfigPath())
	if code != 1 || !strings.Contains(errOut, "POST /failover needs the role admin; operator is operator") {
		t.Errorf("zdt failover as the operator: exit %d\n%s%s", code, out, errOut)
	}
	// A token the config does not know is refused.
	cmd := exec.CommandContext(ctx, zdt, "status", "--config", l.ConfigPath())
	cmd.Env = append(os.Environ(), "ZDT_TOKEN=not-a-token")
	if got, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(got), "unknown bearer token") {
		t.Errorf("zdt status with an unknown token: %v\n%s", err, got)
	}

	// The operator switches web over, and is on record for it.
	var res site.OpRequest
	deadline := time.Now().Add(60 * time.Second)
	for {
		out, errOut, code = runAs(ctx, t, l, zdt, "operator", "switchover", "--service", "web", "--to", "b", "--wait", "-o", "json",
			"--timeout", "60s", "--config", l.ConfigPath())
		if code == 0 || !strings.Contains(errOut, "refused") || time.Now().After(deadline) {
			break // b may not report itself up yet: refused, with why
		}
		waitKey(ctx, t, cli, keys.Report("b"), func(int64) bool { return true })
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil || code != 0 || res.Op == nil || res.Op.Outcome != site.OpSucceeded {
		t.Fatalf("zdt switchover as the operator: exit %d, %v\n%s%s", code, err, out, errOut)
	}
	if res.Op.Who != "api:operator" {
		t.Errorf("the switchover was requested by %q; want api:operator", res.Op.Who)
	}
	events := apiGet[[]site.Event](ctx, t, l, "viewer", "/api/v1/events?limit=100")
	audited := false
	for _, e := range events {
		audited = audited || (e.Kind == "op-requested" && e.Op == res.Op.ID && strings.Contains(e.Message, "requested by api:operator"))
	}
	if !audited {
		t.Errorf("no op-requested event naming api:operator for op %s in %+v", res.Op.ID, events)
	}

	// The read commands go through the API too, as the viewer.
	cfgPath := l.ConfigPath()
	out, errOut, code = runAs(ctx, t, l, zdt, "viewer", "ops", "list", "--kind", "switchover", "-o", "json", "--config", cfgPath)
	var list []site.OpSummary
	if err := json.Unmarshal([]byte(out), &list); err != nil || code != 0 || len(list) != 1 || list[0].ID != res.Op.ID {
		t.Errorf("zdt ops list as the viewer: exit %d, %v; want the switchover %s\n%s%s", code, err, res.Op.ID, out, errOut)
	}
	out, errOut, code = runAs(ctx, t, l, zdt, "viewer", "ops", "show", res.Op.ID[:len(res.Op.ID)-1], "-o", "json", "--config", cfgPath)
	var shown struct {
		Op       site.Op `json:"op"`
		Revision int64   `json:"revision"`
	}
	if err := json.Unmarshal([]byte(out), &shown); err != nil || code != 0 || shown.Op.ID != res.Op.ID || shown.Revision <= 0 {
		t.Errorf("zdt ops show as the viewer: exit %d, %v; want op %s with its revision\n%s%s", code, err, res.Op.ID, out, errOut)
	}
	out, errOut, code = runAs(ctx, t, l, zdt, "viewer", "ops", "watch", res.Op.ID, "--config", cfgPath)
	if code != 0 || !regexp.MustCompile(`(?m)^outcome +succeeded$`).MatchString(out) {
		t.Errorf("zdt ops watch as the viewer: exit %d; want 0 and the op as it ended\n%s%s", code, out, errOut)
	}
	out, errOut, code = runAs(ctx, t, l, zdt, "viewer", "ops", "show", "20991231", "--config", cfgPath)
	if code != 2 || !strings.Contains(errOut, `no op "20991231" in the journal`) {
		t.Errorf("zdt ops show of an unknown op as the viewer: exit %d; want 2, saying so\n%s%s", code, out, errOut)
	}
	out, errOut, code = runAs(ctx, t, l, zdt, "viewer", "events", "--kind", "op-req*", "--service", "web", "--since", "1h", "-o", "json", "--config", cfgPath)
	var logged []site.Event
	if err := json.Unmarshal([]byte(out), &logged); err != nil || code != 0 || len(logged) == 0 || logged[len(logged)-1].Op != res.Op.ID {
		t.Errorf("zdt events as the viewer: exit %d, %v; want the request of op %s last\n%s%s", code, err, res.Op.ID, out, errOut)
	}
	// Dry runs ask the API too, as the caller: nothing to abort, nothing
	// fenced.
	out, errOut, code = runAs(ctx, t, l, zdt, "operator", "ops", "abort", res.Op.ID, "--dry-run", "--config", cfgPath)
	if code != 1 || !strings.Contains(errOut, "has ended already: succeeded at") {
		t.Errorf("zdt ops abort --dry-run of an ended op as the operator: exit %d\n%s%s", code, out, errOut)
	}
	out, errOut, code = runAs(ctx, t, l, zdt, "admin", "fence", "confirm", "--site", "c", "--dry-run", "--config", cfgPath)
	if code != 1 || !strings.Contains(errOut, "site is not fenced") {
		t.Errorf("zdt fence confirm --dry-run of a site that is not fenced as the admin: exit %d\n%s%s", code, out, errOut)
	}

	// A runbook file goes through the API with its text: the viewer plans
	// it, the operator runs it (it waits for a person before it changes
	// anything) and aborts it.
	rbFile := filepath.Join(t.TempDir(), "evacuate-c.yaml")
	shipped, err := os.ReadFile("../runbooks/site-evacuation.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(rbFile, []byte(strings.Replace(string(shipped), "name: site-evacuation", "name: our-evacuation", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, errOut, code = runAs(ctx, t, l, zdt, "viewer", "runbook", "plan", rbFile, "--param", "site=c", "--config", cfgPath)
	if code != 0 || !strings.Contains(out, "runbook our-evacuation (evacuate-c.yaml) with reason=maintenance site=c") {
		t.Errorf("zdt runbook plan FILE as the viewer: exit %d\n%s%s", code, out, errOut)
	}
	out, errOut, code = runAs(ctx, t, l, zdt, "operator", "runbook", "run", rbFile, "--param", "site=c", "--detach", "-o", "json", "--config", cfgPath)
	var run site.OpRequest
	if err := json.Unmarshal([]byte(out), &run); err != nil || code != 0 || run.Op == nil || run.Op.Runbook != "our-evacuation" || run.Op.Who != "api:operator" {
		t.Fatalf("zdt runbook run FILE as the operator: exit %d, %v\n%s%s", code, err, out, errOut)
	}
	out, errOut, code = runAs(ctx, t, l, zdt, "operator", "ops", "abort", run.Op.ID, "--reason", "a test", "-o", "json", "--config", cfgPath)
	var aborted site.AbortResult
	if err := json.Unmarshal([]byte(out), &aborted); err != nil || code != 0 || aborted.Action != site.AbortRequested || aborted.Who != "api:operator" {
		t.Fatalf("zdt ops abort as the operator: exit %d, %v\n%s%s", code, err, out, errOut)
	}
	out, errOut, code = runAs(ctx, t, l, zdt, "viewer", "ops", "watch", run.Op.ID, "-o", "json", "--config", cfgPath)
	if code != 1 || !strings.Contains(errOut, "aborted by api:operator: a test") {
		t.Errorf("zdt ops watch of the aborted runbook as the viewer: exit %d; want 1, saying who aborted it\n%s%s", code, out, errOut)
	}

	// The viewer follows the requests while the operator switches web back
	// to its preferred site: the follower sees the request as it is made.
	follower := startAs(ctx, t, l, zdt, "viewer", "events", "--follow", "--kind", "op-requested", "--limit", "1", "-o", "json", "--config", cfgPath)
	out, errOut, code = runAs(ctx, t, l, zdt, "operator", "failback", "--site", "a", "--switch-back", "-o", "json", "--timeout", "60s", "--config", cfgPath)
	var back site.OpRequest
	if err := json.Unmarshal([]byte(out), &back); err != nil || code != 0 || back.Op == nil || back.Op.Kind != "switchover" ||
		back.Op.Outcome != site.OpSucceeded || back.Op.Who != "api:operator" {
		t.Fatalf("zdt failback --switch-back as the operator: exit %d, %v; want web's switchover back, succeeded\n%s%s", code, err, out, errOut)
	}
	for e := range follower.events(t) {
		if e.Op == back.Op.ID {
			break
		}
	}

	// The operator drills site a (web) through the API, probing site b's
	// API port: a switchover over to b and back, recorded as a's last
	// drill, by the operator.
	sb, err := l.Site("b")
	if err != nil {
		t.Fatal(err)
	}
	out, errOut, code = runAs(ctx, t, l, zdt, "operator", "drill", "switchover", "--site", "a", "--to", "b", "--probe", "tcp://"+sb.API,
		"--out", t.TempDir(), "--timeout", "90s", "--config", cfgPath)
	if code != 0 || !strings.Contains(out, "drill: switchover of site a PASSED") {
		t.Fatalf("zdt drill switchover as the operator: exit %d\n%s%s", code, out, errOut)
	}
	for _, st := range apiGet[[]site.SiteStatus](ctx, t, l, "viewer", "/api/v1/sites") {
		if d := st.LastDrill; st.Name == "a" && (d == nil || !d.Passed || d.Who != "api:operator" || !d.Probed || d.LostWrites != -1) {
			t.Errorf("site a's last drill through the API: %+v; want passed, by api:operator, probed without writes", d)
		}
	}

	// The lab's client certificate is its admin.
	client, err := l.APIClient(true)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Get(l.APIURL("c") + "/api/v1/whoami")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var who apiauth.Identity
	if err := json.NewDecoder(resp.Body).Decode(&who); err != nil || who.Name != "lab-admin" || who.Role != "admin" || who.Via != "certificate" {
		t.Errorf("whoami with the lab's client certificate: %d %+v %v", resp.StatusCode, who, err)
	}
}

// runAs runs zdt with the lab's token of role in $ZDT_TOKEN, and returns
// what it wrote to stdout, to stderr, and its exit status.
func runAs(ctx context.Context, t *testing.T, l *lab.Lab, zdt, role string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := commandAs(ctx, t, l, zdt, role, args...)
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		return out.String(), errOut.String(), exit.ExitCode()
	case err != nil:
		t.Fatalf("zdt %s: %v", strings.Join(args, " "), err)
	}
	return out.String(), errOut.String(), 0
}

// commandAs is zdt with args, run with the lab's token of role in
// $ZDT_TOKEN.
func commandAs(ctx context.Context, t *testing.T, l *lab.Lab, zdt, role string, args ...string) *exec.Cmd {
	t.Helper()
	token, err := l.Token(role)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, zdt, args...)
	cmd.Env = append(os.Environ(), "ZDT_TOKEN="+token)
	return cmd
}

// follower is a zdt events --follow -o json running in the background.
type follower struct {
	cmd   *exec.Cmd
	lines chan string
}

// startAs starts zdt with the lab's token of role, reading its stdout line
// by line; it is killed when the test ends.
func startAs(ctx context.Context, t *testing.T, l *lab.Lab, zdt, role string, args ...string) *follower {
	t.Helper()
	cmd := commandAs(ctx, t, l, zdt, role, args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	f := &follower{cmd: cmd, lines: make(chan string, 100)}
	go func() {
		defer close(f.lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			f.lines <- sc.Text()
		}
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return f
}

// events yields the events the follower prints until the caller stops;
// the test fails when it prints something else, exits, or is quiet for
// 30s.
func (f *follower) events(t *testing.T) func(func(site.Event) bool) {
	return func(yield func(site.Event) bool) {
		for {
			select {
			case line, ok := <-f.lines:
				if !ok {
					t.Fatalf("zdt %s exited", strings.Join(f.cmd.Args[1:], " "))
				}
				var e site.Event
				if err := json.Unmarshal([]byte(line), &e); err != nil {
					t.Fatalf("zdt events printed %q: %v", line, err)
				}
				if !yield(e) {
					return
				}
			case <-time.After(30 * time.Second):
				t.Fatalf("zdt %s printed nothing for 30s", strings.Join(f.cmd.Args[1:], " "))
			}
		}
	}
}

// apiGet reads a route of site a's API as the role's token.
func apiGet[T any](ctx context.Context, t *testing.T, l *lab.Lab, role, path string) T {
	t.Helper()
	var v T
	token, err := l.Token(role)
	if err != nil {
		t.Fatal(err)
	}
	client, err := l.APIClient(false)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, l.APIURL("a")+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &v) != nil {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, body)
	}
	return v
}
