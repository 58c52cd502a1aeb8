/*  gt_slabs.h — small records of varying size without an allocator header
    each.

    The broker keeps a million object records of a few dozen bytes (a
    header and the object id).  malloc adds 8 bytes to each and rounds to
    16 (a 35-byte record takes 48); here a record takes its size rounded up
    to 4, and at least 8 (36).  Each size class (8, 12, 16, ...
    GT_SLABS_MAX bytes) carves its records out of chunks of GT_SLABS_CHUNK
    bytes and keeps the ones freed on a list for its next record; chunks go
    back only at _destroy, so memory freed in one class is not reused by
    another.  Larger records are plain malloc.  A record whose rounded size
    is a multiple of 8 is 8-byte aligned, any other 4-byte aligned: a
    record that needs 8 (a pointer, a uint64_t) and has a tail of varying
    length (a string) asks for a size rounded up to 8.  The caller says the
    size again when freeing (it knows it: an object record's id is in it).

    Under AddressSanitizer the free parts of chunks are poisoned: a record
    read or written after it was freed (until the class hands it out
    again) or past its rounded size is reported, as with malloc, except in
    the last 4 bytes of a record whose 8-byte granule it shares with a live
    neighbour (AddressSanitizer poisons whole granules): those a record of
    a size that is not a multiple of 8 may touch unreported.  */
#ifndef GT_SLABS_H_INCLUDED
#define GT_SLABS_H_INCLUDED

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define GT_SLABS_MAX        256             //  largest record from a slab (bytes)
#define GT_SLABS_CHUNK      (64 * 1024)     //  bytes a class takes at a time

typedef struct gt_slabs_t gt_slabs_t;

gt_slabs_t *gt_slabs_new (void);
//  Free every chunk; nulls the pointer.  Records still out are gone with
//  their chunks, except those larger than GT_SLABS_MAX (their own malloc:
//  free them first).
void gt_slabs_destroy (gt_slabs_t **self_p);

//  A record of size bytes (> 0), uninitialised; never NULL.
void *gt_slabs_alloc (gt_slabs_t *self, size_t size);
//  Give a record back; size as it was allocated with.
void gt_slabs_free (gt_slabs_t *self, void *record, size_t size);

//  Bytes taken from the system (chunks; not the malloc'd large records).
size_t gt_slabs_bytes (gt_slabs_t *self);

#ifdef __cplusplus
}
#endif
#endif
