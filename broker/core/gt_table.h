/*  gt_table.h — compact open-addressing hash table of pointers or record
    indexes.

    The broker keeps a million leases; a general-purpose hash (zhashx) would
    copy every 33-byte key and allocate an item per entry.  This table holds
    only the entry pointers (8 bytes per slot, 16 bits of the entry's hash
    in the bits above a user-space address, so that most probes need not
    read the entry: gt_table.c), or, for entries that are records of a
    gt_records store, their indexes (4 bytes per slot: 28 bits of index, 4
    of hash; half the memory, and a probe past a slot whose 4 bits agree
    by chance, 1 in 16, reads an entry it need not), uses linear probing with
    backward-shift deletion (no tombstones), and maps a hash to a slot with
    a multiply-shift ("fastrange"), so its capacity need not be a power of
    two and grows by 1.5x.  The caller supplies the hash of each key and a
    function that recomputes the hash of a stored entry (needed to move
    entries when deleting or growing).  */
#ifndef GT_TABLE_H_INCLUDED
#define GT_TABLE_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "gt_records.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gt_table_t gt_table_t;

//  Hash of a stored entry (must equal the hash it was inserted with);
//  ctx is the pointer given to gt_table_new.
typedef uint64_t (gt_table_hash_fn) (const void *entry, void *ctx);
//  True if a stored entry has the given key.
typedef bool (gt_table_match_fn) (const void *entry, const void *key);

//  An indexed table holds records whose index is below this (2^28 - 1)
#define GT_TABLE_INDEX_MAX  ((UINT32_C (1) << 28) - 1)

//  Create an empty table of entry pointers.
gt_table_t *gt_table_new (gt_table_hash_fn *hash_fn, void *ctx);
//  Create an empty table of the records of a gt_records store (not owned),
//  held by their index: the caller keeps every entry's index below
//  GT_TABLE_INDEX_MAX (checked on insert), which holds while no more than
//  GT_TABLE_INDEX_MAX records are ever out at once (gt_records_out).  An
//  entry stays handed out while it is in the table: lookups, removals and
//  growth read it by its index.
gt_table_t *gt_table_new_indexed (gt_table_hash_fn *hash_fn, void *ctx, gt_records_t *records);
//  Destroy the table (not the entries); nulls the pointer.
void gt_table_destroy (gt_table_t **self_p);

//  Find the entry with this key, or NULL.
void *gt_table_lookup (gt_table_t *self, uint64_t hash, gt_table_match_fn *match, const void *key);
//  Insert an entry (the caller guarantees its key is not present).
void gt_table_insert (gt_table_t *self, uint64_t hash, void *entry);
//  Remove this exact entry (pointer identity); returns false if absent.
bool gt_table_remove (gt_table_t *self, uint64_t hash, const void *entry);

//  Make room for count more entries, so that inserting them does not grow
//  the table on the way (each growth rereads every entry to rehash it): for
//  a bulk load that knows its size.
void gt_table_reserve (gt_table_t *self, size_t count);

//  Start fetching the slot a lookup or insert of this hash will read first,
//  for a caller that knows its next keys ahead (a bulk load): at a million
//  entries that read is a cache miss, which the hint lets overlap other work.
void gt_table_prefetch (gt_table_t *self, uint64_t hash);

//  Number of entries, and slots (for memory accounting: 8 or 4 bytes each).
size_t gt_table_size (gt_table_t *self);
size_t gt_table_capacity (gt_table_t *self);

//  Call fn for every entry (the table must not change meanwhile).
void gt_table_foreach (gt_table_t *self, void (*fn) (void *entry, void *arg), void *arg);

//  SipHash-1-3 of data under a 128-bit key: for keys a client chooses
//  (object ids), so that nobody can aim many keys at one slot.  One
//  compression round and three finalisation rounds, as Rust's HashMap and
//  Python's str hash use for the same purpose: the key stays secret, and
//  it costs 40 % fewer rounds than SipHash-2-4 for an id of 20 bytes.
uint64_t gt_siphash (const uint8_t key [16], const void *data, size_t size);

#ifdef __cplusplus
}
#endif
#endif
