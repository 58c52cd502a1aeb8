package garbagetruck

import "fmt"

// ShardCount is the number of shards the lease space is cut into
// (docs/CLUSTER.md): fixed, so that every broker and SDK agrees.
const ShardCount = 256

// FNV1a64 is the 64-bit FNV-1a hash of data.
func FNV1a64(data []byte) uint64 {
	hash := uint64(14695981039346656037)
	for _, b := range data {
		hash ^= uint64(b)
		hash *= 1099511628211
	}
	return hash
}

// ShardOf returns the shard of an object id: FNV-1a (64 bits) of its
// UTF-8 bytes, mod ShardCount. Every lease of the object lives in it.
// Vectors: proto-spec/vectors/shards/shards.json.
func ShardOf(objectID string) int {
	return int(FNV1a64([]byte(objectID)) % ShardCount)
}

// LeaseIDShard returns the shard a lease id names (its first byte).
func LeaseIDShard(leaseID string) (int, error) {
	if len(leaseID) != 32 {
		return 0, fmt.Errorf("%w: not a lease id: %q", ErrInvalidArgument, leaseID)
	}
	var shard int
	for _, c := range leaseID[:2] {
		switch {
		case c >= '0' && c <= '9':
			shard = shard*16 + int(c-'0')
		case c >= 'a' && c <= 'f':
			shard = shard*16 + int(c-'a'+10)
		default:
			return 0, fmt.Errorf("%w: not a lease id: %q", ErrInvalidArgument, leaseID)
		}
	}
	return shard, nil
}
