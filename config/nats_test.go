package config

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/stretchr/testify/require"
)

// startNATS starts a NATS server with JetStream on a free loopback port,
// with the authentication and TLS of opts, and stops it when the test ends.
func startNATS(t *testing.T, opts *server.Options) string {
	t.Helper()
	opts.Host, opts.Port = "127.0.0.1", server.RANDOM_PORT
	opts.JetStream, opts.StoreDir = true, t.TempDir()
	opts.NoLog, opts.NoSigs = true, true
	srv, err := server.NewServer(opts)
	require.NoError(t, err)
	go srv.Start()
	require.True(t, srv.ReadyForConnections(waitTimeout), "nats server did not start")
	t.Cleanup(func() {
		srv.Shutdown()
		srv.WaitForShutdown()
	})
	return srv.ClientURL()
}

func TestOpenNATSAuthentication(t *testing.T) {
	t.Run("UserAndPassword", func(t *testing.T) {
		url := startNATS(t, &server.Options{Username: "app", Password: marker})
		cfg := load(t, "", map[string]string{"NATS_URL": url, "NATS_USER": "app", "NATS_PASSWORD": marker})
		b := openBroker(t, cfg)
		require.Equal(t, "nats", b.Adapter.Name())
		require.Equal(t, "DEADLETTER_DLQ", b.DLQName)
		require.Contains(t, b.InspectHint, "stream view DEADLETTER_DLQ")

		cfg.NATS.Password = "wrong-" + marker
		_, err := Open(context.Background(), cfg, discard)
		require.ErrorContains(t, err, "Authorization Violation")
		requireNoMarker(t, err.Error(), "authentication error")
	})

	t.Run("PasswordInURL", func(t *testing.T) {
		url := startNATS(t, &server.Options{Username: "app", Password: marker})
		withPassword := strings.Replace(url, "nats://", "nats://app:"+marker+"@", 1)
		b := openBroker(t, load(t, "", map[string]string{"NATS_URL": withPassword}))
		requireNoMarker(t, b.Describe(), "Describe")
		requireNoMarker(t, b.InspectHint, "inspect hint")
		require.Contains(t, b.Describe(), "app:xxxxx@")
	})

	t.Run("Token", func(t *testing.T) {
		url := startNATS(t, &server.Options{Authorization: marker})
		openBroker(t, load(t, "", map[string]string{"NATS_URL": url, "NATS_TOKEN": marker}))

		_, err := Open(context.Background(), load(t, "", map[string]string{"NATS_URL": url}), discard)
		require.ErrorContains(t, err, "Authorization Violation", "no token, no connection")
	})
}

func TestOpenNATSTLS(t *testing.T) {
	pki := newTestPKI(t)
	serverTLS := &tls.Config{
		Certificates: []tls.Certificate{pki.serverCert},
		ClientCAs:    pki.pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   tls.VersionTLS12,
	}
	url := startNATS(t, &server.Options{TLSConfig: serverTLS, TLS: true, TLSVerify: true, TLSTimeout: 2})
	url = strings.Replace(url, "nats://", "tls://", 1)

	t.Run("WithCAAndClientCertificate", func(t *testing.T) {
		cfg := load(t, "", map[string]string{"NATS_URL": url, "NATS_CA": pki.caFile,
			"NATS_CERT": pki.clientCertFile, "NATS_KEY": pki.clientKeyFile})
		b := openBroker(t, cfg)
		require.Equal(t, "nats", b.Adapter.Name())
	})

	t.Run("RejectsUnknownCA", func(t *testing.T) {
		cfg := load(t, "", map[string]string{"NATS_URL": url,
			"NATS_CERT": pki.clientCertFile, "NATS_KEY": pki.clientKeyFile})
		_, err := Open(context.Background(), cfg, discard)
		require.ErrorContains(t, err, "certificate signed by unknown authority")
	})

	t.Run("RejectsFileWithoutPEM", func(t *testing.T) {
		cfg := load(t, "", map[string]string{"NATS_URL": url, "NATS_CA": pki.clientKeyFile + ".txt"})
		_, err := Open(context.Background(), cfg, discard)
		require.EqualError(t, err, "config: NATS_CA: "+pki.clientKeyFile+".txt holds no PEM certificate")
	})
}

// testPKI is a CA with a certificate for 127.0.0.1 and a client
// certificate, written to PEM files.
type testPKI struct {
	pool                                  *x509.CertPool
	serverCert                            tls.Certificate
	caFile, clientCertFile, clientKeyFile string
}

func newTestPKI(t *testing.T) testPKI {
	t.Helper()
	dir := t.TempDir()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	caTemplate := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "deadletter test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTemplate, caTemplate, &caKey.PublicKey, caKey)
	require.NoError(t, err)
	ca, err := x509.ParseCertificate(caDER)
	require.NoError(t, err)

	issue := func(serial int64, usage x509.ExtKeyUsage) (certPEM, keyPEM []byte) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		require.NoError(t, err)
		template := &x509.Certificate{
			SerialNumber: big.NewInt(serial),
			Subject:      pkix.Name{CommonName: "127.0.0.1"},
			IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
			NotBefore:    time.Now().Add(-time.Hour),
			NotAfter:     time.Now().Add(time.Hour),
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  []x509.ExtKeyUsage{usage},
		}
		der, err := x509.CreateCertificate(rand.Reader, template, ca, &key.PublicKey, caKey)
		require.NoError(t, err)
		keyDER, err := x509.MarshalECPrivateKey(key)
		require.NoError(t, err)
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
			pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	}

	serverCertPEM, serverKeyPEM := issue(2, x509.ExtKeyUsageServerAuth)
	serverCert, err := tls.X509KeyPair(serverCertPEM, serverKeyPEM)
	require.NoError(t, err)
	clientCertPEM, clientKeyPEM := issue(3, x509.ExtKeyUsageClientAuth)

	pki := testPKI{
		pool:           x509.NewCertPool(),
		serverCert:     serverCert,
		caFile:         filepath.Join(dir, "ca.pem"),
		clientCertFile: filepath.Join(dir, "client.pem"),
		clientKeyFile:  filepath.Join(dir, "client-key.pem"),
	}
	pki.pool.AddCert(ca)
	write := func(path string, data []byte) { require.NoError(t, os.WriteFile(path, data, 0o600)) }
	write(pki.caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}))
	write(pki.clientCertFile, clientCertPEM)
	write(pki.clientKeyFile, clientKeyPEM)
	write(pki.clientKeyFile+".txt", []byte("not a certificate"))
	return pki
}
