package garbagetruck

import (
	"context"
	"time"
)

// The helpers below create leases with the object id and metadata
// conventions shared by every GarbageTruck SDK, so that services written in
// different languages agree on what an object id means.

func cleanupAt(url string) *CleanupConfig {
	if url == "" {
		return nil
	}
	return &CleanupConfig{URL: url}
}

// CreateTempFileLease leases a temporary file: object id = path, metadata
// {"path": path}. cleanupURL ("" for none) receives the callback that deletes it.
func (c *Client) CreateTempFileLease(ctx context.Context, path string, ttl time.Duration, cleanupURL string) (*Lease, error) {
	return c.CreateLease(ctx, CreateRequest{
		ObjectID:   path,
		ObjectType: ObjectTypeTemporaryFile,
		TTL:        ttl,
		Metadata:   map[string]string{"path": path},
		Cleanup:    cleanupAt(cleanupURL),
	})
}

// CreateDBRowLease leases a database row: object id = table + ":" + rowID,
// metadata {"table": table, "row_id": rowID}.
func (c *Client) CreateDBRowLease(ctx context.Context, table, rowID string, ttl time.Duration, cleanupURL string) (*Lease, error) {
	return c.CreateLease(ctx, CreateRequest{
		ObjectID:   table + ":" + rowID,
		ObjectType: ObjectTypeDatabaseRow,
		TTL:        ttl,
		Metadata:   map[string]string{"table": table, "row_id": rowID},
		Cleanup:    cleanupAt(cleanupURL),
	})
}

// CreateBlobLease leases a blob: object id = bucket + "/" + key, metadata
// {"bucket": bucket, "key": key}.
func (c *Client) CreateBlobLease(ctx context.Context, bucket, key string, ttl time.Duration, cleanupURL string) (*Lease, error) {
	return c.CreateLease(ctx, CreateRequest{
		ObjectID:   bucket + "/" + key,
		ObjectType: ObjectTypeBlobStorage,
		TTL:        ttl,
		Metadata:   map[string]string{"bucket": bucket, "key": key},
		Cleanup:    cleanupAt(cleanupURL),
	})
}

// CreateSessionLease leases a WebSocket (or user) session: object id =
// sessionID, metadata {"user_id": userID}.
func (c *Client) CreateSessionLease(ctx context.Context, sessionID, userID string, ttl time.Duration, cleanupURL string) (*Lease, error) {
	return c.CreateLease(ctx, CreateRequest{
		ObjectID:   sessionID,
		ObjectType: ObjectTypeWebSocketSession,
		TTL:        ttl,
		Metadata:   map[string]string{"user_id": userID},
		Cleanup:    cleanupAt(cleanupURL),
	})
}

// CreateCacheLease leases a cache entry: object id = cacheKey, no metadata.
func (c *Client) CreateCacheLease(ctx context.Context, cacheKey string, ttl time.Duration, cleanupURL string) (*Lease, error) {
	return c.CreateLease(ctx, CreateRequest{
		ObjectID:   cacheKey,
		ObjectType: ObjectTypeCacheEntry,
		TTL:        ttl,
		Cleanup:    cleanupAt(cleanupURL),
	})
}
