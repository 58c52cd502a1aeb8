-- 008: a composite type per table the writer inserts into, so that a
-- batch's rows go to the server as ONE binary array of records.
--
-- Before, a batch sent one array per column and the statement read them
-- with unnest ($1::uuid[], $2::text[], ...): PostgreSQL runs a multi-
-- argument unnest as one function scan per array, each materialised into
-- its own tuplestore, then zips them.  For gt_leases' 18 columns that was
-- about half of a new lease's insert (100,000 rows from a table: 600 ms
-- by eighteen unnests, 330 ms by one unnest of a record array; README,
-- Performance).  unnest ($1::gt_lease_row []) is one scan.
--
-- Each type lists its table's columns in the order the writer encodes them
-- (gt_pgbatch.c); the statements name the table's columns, so a column an
-- operator adds to a table does not concern them.  The writer reads the
-- types' OIDs on each connection (a binary array names its element type).
--
-- These types are part of the writer's wire format: a record carries as
-- many columns as the running broker knows.  A later migration must never
-- ALTER or re-create them (brokers of the older build, still running in
-- a cluster, would have every batch refused); a new row shape gets a new
-- type name, and the old type is dropped only once no broker uses it.
CREATE TYPE gt_lease_row AS (
    id uuid, object_id text, object_type text, service_id text, state text, fence bigint,
    ttl_ms bigint, created_at bigint, renewed_at bigint, expires_at bigint, renewals bigint,
    metadata jsonb, cleanup jsonb, idempotency_key text, cleanup_status text,
    cleanup_attempts bigint, cleanup_error text, shard smallint);
CREATE TYPE gt_object_row AS (
    object_id text, fence bigint, live boolean, pending_at bigint, reason text,
    last_lease_id uuid, shard smallint);
CREATE TYPE gt_event_row AS (
    seq bigint, kind text, at bigint, topic text, body bytea, shard smallint);
CREATE TYPE gt_callback_row AS (
    job_id bigint, lease_id uuid, url text, body text, max_retries bigint,
    retry_delay_ms bigint, attempts bigint, status text, next_at bigint, last_error text,
    shard smallint);
