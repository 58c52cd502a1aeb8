package garbagetruck

import "time"

// The defaults every GarbageTruck SDK shares (C, Python, Go): the table
// "Names across the SDKs" in the README lists them, and
// tests/sdk_defaults checks that the three SDKs export the same values.
const (
	// DefaultTimeout is the per-call timeout used when neither the call's
	// context nor WithTimeout sets one.
	DefaultTimeout = 5 * time.Second

	// KeepAliveTTLFraction: Hold renews a lease every TTL × KeepAliveTTLFraction…
	KeepAliveTTLFraction float64 = 1.0 / 3

	// KeepAliveJitter: …give or take this fraction of that interval (±10 %),
	// drawn uniformly from math/rand/v2 (seeded by the runtime from the
	// operating system), so that many holders do not renew in lockstep.
	KeepAliveJitter float64 = 0.10
)
