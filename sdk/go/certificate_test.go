package garbagetruck

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	zmq "github.com/pebbe/zmq4"

	"github.com/garbagetruck/garbagetruck/sdk/go/gttest"
)

// A pair written by pyzmq's zmq.auth.create_certificates (bare metadata
// values, a '#' inside the quoted secret key).
const pyzmqSecretCert = `#   ****  Generated on 2026-12-04 19:59:20.525710 by pyzmq  ****
#   ZeroMQ CURVE **Secret** Certificate
#   DO NOT PROVIDE THIS FILE TO OTHER USERS nor change its permissions.

metadata
    service = upload
    role = service
    callback-allow = http://127.0.0.1:8080/hooks/,https://cleanup.internal/
curve
    public-key = "7Aq4][N{TdQR}}ETsp=@T2</J8GyX-hfpg^[*<SX"
    secret-key = "wuv:mDty-CuCPO&oEMZ9n!4Hxd)526WZ6sc)#tYH"
`

// The same pair in CZMQ's zcert_save layout (quoted values, CRLF line ends
// and a comment after a value for good measure).
const czmqPublicCert = "#   ****  Generated on 2026-12-04 19:59:20 by CZMQ  ****\r\n" +
	"#   ZeroMQ CURVE Public Certificate\r\n" +
	"\r\n" +
	"metadata\r\n" +
	"    service = \"upload\"    # its service\r\n" +
	"    role = 'observer'\r\n" +
	"curve\r\n" +
	"    public-key = \"7Aq4][N{TdQR}}ETsp=@T2</J8GyX-hfpg^[*<SX\"\r\n"

func TestParseCertificate(t *testing.T) {
	cert, err := ParseCertificate([]byte(pyzmqSecretCert))
	if err != nil {
		t.Fatal(err)
	}
	if cert.PublicKey != "7Aq4][N{TdQR}}ETsp=@T2</J8GyX-hfpg^[*<SX" || cert.SecretKey != "wuv:mDty-CuCPO&oEMZ9n!4Hxd)526WZ6sc)#tYH" {
		t.Errorf("keys %q %q", cert.PublicKey, cert.SecretKey)
	}
	want := map[string]string{"service": "upload", "role": "service",
		"callback-allow": "http://127.0.0.1:8080/hooks/,https://cleanup.internal/"}
	if len(cert.Metadata) != len(want) {
		t.Errorf("metadata %v", cert.Metadata)
	}
	for k, v := range want {
		if cert.Metadata[k] != v {
			t.Errorf("metadata %s = %q, want %q", k, cert.Metadata[k], v)
		}
	}

	cert, err = ParseCertificate([]byte(czmqPublicCert))
	if err != nil {
		t.Fatal(err)
	}
	if cert.SecretKey != "" || cert.Metadata["service"] != "upload" || cert.Metadata["role"] != "observer" {
		t.Errorf("public certificate: %+v", cert)
	}

	const pub = `"7Aq4][N{TdQR}}ETsp=@T2</J8GyX-hfpg^[*<SX"`
	bad := map[string]struct{ text, want string }{
		"no public key":      {"metadata\n    service = x\ncurve\n", "no curve/public-key"},
		"short key":          {"curve\n    public-key = \"abc\"\n", "not a 40-character Z85 key"},
		"not z85":            {"curve\n    public-key = \"7Aq4][N{TdQR}}ETsp=@T2</J8GyX-hfpg^[*<S,\"\n", "not a 40-character Z85 key"},
		"z85 overflow":       {"curve\n    public-key = \"%%%%%7Aq4][N{TdQR}}ETsp=@T2</J8GyX-hfpg^\"\n", "not a 40-character Z85 key"},
		"foreign secret":     {"curve\n    public-key = " + pub + "\n    secret-key = \"D:)Q[IlAW!ahhC2ac:9*A}h:p?([4%wOTJ%JR%cs\"\n", "does not belong"},
		"odd indent":         {"curve\n  public-key = " + pub + "\n", "line 2: indent"},
		"tab indent":         {"curve\n\tpublic-key = " + pub + "\n", "line 2: indent"},
		"two levels down":    {"curve\n        public-key = " + pub + "\n", "line 2: indented more than one level"},
		"unterminated quote": {"curve\n    public-key = \"7Aq4\n", "line 2: public-key: unterminated"},
		"junk after value":   {"curve\n    public-key = " + pub + " x\n", "line 2: public-key: unexpected"},
		"junk after name":    {"curve\n    public-key : " + pub + "\n", "line 2: unexpected"},
		"set twice":          {"curve\n    public-key = " + pub + "\n    public-key = " + pub + "\n", "line 3: curve/public-key is set twice"},
	}
	for name, tc := range bad {
		if _, err := ParseCertificate([]byte(tc.text)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want one saying %q", name, err, tc.want)
		}
	}
}

// TestGttestCertificates reads back what gttest writes for a CURVE broker.
func TestGttestCertificates(t *testing.T) {
	curve, err := gttest.NewCurve(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	p := gttest.Principal{Service: "upload", Role: "observer", CallbackAllow: "http://127.0.0.1:1/x/", CallbackSecret: `s"q`}
	cc, err := curve.AddClient("upload", p)
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{cc.SecretCert, filepath.Join(curve.ClientsDir, "upload")} {
		cert, err := LoadCertificate(path)
		if err != nil {
			t.Fatal(err)
		}
		if cert.PublicKey != cc.PublicKey || cert.Metadata["service"] != "upload" || cert.Metadata["role"] != "observer" ||
			cert.Metadata["callback-allow"] != p.CallbackAllow || cert.Metadata["callback-secret"] != p.CallbackSecret {
			t.Errorf("%s: %+v", path, cert)
		}
		if (path == cc.SecretCert) != (cert.SecretKey != "") {
			t.Errorf("%s: secret key %q", path, cert.SecretKey)
		}
	}
	if info, err := os.Stat(cc.SecretCert); err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("secret certificate mode: %v %v", info.Mode(), err)
	}
	server, err := LoadCertificate(curve.ServerSecretCert)
	if err != nil || server.PublicKey != curve.ServerKey || server.SecretKey == "" {
		t.Errorf("server certificate: %+v %v", server, err)
	}
	if err := curve.Revoke(cc); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(curve.ClientsDir, "upload")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("revoked certificate still there: %v", err)
	}
}

// TestGtctlKeygenCertificates reads what `gtctl keygen` writes, when this
// gtctl has it.
func TestGtctlKeygenCertificates(t *testing.T) {
	bin, err := gttest.FindGtctl()
	if err != nil {
		t.Skipf("needs gtctl: %v", err)
	}
	if help, _ := exec.Command(bin, "--help").CombinedOutput(); !strings.Contains(string(help), "keygen") {
		t.Skip("this gtctl has no keygen")
	}
	name := filepath.Join(t.TempDir(), "reports")
	if out, err := exec.Command(bin, "keygen", name, "--service", "reports", "--role", "observer").CombinedOutput(); err != nil {
		t.Fatalf("gtctl keygen: %v\n%s", err, out)
	}
	public, err := LoadCertificate(name)
	if err != nil {
		t.Fatal(err)
	}
	secret, err := LoadCertificate(name + "_secret")
	if err != nil {
		t.Fatal(err)
	}
	if public.SecretKey != "" || secret.SecretKey == "" || public.PublicKey != secret.PublicKey ||
		public.Metadata["service"] != "reports" || public.Metadata["role"] != "observer" {
		t.Errorf("public %+v, secret %+v", public, secret)
	}
}

func TestCurveSettings(t *testing.T) {
	t.Setenv(EnvServerKey, "")
	t.Setenv(EnvClientCert, "")
	curve, err := gttest.NewCurve(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cc, err := curve.NewClient("svc", gttest.Principal{Service: "svc"})
	if err != nil {
		t.Fatal(err)
	}
	endpoint := "tcp://127.0.0.1:1"
	dialWith := func(service string, opts ...Option) (*Client, error) {
		c, err := Dial(context.Background(), endpoint, service, opts...)
		if err == nil {
			c.Close()
		}
		return c, err
	}

	// Both settings: a Z85 key or any certificate of the broker, and the
	// client's secret certificate. The service may then be left out.
	for _, key := range []string{curve.ServerKey, curve.ServerCert, curve.ServerSecretCert} {
		c, err := dialWith("", WithServerKey(key), WithClientCert(cc.SecretCert))
		if err != nil {
			t.Fatalf("server key %s: %v", key, err)
		}
		if c.curve == nil || c.curve.server != curve.ServerKey || c.curve.public != cc.PublicKey {
			t.Errorf("server key %s: keys %+v", key, c.curve)
		}
	}
	// Half a pair, an unusable key or certificate: clear errors.
	missing := filepath.Join(t.TempDir(), "missing")
	cases := []struct {
		name string
		opts []Option
		want string
	}{
		{"server key only", []Option{WithServerKey(curve.ServerKey)}, "no client certificate"},
		{"client cert only", []Option{WithClientCert(cc.SecretCert)}, "no server key"},
		{"bad server key", []Option{WithServerKey(missing), WithClientCert(cc.SecretCert)}, "neither a 40-character Z85 key nor a certificate file"},
		{"public client cert", []Option{WithServerKey(curve.ServerKey), WithClientCert(cc.PublicCert)}, "public certificate"},
		{"missing client cert", []Option{WithServerKey(curve.ServerKey), WithClientCert(missing)}, "no such file"},
		{"not a certificate", []Option{WithServerKey(curve.ServerKey), WithClientCert(curve.ClientsDir)}, "WithClientCert"},
	}
	for _, tc := range cases {
		if _, err := dialWith("svc", tc.opts...); !errors.Is(err, ErrInvalidArgument) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want ErrInvalidArgument saying %q", tc.name, err, tc.want)
		}
	}
	// Without CURVE the service is required, and never has a control character.
	if _, err := dialWith(""); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("empty service without CURVE: %v", err)
	}
	if _, err := dialWith("a\x1fb", WithServerKey(curve.ServerKey), WithClientCert(cc.SecretCert)); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("control character: %v", err)
	}

	// The environment stands in for missing options; an option, even "",
	// wins over it.
	t.Setenv(EnvServerKey, curve.ServerCert)
	t.Setenv(EnvClientCert, cc.SecretCert)
	c, err := dialWith("")
	if err != nil || c.curve == nil || c.curve.server != curve.ServerKey {
		t.Fatalf("from the environment: %+v, %v", c, err)
	}
	c, err = dialWith("svc", WithServerKey(""), WithClientCert(""))
	if err != nil || c.curve != nil {
		t.Errorf("options \"\" over the environment: curve %+v, %v", c.curve, err)
	}
	if _, err := dialWith("svc", WithClientCert("")); err == nil || !strings.Contains(err.Error(), EnvServerKey) {
		t.Errorf("half from the environment: %v", err)
	}
}

// curveEcho is an in-process CURVE server (without ZAP, so any client key
// passes the handshake) that answers every request with an OK HEALTH reply.
func curveEcho(t *testing.T, secretKey string) string {
	t.Helper()
	router := zmqSockets(t, zmq.ROUTER)[0]
	if err := router.SetCurveServer(1); err != nil {
		t.Fatal(err)
	}
	if err := router.SetCurveSecretkey(secretKey); err != nil {
		t.Fatal(err)
	}
	if err := router.Bind("tcp://127.0.0.1:*"); err != nil {
		t.Fatal(err)
	}
	endpoint, _ := router.GetLastEndpoint()
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		poller := zmq.NewPoller()
		poller.Add(router, zmq.POLLIN)
		for {
			select {
			case <-done:
				return
			default:
			}
			if polled, _ := poller.Poll(10 * time.Millisecond); len(polled) == 0 {
				continue
			}
			frames, err := router.RecvMessageBytes(0)
			if err != nil || len(frames) != 2 {
				continue
			}
			req, err := decodeRequest(frames[1])
			if err != nil {
				continue
			}
			body, _ := encodeReply(&reply{V: 1, RID: req.RID, Code: CodeOK, Status: ptr("SERVING")})
			router.SendMessage(frames[0], body)
		}
	}()
	t.Cleanup(func() {
		close(done)
		wg.Wait()
	})
	return endpoint
}

// TestCurveClientHandshake checks the SDK's CURVE wiring without a broker:
// with the server's key the request socket completes the handshake; with
// another key, or without CURVE, nothing is answered.
func TestCurveClientHandshake(t *testing.T) {
	t.Setenv(EnvServerKey, "")
	t.Setenv(EnvClientCert, "")
	curve, err := gttest.NewCurve(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	server, err := LoadCertificate(curve.ServerSecretCert)
	if err != nil {
		t.Fatal(err)
	}
	endpoint := curveEcho(t, server.SecretKey)
	cc, err := curve.NewClient("svc", gttest.Principal{Service: "svc"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t, 10*time.Second)

	good := dial(t, endpoint, "", WithServerKey(curve.ServerCert), WithClientCert(cc.SecretCert))
	if h, err := good.Health(ctx); err != nil || h.Status != "SERVING" {
		t.Fatalf("over CURVE: %+v, %v", h, err)
	}
	// The environment works the same way.
	t.Setenv(EnvServerKey, curve.ServerKey)
	t.Setenv(EnvClientCert, cc.SecretCert)
	fromEnv := dial(t, endpoint, "")
	if _, err := fromEnv.Health(ctx); err != nil {
		t.Fatalf("over CURVE from the environment: %v", err)
	}

	impostor, err := gttest.NewCurve(t.TempDir()) // another server's key
	if err != nil {
		t.Fatal(err)
	}
	for name, opts := range map[string][]Option{
		"wrong server key": {WithServerKey(impostor.ServerKey), WithClientCert(cc.SecretCert)},
		"plaintext":        {WithServerKey(""), WithClientCert("")},
	} {
		c := dial(t, endpoint, "svc", opts...)
		callCtx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		_, err := c.Health(callCtx)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s: err = %v, want no reply", name, err)
		}
	}
}
