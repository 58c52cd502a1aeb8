/*  gt_records.c — records of one size known by a 32-bit index; the
    contract is in gt_records.h.

    A block: S_HEADER bytes (its number first), then GT_RECORDS_PER_BLOCK
    records.  It starts at an address that is a multiple of self->align (a
    power of two at least its size), so that a record's block is its
    address & ~(align - 1).  Blocks are carved S_REGION_BLOCKS at a time
    from one mapping (a region: one more align is mapped, and the parts
    before and after the aligned region unmapped), not one mapping each:
    the system limits a process's mappings (vm.max_map_count, 65,530 by
    default), and a block a mapping would reach it at 268M leases.  The
    bytes between a block's end and the next block are never touched.  A
    slot is the record's offset in the block over the record size,
    computed by a multiply (self->reciprocal: exact, since the offset is a
    multiple of the size below 2^32 / size).  */
#include <czmq.h>
#include "gt_poison.h"
#include <sys/mman.h>
#include "gt_records.h"

#define S_HEADER        64          //  bytes before a block's first record (its number first)
#define S_REGION_BLOCKS 64          //  blocks a mapping holds
#define S_SIZE_MAX      1024        //  largest record

struct gt_records_t {
    size_t size;                    //  bytes of a record
    uint64_t reciprocal;            //  ceil (2^32 / size): offset * it >> 32 = offset / size
    size_t block_bytes;             //  a block's header and records
    size_t align;                   //  a power of two >= block_bytes: where blocks start
    char **blocks;                  //  block bases by number (a region's first starts it)
    size_t block_count;             //  blocks mapped
    size_t block_cap;               //  entries of blocks allocated
    void *free;                     //  freed records, linked through their first 8 bytes
    char *fresh;                    //  next never-used record of the newest block
    char *fresh_end;                //  end of its records
    size_t bytes;                   //  bytes of blocks records were carved from
    size_t out;                     //  records handed out and not freed
};

gt_records_t *
gt_records_new (size_t size)
{
    assert (size >= sizeof (void *) && size % 8 == 0 && size <= S_SIZE_MAX);
    gt_records_t *self = (gt_records_t *) zmalloc (sizeof (gt_records_t));
    assert (self);
    self->size = size;
    self->reciprocal = ((UINT64_C (1) << 32) + size - 1) / size;
    self->block_bytes = S_HEADER + GT_RECORDS_PER_BLOCK * size;
    self->align = 1;
    while (self->align < self->block_bytes)
        self->align *= 2;
    return self;
}

void
gt_records_destroy (gt_records_t **self_p)
{
    assert (self_p);
    gt_records_t *self = *self_p;
    if (self) {
        for (size_t number = 0; number < self->block_count; number += S_REGION_BLOCKS) {
            GT_UNPOISON (self->blocks [number], S_REGION_BLOCKS * self->align);
            munmap (self->blocks [number], S_REGION_BLOCKS * self->align);
        }
        free (self->blocks);
        free (self);
        *self_p = NULL;
    }
}

//  One more block, aligned (from a new region when the last is full); its
//  records become the fresh ones
static void
s_block_map (gt_records_t *self)
{
    assert (self->block_count < GT_RECORDS_MAX / GT_RECORDS_PER_BLOCK);
    char *base;
    if (self->block_count % S_REGION_BLOCKS == 0) {
        size_t region = S_REGION_BLOCKS * self->align;
        char *mapped = (char *) mmap (NULL, region + self->align, PROT_READ | PROT_WRITE,
                                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        assert (mapped != MAP_FAILED);  //  out of address space: an environment error
        base = (char *) (((uintptr_t) mapped + self->align - 1) & ~(uintptr_t) (self->align - 1));
        if (base > mapped)
            munmap (mapped, (size_t) (base - mapped));
        char *end = mapped + region + self->align;
        if (base + region < end)
            munmap (base + region, (size_t) (end - (base + region)));
        GT_POISON (base, region);
    }
    else
        base = self->blocks [self->block_count - 1] + self->align;
    if (self->block_count == self->block_cap) {
        self->block_cap = self->block_cap ? self->block_cap * 2 : 16;
        self->blocks = (char **) realloc (self->blocks, self->block_cap * sizeof (char *));
        assert (self->blocks);
    }
    uint32_t number = (uint32_t) self->block_count;
    GT_UNPOISON (base, sizeof (number));     //  the rest of the header, and past the records, stay poisoned
    memcpy (base, &number, sizeof (number));
    self->blocks [self->block_count++] = base;
    self->fresh = base + S_HEADER;
    self->fresh_end = base + self->block_bytes;
}

void *
gt_records_alloc (gt_records_t *self)
{
    assert (self);
    if (self->free) {
        void *record = self->free;
        GT_UNPOISON (record, self->size);
        memcpy (&self->free, record, sizeof (void *));
        self->out++;
        return record;
    }
    if (self->fresh == self->fresh_end)
        s_block_map (self);
    void *record = self->fresh;
    self->fresh += self->size;
    self->bytes += self->size;
    self->out++;
    GT_UNPOISON (record, self->size);
    return record;
}

void
gt_records_free (gt_records_t *self, void *record)
{
    assert (self);
    if (!record)
        return;
    memcpy (record, &self->free, sizeof (void *));
    self->free = record;
    assert (self->out > 0);
    self->out--;
    GT_POISON (record, self->size);
}

uint32_t
gt_records_index (gt_records_t *self, const void *record)
{
    assert (self);
    assert (record);
    const char *base = (const char *) ((uintptr_t) record & ~(uintptr_t) (self->align - 1));
    uint32_t number;
    memcpy (&number, base, sizeof (number));
    uint64_t offset = (uint64_t) ((const char *) record - base - S_HEADER);
    uint64_t slot = (offset * self->reciprocal) >> 32;
    assert (number < self->block_count && self->blocks [number] == base && slot * self->size == offset);
    return number * GT_RECORDS_PER_BLOCK + (uint32_t) slot;
}

void *
gt_records_at (gt_records_t *self, uint32_t index)
{
    assert (self);
    assert (index / GT_RECORDS_PER_BLOCK < self->block_count);
    return self->blocks [index / GT_RECORDS_PER_BLOCK] + S_HEADER
         + (size_t) (index % GT_RECORDS_PER_BLOCK) * self->size;
}

size_t
gt_records_bytes (gt_records_t *self)
{
    assert (self);
    return self->bytes;
}

size_t
gt_records_out (gt_records_t *self)
{
    assert (self);
    return self->out;
}
