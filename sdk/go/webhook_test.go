package garbagetruck

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"
	"time"
)

func signedHeader(body, secret []byte, ts time.Time) http.Header {
	h := http.Header{}
	h.Set(HeaderTimestamp, strconv.FormatInt(ts.Unix(), 10))
	h.Set(HeaderSignature, Sign(body, secret, ts))
	h.Set(HeaderIdempotencyKey, "evt-42")
	return h
}

func TestVerifySignature(t *testing.T) {
	secret := []byte("s3cret")
	body := []byte(`{"lease_id":"x"}`)
	now := time.Now()
	if err := VerifySignature(body, signedHeader(body, secret, now), secret, time.Minute); err != nil {
		t.Fatalf("valid signature rejected: %v", err)
	}
	rotated := signedHeader(body, secret, now)
	rotated.Set(HeaderSignature, "v1=00ff, "+rotated.Get(HeaderSignature))
	if err := VerifySignature(body, rotated, secret, time.Minute); err != nil {
		t.Errorf("second of two signatures rejected: %v", err)
	}
	bad := map[string]func() (http.Header, []byte){
		"wrong secret":  func() (http.Header, []byte) { return signedHeader(body, []byte("other"), now), body },
		"tampered body": func() (http.Header, []byte) { return signedHeader(body, secret, now), []byte(`{"lease_id":"y"}`) },
		"stale":         func() (http.Header, []byte) { return signedHeader(body, secret, now.Add(-2*time.Minute)), body },
		"future":        func() (http.Header, []byte) { return signedHeader(body, secret, now.Add(2*time.Minute)), body },
		"no timestamp": func() (http.Header, []byte) {
			h := signedHeader(body, secret, now)
			h.Del(HeaderTimestamp)
			return h, body
		},
		"no signature": func() (http.Header, []byte) {
			h := signedHeader(body, secret, now)
			h.Del(HeaderSignature)
			return h, body
		},
		"wrong scheme": func() (http.Header, []byte) {
			h := signedHeader(body, secret, now)
			h.Set(HeaderSignature, "v0="+h.Get(HeaderSignature)[3:])
			return h, body
		},
		"timestamp changed": func() (http.Header, []byte) {
			h := signedHeader(body, secret, now)
			h.Set(HeaderTimestamp, strconv.FormatInt(now.Unix()+1, 10))
			return h, body
		},
		"garbage timestamp": func() (http.Header, []byte) {
			h := signedHeader(body, secret, now)
			h.Set(HeaderTimestamp, "soon")
			return h, body
		},
	}
	for name, mk := range bad {
		h, b := mk()
		if err := VerifySignature(b, h, secret, time.Minute); !errors.Is(err, ErrBadSignature) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}

func TestSignKnownAnswer(t *testing.T) {
	// hmac.new(b"key", b'1700000000.{"a":1}', hashlib.sha256).hexdigest() in Python.
	const want = "v1=a438e398bfafc57e4396bb7fc2304422f0f768e965d073ca313cb52e22e6ad03"
	if got := Sign([]byte(`{"a":1}`), []byte("key"), time.Unix(1700000000, 0)); got != want {
		t.Fatalf("Sign = %q, want %q", got, want)
	}
}

func TestCallbackHandler(t *testing.T) {
	secret := []byte("s3cret")
	var got *Callback
	fail := false
	srv := httptest.NewServer(CallbackHandler(secret, func(ctx context.Context, cb *Callback) error {
		if fail {
			return errors.New("disk busy")
		}
		got = cb
		return nil
	}))
	defer srv.Close()
	body := []byte(`{"lease_id":"0123456789abcdef0123456789abcdef","object_id":"/tmp/x","object_type":"TEMPORARY_FILE",
		"service_id":"upload-service","metadata":{"path":"/tmp/x"},"payload":"rm","reason":"expired",
		"seq":17,"fence":3,"attempt":2,"future_field":true}`)
	post := func(b []byte, h http.Header) int {
		req, _ := http.NewRequest(http.MethodPost, srv.URL, bytes.NewReader(b))
		for k, v := range h {
			req.Header[k] = v
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post(body, signedHeader(body, secret, time.Now())); code != http.StatusNoContent {
		t.Fatalf("status %d", code)
	}
	want := Callback{LeaseID: "0123456789abcdef0123456789abcdef", ObjectID: "/tmp/x", ObjectType: ObjectTypeTemporaryFile,
		ServiceID: "upload-service", Payload: "rm", Reason: ReasonExpired, Seq: 17, Fence: 3, Attempt: 2, IdempotencyKey: "evt-42"}
	if got == nil || got.Metadata["path"] != "/tmp/x" {
		t.Fatalf("callback %+v", got)
	}
	got.Metadata = nil
	if !reflect.DeepEqual(*got, want) {
		t.Errorf("callback\n got %+v\nwant %+v", *got, want)
	}
	if code := post(body, signedHeader(body, []byte("nope"), time.Now())); code != http.StatusUnauthorized {
		t.Errorf("bad signature: status %d", code)
	}
	notJSON := []byte("not json")
	if code := post(notJSON, signedHeader(notJSON, secret, time.Now())); code != http.StatusBadRequest {
		t.Errorf("bad body: status %d", code)
	}
	fail = true
	if code := post(body, signedHeader(body, secret, time.Now())); code != http.StatusInternalServerError {
		t.Errorf("handler error: status %d", code)
	}
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET: status %d", resp.StatusCode)
	}
}

// TestCallbackSignatureVectors checks the shared vectors of
// proto-spec/vectors/callbacks (CALLBACKS.md).
func TestCallbackSignatureVectors(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(vectorsDir(), "callbacks", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no callback vectors in %s: %v", filepath.Join(vectorsDir(), "callbacks"), err)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var v struct {
			Secret, Timestamp, Body, Signature string
		}
		if err := json.Unmarshal(data, &v); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		ts, err := strconv.ParseInt(v.Timestamp, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		if got := Sign([]byte(v.Body), []byte(v.Secret), time.Unix(ts, 0)); got != v.Signature {
			t.Errorf("%s: Sign = %s, want %s", f, got, v.Signature)
		}
		h := http.Header{}
		h.Set(HeaderTimestamp, v.Timestamp)
		h.Set(HeaderSignature, v.Signature)
		// The vectors are old: accept any age here, the tolerance is tested above.
		if err := VerifySignature([]byte(v.Body), h, []byte(v.Secret), time.Since(time.Unix(ts, 0))+time.Hour); err != nil {
			t.Errorf("%s: %v", f, err)
		}
		if err := VerifySignature([]byte(v.Body), h, []byte(v.Secret), time.Minute); !errors.Is(err, ErrBadSignature) {
			t.Errorf("%s: an old timestamp passed a 1 min tolerance: %v", f, err)
		}
	}
}
