package config

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
)

// tlsConfig adds the CA and client certificate of t to base, or to a new
// configuration that requires TLS 1.2 or later when base is nil. section
// is "redis.tls" or "nats.tls", for messages.
func (c Config) tlsConfig(section string, t TLSConfig, base *tls.Config) (*tls.Config, error) {
	out := &tls.Config{MinVersion: tls.VersionTLS12}
	if base != nil {
		out = base.Clone()
	}

	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, &Error{Origin: c.label(section + ".ca_file"), Reason: fmt.Sprintf(
				"read %s: %v", t.CAFile, unwrapPath(err))}
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, &Error{Origin: c.label(section + ".ca_file"), Reason: fmt.Sprintf(
				"%s holds no PEM certificate", t.CAFile)}
		}
		out.RootCAs = pool
	}

	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, &Error{Origin: c.label(section + ".cert_file"), Reason: fmt.Sprintf(
				"load client certificate %s with key %s: %v", t.CertFile, t.KeyFile, err)}
		}
		out.Certificates = []tls.Certificate{cert}
	}
	return out, nil
}
