-- 002_callbacks.sql — cleanup callbacks: the outbox, and each lease's
-- callback state; write-only indexes dropped.
--
-- A reclaim writes one gt_callbacks row per cleanup callback in the SAME
-- transaction as the reclaim itself (the lease and object rows, the
-- events), so a durable reclaim implies a durable outbox row.  Each
-- attempt's outcome updates the row; a delivered callback's row is deleted
-- (its lease row then says DELIVERED); a dead letter's row stays.  At start
-- the broker delivers every PENDING row again (same Idempotency-Key) and
-- restores DEAD ones as dead letters (broker/gt_store.h).

-- The lease's view of its callback (GTLP.md: cleanup_status,
-- cleanup_attempts, cleanup_error).  A constant default makes ADD COLUMN
-- cheap: no table rewrite.
ALTER TABLE gt_leases
    ADD COLUMN cleanup_status   text    CHECK (cleanup_status IN ('PENDING', 'DELIVERED', 'DEAD')),
    ADD COLUMN cleanup_attempts bigint  NOT NULL DEFAULT 0 CHECK (cleanup_attempts >= 0),
    ADD COLUMN cleanup_error    text;

-- The outbox: one row per callback not yet delivered (PENDING) or given up
-- on (DEAD).  job_id is the broker's id of the callback, unique in the store.
CREATE TABLE gt_callbacks (
    job_id          bigint  PRIMARY KEY CHECK (job_id > 0),
    lease_id        uuid,                       -- the lease whose cleanup URL is called (NULL: unknown)
    url             text    NOT NULL,
    body            text    NOT NULL,           -- the stored request body (compact JSON without "attempt")
    max_retries     bigint  NOT NULL CHECK (max_retries >= 0),
    retry_delay_ms  bigint  NOT NULL CHECK (retry_delay_ms >= 0),
    attempts        bigint  NOT NULL CHECK (attempts >= 0),
    status          text    NOT NULL CHECK (status IN ('PENDING', 'DEAD')),
    next_at         bigint,                     -- PENDING: wall ms of the next attempt; NULL: at once
    last_error      text    NOT NULL DEFAULT ''
);

-- The broker serves every read (GET, LIST, idempotent CREATE) from memory
-- and reads the tables only at start, in one pass: these indexes were
-- maintained on every write and used by nothing.  Without them a lease
-- write updates two indexes (the primary key and gt_leases_state_idx)
-- instead of five.  An operator's ad-hoc query by service or object scans
-- the table.
DROP INDEX gt_leases_service_idx;
DROP INDEX gt_leases_object_idx;
DROP INDEX gt_leases_idempotency_idx;
