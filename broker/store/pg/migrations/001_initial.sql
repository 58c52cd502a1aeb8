-- 001_initial.sql — the GarbageTruck PostgreSQL store, first version.
--
-- Applied by gt_pgschema inside one transaction (serialised by an advisory
-- lock) and recorded in gt_schema_migrations, which gt_pgschema creates
-- itself before any migration runs.  Never edit a released migration: add
-- 002_<name>.sql instead.
--
-- Conventions: times are bigint milliseconds since the Unix epoch (UTC), so
-- deadlines are absolute and survive a restart; the enumerations are the
-- GTLP/1 wire names (proto-spec/GTLP.md §4.1); identifiers compare as bytes
-- (COLLATE "C": cheaper index maintenance, and ids have no language).

-- One row per lease the broker still knows: ACTIVE ones, and ended ones
-- until GC_LEASE_RETENTION forgets them (the broker deletes them then).
-- fillfactor leaves room for HOT updates: a renewal changes only columns
-- that no index covers.
CREATE TABLE gt_leases (
    id              uuid    PRIMARY KEY,        -- the 32-hex lease id ('0123…'::uuid accepts it as is)
    object_id       text    COLLATE "C" NOT NULL,
    object_type     text    NOT NULL CHECK (object_type IN ('UNKNOWN', 'DATABASE_ROW',
                        'BLOB_STORAGE', 'TEMPORARY_FILE', 'WEBSOCKET_SESSION', 'CACHE_ENTRY', 'CUSTOM')),
    service_id      text    COLLATE "C" NOT NULL,
    state           text    NOT NULL CHECK (state IN ('ACTIVE', 'RELEASED', 'EXPIRED')),
    fence           bigint  NOT NULL CHECK (fence >= 0),
    ttl_ms          bigint  NOT NULL CHECK (ttl_ms >= 0),
    created_at      bigint  NOT NULL,
    renewed_at      bigint  NOT NULL,
    expires_at      bigint  NOT NULL,           -- the deadline (ACTIVE) or the moment it ended
    renewals        bigint  NOT NULL DEFAULT 0,
    metadata        jsonb   NOT NULL DEFAULT '{}',   -- object of str -> str
    cleanup         jsonb,                      -- {url, payload?, max_retries?, retry_delay_ms?} or NULL
    idempotency_key text    COLLATE "C"         -- CREATE's key, remembered while the lease is retained
) WITH (fillfactor = 85);

-- LIST filters (service, object, state; oldest first) and recovery
-- (state = 'ACTIVE' ORDER BY created_at).
CREATE INDEX gt_leases_service_idx ON gt_leases (service_id, state);
CREATE INDEX gt_leases_object_idx  ON gt_leases (object_id);
CREATE INDEX gt_leases_state_idx   ON gt_leases (state, created_at);
-- Idempotent CREATE look-ups; not UNIQUE: the broker enforces uniqueness
-- and a write must never fail on it.
CREATE INDEX gt_leases_idempotency_idx ON gt_leases (service_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

-- One row per object the broker tracks: the fencing token of its current
-- (or last) life (GTLP.md §10.3), whether that life is open, and a reclaim
-- waiting out GC_CLEANUP_GRACE_PERIOD (so a restart still performs it).
CREATE TABLE gt_objects (
    object_id       text    COLLATE "C" PRIMARY KEY,
    fence           bigint  NOT NULL CHECK (fence >= 0),
    live            boolean NOT NULL,           -- >= 1 active lease, or reclaim pending
    pending_at      bigint,                     -- wall ms of the pending reclaim; NULL: none
    reason          text    CHECK (reason IN ('expired', 'released')),  -- why the last lease ended
    last_lease_id   uuid                        -- the lease that ended last (pending reclaim)
) WITH (fillfactor = 85);

-- The event history REPLAY serves (GTLP.md §5.9, §7): body is the encoded
-- EVENT map exactly as published, topic the frame published before it.
-- A seq is written again only after the broker rolled its first use back
-- (a failed batch): the later write wins.
CREATE TABLE gt_events (
    seq     bigint  PRIMARY KEY CHECK (seq > 0),
    kind    text    NOT NULL,
    at      bigint  NOT NULL,
    topic   text    NOT NULL,
    body    bytea   NOT NULL
);

-- Counters that must survive a restart: the newest event sequence number
-- and the largest fencing token handed out.  Exactly one row, updated by
-- every write transaction: commit_token is that transaction's token, which
-- tells the writer after a reconnect whether a transaction whose answer was
-- lost did commit.
CREATE TABLE gt_meta (
    id              smallint PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    last_seq        bigint   NOT NULL DEFAULT 0,
    fence_counter   bigint   NOT NULL DEFAULT 0,
    commit_token    bigint   NOT NULL DEFAULT 0
);
INSERT INTO gt_meta DEFAULT VALUES;
