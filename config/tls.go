package config

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
)

// The TLS settings a pool's keys describe, built once for the proxy and
// for every tool that connects as the proxy does (the reshard command).
// They read the files the keys name; an error is an *Error naming pool,
// key and file.

// ClientTLSConfig loads the listener's certificate (tls_cert_file,
// tls_key_file) and, with tls_client_ca_file, the CAs that must sign
// client certificates. It returns nil for a plain listener.
func (p *Pool) ClientTLSConfig() (*tls.Config, error) {
	c := p.TLS
	if !c.Enabled() {
		return nil, nil
	}
	certPEM, err := readPEM(p.Name, "tls_cert_file", c.CertFile)
	if err != nil {
		return nil, err
	}
	keyPEM, err := readPEM(p.Name, "tls_key_file", c.KeyFile)
	if err != nil {
		return nil, err
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, &Error{Pool: p.Name, Key: "tls_cert_file", Value: c.CertFile,
			Err: fmt.Errorf("%s with tls_key_file %s: %w", c.CertFile, c.KeyFile, err)}
	}
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if c.ClientCAFile != "" {
		cas, err := loadCAs(p.Name, "tls_client_ca_file", c.ClientCAFile)
		if err != nil {
			return nil, err
		}
		tc.ClientCAs = cas
		tc.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return tc, nil
}

// ServerRoots loads server_tls_ca_file, read once for all of the pool's
// servers; nil means the system's roots.
func (p *Pool) ServerRoots() (*x509.CertPool, error) {
	if !p.ServerTLS.Enabled || p.ServerTLS.CAFile == "" {
		return nil, nil
	}
	return loadCAs(p.Name, "server_tls_ca_file", p.ServerTLS.CAFile)
}

// ServerTLSConfig returns the TLS settings for connections to server s,
// with roots from ServerRoots, or nil without server_tls. The name
// verified is server_tls_server_name, else the server's host.
func (p *Pool) ServerTLSConfig(s Server, roots *x509.CertPool) *tls.Config {
	st := p.ServerTLS
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
		return nil, &Error{Pool: pool, Key: key, Value: file,
			Err: fmt.Errorf("%s: no PEM certificate in the file", file)}
	}
	return cas, nil
}

// readPEM reads a file named by a pool key.
func readPEM(pool, key, file string) ([]byte, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, &Error{Pool: pool, Key: key, Value: file, Err: err}
	}
	return data, nil
}
