package sitetest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// PKI is a CA and one certificate per name, as PEM files in a test's
// temporary directory: each valid for 127.0.0.1 and localhost, as server
// and as client, like the members' certificates the lab writes. Issue
// adds more.
type PKI struct {
	CA        string
	Cert, Key map[string]string

	dir    string
	caCert *x509.Certificate
	caKey  *ecdsa.PrivateKey
	serial *int64
}

// NewPKI writes a new CA and a certificate for each name.
func NewPKI(t testing.TB, names ...string) PKI {
	t.Helper()
	dir := t.TempDir()
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	serial := int64(1)
	p := PKI{CA: filepath.Join(dir, "ca.pem"), Cert: map[string]string{}, Key: map[string]string{},
		dir: dir, caCert: caCert, caKey: caKey, serial: &serial}
	writePEM(t, p.CA, "CERTIFICATE", caDER)
	for _, name := range names {
		p.Issue(t, name, Cert{CommonName: "zdt site " + name, Server: true, Client: true})
	}
	return p
}

// Cert says what certificate Issue makes.
type Cert struct {
	CommonName string
	// Server and Client are its extended key usages.
	Server, Client bool
	// NotBefore and NotAfter default to an hour ago and a day ahead.
	NotBefore, NotAfter time.Time
}

// Issue writes a new key and a certificate signed by the CA as name.pem
// and name-key.pem, recorded in Cert and Key.
func (p PKI) Issue(t testing.TB, name string, c Cert) {
	t.Helper()
	now := time.Now()
	if c.NotBefore.IsZero() {
		c.NotBefore = now.Add(-time.Hour)
	}
	if c.NotAfter.IsZero() {
		c.NotAfter = now.Add(24 * time.Hour)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	*p.serial++
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(*p.serial), Subject: pkix.Name{CommonName: c.CommonName},
		NotBefore: c.NotBefore, NotAfter: c.NotAfter,
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature,
	}
	if c.Server {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageServerAuth)
	}
	if c.Client {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageClientAuth)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.caCert, key.Public(), p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	p.Cert[name], p.Key[name] = filepath.Join(p.dir, name+".pem"), filepath.Join(p.dir, name+"-key.pem")
	writePEM(t, p.Cert[name], "CERTIFICATE", der)
	writePEM(t, p.Key[name], "PRIVATE KEY", keyDER)
}

func writePEM(t testing.TB, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}
