/*  gt_pg_selftest.h — the selftests of the PostgreSQL store's modules.

    They live here, in tests/pg (built into the runner gt_pg_selftest
    only), and not in the libraries gtpg and gtbroker: the daemon carries
    no test code, and nothing of it creates or drops databases.  Each uses
    its module's public API (the few helpers a test needs beyond it are
    declared in the module's header, which is not installed; gt_pgbatch's
    reads the batch's internals through gt_pgbatch_private.h) and the test
    databases of gt_pgtestdb.h; failures are asserts.  All but gt_pgbatch's
    and gt_storage's need DATABASE_URL (the runner skips them without it).  */
#ifndef GT_PG_SELFTEST_H_INCLUDED
#define GT_PG_SELFTEST_H_INCLUDED

#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

//  Choosing the store: the names accepted and refused, an unreachable
//  PostgreSQL (no database needed)
void gt_storage_test (bool verbose);
//  Batches (no database needed): collapsing, merging, the binary arrays
//  sent
void gt_pgbatch_test (bool verbose);
//  Migrations: embedded list, first run, no-op rerun, a newer schema
//  refused, a failing migration rolled back, brokers starting together
void gt_pgschema_test (bool verbose);
//  The writer: group commit, collapsing, outages, a session the server ends
void gt_pgwriter_test (bool verbose);
//  Shard ownership: acquire, standby, release and takeover, a crash, a
//  zombie, a restart under the same id, the epoch proof
void gt_pgshards_test (bool verbose);
//  Recovery: the metadata decoder, then 20,000 leases written and read back
void gt_pgload_test (bool verbose);
//  The store over them: recording, completions, recovery, an outage,
//  pruning, refusals
void gt_store_pg_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
