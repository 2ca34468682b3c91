package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
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
	token, err := l.Token(role)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, zdt, args...)
	cmd.Env = append(os.Environ(), "ZDT_TOKEN="+token)
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		return out.String(), errOut.String(), exit.ExitCode()
	case err != nil:
		t.Fatalf("zdt %s: %v", strings.Join(args, " "), err)
	}
	return out.String(), errOut.String(), 0
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
