-- 007: the epoch proof of single mode locks and reads one row.
--
-- gt_prove_epochs (004) locks FOR SHARE the row of every shard a
-- transaction writes and compares each epoch: a batch of a hundred
-- creates touches some eighty shards, and each row lock dirties a page
-- and writes a WAL record.  It was about a sixth of the writer's time
-- (pg_stat_statements: 0.22 ms a transaction; README, Performance).
--
-- In single mode (gt_meta.mode, 005) no transaction changes the owner or
-- the epoch of some shards only: an acquisition locks all 256 rows FOR
-- UPDATE and raises every epoch, and a release clears every owner the
-- broker holds, which is all of them (gt_pgshards.c).  Each writes the row
-- of shard 0.  So the broker still owns every shard at the epochs it
-- acquired exactly when shard 0's row still names it at the epoch it
-- acquired; and a share lock on that row conflicts with every change the
-- proof guards against, as the eighty locks did.  A transaction that
-- proved commits before another broker can acquire, or fails (SQLSTATE
-- GTF01) if one acquired first.
--
-- Cluster mode keeps gt_prove_epochs: there shards change hands one by
-- one, so each written row is locked and compared.
CREATE FUNCTION gt_prove_epoch_single (broker text, claimed bigint) RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
    held record;
BEGIN
    SELECT owner, epoch INTO held FROM gt_shards WHERE shard = 0 FOR SHARE;
    IF NOT FOUND OR held.owner IS DISTINCT FROM broker OR held.epoch <> claimed THEN
        RAISE EXCEPTION 'fenced: shard 0 is owned by % at epoch %, not by % at epoch %',
            coalesce (held.owner, 'nobody'), held.epoch, broker, claimed
            USING ERRCODE = 'GTF01';
    END IF;
    RETURN 1;
END $$;
