package config

import (
	"encoding/hex"
	"fmt"
	"strings"
)

// API configures who may use the controllers' HTTP API (/api/v1 and the
// dashboard) and how it is secured.
type API struct {
	// CA is the CA (PEM) that signed the sites' API certificates and the
	// client certificates the API accepts; "" when the API has no TLS.
	// It defaults to etcd.tls.ca.
	CA string
	// Identities are the people and programs the API knows, each with one
	// role.
	Identities []Identity
}

// Role says what an identity may do. Each role may do everything the
// roles before it may.
type Role string

// The roles, from least to most.
const (
	// RoleViewer reads: status, ops, events, the dashboard.
	RoleViewer Role = "viewer"
	// RoleOperator also runs the planned operations: switchover, failback,
	// evacuation, runbooks, approvals, aborts, drills.
	RoleOperator Role = "operator"
	// RoleAdmin also does what can lose data or cut a site off: a forced
	// switchover, a declared failover (which fences the site), a fence
	// confirmation.
	RoleAdmin Role = "admin"
)

// Roles lists the roles from least to most.
func Roles() []Role { return []Role{RoleViewer, RoleOperator, RoleAdmin} }

// Allows reports whether r may do what need needs.
func (r Role) Allows(need Role) bool { return r.rank() >= need.rank() && need.rank() > 0 }

func (r Role) rank() int {
	switch r {
	case RoleViewer:
		return 1
	case RoleOperator:
		return 2
	case RoleAdmin:
		return 3
	}
	return 0
}

// Identity is one API user: a person or a program. It proves who it is by
// a client certificate whose common name is CertCN, or by a bearer token
// whose SHA-256 is TokenSHA256 (the token itself is not stored).
type Identity struct {
	Name        string
	Role        Role
	CertCN      string
	TokenSHA256 [32]byte
	// HasToken is set when TokenSHA256 holds a token's hash.
	HasToken bool
}

type fileAPI struct {
	CA         string         `yaml:"ca"`
	Identities []fileIdentity `yaml:"identities"`
}

type fileIdentity struct {
	Name        string `yaml:"name"`
	Role        string `yaml:"role"`
	CertCN      string `yaml:"cert_cn"`
	TokenSHA256 string `yaml:"token_sha256"`
}

func (f fileAPI) build(c *checker, etcd Etcd) API {
	a := API{}
	switch {
	case f.CA != "":
		a.CA = c.checkFile("api.ca", f.CA)
	case etcd.TLS != nil:
		a.CA = etcd.TLS.CA
	}
	names, cns, tokens := map[string]string{}, map[string]string{}, map[string]string{}
	paths := c.elementPaths("api.identities", len(f.Identities))
	for i, fi := range f.Identities {
		a.Identities = append(a.Identities, fi.build(c, paths[i], names, cns, tokens))
	}
	return a
}

func (f fileIdentity) build(c *checker, field string, names, cns, tokens map[string]string) Identity {
	id := Identity{Name: f.Name, Role: Role(f.Role), CertCN: f.CertCN}
	c.checkUniqueName(field+".name", f.Name, "identity", "a short name for the person or program, like alice or noc-wall", names)
	if id.Role.rank() == 0 {
		c.add(field+".role", "%q is not a role: want %s", f.Role, roleList())
	}
	switch {
	case (f.CertCN == "") == (f.TokenSHA256 == ""):
		c.add(field, "give exactly one of cert_cn (the common name of its client certificate) and token_sha256 (the SHA-256 of its bearer token, in hex: printf %%s TOKEN | sha256sum)")
	case f.CertCN != "":
		if prev := cns[f.CertCN]; prev != "" {
			c.add(field+".cert_cn", "cert_cn %q is also given at line %d: a certificate must name one identity", f.CertCN, c.line(prev))
		}
		cns[f.CertCN] = field + ".cert_cn"
	default:
		sum, err := hex.DecodeString(f.TokenSHA256)
		if err != nil || len(sum) != len(id.TokenSHA256) {
			c.add(field+".token_sha256", "want 64 hex digits, the SHA-256 of the token (printf %%s TOKEN | sha256sum), not the token itself")
			break
		}
		key := strings.ToLower(f.TokenSHA256)
		if prev := tokens[key]; prev != "" {
			c.add(field+".token_sha256", "the same token is also given at line %d: a token must name one identity", c.line(prev))
		}
		tokens[key] = field + ".token_sha256"
		copy(id.TokenSHA256[:], sum)
		id.HasToken = true
	}
	return id
}

func roleList() string {
	var s []string
	for _, r := range Roles() {
		s = append(s, string(r))
	}
	return strings.Join(s, ", ")
}

// Plaintext lists what the cluster would run without TLS: etcd over http,
// a site's API with no certificate. It is empty for a cluster secured
// throughout.
func (c *Cluster) Plaintext() []string {
	var out []string
	if c.Etcd.TLS == nil {
		out = append(out, fmt.Sprintf("etcd (%s)", strings.Join(c.Etcd.Endpoints, ", ")))
	}
	for _, s := range c.Sites {
		if s.APICert == "" {
			out = append(out, fmt.Sprintf("the API of site %s (http://%s)", s.Name, s.API))
		}
	}
	return out
}

// checkPlaintext refuses insecure_plaintext on a cluster with nothing in
// plaintext: the flag would be shown as a warning for nothing.
// A site's own api_cert needs a CA.
func (c *checker) checkPlaintext(cl *Cluster, fs []fileSite) {
	if cl.InsecurePlaintext && len(cl.Plaintext()) == 0 {
		c.add("insecure_plaintext", "set, but etcd and every site's API use TLS: remove it")
	}
	if cl.API.CA != "" {
		return
	}
	for _, s := range fs {
		if s.APICert != "" {
			c.add("api.ca", "required because site %s has an api_cert: the CA (PEM) that signed the API certificates and the client certificates (by default etcd.tls.ca)", s.Name)
			return
		}
	}
}
