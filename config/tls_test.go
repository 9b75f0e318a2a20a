package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// testPKI is a CA and the PEM files of a certificate it signed for
// 127.0.0.1 and "redis.test", in a test's directory.
type testPKI struct {
	dir, caFile, certFile, keyFile string
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	dir := t.TempDir()
	p := &testPKI{dir: dir, caFile: filepath.Join(dir, "ca.pem"),
		certFile: filepath.Join(dir, "cert.pem"), keyFile: filepath.Join(dir, "key.pem")}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "redis.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		DNSNames: []string{"redis.test"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, leaf, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, p.caFile, "CERTIFICATE", caDER)
	writePEM(t, p.certFile, "CERTIFICATE", der)
	writePEM(t, p.keyFile, "EC PRIVATE KEY", keyDER)
	return p
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// handshake runs a TLS handshake between server and client settings over
// a pipe and returns the error of either side (in TLS 1.3 the client is
// done before the server has checked the client's certificate).
func handshake(server, client *tls.Config) error {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	a.SetDeadline(time.Now().Add(10 * time.Second))
	b.SetDeadline(time.Now().Add(10 * time.Second))
	done := make(chan error, 1)
	go func() { done <- tls.Server(a, server).Handshake(); a.Close() }()
	err := tls.Client(b, client).Handshake()
	b.Close()
	return errors.Join(err, <-done)
}

func TestTLSConfigs(t *testing.T) {
	pki := newTestPKI(t)
	listener := &Pool{Name: "alpha", TLS: ClientTLS{CertFile: pki.certFile, KeyFile: pki.keyFile}}
	serverSide, err := listener.ClientTLSConfig()
	if err != nil || serverSide == nil {
		t.Fatalf("ClientTLSConfig: %v, %v", serverSide, err)
	}
	ip := Server{Network: "tcp", Addr: "127.0.0.1:6379", Host: "127.0.0.1", Port: 6379}
	named := Server{Network: "tcp", Addr: "redis.test:6379", Host: "redis.test", Port: 6379}
	tests := []struct {
		name   string
		tls    ServerTLS
		server Server
		ok     bool
	}{
		{"CA file, IP host", ServerTLS{Enabled: true, CAFile: pki.caFile}, ip, true},
		{"CA file, named host", ServerTLS{Enabled: true, CAFile: pki.caFile}, named, true},
		{"server name", ServerTLS{Enabled: true, CAFile: pki.caFile, ServerName: "redis.test"}, ip, true},
		{"wrong server name", ServerTLS{Enabled: true, CAFile: pki.caFile, ServerName: "other.test"}, ip, false},
		{"system roots", ServerTLS{Enabled: true}, ip, false},
		{"insecure", ServerTLS{Enabled: true, Insecure: true}, ip, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &Pool{Name: "alpha", ServerTLS: tt.tls}
			roots, err := p.ServerRoots()
			if err != nil {
				t.Fatal(err)
			}
			tc := p.ServerTLSConfig(tt.server, roots)
			if tc.MinVersion != tls.VersionTLS12 {
				t.Errorf("MinVersion %x", tc.MinVersion)
			}
			if err := handshake(serverSide, tc); (err == nil) != tt.ok {
				t.Fatalf("handshake: %v, want success %t", err, tt.ok)
			}
		})
	}
	if tc := (&Pool{}).ServerTLSConfig(ip, nil); tc != nil {
		t.Errorf("without server_tls: %v, want nil", tc)
	}
	if tc, err := (&Pool{}).ClientTLSConfig(); tc != nil || err != nil {
		t.Errorf("plain listener: %v, %v; want nil", tc, err)
	}
}

func TestTLSClientCertificates(t *testing.T) {
	pki := newTestPKI(t)
	listener := &Pool{Name: "alpha", TLS: ClientTLS{CertFile: pki.certFile, KeyFile: pki.keyFile, ClientCAFile: pki.caFile}}
	serverSide, err := listener.ClientTLSConfig()
	if err != nil {
		t.Fatal(err)
	}
	roots, err := (&Pool{ServerTLS: ServerTLS{Enabled: true, CAFile: pki.caFile}}).ServerRoots()
	if err != nil {
		t.Fatal(err)
	}
	client := &tls.Config{RootCAs: roots, ServerName: "redis.test"}
	if err := handshake(serverSide, client); err == nil {
		t.Error("a client without a certificate was accepted")
	}
	cert, err := tls.LoadX509KeyPair(pki.certFile, pki.keyFile)
	if err != nil {
		t.Fatal(err)
	}
	client.Certificates = []tls.Certificate{cert}
	if err := handshake(serverSide, client); err != nil {
		t.Errorf("a client with a certificate the CA signed: %v", err)
	}
}

func TestTLSConfigErrors(t *testing.T) {
	pki := newTestPKI(t)
	missing := filepath.Join(pki.dir, "missing.pem")
	tests := []struct {
		name string
		load func() error
		key  string
	}{
		{"no cert file", func() error {
			_, err := (&Pool{Name: "a", TLS: ClientTLS{CertFile: missing, KeyFile: pki.keyFile}}).ClientTLSConfig()
			return err
		}, "tls_cert_file"},
		{"no key file", func() error {
			_, err := (&Pool{Name: "a", TLS: ClientTLS{CertFile: pki.certFile, KeyFile: missing}}).ClientTLSConfig()
			return err
		}, "tls_key_file"},
		{"key of another file", func() error {
			_, err := (&Pool{Name: "a", TLS: ClientTLS{CertFile: pki.certFile, KeyFile: pki.caFile}}).ClientTLSConfig()
			return err
		}, "tls_cert_file"},
		{"client CA file without PEM", func() error {
			_, err := (&Pool{Name: "a", TLS: ClientTLS{CertFile: pki.certFile, KeyFile: pki.keyFile,
				ClientCAFile: pki.keyFile}}).ClientTLSConfig()
			return err
		}, "tls_client_ca_file"},
		{"no server CA file", func() error {
			_, err := (&Pool{Name: "a", ServerTLS: ServerTLS{Enabled: true, CAFile: missing}}).ServerRoots()
			return err
		}, "server_tls_ca_file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var e *Error
			if err := tt.load(); !errors.As(err, &e) || e.Pool != "a" || e.Key != tt.key || e.Value == "" {
				t.Fatalf("got %v, want an *Error of pool a, key %s, naming the file", err, tt.key)
			}
		})
	}
}
