package lab

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// The lab's PKI lives in DIR/pki: ca.pem and ca-key.pem, <site>.pem and
// <site>-key.pem for every site's etcd member (server and peer, both ways),
// client.pem and client-key.pem for the controllers and the CLI.
const (
	pkiDir     = "pki"
	caName     = "ca"
	clientName = "client"
	// certValidity is long enough that a lab never expires while in use.
	certValidity = 365 * 24 * time.Hour
)

// certPath and keyPath are relative to the lab directory, as the config
// file names them.
func certPath(name string) string { return filepath.Join(pkiDir, name+".pem") }
func keyPath(name string) string  { return filepath.Join(pkiDir, name+"-key.pem") }

// issuer is a CA that can sign leaf certificates.
type issuer struct {
	cert *x509.Certificate
	key  crypto.Signer
}

// writePKI replaces DIR/pki with a new CA, a member certificate for every
// site and one client certificate.
func writePKI(dir string, t Topology, now time.Time) error {
	pki := filepath.Join(dir, pkiDir)
	if err := os.RemoveAll(pki); err != nil {
		return fmt.Errorf("remove the old PKI: %w", err)
	}
	if err := os.MkdirAll(pki, 0o755); err != nil {
		return fmt.Errorf("create the PKI directory: %w", err)
	}
	ca, err := newCA(now)
	if err != nil {
		return err
	}
	if err := writeKeyPair(dir, caName, ca.cert.Raw, ca.key); err != nil {
		return err
	}
	for _, s := range t.Sites {
		tmpl := &x509.Certificate{
			Subject:     pkix.Name{Organization: []string{"zdt lab"}, CommonName: "zdt site " + s.Name},
			IPAddresses: []net.IP{s.IP.AsSlice(), net.IPv4(127, 0, 0, 1)},
			DNSNames:    []string{"localhost"},
			// etcd members present the same certificate as server (to clients
			// and peers) and as client (to peers).
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		}
		if err := ca.issue(dir, s.Name, tmpl, now); err != nil {
			return err
		}
	}
	client := &x509.Certificate{
		Subject:     pkix.Name{Organization: []string{"zdt lab"}, CommonName: "zdt client"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	return ca.issue(dir, clientName, client, now)
}

func newCA(now time.Time) (*issuer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate the CA key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{"zdt lab"}, CommonName: "zdt lab CA"},
		NotBefore:             now.Add(-time.Hour), // tolerate a little clock skew
		NotAfter:              now.Add(certValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("create the CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parse the new CA certificate: %w", err)
	}
	return &issuer{cert: cert, key: key}, nil
}

// issue signs a new key for tmpl (which sets the subject, names and
// extended key usages) and writes both as name.pem and name-key.pem.
func (ca *issuer) issue(dir, name string, tmpl *x509.Certificate, now time.Time) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("generate the key of %s: %w", name, err)
	}
	serial, err := randomSerial()
	if err != nil {
		return err
	}
	tmpl.SerialNumber = serial
	tmpl.NotBefore = now.Add(-time.Hour)
	tmpl.NotAfter = now.Add(certValidity)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	tmpl.BasicConstraintsValid = true
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		return fmt.Errorf("create the certificate of %s: %w", name, err)
	}
	return writeKeyPair(dir, name, der, key)
}

func randomSerial() (*big.Int, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("draw a certificate serial: %w", err)
	}
	return serial, nil
}

// writeKeyPair writes the certificate (0644) and its private key (0600).
func writeKeyPair(dir, name string, certDER []byte, key crypto.Signer) error {
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("encode the key of %s: %w", name, err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: certDER})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	if err := os.WriteFile(filepath.Join(dir, keyPath(name)), keyPEM, 0o600); err != nil {
		return fmt.Errorf("write the key of %s: %w", name, err)
	}
	if err := os.WriteFile(filepath.Join(dir, certPath(name)), certPEM, 0o644); err != nil {
		return fmt.Errorf("write the certificate of %s: %w", name, err)
	}
	return nil
}
