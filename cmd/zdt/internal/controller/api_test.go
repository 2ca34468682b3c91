package controller

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/zdt-project/zdt/cmd/zdt/internal/api"
	"github.com/zdt-project/zdt/runbooks"
	"github.com/zdt-project/zdt/site"
	"github.com/zdt-project/zdt/site/apiauth"
	"github.com/zdt-project/zdt/site/config"
	"github.com/zdt-project/zdt/site/sitetest"
)

// apiHarness is three controllers whose APIs serve TLS, with a token per
// role and an admin client certificate, and a client that checks every
// request and answer against the OpenAPI document.
type apiHarness struct {
	t      *testing.T
	tc     *testCluster
	router routers.Router
	// clients by credential: "viewer", "operator", "admin" (tokens),
	// "cert" (the admin's client certificate), "" (none).
	tokens map[string]string
	plain  *http.Client
	cert   *http.Client
}

func newAPIHarness(t *testing.T) *apiHarness {
	tc := newTestCluster(t)
	pki := sitetest.NewPKI(t, "a", "b", "c")
	pki.Issue(t, "root", sitetest.Cert{CommonName: "root", Client: true})
	cfg := tc.etcd.Config
	cfg.API.CA = pki.CA
	for i := range cfg.Sites {
		s := &cfg.Sites[i]
		s.APICert, s.APIKey = pki.Cert[s.Name], pki.Key[s.Name]
	}
	h := &apiHarness{t: t, tc: tc, tokens: map[string]string{}}
	for _, role := range config.Roles() {
		token := "token-of-" + string(role)
		h.tokens[string(role)] = token
		cfg.API.Identities = append(cfg.API.Identities, config.Identity{
			Name: string(role) + "-user", Role: role, TokenSHA256: sha256.Sum256([]byte(token)), HasToken: true})
	}
	cfg.API.Identities = append(cfg.API.Identities, config.Identity{Name: "root", Role: config.RoleAdmin, CertCN: "root"})

	doc, err := openapi3.NewLoader().LoadFromData(api.OpenAPI())
	if err != nil {
		t.Fatal(err)
	}
	a, _ := cfg.Site("a") // the requests go to site a
	doc.Servers = openapi3.Servers{{URL: apiauth.BaseURL(a) + api.Prefix}}
	if h.router, err = legacy.NewRouter(doc); err != nil {
		t.Fatal(err)
	}
	plainTLS, err := apiauth.ClientTLS(pki.CA, "", "")
	if err != nil {
		t.Fatal(err)
	}
	certTLS, err := apiauth.ClientTLS(pki.CA, pki.Cert["root"], pki.Key["root"])
	if err != nil {
		t.Fatal(err)
	}
	h.plain = &http.Client{Transport: &http.Transport{TLSClientConfig: plainTLS}, Timeout: 20 * time.Second}
	h.cert = &http.Client{Transport: &http.Transport{TLSClientConfig: certTLS}, Timeout: 20 * time.Second}
	t.Cleanup(h.plain.CloseIdleConnections)
	t.Cleanup(h.cert.CloseIdleConnections)
	for _, name := range []string{"a", "b", "c"} {
		tc.start(name, startOptions{profiles: name == "a"})
	}
	return h
}

// in is the harness for a subtest.
func (h *apiHarness) in(t *testing.T) *apiHarness {
	c := *h
	c.t = t
	return &c
}

// answer is an API answer.
type answer struct {
	status int
	header http.Header
	body   []byte
}

func (a answer) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(a.body, v); err != nil {
		t.Fatalf("decode %s: %v", a.body, err)
	}
}

// errorMessage is the error of an error answer.
func (a answer) errorMessage(t *testing.T) string {
	t.Helper()
	var e api.Error
	a.decode(t, &e)
	return e.Error
}

// do sends a request to site a's API as who, and checks the request (when
// valid is set: a request the test means to be wrong is not) and the
// answer, whatever its status, against the OpenAPI document.
func (h *apiHarness) do(who, method, path string, body any, valid bool) answer {
	h.t.Helper()
	var rd io.Reader
	var raw []byte
	switch b := body.(type) {
	case nil:
	case string:
		raw = []byte(b)
	default:
		var err error
		if raw, err = json.Marshal(b); err != nil {
			h.t.Fatal(err)
		}
	}
	if raw != nil {
		rd = bytes.NewReader(raw)
	}
	s, _ := h.tc.etcd.Config.Site("a")
	req, err := http.NewRequestWithContext(h.t.Context(), method, apiauth.BaseURL(s)+path, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	if raw != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	client := h.plain
	switch who {
	case "":
	case "cert":
		client = h.cert
	default:
		req.Header.Set("Authorization", "Bearer "+h.tokens[who])
	}
	route, params, routeErr := h.router.FindRoute(req)
	opts := &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, IncludeResponseStatus: true}
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: opts}
	if valid {
		if routeErr != nil {
			h.t.Fatalf("%s %s is not in the OpenAPI document: %v", method, path, routeErr)
		}
		if err := openapi3filter.ValidateRequest(h.t.Context(), in); err != nil {
			h.t.Fatalf("%s %s: the request does not fit the OpenAPI document: %v", method, path, err)
		}
		if raw != nil {
			req.Body = io.NopCloser(bytes.NewReader(raw)) // validation read it
		}
	}
	resp, err := client.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	a := answer{status: resp.StatusCode, header: resp.Header, body: got}
	if ct := resp.Header.Get("Content-Type"); a.status >= 400 && ct != "application/json" {
		h.t.Errorf("%s %s: %d with Content-Type %q; want JSON", method, path, a.status, ct)
	}
	if routeErr == nil {
		out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: a.status, Header: resp.Header, Options: opts}
		out.SetBodyBytes(got)
		if err := openapi3filter.ValidateResponse(h.t.Context(), out); err != nil {
			h.t.Errorf("%s %s: the answer (%d %s) does not fit the OpenAPI document: %v", method, path, a.status, got, err)
		}
	}
	return a
}

// expect checks an answer's status and that its body says want.
func (h *apiHarness) expect(a answer, status int, want string, what string) {
	h.t.Helper()
	said := string(a.body)
	if a.status >= 400 {
		said = a.errorMessage(h.t)
	}
	if a.status != status || !strings.Contains(said, want) {
		h.t.Errorf("%s: %d %s; want %d saying %q", what, a.status, said, status, want)
	}
}

// TestAPI exercises every route of the API against real controllers, as
// each role, checking requests and answers against the OpenAPI document:
// reads, refusals with the right status, an operation requested, streamed
// to its end and audited.
func TestAPI(t *testing.T) {
	h := newAPIHarness(t)
	ctx := ctxFor(t, 90*time.Second)
	h.tc.bootstrapped(ctx)

	t.Run("reads", func(t *testing.T) {
		h := h.in(t)
		for _, path := range []string{"/status", "/status?site=a,b&problems=false", "/status?format=table&service=web&all=true", "/status?limit=1&site=a,b", "/sites", "/services", "/replication", "/guests", "/guests?site=a&tier=gold",
			"/prefixes", "/ops", "/ops?limit=0&kind=bootstrap", "/events?limit=5", "/events?limit=0&since=1h&site=a,b&site=c&kind=op-*&service=web", "/drills", "/runbooks", "/whoami"} {
			h.expect(h.do("viewer", "GET", "/api/v1"+path, nil, true), 200, "", "GET "+path)
		}
		h.expect(h.do("", "GET", "/api/v1/openapi.yaml", nil, true), 200, "openapi: 3.0.3", "the document")
		var sites []site.SiteStatus
		h.do("viewer", "GET", "/api/v1/sites", nil, true).decode(t, &sites)
		if len(sites) != 3 {
			t.Errorf("sites: %+v; want a, b and c", sites)
		}
		// The status cut as zdt status's flags cut it, and its table.
		var whole, cut site.Status
		h.do("viewer", "GET", "/api/v1/status", nil, true).decode(t, &whole)
		h.do("viewer", "GET", "/api/v1/status?site=c&site=b&service=web", nil, true).decode(t, &cut)
		if len(whole.Sites) != 3 || len(cut.Sites) != 2 || cut.Sites[0].Name != "b" || cut.Sites[1].Name != "c" ||
			len(cut.Services) > 1 || cut.Health.State != whole.Health.State {
			t.Errorf("status?site=c&site=b&service=web: sites %+v, services %+v, health %s; want sites b and c, web at most, the whole health %s",
				cut.Sites, cut.Services, cut.Health.State, whole.Health.State)
		}
		var table api.StatusTable
		h.do("viewer", "GET", "/api/v1/status?format=table&site=b", nil, true).decode(t, &table)
		if !strings.Contains(table.Table, "\nSITE ") || !regexp.MustCompile(`(?m)^b +up `).MatchString(table.Table) ||
			regexp.MustCompile(`(?m)^[ac] +(up|dark|fenced) `).MatchString(table.Table) || table.Health.State != whole.Health.State {
			t.Errorf("status?format=table&site=b: health %s\n%s\nwant site b alone and the whole health %s", table.Health.State, table.Table, whole.Health.State)
		}
		// Cut to one item a list, with the counts of what it cut.
		var limited api.LimitedStatus
		h.do("viewer", "GET", "/api/v1/status?limit=1", nil, true).decode(t, &limited)
		guests := 0
		for _, c := range limited.Shown.GuestCounts {
			guests += c.Guests
		}
		if len(limited.Services) != 1 || len(limited.Guests) > 1 || len(limited.Sites) != 3 ||
			limited.Shown.Limit != 1 || limited.Shown.Services.Total != len(whole.Services) || limited.Shown.Services.Shown != 1 ||
			limited.Shown.Guests.Total != len(whole.Guests) || guests != len(whole.Guests) || limited.Health.State != whole.Health.State {
			t.Errorf("status?limit=1: %d services, %d guests, %d sites, shown %+v, health %s; want 1 service of %d, at most 1 guest, every site, "+
				"%d guests counted, the whole health %s", len(limited.Services), len(limited.Guests), len(limited.Sites), limited.Shown,
				limited.Health.State, len(whole.Services), len(whole.Guests), whole.Health.State)
		}
		var who apiauth.Identity
		h.do("cert", "GET", "/api/v1/whoami", nil, true).decode(t, &who)
		if who != (apiauth.Identity{Name: "root", Role: config.RoleAdmin, Via: "certificate"}) {
			t.Errorf("whoami with the admin's certificate: %+v", who)
		}
	})

	t.Run("refusals", func(t *testing.T) {
		h := h.in(t)
		for _, tc := range []struct {
			who, method, path string
			body              any
			status            int
			want              string
		}{
			{"", "GET", "/api/v1/status", nil, 401, "who are you?"},
			{"viewer", "POST", "/api/v1/switchover", map[string]any{"service": "web", "to": "b"}, 403, "needs the role operator; viewer-user is viewer"},
			{"operator", "POST", "/api/v1/switchover", map[string]any{"service": "web", "to": "b", "force": true}, 403, "a forced switchover needs the role admin"},
			{"operator", "POST", "/api/v1/failover", map[string]any{"site": "c"}, 403, "needs the role admin"},
			{"operator", "POST", "/api/v1/sites/c/confirm-fence", nil, 403, "needs the role admin"},
			{"operator", "POST", "/api/v1/switchover", map[string]any{"to": "b"}, 400, "give either service or site"},
			{"operator", "POST", "/api/v1/switchover", map[string]any{"service": "web", "to": "b", "when": "now"}, 400, `unknown field "when"`},
			{"operator", "POST", "/api/v1/switchover", `{"service": "web", "to": `, 400, "body"},
			{"operator", "POST", "/api/v1/switchover", `{"service": 7, "to": "b"}`, 400, `body field "service": want string, got number`},
			{"operator", "POST", "/api/v1/switchover", map[string]any{"service": "mail", "to": "b"}, 400, `service "mail": unknown service (services are web, db)`},
			{"operator", "POST", "/api/v1/switchover", map[string]any{"service": "web", "to": "x"}, 400, `site "x": unknown site (sites are a, b, c)`},
			{"operator", "POST", "/api/v1/switchover", map[string]any{"service": "web", "to": "b", "promote_within": "soon"}, 400, `promote_within "soon": want a positive duration`},
			{"operator", "POST", "/api/v1/failback", map[string]any{}, 400, "site: required"},
			{"operator", "POST", "/api/v1/failback", map[string]any{"site": "c"}, 409, "refused for now"},
			{"operator", "POST", "/api/v1/runbooks/no-such/run", nil, 404, "no-such"},
			{"operator", "POST", "/api/v1/runbooks/site-switchover/run", map[string]any{"params": map[string]string{}}, 400, "site"},
			{"viewer", "GET", "/api/v1/ops?limit=-1", nil, 400, `limit="-1": want a whole number`},
			{"operator", "POST", "/api/v1/runbooks/run", map[string]any{"file": "mine.yaml"}, 400, "runbook: required (the runbook's YAML)"},
			{"operator", "POST", "/api/v1/runbooks/run", map[string]any{"file": "mine.yaml", "runbook": "name: mine\ngroups:\n  - name: g\n    steps:\n      - {id: s, action: teleport}\n"}, 400, "mine.yaml:5"},
			{"operator", "POST", "/api/v1/runbooks/run", map[string]any{"file": "dark.yaml", "runbook": darkRunbook}, 403, "runbook dark-drill (its step declare declares a site dark or forces a move) needs the role admin"},
			{"viewer", "GET", "/api/v1/events?limit=x", nil, 400, `limit="x": want a whole number`},
			{"viewer", "GET", "/api/v1/events?since=3d", nil, 400, `since="3d": want a duration before now (10m, 1h30m) or a time in RFC 3339 (2026-12-02T03:13:00Z); a day is not a unit: say 72h`},
			{"viewer", "GET", "/api/v1/events?site=a,x", nil, 400, `site "x": unknown site (sites are a, b, c)`},
			{"viewer", "GET", "/api/v1/events?service=mail", nil, 400, `service "mail": unknown service`},
			{"viewer", "GET", "/api/v1/events?kind=op*x", nil, 400, `kind="op*x": want a kind (op-failed), or the beginning of kinds followed by * (op-*)`},
			{"viewer", "GET", "/api/v1/events/stream?kind=*x*", nil, 400, `kind="*x*"`},
			{"viewer", "GET", "/api/v1/guests?site=x", nil, 400, `site "x": unknown site`},
			{"viewer", "GET", "/api/v1/status?site=a,x", nil, 400, `site "x": unknown site (sites are a, b, c)`},
			{"viewer", "GET", "/api/v1/status?service=mail&format=table", nil, 400, `service "mail": unknown service (services are web, db)`},
			{"viewer", "GET", "/api/v1/status?problems=yes", nil, 400, `problems="yes": want true or false`},
			{"viewer", "GET", "/api/v1/status?format=yaml", nil, 400, `format="yaml": want json or table`},
			{"viewer", "GET", "/api/v1/status?limit=-1", nil, 400, `limit="-1": want a whole number, 0 or more`},
			{"viewer", "GET", "/api/v1/status?limit=5&format=table", nil, 400, `limit=5: the table summarises long sections itself`},
			{"viewer", "GET", "/api/v1/ops/nosuchop", nil, 404, `no op "nosuchop" in the journal; the closest: `},
			{"viewer", "GET", "/api/v1/events/stream?after=yesterday", nil, 400, `after "yesterday": want a revision`},
			{"admin", "POST", "/api/v1/sites/c/confirm-fence", nil, 409, "not fenced"},
			{"admin", "POST", "/api/v1/sites/c/confirm-fence", map[string]any{"dry_run": true}, 409, "not fenced"},
			{"admin", "POST", "/api/v1/sites/c/confirm-fence", map[string]any{"dry": true}, 400, `unknown field "dry"`},
			{"admin", "POST", "/api/v1/sites/x/confirm-fence", nil, 404, `site "x": unknown site`},
			{"viewer", "POST", "/api/v1/sites/b/drills", map[string]any{"kind": "switchover"}, 403, "needs the role operator"},
			{"operator", "POST", "/api/v1/sites/x/drills", map[string]any{"kind": "switchover", "started": "2026-12-03T10:00:00Z", "ended": "2026-12-03T10:00:07Z"}, 404, `site "x": unknown site`},
			{"operator", "POST", "/api/v1/sites/b/drills", map[string]any{"site": "c", "kind": "switchover", "started": "2026-12-03T10:00:00Z", "ended": "2026-12-03T10:00:07Z"}, 400, `site "b": the body says "c"`},
			{"operator", "POST", "/api/v1/sites/b/drills", map[string]any{"started": "2026-12-03T10:00:00Z", "ended": "2026-12-03T10:00:07Z"}, 400, "kind: required"},
			{"operator", "POST", "/api/v1/sites/b/drills", map[string]any{"kind": "switchover", "started": "2026-12-03T10:00:07Z", "ended": "2026-12-03T10:00:00Z"}, 400, "an end no earlier"},
			{"viewer", "GET", "/api/v1/nope", nil, 404, "/api/v1/nope: no such endpoint"},
			{"viewer", "DELETE", "/api/v1/status", nil, 405, "method not allowed (allowed: GET)"},
		} {
			a := h.do(tc.who, tc.method, tc.path, tc.body, false)
			h.expect(a, tc.status, tc.want, tc.who+" "+tc.method+" "+tc.path)
		}
		// A body of the wrong type is refused before anything is read.
		s, _ := h.tc.etcd.Config.Site("a")
		req, _ := http.NewRequestWithContext(t.Context(), "POST", apiauth.BaseURL(s)+"/api/v1/failback", strings.NewReader("site=c"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", "Bearer "+h.tokens["operator"])
		resp, err := h.plain.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		h.expect(answer{status: resp.StatusCode, body: body}, 415, "want application/json", "a form body")
	})

	t.Run("profiles", func(t *testing.T) {
		h := h.in(t)
		h.expect(h.do("", "GET", "/debug/pprof/heap", nil, false), 401, "who are you?", "the heap profile to no one")
		h.expect(h.do("operator", "GET", "/debug/pprof/heap", nil, false), 403, "the Go profiles needs the role admin", "the heap profile to an operator")
		heap := h.do("admin", "GET", "/debug/pprof/heap?debug=1", nil, false)
		h.expect(heap, 200, "heap profile:", "the heap profile to an admin")
		cmdline := h.do("cert", "GET", "/debug/pprof/cmdline", nil, false)
		h.expect(cmdline, 200, "", "the command line to the admin's certificate")
		if len(cmdline.body) == 0 {
			t.Error("/debug/pprof/cmdline: empty")
		}
		h.expect(h.do("admin", "GET", "/debug/pprof/", nil, false), 200, "goroutine", "the index")
	})

	t.Run("switchover", func(t *testing.T) {
		h := h.in(t)
		events := h.openStream("/api/v1/events/stream")
		// Filtered by the controller: only the requests, of service web.
		requests := h.openStream("/api/v1/events/stream?kind=op-requested&service=web")
		// A dry run changes nothing.
		var dry site.OpRequest
		a := h.untilNot409("operator", "/api/v1/switchover", map[string]any{"service": "web", "to": "b", "dry_run": true})
		h.expect(a, 200, `"dry_run": true`, "a dry run")
		a.decode(t, &dry)
		if dry.Op == nil || dry.Op.Kind != "switchover" || dry.Op.Who != "api:operator-user" {
			t.Fatalf("dry run: %+v; want a switchover planned for api:operator-user", dry.Op)
		}

		a = h.untilNot409("operator", "/api/v1/switchover", map[string]any{"service": "web", "to": "b"})
		h.expect(a, 202, `"who": "api:operator-user"`, "the switchover")
		var req site.OpRequest
		a.decode(t, &req)
		if loc := a.header.Get("Location"); loc != "/api/v1/ops/"+req.Op.ID {
			t.Errorf("Location %q; want /api/v1/ops/%s", loc, req.Op.ID)
		}

		// The op's stream shows it to its end.
		ops := h.openStream("/api/v1/ops/" + req.Op.ID[:len(req.Op.ID)-2] + "/stream") // a unique prefix names it
		var last site.Op
		for ev := range ops.events(ctx) {
			if ev.name == "op" {
				if err := json.Unmarshal([]byte(ev.data), &last); err != nil {
					t.Fatalf("op event %q: %v", ev.data, err)
				}
			}
			if ev.name == "end" {
				break
			}
		}
		if last.ID != req.Op.ID || last.Outcome != site.OpSucceeded {
			t.Fatalf("the op's stream ended with %s %s (%s); want %s succeeded", last.ID, last.Outcome, last.Error, req.Op.ID)
		}
		h.tc.waitAssigned(ctx, "web", "b")

		// Audited: in the op and in the event log, which the event stream
		// carried as it was written.
		var op site.Op
		h.do("viewer", "GET", "/api/v1/ops/"+req.Op.ID, nil, true).decode(t, &op)
		if op.Who != "api:operator-user" {
			t.Errorf("op %s was requested by %q; want api:operator-user", op.ID, op.Who)
		}
		audited := false
		for ev := range events.events(ctx) {
			var e site.Event
			if err := json.Unmarshal([]byte(ev.data), &e); err != nil || ev.name != "event" {
				t.Fatalf("event stream: %s %q (%v)", ev.name, ev.data, err)
			}
			if e.Kind == "op-requested" && e.Op == req.Op.ID {
				if !strings.Contains(e.Message, "switchover of service web, to b requested by api:operator-user") {
					t.Errorf("audit event %q", e.Message)
				}
				audited = true
				break
			}
		}
		if !audited {
			t.Fatalf("no op-requested event for op %s", req.Op.ID)
		}
		// The filtered stream carried that event first: nothing before it
		// matched.
		for ev := range requests.events(ctx) {
			var e site.Event
			if err := json.Unmarshal([]byte(ev.data), &e); err != nil || e.Kind != "op-requested" || e.Op != req.Op.ID {
				t.Errorf("the filtered stream's first event: %s %q (%v); want the op-requested of op %s", ev.name, ev.data, err, req.Op.ID)
			}
			break
		}
		// The log, filtered the same, with the revision to follow on from.
		a = h.do("viewer", "GET", "/api/v1/events?kind=op-req*&service=web&limit=0", nil, true)
		var logged []site.Event
		a.decode(t, &logged)
		rev, err := strconv.ParseInt(a.header.Get(api.RevisionHeader), 10, 64)
		if err != nil || len(logged) == 0 || rev < logged[len(logged)-1].Rev {
			t.Errorf("GET /events filtered: %d events, %s %q (%v); want the request, and a revision at or after it", len(logged), api.RevisionHeader, a.header.Get(api.RevisionHeader), err)
		}
		for _, e := range logged {
			if e.Kind != "op-requested" || e.Subject != "web" {
				t.Errorf("GET /events?kind=op-req*&service=web answered %+v", e)
			}
		}

		// The op has ended: nothing to approve or abort.
		h.expect(h.do("operator", "POST", "/api/v1/ops/"+req.Op.ID+"/abort", map[string]string{"reason": "test"}, true), 409,
			"has ended already: succeeded at ", "abort of an ended op")
		h.expect(h.do("operator", "POST", "/api/v1/ops/"+req.Op.ID+"/abort", map[string]any{"dry_run": true}, true), 409,
			"there is nothing to abort", "a dry-run abort of an ended op")
		h.expect(h.do("operator", "POST", "/api/v1/ops/"+req.Op.ID+"/approve", map[string]string{}, true), 409, "op has ended", "approval of an ended op")

		// A drill recorded through the API is the site's last, in /sites.
		drill := map[string]any{"kind": "switchover", "started": "2026-12-03T10:00:00Z", "ended": "2026-12-03T10:00:07Z",
			"passed": true, "rto_seconds": 2.5, "probed": true, "outage_seconds": 0.4, "lost_writes": 0}
		var kept site.DrillRecord
		a = h.do("operator", "POST", "/api/v1/sites/b/drills", drill, true)
		a.decode(t, &kept)
		if a.status != 200 || kept.Site != "b" || kept.Who != "api:operator-user" {
			t.Errorf("record a drill: %d %s; want it kept for b, by api:operator-user", a.status, a.body)
		}
		var sites []site.SiteStatus
		h.do("viewer", "GET", "/api/v1/sites", nil, true).decode(t, &sites)
		for _, st := range sites {
			if (st.Name == "b") != (st.LastDrill != nil) || (st.LastDrill != nil && !st.LastDrill.Passed) {
				t.Errorf("site %s's last drill: %+v; want b's alone, passed", st.Name, st.LastDrill)
			}
		}

		// An admin may plan a declared failover (a dry run here).
		h.expect(h.do("cert", "POST", "/api/v1/failover", map[string]any{"site": "c", "reason": "test", "dry_run": true}, true), 200, `"kind": "failover"`, "a failover dry run")
		h.expect(h.do("operator", "POST", "/api/v1/runbooks/site-evacuation/run", map[string]any{"params": map[string]string{"site": "c", "reason": "test"}, "dry_run": true}, true),
			200, `"runbook": "site-evacuation"`, "a runbook dry run")
		evacuation, err := os.ReadFile("../../../../runbooks/site-evacuation.yaml")
		if err != nil {
			t.Fatal(err)
		}
		h.expect(h.do("operator", "POST", "/api/v1/runbooks/run", map[string]any{"file": "evacuation.yaml", "runbook": string(evacuation),
			"params": map[string]string{"site": "c"}, "dry_run": true}, true), 200, `"runbook": "site-evacuation"`, "a posted runbook's dry run")
		// A viewer plans, as zdt runbook plan does: a shipped runbook, and
		// one the request carries (a failover: planned, not run).
		var plan runbooks.Plan
		a = h.do("viewer", "POST", "/api/v1/runbooks/site-evacuation/plan", map[string]any{"params": map[string]string{"site": "c"}}, true)
		a.decode(t, &plan)
		if a.status != 200 || plan.Op == nil || plan.Op.Who != "api:viewer-user" || len(plan.Steps) == 0 || plan.Args["site"] != "c" || plan.Runbook.Name != "site-evacuation" {
			t.Errorf("plan of site-evacuation as the viewer: %d %s", a.status, a.body)
		}
		a = h.do("viewer", "POST", "/api/v1/runbooks/plan", map[string]any{"file": "dark.yaml", "runbook": darkRunbook, "params": map[string]string{"site": "c"}}, true)
		a.decode(t, &plan)
		if a.status != 200 || plan.Runbook.Name != "dark-drill" || plan.Steps[0].Action != "failover" {
			t.Errorf("plan of a posted runbook as the viewer: %d %s", a.status, a.body)
		}
		h.expect(h.do("viewer", "POST", "/api/v1/runbooks/nope/plan", nil, false), 404, "nope", "plan of an unknown runbook")
		h.expect(h.do("viewer", "POST", "/api/v1/runbooks/site-evacuation/plan", map[string]any{"params": map[string]string{"site": "x"}}, true), 400, "x", "plan for an unknown site")
		h.expect(h.do("operator", "POST", "/api/v1/runbooks/switchover/run", map[string]any{"params": map[string]string{"service": "web", "to": "a", "force": "true"}}, true),
			403, "runbook switchover (it declares a site dark or forces a move) needs the role admin", "an operator's forced switchover runbook")
		h.expect(h.do("operator", "POST", "/api/v1/runbooks/site-loss-drill/run", map[string]any{"params": map[string]string{"site": "c"}}, true),
			400, "--param service: required", "an operator's drill, missing its parameters")
	})
}

// darkRunbook declares a site dark: only an admin may run it, through the
// API, whatever its name says.
const darkRunbook = `name: dark-drill
params:
  - {name: site, type: site, required: true}
groups:
  - name: g
    steps:
      - {id: declare, action: failover, with: {site: "${site}", reason: drill}}
`

// TestAPIAbort asks, through the API, for the abort of an op that waits for
// a person: a dry run changes nothing, the request is recorded with its
// identity, and the op ends aborted. (Asking again is site.Store.Abort's
// test: here the coordinator ends the op at once.)
func TestAPIAbort(t *testing.T) {
	h := newAPIHarness(t)
	ctx := ctxFor(t, 90*time.Second)
	h.tc.bootstrapped(ctx)

	// site-evacuation waits for a person before it drains anything.
	a := h.untilNot409("operator", "/api/v1/runbooks/site-evacuation/run", map[string]any{"params": map[string]string{"site": "c"}})
	h.expect(a, 202, `"runbook": "site-evacuation"`, "the evacuation")
	var req site.OpRequest
	a.decode(t, &req)
	id := req.Op.ID
	waiting := h.openStream("/api/v1/ops/" + id + "/stream")
	for ev := range waiting.events(ctx) {
		var op site.Op
		if ev.name == "op" && json.Unmarshal([]byte(ev.data), &op) == nil && site.CurrentStep(&op) >= 0 &&
			op.Steps[site.CurrentStep(&op)].Status == site.StepRunning && op.Steps[site.CurrentStep(&op)].Name == "confirm" {
			break
		}
		if ev.name == "end" {
			t.Fatalf("op %s ended before it waited for a person: %s", id, ev.data)
		}
	}

	var res site.AbortResult
	a = h.do("operator", "POST", "/api/v1/ops/"+id+"/abort", map[string]any{"reason": "a test", "dry_run": true}, true)
	a.decode(t, &res)
	if a.status != 200 || res.Action != site.AbortWouldRequest || !res.DryRun || res.Who != "api:operator-user" || res.Op.AbortRequested != nil || res.Coordinator == "" {
		t.Fatalf("a dry-run abort: %d %s", a.status, a.body)
	}
	a = h.do("operator", "POST", "/api/v1/ops/"+id[:len(id)-1]+"/abort", map[string]any{"reason": "a test"}, true)
	a.decode(t, &res)
	if a.status != 200 || res.Action != site.AbortRequested || res.ID != id || res.Op.AbortRequested == nil || res.Op.AbortRequested.By != "api:operator-user" {
		t.Fatalf("the abort: %d %s", a.status, a.body)
	}
	for ev := range waiting.events(ctx) {
		if ev.name == "end" {
			if !strings.Contains(ev.data, string(site.OpAborted)) {
				t.Fatalf("op %s ended %s; want aborted", id, ev.data)
			}
			break
		}
	}
}

// untilNot409 posts until the answer is not 409 (the cluster is not ready
// for the operation yet), at most for 30s.
func (h *apiHarness) untilNot409(who, path string, body any) answer {
	h.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		a := h.do(who, "POST", path, body, true)
		if a.status != http.StatusConflict || time.Now().After(deadline) {
			return a
		}
		time.Sleep(200 * time.Millisecond) // the sites report every renewal; nothing to wait on from here
	}
}

// sse is a server-sent event stream being read.
type sse struct {
	t    *testing.T
	body io.ReadCloser
	r    *bufio.Reader
}

type sseEvent struct{ name, data string }

// openStream opens a stream as the viewer; it is closed when the test ends.
func (h *apiHarness) openStream(path string) *sse {
	h.t.Helper()
	s, _ := h.tc.etcd.Config.Site("b") // any site answers the same
	req, err := http.NewRequestWithContext(h.t.Context(), "GET", apiauth.BaseURL(s)+path, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+h.tokens["viewer"])
	client := &http.Client{Transport: h.plain.Transport} // no timeout: it streams
	resp, err := client.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		h.t.Fatalf("GET %s: %d %s %s", path, resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	h.t.Cleanup(func() { resp.Body.Close() })
	return &sse{t: h.t, body: resp.Body, r: bufio.NewReader(resp.Body)}
}

// events yields the stream's events until ctx ends (then the test fails)
// or the caller stops.
func (s *sse) events(ctx context.Context) func(func(sseEvent) bool) {
	return func(yield func(sseEvent) bool) {
		stop := context.AfterFunc(ctx, func() { s.body.Close() })
		defer stop()
		var ev sseEvent
		for {
			line, err := s.r.ReadString('\n')
			if err != nil {
				s.t.Fatalf("stream ended: %v", err)
			}
			line = strings.TrimRight(line, "\n")
			switch {
			case line == "":
				if ev.name != "" && !yield(ev) {
					return
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, "event: "):
				ev.name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				ev.data = strings.TrimPrefix(line, "data: ")
			}
		}
	}
}
