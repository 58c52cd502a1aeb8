// Package garbagetruck is the Go SDK of GarbageTruck, a lease-based
// distributed garbage collector for microservices.
//
// A service leases the objects it creates (temporary files, database rows,
// blobs, sessions, cache entries) from the GarbageTruck broker, keeps the
// leases alive while it needs the objects, and releases them when it is done.
// When the last lease on an object ends (released, or expired because its
// holder stopped renewing it), the broker reclaims the object: it publishes an
// event and calls the object's cleanup endpoint.
//
// The SDK speaks GTLP/1 (proto-spec/GTLP.md in the GarbageTruck repository):
// ZeroMQ DEALER/ROUTER for requests, PUB/SUB for events, MessagePack bodies in
// a canonical encoding.
//
// # Clients
//
// [Dial] returns a [Client] bound to one service id. A Client is safe for
// concurrent use by many goroutines: requests are pipelined over one
// connection and matched to their replies by request id. Every call takes a
// context.Context and honours its deadline and cancellation; a default
// per-call timeout ([DefaultTimeout], 5 s, or [WithTimeout]) applies when the
// context has none.
//
// # Keep-alive
//
// [Client.Hold] creates a lease and keeps it alive in the background,
// renewing it every third of its TTL give or take 10 % ([KeepAliveTTLFraction],
// [KeepAliveJitter]); one keeper goroutine per Client renews all held leases
// together with RENEW_BATCH. [Held.Done] is closed when the lease is lost or released.
//
// # Events
//
// [Client.Subscribe] follows the broker's event stream, detects sequence gaps
// and fills them from the broker's history (REPLAY), so a subscriber sees
// every event of its topics exactly once, in order. Topics start with the
// service: [ServicePrefix] selects one service's events.
//
// # CURVE
//
// A broker with CURVE serves only the keys it trusts and binds each to a
// service and a role. [WithServerKey] and [WithClientCert] (or the
// environment variables GT_SERVER_KEY and GT_CLIENT_CERT) give a Client the
// broker's public key and its own secret certificate; requests, keep-alive
// and subscriptions all use them. [LoadCertificate] reads a certificate file.
//
// # Errors
//
// Broker errors are returned as *[BrokerError], which carries the broker's
// message and matches the sentinels ([ErrNotFound], [ErrLeaseEnded], ...) with
// errors.Is.
//
// # Webhooks
//
// [VerifySignature] and [CallbackHandler] check and decode the signed HTTP
// cleanup callbacks the broker sends to a lease's cleanup URL.
//
// The package gttest starts a real broker for tests.
package garbagetruck
