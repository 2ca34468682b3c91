// Package apiauth says who is asking the controller's API, and whether
// they may: identities proven by a client certificate or a bearer token
// (config api.identities), and the roles viewer, operator and admin.
//
// A client certificate must chain to the API's CA, be valid now and be
// meant for client authentication; its common name names the identity. A
// bearer token is hashed with SHA-256 and looked up by its hash: the config
// holds hashes only. Refusals are errors carrying the HTTP status to
// answer: 401 when the caller is not known, 403 when the caller is known
// but its role does not allow what it asks.
package apiauth

import (
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/zdt-project/zdt/site/config"
)

// Identity is who made a request.
type Identity struct {
	Name string      `json:"name"`
	Role config.Role `json:"role"`
	// Via says how it was proven: "certificate" or "token".
	Via string `json:"via"`
}

// String names the identity for journals and events: "api:alice".
func (id Identity) String() string { return "api:" + id.Name }

// Error is a refusal with the HTTP status it answers.
type Error struct {
	Status int
	Msg    string
}

func (e *Error) Error() string { return e.Msg }

func refuse(status int, format string, args ...any) *Error {
	return &Error{Status: status, Msg: fmt.Sprintf(format, args...)}
}

// Authenticator knows the identities of one cluster config.
type Authenticator struct {
	tokens map[[32]byte]config.Identity
	certs  map[string]config.Identity
	roots  *x509.CertPool // nil: no CA, so no certificate is accepted
	now    func() time.Time
}

// New builds the authenticator of cfg, reading its API CA.
func New(cfg *config.Cluster) (*Authenticator, error) {
	a := &Authenticator{tokens: map[[32]byte]config.Identity{}, certs: map[string]config.Identity{}, now: time.Now}
	for _, id := range cfg.API.Identities {
		if id.HasToken {
			a.tokens[id.TokenSHA256] = id
		} else {
			a.certs[id.CertCN] = id
		}
	}
	if cfg.API.CA != "" {
		pool, err := readPool(cfg.API.CA)
		if err != nil {
			return nil, err
		}
		a.roots = pool
	}
	return a, nil
}

// SetClock makes the authenticator judge certificates' validity at now()
// (tests).
func (a *Authenticator) SetClock(now func() time.Time) { a.now = now }

func readPool(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("api CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("api CA %s: no PEM certificate in it", path)
	}
	return pool, nil
}

// Authenticate says who made r: by its bearer token if it has one, else by
// its client certificate. The error is an *Error with status 401.
func (a *Authenticator) Authenticate(r *http.Request) (Identity, error) {
	if h := r.Header.Get("Authorization"); h != "" {
		return a.token(h)
	}
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		return a.certificate(r.TLS.PeerCertificates)
	}
	if len(a.tokens)+len(a.certs) == 0 {
		return Identity{}, refuse(http.StatusUnauthorized, "no identities are configured (api.identities in the cluster config): the API answers no one")
	}
	return Identity{}, refuse(http.StatusUnauthorized, "who are you? send a bearer token (Authorization: Bearer TOKEN) or a client certificate")
}

func (a *Authenticator) token(header string) (Identity, error) {
	scheme, tok, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
		return Identity{}, refuse(http.StatusUnauthorized, "Authorization header: want \"Bearer TOKEN\"")
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(tok)))
	id, ok := a.tokens[sum]
	// The map lookup found it by its hash; compare again in constant time
	// so that a near miss takes as long as a hit.
	if !ok || subtle.ConstantTimeCompare(id.TokenSHA256[:], sum[:]) != 1 {
		return Identity{}, refuse(http.StatusUnauthorized, "unknown bearer token")
	}
	return Identity{Name: id.Name, Role: id.Role, Via: "token"}, nil
}

func (a *Authenticator) certificate(chain []*x509.Certificate) (Identity, error) {
	leaf := chain[0]
	if a.roots == nil {
		return Identity{}, refuse(http.StatusUnauthorized, "client certificate %q: the API has no CA (api.ca) to check it against", leaf.Subject.CommonName)
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	_, err := leaf.Verify(x509.VerifyOptions{
		Roots: a.roots, Intermediates: inter, CurrentTime: a.now(),
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	var invalid x509.CertificateInvalidError
	var unknown x509.UnknownAuthorityError
	switch {
	case errors.As(err, &invalid) && invalid.Reason == x509.Expired:
		return Identity{}, refuse(http.StatusUnauthorized, "client certificate %q is outside its validity (%s to %s)",
			leaf.Subject.CommonName, leaf.NotBefore.UTC().Format(time.RFC3339), leaf.NotAfter.UTC().Format(time.RFC3339))
	case errors.As(err, &unknown):
		return Identity{}, refuse(http.StatusUnauthorized, "client certificate %q is not signed by the API's CA", leaf.Subject.CommonName)
	case err != nil:
		return Identity{}, refuse(http.StatusUnauthorized, "client certificate %q: %v", leaf.Subject.CommonName, err)
	}
	id, ok := a.certs[leaf.Subject.CommonName]
	if !ok {
		return Identity{}, refuse(http.StatusUnauthorized, "client certificate %q names no identity (api.identities: cert_cn)", leaf.Subject.CommonName)
	}
	return Identity{Name: id.Name, Role: id.Role, Via: "certificate"}, nil
}

// Authorize refuses (403) an identity whose role does not allow need.
func Authorize(id Identity, need config.Role, what string) error {
	if id.Role.Allows(need) {
		return nil
	}
	return refuse(http.StatusForbidden, "%s needs the role %s; %s is %s", what, need, id.Name, id.Role)
}

// ServerTLS is the TLS config of a site's API listener: its certificate,
// and client certificates asked for but checked by Authenticate (so that a
// bad one gets a clear 401, not a failed handshake, and a bearer token
// works without one).
func ServerTLS(certFile, keyFile string) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("api certificate: %w", err)
	}
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequestClientCert,
		MinVersion:   tls.VersionTLS12,
	}, nil
}

// ClientTLS is the TLS config of a client of the API: it trusts the API's
// CA and presents the certificate in certFile and keyFile, if given.
func ClientTLS(caFile, certFile, keyFile string) (*tls.Config, error) {
	pool, err := readPool(caFile)
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// BaseURL is the URL of a site's API listener: https when the site has an
// API certificate, http otherwise (insecure_plaintext).
func BaseURL(s config.Site) string {
	if s.APICert != "" {
		return "https://" + s.API
	}
	return "http://" + s.API
}

// ClusterTLS is the TLS config with which a client reaches the sites' APIs:
// it trusts the API's CA; nil when the API has none.
func ClusterTLS(cfg *config.Cluster) (*tls.Config, error) {
	if cfg.API.CA == "" {
		return nil, nil
	}
	return ClientTLS(cfg.API.CA, "", "")
}
