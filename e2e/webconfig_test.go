package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/ipacct/ipacct_exporter/internal/exetest"
)

// testPKI is a CA and a server certificate for 127.0.0.1 that it signed,
// made for one test: nothing is committed, nothing outlives the test.
type testPKI struct {
	pool              *x509.CertPool
	certFile, keyFile string
}

func newTestPKI(t *testing.T, dir string) testPKI {
	t.Helper()
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "ipacct test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "ipacct_exporter"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	return testPKI{
		pool:     pool,
		certFile: writeFile(t, dir, "server.crt", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))),
		keyFile:  writeFile(t, dir, "server.key", string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}))),
	}
}

// TestWebConfigTLSAndBasicAuth starts the exporter with a --web.config.file
// that asks for TLS and basic auth, and checks what a client gets without
// credentials, with wrong ones and with the right ones, and over plain HTTP.
// It needs no root: the metrics page answers even when a collector cannot
// read the kernel.
func TestWebConfigTLSAndBasicAuth(t *testing.T) {
	dir := t.TempDir()
	pki := newTestPKI(t, dir)
	const user, password = "prometheus", "s3cret-Passw0rd"
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	webConfig := writeFile(t, dir, "web.yml", "tls_server_config:\n"+
		"  cert_file: "+pki.certFile+"\n"+
		"  key_file: "+pki.keyFile+"\n"+
		"basic_auth_users:\n"+
		"  "+user+": '"+string(hash)+"'\n")

	addr := exetest.FreeAddr(t)
	cmd := exec.Command(exporterBinary(t), "--web.listen-address="+addr, "--web.config.file="+webConfig, "--no-collector.iptables")
	logs := &exetest.SyncBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("exporter output:\n%s", logs.String())
		}
	})

	client := &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pki.pool, MinVersion: tls.VersionTLS12}},
	}
	url := "https://" + addr + "/metrics"
	get := func(u, user, password string) (int, string, error) {
		req, err := http.NewRequest(http.MethodGet, u, nil)
		if err != nil {
			t.Fatal(err)
		}
		if user != "" {
			req.SetBasicAuth(user, password)
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body), err
	}

	// Ready when it answers over TLS at all.
	deadline := time.Now().Add(15 * time.Second)
	for {
		code, _, err := get(url, "", "")
		if err == nil && code != 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the exporter did not answer over TLS on %s: %v", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}

	for _, c := range []struct {
		name, user, password string
		want                 int
	}{
		{"no credentials", "", "", http.StatusUnauthorized},
		{"wrong password", user, "not-" + password, http.StatusUnauthorized},
		{"unknown user", "someone", password, http.StatusUnauthorized},
		{"right credentials", user, password, http.StatusOK},
	} {
		code, body, err := get(url, c.user, c.password)
		if err != nil || code != c.want {
			t.Errorf("%s: %d %v, want %d", c.name, code, err, c.want)
			continue
		}
		hasMetrics := strings.Contains(body, "ipacct_collector_success{collector=\"nftables\"}") &&
			strings.Contains(body, "ipacct_exporter_build_info")
		if hasMetrics != (c.want == http.StatusOK) {
			t.Errorf("%s: %d, and the body has the metrics: %v\n%.300s", c.name, code, hasMetrics, body)
		}
	}

	// The certificate is the one the test's CA signed: a client that does
	// not trust that CA refuses it.
	strict := &http.Client{Timeout: 10 * time.Second}
	if resp, err := strict.Get(url); err == nil {
		resp.Body.Close()
		t.Errorf("a client without the test CA accepted the server certificate: %s", resp.Status)
	} else if !errors.As(err, new(*tls.CertificateVerificationError)) {
		t.Errorf("a client without the test CA: %v, want a certificate verification error", err)
	}

	// Plain HTTP to the TLS port, with the right credentials, gets no
	// metrics: Go's TLS server answers such a request with 400.
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(user, password)
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err == nil {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || strings.Contains(string(body), "ipacct_") {
			t.Errorf("plain HTTP to the TLS port: %s\n%.300s", resp.Status, body)
		}
	}

	if !strings.Contains(logs.String(), "TLS is enabled") {
		t.Errorf("the log does not say TLS is enabled:\n%s", logs.String())
	}
}
