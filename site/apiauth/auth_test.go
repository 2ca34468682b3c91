package apiauth

import (
	"crypto/sha256"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/zdt-project/zdt/site/config"
	"github.com/zdt-project/zdt/site/sitetest"
)

// server serves over real TLS, with the site's certificate: /viewer,
// /operator and /admin answer the caller's identity as JSON when its role
// allows, or the refusal with its status.
func server(t *testing.T, pki sitetest.PKI, auth *Authenticator) string {
	t.Helper()
	tlsCfg, err := ServerTLS(pki.Cert["a"], pki.Key["a"])
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	for _, role := range config.Roles() {
		mux.HandleFunc("/"+string(role), func(w http.ResponseWriter, r *http.Request) {
			id, err := auth.Authenticate(r)
			if err == nil {
				err = Authorize(id, role, "GET /"+string(role))
			}
			var e *Error
			if errors.As(err, &e) {
				w.WriteHeader(e.Status)
				_, _ = io.WriteString(w, e.Msg)
				return
			}
			_ = json.NewEncoder(w).Encode(id)
		})
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(tls.NewListener(ln, tlsCfg)) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "https://" + ln.Addr().String()
}

func TestAuthenticate(t *testing.T) {
	pki := sitetest.NewPKI(t, "a")
	pki.Issue(t, "noc", sitetest.Cert{CommonName: "noc wall", Client: true})
	pki.Issue(t, "root", sitetest.Cert{CommonName: "root", Client: true})
	pki.Issue(t, "expired", sitetest.Cert{CommonName: "root", Client: true,
		NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour)})
	pki.Issue(t, "stranger", sitetest.Cert{CommonName: "stranger", Client: true})
	pki.Issue(t, "server-only", sitetest.Cert{CommonName: "root", Server: true})
	other := sitetest.NewPKI(t)
	other.Issue(t, "forged", sitetest.Cert{CommonName: "root", Client: true})

	token := func(s string) [32]byte { return sha256.Sum256([]byte(s)) }
	cfg := &config.Cluster{API: config.API{CA: pki.CA, Identities: []config.Identity{
		{Name: "noc", Role: config.RoleViewer, CertCN: "noc wall"},
		{Name: "root", Role: config.RoleAdmin, CertCN: "root"},
		{Name: "alice", Role: config.RoleOperator, TokenSHA256: token("alice-token"), HasToken: true},
		{Name: "bob", Role: config.RoleViewer, TokenSHA256: token("bob-token"), HasToken: true},
	}}}
	auth, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	base := server(t, pki, auth)

	for _, tc := range []struct {
		name   string
		cert   string // a certificate of pki, "forged" (of other), or none
		header string // Authorization
		path   string
		status int
		want   string // in the body
	}{
		{"unauthenticated", "", "", "/viewer", 401, "who are you? send a bearer token"},
		{"unknown token", "", "Bearer nope", "/viewer", 401, "unknown bearer token"},
		{"not a bearer", "", "Basic YWxpY2U6eA==", "/viewer", 401, `want "Bearer TOKEN"`},
		{"empty bearer", "", "Bearer ", "/viewer", 401, `want "Bearer TOKEN"`},
		{"viewer token reads", "", "Bearer bob-token", "/viewer", 200, `"name":"bob","role":"viewer","via":"token"`},
		{"viewer token may not operate", "", "Bearer bob-token", "/operator", 403, "GET /operator needs the role operator; bob is viewer"},
		{"operator token operates", "", "bearer alice-token", "/operator", 200, `"name":"alice","role":"operator"`},
		{"operator token may not administer", "", "Bearer alice-token", "/admin", 403, "needs the role admin; alice is operator"},
		{"viewer certificate", "noc", "", "/viewer", 200, `"name":"noc","role":"viewer","via":"certificate"`},
		{"viewer certificate may not operate", "noc", "", "/operator", 403, "noc is viewer"},
		{"admin certificate", "root", "", "/admin", 200, `"name":"root","role":"admin"`},
		{"expired certificate", "expired", "", "/viewer", 401, `client certificate "root" is outside its validity`},
		{"wrong CA", "forged", "", "/viewer", 401, `client certificate "root" is not signed by the API's CA`},
		{"certificate of no identity", "stranger", "", "/viewer", 401, `client certificate "stranger" names no identity`},
		{"server certificate as client", "server-only", "", "/viewer", 401, `client certificate "root"`},
		{"token wins over certificate", "root", "Bearer bob-token", "/admin", 403, "bob is viewer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			certFile, keyFile := "", ""
			switch tc.cert {
			case "":
			case "forged":
				certFile, keyFile = other.Cert["forged"], other.Key["forged"]
			default:
				certFile, keyFile = pki.Cert[tc.cert], pki.Key[tc.cert]
			}
			tlsCfg, err := ClientTLS(pki.CA, certFile, keyFile)
			if err != nil {
				t.Fatal(err)
			}
			client := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsCfg}, Timeout: 5 * time.Second}
			defer client.CloseIdleConnections()
			req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, base+tc.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			if tc.header != "" {
				req.Header.Set("Authorization", tc.header)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatalf("request: %v", err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status || !strings.Contains(string(body), tc.want) {
				t.Errorf("%s: %d %s; want %d with %q", tc.path, resp.StatusCode, body, tc.status, tc.want)
			}
		})
	}
}

func TestNoIdentities(t *testing.T) {
	auth, err := New(&config.Cluster{})
	if err != nil {
		t.Fatal(err)
	}
	r, _ := http.NewRequest(http.MethodGet, "/api/v1/status", nil)
	_, err = auth.Authenticate(r)
	var e *Error
	if !errors.As(err, &e) || e.Status != http.StatusUnauthorized || !strings.Contains(e.Msg, "no identities are configured") {
		t.Errorf("Authenticate with no identities: %v; want 401 saying none are configured", err)
	}
}

func TestRoles(t *testing.T) {
	for _, tc := range []struct {
		have, need config.Role
		ok         bool
	}{
		{config.RoleViewer, config.RoleViewer, true},
		{config.RoleViewer, config.RoleOperator, false},
		{config.RoleOperator, config.RoleViewer, true},
		{config.RoleOperator, config.RoleAdmin, false},
		{config.RoleAdmin, config.RoleOperator, true},
		{"", config.RoleViewer, false},
		{config.RoleAdmin, "", false},
	} {
		if got := tc.have.Allows(tc.need); got != tc.ok {
			t.Errorf("%q.Allows(%q) = %v; want %v", tc.have, tc.need, got, tc.ok)
		}
	}
}
