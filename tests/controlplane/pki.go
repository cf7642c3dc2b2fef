package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// The throw-away PKI of one control plane, made once per DIR (kept across
// restarts so that clients keep trusting the server):
//
//	pki/ca.crt, ca.key          the CA that signs the serving and client certs
//	pki/apiserver.crt, .key     serving cert for 127.0.0.1 and localhost
//	pki/admin.crt, admin.key    client cert, CN=corral-admin, O=system:masters
//	pki/sa.key, sa.pub          service-account token signing key (ES256)
type pki struct{ dir string }

func (p pki) path(name string) string { return filepath.Join(p.dir, name) }

func newKey() *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		fatal(err)
	}
	return k
}

func writePEM(path, typ string, der []byte, mode os.FileMode) {
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), mode); err != nil {
		fatal(err)
	}
}

func writeKey(path string, k *ecdsa.PrivateKey) {
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		fatal(err)
	}
	writePEM(path, "EC PRIVATE KEY", der, 0600)
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		fatal(err)
	}
	return n.Add(n, big.NewInt(1))
}

func sign(tmpl, parent *x509.Certificate, pub crypto.PublicKey, signer crypto.Signer) *x509.Certificate {
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		fatal(err)
	}
	return c
}

// ensure makes the PKI unless it is there already.
func (p pki) ensure() {
	if _, err := os.Stat(p.path("sa.pub")); err == nil {
		return
	}
	if err := os.MkdirAll(p.dir, 0700); err != nil {
		fatal(err)
	}
	now := time.Now().Add(-time.Hour)
	later := now.Add(10 * 365 * 24 * time.Hour)

	caKey := newKey()
	caTmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "corral-test-ca"},
		NotBefore:             now,
		NotAfter:              later,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	ca := sign(caTmpl, caTmpl, caKey.Public(), caKey) // self-signed
	writePEM(p.path("ca.crt"), "CERTIFICATE", ca.Raw, 0644)
	writeKey(p.path("ca.key"), caKey)

	srvKey := newKey()
	srv := sign(&x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: "kube-apiserver"},
		NotBefore:    now,
		NotAfter:     later,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames: []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
			"kubernetes.default.svc.cluster.local"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("10.96.0.1")},
	}, ca, srvKey.Public(), caKey)
	writePEM(p.path("apiserver.crt"), "CERTIFICATE", srv.Raw, 0644)
	writeKey(p.path("apiserver.key"), srvKey)

	admKey := newKey()
	adm := sign(&x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: "corral-admin", Organization: []string{"system:masters"}},
		NotBefore:    now,
		NotAfter:     later,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, ca, admKey.Public(), caKey)
	writePEM(p.path("admin.crt"), "CERTIFICATE", adm.Raw, 0644)
	writeKey(p.path("admin.key"), admKey)

	saKey := newKey()
	writeKey(p.path("sa.key"), saKey)
	pub, err := x509.MarshalPKIXPublicKey(saKey.Public())
	if err != nil {
		fatal(err)
	}
	writePEM(p.path("sa.pub"), "PUBLIC KEY", pub, 0644)
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
