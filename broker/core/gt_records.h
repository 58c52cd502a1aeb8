/*  gt_records.h — records of one size, each also known by a 32-bit index.

    The broker's creation-order index (gt_lease_tables) holds an entry per
    lease: a pointer takes 8 bytes, an index 4 (4 MB less at a million
    leases).  Records here are carved from blocks of GT_RECORDS_PER_BLOCK
    records, each block aligned to a power of two larger than it (blocks
    are mapped 64 at a time), so that a record's block is its address with
    the low bits cleared, and the block's first bytes say its number:

        index = block number * GT_RECORDS_PER_BLOCK + slot in the block

    Both ways are O(1) and read no table but the blocks' list (index to
    record).  A block's pages are taken from the system as records are
    first handed out from them (it is reserved, not touched, when mapped),
    and blocks go back only at _destroy; freed records are kept on a list
    and handed out first.  Records are 8-byte aligned (size: a multiple of
    8, at least 8).  At most GT_RECORDS_MAX records are out at once.

    Under AddressSanitizer a record is poisoned until it is handed out
    (and from when it is freed until then again), as are a block's header
    after its number and its bytes past the last record.  */
#ifndef GT_RECORDS_H_INCLUDED
#define GT_RECORDS_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define GT_RECORDS_PER_BLOCK    4096                //  records of a block
#define GT_RECORDS_MAX          (UINT32_C (1) << 31)    //  indexes are below this

typedef struct gt_records_t gt_records_t;

//  Records of size bytes (a multiple of 8, 8 .. 1024).
gt_records_t *gt_records_new (size_t size);
//  Unmap every block; nulls the pointer.  Records still out are gone.
void gt_records_destroy (gt_records_t **self_p);

//  A record, uninitialised; never NULL (asserts below GT_RECORDS_MAX).
void *gt_records_alloc (gt_records_t *self);
//  Give a record back (NULL is ignored).
void gt_records_free (gt_records_t *self, void *record);

//  A record's index, and the record of an index (one handed out).
uint32_t gt_records_index (gt_records_t *self, const void *record);
void *gt_records_at (gt_records_t *self, uint32_t index);

//  Records handed out and not freed.  Since freed records are handed out
//  again before new ones are carved, every index is below the most
//  records ever out at once.
size_t gt_records_out (gt_records_t *self);

//  Bytes of the records ever carved from blocks (for memory accounting:
//  the pages a block has beyond them are mapped but not yet taken).
size_t gt_records_bytes (gt_records_t *self);

#ifdef __cplusplus
}
#endif
#endif
