package config

import (
	"crypto/sha256"
	"regexp"
	"strings"
	"testing"
)

const tokenHash = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08" // sha256("test")

func TestAPIIdentities(t *testing.T) {
	data := baseYAML + `api:
  identities:
    - {name: alice, role: operator, token_sha256: ` + strings.ToUpper(tokenHash) + `}
    - {name: noc-wall, role: viewer, cert_cn: "NOC wall"}
    - {name: root, role: admin, cert_cn: "zdt client"}
`
	_, path := writeConfig(t, data)
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if c.API.CA != c.Etcd.TLS.CA {
		t.Errorf("api CA %q; want etcd's %q", c.API.CA, c.Etcd.TLS.CA)
	}
	want := sha256.Sum256([]byte("test"))
	ids := c.API.Identities
	if len(ids) != 3 || ids[0].Name != "alice" || ids[0].Role != RoleOperator || !ids[0].HasToken || ids[0].TokenSHA256 != want ||
		ids[1].CertCN != "NOC wall" || ids[1].HasToken || ids[2].Role != RoleAdmin {
		t.Errorf("identities %+v", ids)
	}
	for _, s := range c.Sites {
		if s.APICert != s.Etcd.Cert || s.APIKey != s.Etcd.Key || s.APICert == "" {
			t.Errorf("site %s API cert %q key %q; want the member's %q %q", s.Name, s.APICert, s.APIKey, s.Etcd.Cert, s.Etcd.Key)
		}
	}
	if p := c.Plaintext(); len(p) != 0 {
		t.Errorf("plaintext %q; want none", p)
	}
}

func TestBadAPI(t *testing.T) {
	for _, tc := range []struct {
		name, api string
		want      []string
	}{
		{"no role", "    - {name: a, cert_cn: x}\n", []string{
			`zdt.yaml:52: api.identities[0].role: "" is not a role: want viewer, operator, admin`}},
		{"bad role", "    - {name: a, role: root, cert_cn: x}\n", []string{
			`zdt.yaml:52: api.identities[0].role: "root" is not a role: want viewer, operator, admin`}},
		{"neither proof", "    - {name: a, role: admin}\n", []string{
			`zdt.yaml:52: api.identities[0]: give exactly one of cert_cn (the common name of its client certificate) and token_sha256 (the SHA-256 of its bearer token, in hex: printf %s TOKEN | sha256sum)`}},
		{"both proofs", "    - {name: a, role: admin, cert_cn: x, token_sha256: " + tokenHash + "}\n", []string{
			`zdt.yaml:52: api.identities[0]: give exactly one of cert_cn (the common name of its client certificate) and token_sha256 (the SHA-256 of its bearer token, in hex: printf %s TOKEN | sha256sum)`}},
		{"token not a hash", "    - {name: a, role: admin, token_sha256: s3cret}\n", []string{
			`zdt.yaml:52: api.identities[0].token_sha256: want 64 hex digits, the SHA-256 of the token (printf %s TOKEN | sha256sum), not the token itself`}},
		{"duplicate name", "    - {name: a, role: admin, cert_cn: x}\n    - {name: a, role: viewer, cert_cn: y}\n", []string{
			`zdt.yaml:53: api.identities[1].name: duplicate identity "a" (also at line 52)`}},
		{"duplicate cn", "    - {name: a, role: admin, cert_cn: x}\n    - {name: b, role: viewer, cert_cn: x}\n", []string{
			`zdt.yaml:53: api.identities[1].cert_cn: cert_cn "x" is also given at line 52: a certificate must name one identity`}},
		{"duplicate token", "    - {name: a, role: admin, token_sha256: " + tokenHash + "}\n    - {name: b, role: viewer, token_sha256: " + strings.ToUpper(tokenHash) + "}\n", []string{
			`zdt.yaml:53: api.identities[1].token_sha256: the same token is also given at line 52: a token must name one identity`}},
		{"bad name", "    - {name: Alice, role: admin, cert_cn: x}\n", []string{
			`zdt.yaml:52: api.identities[0].name: "Alice" is not a valid name: ` + nameRuleMsg}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkProblems(t, baseYAML+"api:\n  identities:\n"+tc.api, tc.want...)
		})
	}
}

func TestInsecurePlaintext(t *testing.T) {
	// Secured throughout: the flag is a mistake.
	checkProblems(t, baseYAML+"insecure_plaintext: true\n",
		`zdt.yaml:50: insecure_plaintext: set, but etcd and every site's API use TLS: remove it`)

	// An api_cert of its own needs a CA when etcd has none.
	plain := strings.NewReplacer("https://", "http://", "  tls:\n    ca: pki/ca.pem\n    cert: pki/client.pem\n    key: pki/client-key.pem\n", "").Replace(baseYAML)
	plain = regexp.MustCompile(`(?m)^      (cert|key): .*\n`).ReplaceAllString(plain, "")
	_, path := writeConfig(t, plain+"insecure_plaintext: true\n")
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"etcd (http://127.0.0.11:2379, http://127.0.0.12:2379, http://127.0.0.13:2379)",
		"the API of site a (http://127.0.0.11:7480)", "the API of site b (http://127.0.0.12:7480)", "the API of site c (http://127.0.0.13:7480)"}
	if got := c.Plaintext(); strings.Join(got, "|") != strings.Join(want, "|") || !c.InsecurePlaintext {
		t.Errorf("plaintext %q (insecure %v); want %q", got, c.InsecurePlaintext, want)
	}
	withCert := strings.Replace(plain, "    api: 127.0.0.11:7480\n", "    api: 127.0.0.11:7480\n    api_cert: pki/a.pem\n    api_key: pki/a-key.pem\n", 1)
	checkProblems(t, withCert,
		`zdt.yaml:1: api.ca: required because site a has an api_cert: the CA (PEM) that signed the API certificates and the client certificates (by default etcd.tls.ca)`)
}
