package gttest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	zmq "github.com/pebbe/zmq4"
)

// Curve is the CURVE key material of a test broker: the broker's own
// certificate pair and the directory of the client certificates it trusts.
// Certificates are CZMQ's text format (ZPL), what `gtctl keygen` writes.
//
//	curve := gttest.TempCurve(t)
//	upload, err := curve.AddClient("upload", gttest.Principal{Service: "upload"})
//	broker := gttest.Start(t, curve.Args()...)
//	client, err := garbagetruck.Dial(ctx, broker.Endpoint, "",
//		garbagetruck.WithServerKey(curve.ServerKey),
//		garbagetruck.WithClientCert(upload.SecretCert))
//
// Its methods are safe to call while the broker runs: the broker picks up a
// trusted or revoked client within a second.
type Curve struct {
	// Dir holds every file below.
	Dir string
	// ServerKey is the broker's public key in Z85: a client's server key
	// (WithServerKey, GT_SERVER_KEY).
	ServerKey string
	// ServerCert is the broker's public certificate file, which a client
	// may give as its server key instead of ServerKey.
	ServerCert string
	// ServerSecretCert is the broker's secret certificate file
	// (--curve-cert).
	ServerSecretCert string
	// ClientsDir is the directory of the client certificates the broker
	// trusts (--curve-clients).
	ClientsDir string
}

// Principal is who a client key is: the metadata the broker reads from the
// client's public certificate.
type Principal struct {
	// Service is the service bound to the key.
	Service string
	// Role is "service" (the default when empty), "observer" or "admin".
	Role string
	// CallbackAllow, if set, lists the URL prefixes (comma-separated) the
	// principal's cleanup URLs must lie under, in addition to the broker's
	// GC_CALLBACK_ALLOW.
	CallbackAllow string
	// CallbackSecret, if set, signs the principal's cleanup callbacks
	// instead of the broker's GC_CALLBACK_SECRET.
	CallbackSecret string
}

// metadata returns the certificate metadata, in a fixed order.
func (p Principal) metadata() [][2]string {
	var m [][2]string
	if p.Service != "" {
		m = append(m, [2]string{"service", p.Service})
	}
	if p.Role != "" {
		m = append(m, [2]string{"role", p.Role})
	}
	if p.CallbackAllow != "" {
		m = append(m, [2]string{"callback-allow", p.CallbackAllow})
	}
	if p.CallbackSecret != "" {
		m = append(m, [2]string{"callback-secret", p.CallbackSecret})
	}
	return m
}

// ClientCert is a client's certificate pair.
type ClientCert struct {
	// Name is the certificate's file name in ClientsDir once trusted.
	Name string
	// PublicKey is the client's public key in Z85.
	PublicKey string
	// PublicCert is the public certificate file (kept outside ClientsDir;
	// Trust copies it in).
	PublicCert string
	// SecretCert is the secret certificate file: a client's certificate
	// (WithClientCert, GT_CLIENT_CERT).
	SecretCert string
	// Principal is what the certificate's metadata says.
	Principal Principal
}

// NewCurve generates a broker certificate pair in dir (which must exist) and
// creates an empty clients directory there.
func NewCurve(dir string) (*Curve, error) {
	c := &Curve{
		Dir:              dir,
		ServerCert:       filepath.Join(dir, "broker"),
		ServerSecretCert: filepath.Join(dir, "broker_secret"),
		ClientsDir:       filepath.Join(dir, "clients"),
	}
	if err := os.Mkdir(c.ClientsDir, 0o755); err != nil {
		return nil, fmt.Errorf("gttest: %w", err)
	}
	public, err := writeKeyPair(c.ServerCert, c.ServerSecretCert, nil)
	if err != nil {
		return nil, err
	}
	c.ServerKey = public
	return c, nil
}

// Args returns the broker flags that turn CURVE on with these certificates.
func (c *Curve) Args() []string {
	return []string{"--curve-cert", c.ServerSecretCert, "--curve-clients", c.ClientsDir}
}

// NewClient generates a client certificate pair for p without trusting it
// (see Trust): its files are name and name_secret in Dir. An untrusted
// certificate is an unknown key to the broker.
func (c *Curve) NewClient(name string, p Principal) (*ClientCert, error) {
	if name == "" || strings.ContainsAny(name, `/\`) || strings.HasSuffix(name, "_secret") {
		return nil, fmt.Errorf("gttest: bad certificate name %q", name)
	}
	cc := &ClientCert{
		Name:       name,
		PublicCert: filepath.Join(c.Dir, name),
		SecretCert: filepath.Join(c.Dir, name+"_secret"),
		Principal:  p,
	}
	public, err := writeKeyPair(cc.PublicCert, cc.SecretCert, p.metadata())
	if err != nil {
		return nil, err
	}
	cc.PublicKey = public
	return cc, nil
}

// Trust puts the client's public certificate into the clients directory
// (atomically: the broker never sees a partial file), readable by its owner
// only (required of a certificate with a callback-secret).
func (c *Curve) Trust(cc *ClientCert) error {
	data, err := os.ReadFile(cc.PublicCert)
	if err != nil {
		return fmt.Errorf("gttest: %w", err)
	}
	// Written next to the directory, then renamed into it.
	tmp, err := os.CreateTemp(c.Dir, ".trust-*")
	if err != nil {
		return fmt.Errorf("gttest: %w", err)
	}
	_, err = tmp.Write(data)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), filepath.Join(c.ClientsDir, cc.Name))
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("gttest: trust %s: %w", cc.Name, err)
	}
	return nil
}

// Revoke removes the client's certificate from the clients directory: the
// broker stops trusting the key, also on its open connections, within a
// second.
func (c *Curve) Revoke(cc *ClientCert) error {
	if err := os.Remove(filepath.Join(c.ClientsDir, cc.Name)); err != nil {
		return fmt.Errorf("gttest: revoke %s: %w", cc.Name, err)
	}
	return nil
}

// AddClient generates a client certificate pair for p and trusts it.
func (c *Curve) AddClient(name string, p Principal) (*ClientCert, error) {
	cc, err := c.NewClient(name, p)
	if err == nil {
		err = c.Trust(cc)
	}
	return cc, err
}

// TempCurve generates a broker certificate pair and an empty clients
// directory in a temporary directory of the test (see NewCurve). Add the
// clients, then start the broker with Start(t, curve.Args()...): the keys
// trusted at start are served at once, those added later within about a
// second (a client that connected before retries its refused handshake).
func TempCurve(t testing.TB) *Curve {
	t.Helper()
	curve, err := NewCurve(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return curve
}

// StartCurve starts a broker like Start, with CURVE on, certificates from
// TempCurve and no client trusted yet (add them with AddClient).
func StartCurve(t testing.TB, settings ...string) (*Broker, *Curve) {
	t.Helper()
	curve := TempCurve(t)
	return Start(t, append(curve.Args(), settings...)...), curve
}

// writeKeyPair generates a CURVE key pair and writes it as a public and a
// secret certificate (the secret one readable by its owner only). It returns
// the public key.
func writeKeyPair(publicPath, secretPath string, metadata [][2]string) (string, error) {
	public, secret, err := zmq.NewCurveKeypair()
	if err != nil {
		return "", fmt.Errorf("gttest: CURVE key pair: %w", err)
	}
	// A public certificate carrying a callback-secret is private too (the
	// broker refuses one that group or others may read).
	mode := os.FileMode(0o644)
	for _, kv := range metadata {
		if kv[0] == "callback-secret" {
			mode = 0o600
		}
	}
	err = os.WriteFile(publicPath, certificateText(public, "", metadata), mode)
	if err == nil {
		err = os.WriteFile(secretPath, certificateText(public, secret, metadata), 0o600)
	}
	if err != nil {
		return "", fmt.Errorf("gttest: %w", err)
	}
	return public, nil
}

// certificateText renders a certificate the way CZMQ's zcert_save does
// (ZPL); secret "" makes the public certificate.
func certificateText(public, secret string, metadata [][2]string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "#   ****  Generated on %s by gttest  ****\n", time.Now().UTC().Format("2006-01-02 15:04:05"))
	if secret == "" {
		b.WriteString("#   ZeroMQ CURVE Public Certificate\n")
		b.WriteString("#   Exchange securely, or use a secure mechanism to verify the contents\n")
		b.WriteString("#   of this file after exchange.\n")
	} else {
		b.WriteString("#   ZeroMQ CURVE **Secret** Certificate\n")
		b.WriteString("#   DO NOT PROVIDE THIS FILE TO OTHER USERS nor change its permissions.\n")
	}
	b.WriteString("\nmetadata\n")
	for _, kv := range metadata {
		fmt.Fprintf(&b, "    %s = %s\n", kv[0], zplQuote(kv[1]))
	}
	b.WriteString("curve\n")
	fmt.Fprintf(&b, "    public-key = %s\n", zplQuote(public))
	if secret != "" {
		fmt.Fprintf(&b, "    secret-key = %s\n", zplQuote(secret))
	}
	return []byte(b.String())
}

// zplQuote quotes a ZPL value (ZPL has no escapes: a value containing a
// double quote is single-quoted).
func zplQuote(v string) string {
	if strings.Contains(v, `"`) {
		return "'" + v + "'"
	}
	return `"` + v + `"`
}
