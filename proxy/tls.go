package proxy

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/shardproxy/shardproxy/config"
)

// tlsHandshakeTimeout bounds a client's TLS handshake, so a client that
// connects and sends nothing does not hold a goroutine mid-handshake.
const tlsHandshakeTimeout = 10 * time.Second

// clientTLS loads the listener's certificate and, with tls_client_ca_file,
// the CAs that must sign client certificates. It returns nil for a plain
// listener.
func clientTLS(cfg *config.Pool) (*tls.Config, error) {
	c := cfg.TLS
	if !c.Enabled() {
		return nil, nil
	}
	certPEM, err := readPEM(cfg.Name, "tls_cert_file", c.CertFile)
	if err != nil {
		return nil, err
	}
	keyPEM, err := readPEM(cfg.Name, "tls_key_file", c.KeyFile)
	if err != nil {
		return nil, err
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, &config.Error{Pool: cfg.Name, Key: "tls_cert_file", Value: c.CertFile,
			Err: fmt.Errorf("%s with tls_key_file %s: %w", c.CertFile, c.KeyFile, err)}
	}
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if c.ClientCAFile != "" {
		cas, err := loadCAs(cfg.Name, "tls_client_ca_file", c.ClientCAFile)
		if err != nil {
			return nil, err
		}
		tc.ClientCAs = cas
		tc.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return tc, nil
}

// serverRoots loads server_tls_ca_file; nil means the system's roots.
func serverRoots(cfg *config.Pool) (*x509.CertPool, error) {
	if !cfg.ServerTLS.Enabled || cfg.ServerTLS.CAFile == "" {
		return nil, nil
	}
	return loadCAs(cfg.Name, "server_tls_ca_file", cfg.ServerTLS.CAFile)
}

// serverTLS returns the TLS settings for connections to server s, or nil
// without server_tls. The name verified is server_tls_server_name, else
// the server's host.
func serverTLS(cfg *config.Pool, s config.Server, roots *x509.CertPool) *tls.Config {
	st := cfg.ServerTLS
	if !st.Enabled {
		return nil
	}
	name := st.ServerName
	if name == "" {
		name = s.Host
	}
	return &tls.Config{
		RootCAs:            roots,
		ServerName:         name,
		InsecureSkipVerify: st.Insecure,
		MinVersion:         tls.VersionTLS12,
	}
}

// loadCAs reads a PEM file of CA certificates.
func loadCAs(pool, key, file string) (*x509.CertPool, error) {
	data, err := readPEM(pool, key, file)
	if err != nil {
		return nil, err
	}
	cas := x509.NewCertPool()
	if !cas.AppendCertsFromPEM(data) {
		return nil, &config.Error{Pool: pool, Key: key, Value: file,
			Err: fmt.Errorf("%s: no PEM certificate in the file", file)}
	}
	return cas, nil
}

// readPEM reads a file named by a pool key; the error names pool, key and
// file.
func readPEM(pool, key, file string) ([]byte, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, &config.Error{Pool: pool, Key: key, Value: file, Err: err}
	}
	return data, nil
}

// tlsHandshake completes the TLS handshake of a client connection within
// tlsHandshakeTimeout; a plain connection needs none.
func tlsHandshake(nc net.Conn) error {
	tc, ok := nc.(*tls.Conn)
	if !ok {
		return nil
	}
	tc.SetDeadline(time.Now().Add(tlsHandshakeTimeout))
	if err := tc.Handshake(); err != nil {
		return err
	}
	return tc.SetDeadline(time.Time{})
}
