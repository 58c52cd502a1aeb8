package garbagetruck

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Header names of the broker's cleanup callbacks.
const (
	// HeaderTimestamp carries the signing time in Unix seconds.
	HeaderTimestamp = "X-GarbageTruck-Timestamp"
	// HeaderSignature carries "v1=" + lowercase hex HMAC-SHA256(secret,
	// timestamp + "." + body); several comma-separated signatures may be
	// given (secret rotation) and one matching is enough.
	HeaderSignature = "X-GarbageTruck-Signature"
	// HeaderIdempotencyKey carries "<seq>-<lease_id>": the same for every
	// attempt of one callback, also after a broker restart.
	HeaderIdempotencyKey = "Idempotency-Key"
	// HeaderAttempt carries the attempt number (also in the body).
	HeaderAttempt = "X-GarbageTruck-Attempt"
)

// DefaultTolerance is how far a callback's timestamp may be from the
// receiver's clock, either way, for CallbackHandler: 300 s, as the C SDK's
// GT_WEBHOOK_DEFAULT_TOLERANCE_S and the Python SDK's
// webhook.DEFAULT_TOLERANCE.
const (
	DefaultTolerance = 5 * time.Minute
)

// maxCallbackBody bounds the callback bodies CallbackHandler reads.
const maxCallbackBody = 1 << 20

// Callback is the JSON body of a cleanup callback: the broker POSTs it to a
// lease's cleanup URL when the object is reclaimed (proto-spec/CALLBACKS.md).
type Callback struct {
	// LeaseID is the lease that ended last.
	LeaseID string `json:"lease_id"`
	// ObjectID is the object to clean up.
	ObjectID string `json:"object_id"`
	// ObjectType is the kind of object.
	ObjectType ObjectType `json:"object_type"`
	// ServiceID is the service that registered the cleanup.
	ServiceID string `json:"service_id"`
	// Metadata is the lease's metadata.
	Metadata map[string]string `json:"metadata"`
	// Payload is the cleanup's opaque payload ("" when none was given).
	Payload string `json:"payload"`
	// Reason is why the object was reclaimed: "expired" or "released".
	Reason ReclaimReason `json:"reason"`
	// Seq is the sequence number of the object.reclaimed event.
	Seq uint64 `json:"seq"`
	// Fence is the fencing token of the object's life that ended: compare
	// it before deleting, the object may have been re-created meanwhile.
	Fence uint64 `json:"fence"`
	// Attempt counts the deliveries of this callback, from 1.
	Attempt uint64 `json:"attempt"`
	// IdempotencyKey is the Idempotency-Key header, "<seq>-<lease_id>"
	// (not part of the body).
	IdempotencyKey string `json:"-"`
}

// Sign returns the value of HeaderSignature for body signed at timestamp ts
// (what the broker sends; useful for tests and for relaying callbacks).
func Sign(body []byte, secret []byte, ts time.Time) string {
	return "v1=" + signature(body, secret, strconv.FormatInt(ts.Unix(), 10))
}

func signature(body, secret []byte, ts string) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(ts))
	mac.Write([]byte("."))
	mac.Write(body)
	return hex.EncodeToString(mac.Sum(nil))
}

// VerifySignature checks a callback: its timestamp header must be within
// tolerance of the local clock and one of its v1 signatures must be the
// HMAC-SHA256 of timestamp + "." + body under secret (compared in constant
// time). Failures match ErrBadSignature.
func VerifySignature(body []byte, header http.Header, secret []byte, tolerance time.Duration) error {
	tsText := header.Get(HeaderTimestamp)
	if tsText == "" {
		return fmt.Errorf("%w: missing %s", ErrBadSignature, HeaderTimestamp)
	}
	ts, err := strconv.ParseInt(tsText, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: malformed %s %q", ErrBadSignature, HeaderTimestamp, tsText)
	}
	skew := time.Since(time.Unix(ts, 0))
	if skew < 0 {
		skew = -skew
	}
	if skew > tolerance {
		return fmt.Errorf("%w: timestamp %d is %v away from now (tolerance %v)", ErrBadSignature, ts, skew.Round(time.Second), tolerance)
	}
	sigHeader := header.Get(HeaderSignature)
	if sigHeader == "" {
		return fmt.Errorf("%w: missing %s", ErrBadSignature, HeaderSignature)
	}
	want, _ := hex.DecodeString(signature(body, secret, tsText))
	for _, part := range strings.Split(sigHeader, ",") {
		hexSig, ok := strings.CutPrefix(strings.TrimSpace(part), "v1=")
		if !ok {
			continue
		}
		got, err := hex.DecodeString(hexSig)
		if err != nil {
			continue
		}
		if hmac.Equal(got, want) {
			return nil
		}
	}
	return fmt.Errorf("%w: no matching v1 signature", ErrBadSignature)
}

// HandlerOption configures CallbackHandler.
type HandlerOption func(*handlerOptions)

type handlerOptions struct {
	tolerance time.Duration // accepted clock skew
}

// WithTolerance sets the accepted distance between a callback's timestamp and
// the local clock (default DefaultTolerance).
func WithTolerance(d time.Duration) HandlerOption {
	return func(o *handlerOptions) { o.tolerance = d }
}

// CallbackHandler returns an http.Handler for cleanup callbacks: it accepts
// POST only (405), verifies the signature with secret (401), decodes the JSON
// body (400) and calls fn with the request's context. fn returning nil
// answers 204 No Content; an error answers 500, so the broker retries later.
// Callbacks may be delivered more than once: use Callback.IdempotencyKey or
// Callback.Fence to make fn idempotent.
func CallbackHandler(secret []byte, fn func(ctx context.Context, cb *Callback) error, opts ...HandlerOption) http.Handler {
	o := handlerOptions{tolerance: DefaultTolerance}
	for _, opt := range opts {
		opt(&o)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, "POST only", http.StatusMethodNotAllowed)
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxCallbackBody))
		if err != nil {
			http.Error(w, "cannot read body: "+err.Error(), http.StatusBadRequest)
			return
		}
		if err := VerifySignature(body, r.Header, secret, o.tolerance); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		cb := &Callback{}
		if err := json.Unmarshal(body, cb); err != nil {
			http.Error(w, "malformed callback: "+err.Error(), http.StatusBadRequest)
			return
		}
		cb.IdempotencyKey = r.Header.Get(HeaderIdempotencyKey)
		if err := fn(r.Context(), cb); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}
