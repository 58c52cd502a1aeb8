-- 005: cluster mode (GTLP.md §14, docs/CLUSTER.md): several active brokers
-- share the shards of one database.
--
-- In single mode (the default) everything stays as before: one broker
-- writes gt_events with one sequence and the gt_meta counters.  In cluster
-- mode each broker writes only the shards it owns, so nothing may be shared
-- between them but the rows of those shards: events are numbered per shard
-- (gt_shard_events), the counters are per shard (gt_shard_counters), and
-- each broker has its own commit token (gt_commit_tokens).

-- Which mode the database runs in, set by the first broker that starts on
-- it; a broker of the other mode refuses to start (NULL: not decided yet).
ALTER TABLE gt_meta ADD COLUMN mode text CHECK (mode IN ('single', 'cluster'));
UPDATE gt_meta SET mode = 'single'
 WHERE last_seq > 0 OR fence_counter > 0 OR EXISTS (SELECT 1 FROM gt_leases);

-- Per shard: the newest event seq and the fence floor (a new owner
-- continues both).  Every shard starts at the single mode's fence floor, so
-- a fence never goes back when a database changes mode.
CREATE TABLE gt_shard_counters (
    shard           smallint PRIMARY KEY CHECK (shard BETWEEN 0 AND 255),
    last_seq        bigint   NOT NULL DEFAULT 0,
    fence_counter   bigint   NOT NULL DEFAULT 0
);
INSERT INTO gt_shard_counters (shard, fence_counter)
SELECT s, (SELECT fence_counter FROM gt_meta) FROM generate_series (0, 255) AS s;

-- The event history in cluster mode, per shard (REPLAY of a shard).
CREATE TABLE gt_shard_events (
    shard   smallint NOT NULL CHECK (shard BETWEEN 0 AND 255),
    seq     bigint   NOT NULL CHECK (seq > 0),
    kind    text     NOT NULL,
    at      bigint   NOT NULL,
    topic   text     NOT NULL,
    body    bytea    NOT NULL,
    PRIMARY KEY (shard, seq)
);

-- Each broker's commit token (lost-commit detection after a reconnect, as
-- gt_meta.commit_token in single mode).
CREATE TABLE gt_commit_tokens (
    broker_id   text   PRIMARY KEY,
    token       bigint NOT NULL DEFAULT 0
);
