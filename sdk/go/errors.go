package garbagetruck

import (
	"errors"
	"fmt"
	"time"
)

// Code is a GTLP reply code: "OK" or an error code (GTLP.md §9).
type Code string

// The reply codes of GTLP/1.
const (
	CodeOK                 Code = "OK"
	CodeInvalidArgument    Code = "INVALID_ARGUMENT"
	CodeNotFound           Code = "NOT_FOUND"
	CodeLeaseEnded         Code = "LEASE_ENDED"
	CodePermissionDenied   Code = "PERMISSION_DENIED"
	CodeConflict           Code = "CONFLICT"
	CodeQuotaExceeded      Code = "QUOTA_EXCEEDED"
	CodeUnavailable        Code = "UNAVAILABLE"
	CodeUnsupportedVersion Code = "UNSUPPORTED_VERSION"
	CodeUnsupportedCommand Code = "UNSUPPORTED_COMMAND"
	CodeTooOld             Code = "TOO_OLD"
	CodeInternal           Code = "INTERNAL"
	CodeMoved              Code = "MOVED"     // cluster (GTLP.md §14.3)
	CodeTryAgain           Code = "TRY_AGAIN" // cluster (GTLP.md §14.3)
)

// String returns the wire name of the code.
func (c Code) String() string { return string(c) }

// Sentinel errors, one per GTLP error code. A *BrokerError matches the
// sentinel of its code with errors.Is.
var (
	// ErrInvalidArgument: malformed request, missing field or value out of bounds.
	ErrInvalidArgument = errors.New("garbagetruck: invalid argument")
	// ErrNotFound: no such lease (never existed, or no longer retained).
	ErrNotFound = errors.New("garbagetruck: not found")
	// ErrLeaseEnded: the lease exists but was released or has expired.
	ErrLeaseEnded = errors.New("garbagetruck: lease ended")
	// ErrPermissionDenied: the lease belongs to another service.
	ErrPermissionDenied = errors.New("garbagetruck: permission denied")
	// ErrConflict: an idempotency key was reused for a different object.
	ErrConflict = errors.New("garbagetruck: conflict")
	// ErrQuotaExceeded: the service holds the maximum number of active leases
	// (GC_MAX_LEASES_PER_SERVICE), or the broker the most leases (GC_MAX_LEASES).
	ErrQuotaExceeded = errors.New("garbagetruck: quota exceeded")
	// ErrUnavailable: the broker's store cannot make the change durable now; retry.
	ErrUnavailable = errors.New("garbagetruck: unavailable")
	// ErrUnsupportedVersion: the broker does not speak this protocol version.
	ErrUnsupportedVersion = errors.New("garbagetruck: unsupported protocol version")
	// ErrUnsupportedCommand: the broker does not know the command.
	ErrUnsupportedCommand = errors.New("garbagetruck: unsupported command")
	// ErrTooOld: the requested event history is gone; re-synchronise with ListLeases.
	ErrTooOld = errors.New("garbagetruck: event history too old")
	// ErrInternal: a broker bug; the change was not made.
	ErrInternal = errors.New("garbagetruck: internal broker error")
	// ErrMoved: cluster mode, another broker owns the request's shard
	// (BrokerError.Owner names it); nothing was changed.
	ErrMoved = errors.New("garbagetruck: shard moved")
	// ErrTryAgain: cluster mode, the request's shard is being handed over or
	// loaded; nothing was changed. Retry after BrokerError.RetryAfter.
	ErrTryAgain = errors.New("garbagetruck: shard not available, try again")
)

// Errors of the SDK itself.
var (
	// ErrClosed is returned by calls on a closed Client.
	ErrClosed = errors.New("garbagetruck: client closed")
	// ErrLeaseLost is matched by Held.Err when a held lease was lost: it
	// ended on the broker, or could not be renewed before its deadline.
	ErrLeaseLost = errors.New("garbagetruck: lease lost")
	// ErrProtocol reports a reply or event this SDK cannot decode.
	ErrProtocol = errors.New("garbagetruck: protocol error")
	// ErrBadSignature reports a webhook callback whose signature does not verify.
	ErrBadSignature = errors.New("garbagetruck: bad webhook signature")
)

var sentinels = map[Code]error{
	CodeInvalidArgument:    ErrInvalidArgument,
	CodeNotFound:           ErrNotFound,
	CodeLeaseEnded:         ErrLeaseEnded,
	CodePermissionDenied:   ErrPermissionDenied,
	CodeConflict:           ErrConflict,
	CodeQuotaExceeded:      ErrQuotaExceeded,
	CodeUnavailable:        ErrUnavailable,
	CodeUnsupportedVersion: ErrUnsupportedVersion,
	CodeUnsupportedCommand: ErrUnsupportedCommand,
	CodeTooOld:             ErrTooOld,
	CodeInternal:           ErrInternal,
	CodeMoved:              ErrMoved,
	CodeTryAgain:           ErrTryAgain,
}

// BrokerError is an error reply from the broker.
type BrokerError struct {
	// Code is the GTLP error code.
	Code Code
	// Message is the broker's explanation, for humans.
	Message string
	// Versions lists the protocol versions the broker speaks
	// (UNSUPPORTED_VERSION only).
	Versions []uint64
	// Shard is the shard of the request (MOVED and TRY_AGAIN only; in a
	// RENEW_BATCH result, the shard the lease id names).
	Shard int
	// Owner is the endpoint of the broker that owns Shard (MOVED only; ""
	// in a RENEW_BATCH result).
	Owner string
	// MapVersion is the version of the answering broker's shard map
	// (MOVED only; 0 in a RENEW_BATCH result).
	MapVersion uint64
	// RetryAfter is the broker's hint of when to retry (TRY_AGAIN only,
	// millisecond resolution; 0 in a RENEW_BATCH result).
	RetryAfter time.Duration
}

// Error returns "CODE: message".
func (e *BrokerError) Error() string {
	if e.Message == "" {
		return string(e.Code)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

// Unwrap returns the sentinel of the error's code (nil for a code this SDK
// does not know), so that errors.Is(err, ErrNotFound) works.
func (e *BrokerError) Unwrap() error { return sentinels[e.Code] }

// Temporary reports whether retrying the same request later may succeed
// (UNAVAILABLE, QUOTA_EXCEEDED, INTERNAL; and the cluster's MOVED and
// TRY_AGAIN, which change nothing: the request succeeds once it reaches the
// shard's owner).
func (e *BrokerError) Temporary() bool {
	switch e.Code {
	case CodeUnavailable, CodeQuotaExceeded, CodeInternal, CodeMoved, CodeTryAgain:
		return true
	}
	return false
}
