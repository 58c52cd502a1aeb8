/*  gt_pgbatch_private.h — what gt_pgbatch's selftest (tests/pg) reads
    beyond gt_pgbatch.h.  Not installed, not for the writer or the store.

    A batch's tables of encoded operations and their counts, the batch's
    prune and meta fields, and the binary arrays a statement's parameters
    are cut into (gt_pgbatch.c explains the encoding), with each table's
    column types, so that the test can check collapsing, merging and the
    bytes sent without a database.  */
#ifndef GT_PGBATCH_PRIVATE_H_INCLUDED
#define GT_PGBATCH_PRIVATE_H_INCLUDED

#include <czmq.h>
#include "gt_pgbatch.h"

#ifdef __cplusplus
extern "C" {
#endif

//  Binary arrays: header bytes before the elements (ndim, flags, element
//  type, size, lower bound), then per element an int32 big-endian length
//  (-1 for NULL) and the value
#define GT_PGBATCH_ARRAY_HEADER     20

//  Element type OIDs (pg_type.dat): what binary arrays declare they hold
#define GT_PGBATCH_OID_BOOL         16
#define GT_PGBATCH_OID_BYTEA        17
#define GT_PGBATCH_OID_INT8         20
#define GT_PGBATCH_OID_INT2         21
#define GT_PGBATCH_OID_TEXT         25
#define GT_PGBATCH_OID_UUID         2950
#define GT_PGBATCH_OID_JSONB        3802

//  Columns of each table, in statement order, and their element types
#define GT_PGBATCH_LEASE_COLUMNS    18
#define GT_PGBATCH_OBJECT_COLUMNS   7
#define GT_PGBATCH_EVENT_COLUMNS    6
#define GT_PGBATCH_CALLBACK_COLUMNS 11
extern const Oid gt_pgbatch_lease_types [GT_PGBATCH_LEASE_COLUMNS];
extern const Oid gt_pgbatch_object_types [GT_PGBATCH_OBJECT_COLUMNS];
extern const Oid gt_pgbatch_event_types [GT_PGBATCH_EVENT_COLUMNS];
extern const Oid gt_pgbatch_callback_types [GT_PGBATCH_CALLBACK_COLUMNS];

//  A growable run of bytes
typedef struct {
    char *data;                     //  bytes
    size_t size;                    //  bytes used
    size_t capacity;                //  bytes allocated
} gt_pgbatch_buffer_t;

//  One recorded operation (gt_pgbatch.c)
typedef struct gt_pgbatch_row_t gt_pgbatch_row_t;

//  The operations on one table, in recording order
typedef struct {
    bool collapse;                  //  one live row per key
    int columns;                    //  a put row's columns
    uint32_t *index;                //  collapse: row number + 1 by its key's hash (gt_pgbatch.c), or NULL
    size_t index_cap;               //  its slots: a power of two, at most half used
    gt_pgbatch_row_t *rows;         //  operations in recording order
    size_t count;                   //  rows used
    size_t capacity;                //  rows allocated
    size_t live_puts;               //  live put rows
    size_t live_deletes;            //  live delete rows
    size_t live_new_puts;           //  live put rows of keys never written before (of live_puts)
    gt_pgbatch_buffer_t arena;      //  every row, encoded as a binary record (gt_pgbatch.c)
} gt_pgbatch_table_t;

struct gt_pgbatch_t {
    gt_pgbatch_table_t leases;      //  gt_leases operations, keyed by lease id (hex)
    gt_pgbatch_table_t objects;     //  gt_objects operations, keyed by object id
    gt_pgbatch_table_t events;      //  gt_events rows (never collapsed)
    gt_pgbatch_table_t callbacks;   //  gt_callbacks operations, keyed by job id (decimal)
    uint64_t prune_from;            //  delete events with seq from this ...
    uint64_t prune_below;           //  ... up to below this one; 0: none
    bool has_meta;                  //  meta row to update
    uint64_t last_seq;              //  meta: newest event seq
    uint64_t fence_counter;         //  meta: largest fence handed out
    uint8_t touched [GT_SHARD_COUNT / 8];   //  shards written (bitmap): what the proof covers
    bool fenced;                    //  epochs set (gt_pgbatch_fence): prove them
    uint64_t epochs [GT_SHARD_COUNT];       //  the epoch each shard was recorded under
    uint64_t whole_epoch;           //  single mode's proof: shard 0's epoch when recorded (007); NONE if merged ones differ
    uint64_t shard_seq [GT_SHARD_COUNT];    //  newest event seq of each shard (cluster mode's counters)
    uint64_t prune_keep;            //  cluster mode: keep this many newest events per shard; 0: no prune
};

//  Binary arrays, one per column (the first columns of types), of the live
//  rows that are deletes (key column only: columns 1) or puts (every
//  column) into arrays [0 .. columns - 1].  Caller frees each buffer's data.
void gt_pgbatch_table_arrays (gt_pgbatch_table_t *table, bool deletes, const Oid *types,
                              int columns, gt_pgbatch_buffer_t *arrays);
//  One binary array of records of type row_type (of columns columns), one
//  per live put row: what a put statement is sent.  Caller frees its data.
void gt_pgbatch_table_records (gt_pgbatch_table_t *table, Oid row_type, int columns,
                               gt_pgbatch_buffer_t *array);

#ifdef __cplusplus
}
#endif
#endif
