package lab

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestPKICertificatesVerify(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	top := DefaultTopology()
	if err := writePKI(dir, top, time.Now()); err != nil {
		t.Fatal(err)
	}
	ca := readCert(t, filepath.Join(dir, certPath(caName)))
	if !ca.IsCA {
		t.Fatal("ca.pem is not a CA")
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	serials := map[string]string{ca.SerialNumber.String(): caName}

	verify := func(cert *x509.Certificate, name string, usage x509.ExtKeyUsage) error {
		_, err := cert.Verify(x509.VerifyOptions{Roots: roots, DNSName: name, KeyUsages: []x509.ExtKeyUsage{usage}})
		return err
	}
	for _, s := range top.Sites {
		t.Run(s.Name, func(t *testing.T) {
			cert := readCert(t, filepath.Join(dir, certPath(s.Name)))
			for _, name := range []string{s.IP.String(), "127.0.0.1", "localhost"} {
				for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
					if err := verify(cert, name, usage); err != nil {
						t.Errorf("%s for %s, usage %v: %v", certPath(s.Name), name, usage, err)
					}
				}
			}
			for _, other := range top.Sites {
				if other.Name != s.Name && verify(cert, other.IP.String(), x509.ExtKeyUsageServerAuth) == nil {
					t.Errorf("%s is valid for site %s's address %s", certPath(s.Name), other.Name, other.IP)
				}
			}
			checkKeyPair(t, dir, s.Name)
			if prev, dup := serials[cert.SerialNumber.String()]; dup {
				t.Errorf("%s has the serial of %s", s.Name, prev)
			}
			serials[cert.SerialNumber.String()] = s.Name
		})
	}

	client := readCert(t, filepath.Join(dir, certPath(clientName)))
	if _, err := client.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("client.pem for client auth: %v", err)
	}
	if _, err := client.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err == nil {
		t.Error("client.pem verifies for server auth; want client auth only")
	}
	checkKeyPair(t, dir, clientName)
	checkKeyPair(t, dir, caName)
	if got := client.NotAfter.Sub(client.NotBefore); got < 300*24*time.Hour {
		t.Errorf("client.pem is valid for %s; want about a year", got)
	}
}

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		t.Fatalf("%s holds no PEM certificate", path)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return cert
}

// checkKeyPair checks that name's key matches its certificate and that only
// its owner can read it.
func checkKeyPair(t *testing.T, dir, name string) {
	t.Helper()
	if _, err := tls.LoadX509KeyPair(filepath.Join(dir, certPath(name)), filepath.Join(dir, keyPath(name))); err != nil {
		t.Errorf("key pair %s: %v", name, err)
	}
	info, err := os.Stat(filepath.Join(dir, keyPath(name)))
	if err != nil {
		t.Fatal(err)
	}
	if perm := info.Mode().Perm(); perm != 0o600 {
		t.Errorf("%s has mode %v; want 0600", keyPath(name), perm)
	}
}

// TestPKIMutualTLS does a real handshake: a server with a site's member
// certificate that requires a client certificate, and the lab's client.
func TestPKIMutualTLS(t *testing.T) {
	t.Parallel()
	l, err := Create(t.TempDir(), Options{Binary: "unused"})
	if err != nil {
		t.Fatal(err)
	}
	serverCert, err := tls.LoadX509KeyPair(filepath.Join(l.Dir(), certPath("a")), filepath.Join(l.Dir(), keyPath("a")))
	if err != nil {
		t.Fatal(err)
	}
	clientTLS, err := l.ClientTLS()
	if err != nil {
		t.Fatal(err)
	}
	serverTLS := &tls.Config{
		Certificates: []tls.Certificate{serverCert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    clientTLS.RootCAs, // the same lab CA
		MinVersion:   tls.VersionTLS12,
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", serverTLS)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()

	// Two handshakes: the lab's client, then a client without a certificate.
	served := make(chan error, 2)
	go func() {
		for range 2 {
			served <- serveOnce(ln)
		}
	}()

	conn, err := tls.Dial("tcp", ln.Addr().String(), clientTLS) // verifies the IP SAN 127.0.0.1
	if err != nil {
		t.Fatalf("mutual TLS handshake: %v", err)
	}
	reply, err := io.ReadAll(conn)
	conn.Close()
	if err != nil || string(reply) != "zdt client" {
		t.Errorf("server saw client %q (%v); want %q", reply, err, "zdt client")
	}
	if err := <-served; err != nil {
		t.Errorf("server: %v", err)
	}

	anonymous := clientTLS.Clone()
	anonymous.Certificates = nil
	if conn, err := tls.Dial("tcp", ln.Addr().String(), anonymous); err == nil {
		_, err = io.ReadAll(conn) // TLS 1.3: the server's refusal comes after the handshake
		conn.Close()
		if err == nil {
			t.Error("a client without a certificate got through")
		}
	}
	if err := <-served; err == nil {
		t.Error("the server accepted a client without a certificate")
	}
}

// serveOnce accepts one connection, completes the handshake and answers
// with the client certificate's common name.
func serveOnce(ln net.Listener) error {
	conn, err := ln.Accept()
	if err != nil {
		return err
	}
	defer conn.Close()
	tc := conn.(*tls.Conn)
	if err := tc.Handshake(); err != nil {
		return err
	}
	peers := tc.ConnectionState().PeerCertificates
	if len(peers) == 0 {
		return errors.New("no client certificate")
	}
	_, err = io.WriteString(tc, peers[0].Subject.CommonName)
	return err
}
