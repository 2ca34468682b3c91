package lab

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/zdt-project/zdt/site/apiauth"
)

// The lab's API identities: a bearer token for each role in
// DIR/tokens/<role> (the config holds their SHA-256 only), and the
// client certificate (pki/client.pem, common name "zdt client"), which is
// the admin.
const tokensDirName = "tokens"

// TokenRoles are the roles the lab writes a token for, least first.
var TokenRoles = []string{"viewer", "operator", "admin"}

// tokenPath is relative to the lab directory.
func tokenPath(role string) string { return filepath.Join(tokensDirName, role) }

// writeTokens replaces DIR/tokens with a new random token per role and
// returns their SHA-256 in hex, by role.
func writeTokens(dir string) (map[string]string, error) {
	d := filepath.Join(dir, tokensDirName)
	if err := os.RemoveAll(d); err != nil {
		return nil, fmt.Errorf("remove the old tokens: %w", err)
	}
	if err := os.Mkdir(d, 0o700); err != nil {
		return nil, fmt.Errorf("create the tokens directory: %w", err)
	}
	sums := map[string]string{}
	for _, role := range TokenRoles {
		raw := make([]byte, 24)
		_, _ = rand.Read(raw) // crypto/rand.Read never fails
		token := "zdt-" + role + "-" + hex.EncodeToString(raw)
		if err := os.WriteFile(filepath.Join(dir, tokenPath(role)), []byte(token+"\n"), 0o600); err != nil {
			return nil, fmt.Errorf("write the %s token: %w", role, err)
		}
		sum := sha256.Sum256([]byte(token))
		sums[role] = hex.EncodeToString(sum[:])
	}
	return sums, nil
}

// Token is the lab's bearer token for role (viewer, operator, admin).
func (l *Lab) Token(role string) (string, error) {
	data, err := os.ReadFile(filepath.Join(l.dir, tokenPath(role)))
	if err != nil {
		return "", fmt.Errorf("the lab's %s token: %w", role, err)
	}
	return strings.TrimSpace(string(data)), nil
}

// APIClient is an HTTPS client of the sites' APIs that trusts the lab's
// CA; with cert, it presents the lab's client certificate (the admin).
func (l *Lab) APIClient(cert bool) (*http.Client, error) {
	certFile, keyFile := "", ""
	if cert {
		certFile, keyFile = filepath.Join(l.dir, certPath(clientName)), filepath.Join(l.dir, keyPath(clientName))
	}
	tlsCfg, err := apiauth.ClientTLS(filepath.Join(l.dir, certPath(caName)), certFile, keyFile)
	if err != nil {
		return nil, err
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: tlsCfg}}, nil
}

// APIURL is the base URL of a site's API.
func (l *Lab) APIURL(siteName string) string {
	for _, s := range l.sites {
		if s.Name == siteName {
			return "https://" + s.API
		}
	}
	return ""
}

// CAPath is the lab's CA certificate: the sites' APIs and etcd members
// present certificates it signed.
func (l *Lab) CAPath() string { return filepath.Join(l.dir, certPath(caName)) }
