-- 004: shards, their owners and epochs, the brokers (docs/CLUSTER.md).
--
-- The lease space is cut into 256 shards by the object id (GTLP.md §4.1:
-- FNV-1a 64 of the id's bytes, mod 256).  Each shard has one row saying
-- which broker owns it, under which epoch, until when (on PostgreSQL's
-- clock).  A broker acquires a shard by raising its epoch, renews its
-- ownership every second, and proves its epoch inside every write
-- transaction (gt_prove_epochs): a broker that lost a shard can never
-- commit for it again.

-- The shard of an object id.  Only the low byte of FNV-1a 64 is needed,
-- and the low byte of a product depends only on the low bytes of its
-- factors, so the hash runs on 8 bits: offset basis 0x25, prime 0xb3.
-- For the back-fill below and for operators' queries; the broker computes
-- the shard itself (gt_shard_of) and writes it.
CREATE FUNCTION gt_shard_of (object_id text) RETURNS smallint
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
    bytes bytea := convert_to (object_id, 'UTF8');
    hash int := 37;                                 -- 0x25
BEGIN
    FOR i IN 0 .. length (bytes) - 1 LOOP
        hash := ((hash # get_byte (bytes, i)) * 179) & 255;   -- 0xb3
    END LOOP;
    RETURN hash;
END $$;

-- One row per shard, all 256 from the start.  owner NULL: free.
CREATE TABLE gt_shards (
    shard           smallint PRIMARY KEY CHECK (shard BETWEEN 0 AND 255),
    owner           text     COLLATE "C",       -- GC_BROKER_ID of the owner, NULL when free
    epoch           bigint   NOT NULL DEFAULT 0 CHECK (epoch >= 0),   -- raised by every acquisition
    owned_until     timestamptz                  -- the ownership lease, on PostgreSQL's clock
);
INSERT INTO gt_shards (shard) SELECT generate_series (0, 255);

-- The brokers that ever ran on this database, with what clients are told.
-- seen_until is renewed with the broker's shards; a row past it is a
-- broker gone (kept for gtctl cluster until another takes its id).
CREATE TABLE gt_brokers (
    broker_id       text     COLLATE "C" PRIMARY KEY,
    endpoint        text     NOT NULL,          -- GC_ADVERTISE_ENDPOINT: requests
    events_endpoint text     NOT NULL DEFAULT '',   -- where it publishes events
    started_at      timestamptz NOT NULL DEFAULT now (),
    seen_until      timestamptz NOT NULL
);

-- Every row knows its shard (the takeover loads by shard).  Rows written
-- before this migration get it here; events cannot (their object is inside
-- the encoded body) and keep NULL: history from before shards.  No index
-- on it: a takeover loads many shards in one scan, and an index would cost
-- every CREATE a write.
ALTER TABLE gt_leases ADD COLUMN shard smallint;
UPDATE gt_leases SET shard = gt_shard_of (object_id);
ALTER TABLE gt_leases ALTER COLUMN shard SET NOT NULL;

ALTER TABLE gt_objects ADD COLUMN shard smallint;
UPDATE gt_objects SET shard = gt_shard_of (object_id);
ALTER TABLE gt_objects ALTER COLUMN shard SET NOT NULL;

ALTER TABLE gt_callbacks ADD COLUMN shard smallint;
UPDATE gt_callbacks SET shard = gt_shard_of (body::jsonb ->> 'object_id');

ALTER TABLE gt_events ADD COLUMN shard smallint;

-- The epoch proof every write transaction starts with: it locks the rows
-- of the shards the transaction writes (FOR SHARE, in shard order, so two
-- proofs never deadlock with each other or with an acquisition) and fails
-- the transaction, SQLSTATE GTF01, unless broker still owns each one at the
-- epoch it claims.  The lock conflicts with an acquisition's UPDATE: a
-- transaction that proved its epochs commits before another broker can
-- take one of those shards, or fails.
CREATE FUNCTION gt_prove_epochs (broker text, shards smallint [], epochs bigint []) RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
    wrong record;
BEGIN
    PERFORM 1 FROM gt_shards WHERE shard = ANY (shards) ORDER BY shard FOR SHARE;
    SELECT claim.shard, claim.epoch AS claimed, s.owner, s.epoch AS held INTO wrong
      FROM unnest (shards, epochs) AS claim (shard, epoch)
      LEFT JOIN gt_shards s ON s.shard = claim.shard
     WHERE s.shard IS NULL OR s.owner IS DISTINCT FROM broker OR s.epoch <> claim.epoch
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'fenced: shard % is owned by % at epoch %, not by % at epoch %',
            wrong.shard, coalesce (wrong.owner, 'nobody'), wrong.held, broker, wrong.claimed
            USING ERRCODE = 'GTF01';
    END IF;
    RETURN cardinality (shards);
END $$;
