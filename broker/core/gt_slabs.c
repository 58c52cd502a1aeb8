/*  gt_slabs.c — small records without an allocator header; the contract
    is in gt_slabs.h.  */
#include <czmq.h>
#include "gt_poison.h"
#include "gt_slabs.h"

#define S_GRAIN     4                               //  sizes round up to this
#define S_LEAST     8                               //  and to this at least: a free record holds a link
#define S_CLASSES   (GT_SLABS_MAX / S_GRAIN)        //  class c holds records of (c + 1) * S_GRAIN bytes
_Static_assert (S_LEAST >= sizeof (void *), "a free record holds the link to the next");

//  A chunk: a link to the next, then records
typedef struct s_chunk_t s_chunk_t;
struct s_chunk_t {
    s_chunk_t *next;                //  next chunk of any class
};

typedef struct {
    void *free;                     //  freed records, linked through their first 8 bytes
    char *fresh;                    //  next never-used record in the newest chunk
    char *fresh_end;                //  end of that chunk
} s_class_t;

struct gt_slabs_t {
    s_class_t classes [S_CLASSES];  //  by size
    s_chunk_t *chunks;              //  every chunk taken
    size_t bytes;                   //  their bytes
};

//  The bytes a record of size bytes takes (size <= GT_SLABS_MAX)
static inline size_t
s_record_size (size_t size)
{
    size_t rounded = (size + S_GRAIN - 1) / S_GRAIN * S_GRAIN;
    return rounded < S_LEAST ? S_LEAST : rounded;
}

gt_slabs_t *
gt_slabs_new (void)
{
    gt_slabs_t *self = (gt_slabs_t *) zmalloc (sizeof (gt_slabs_t));
    assert (self);
    return self;
}

void
gt_slabs_destroy (gt_slabs_t **self_p)
{
    assert (self_p);
    gt_slabs_t *self = *self_p;
    if (self) {
        while (self->chunks) {
            s_chunk_t *chunk = self->chunks;
            self->chunks = chunk->next;
            GT_UNPOISON (chunk, GT_SLABS_CHUNK);
            free (chunk);
        }
        free (self);
        *self_p = NULL;
    }
}

void *
gt_slabs_alloc (gt_slabs_t *self, size_t size)
{
    assert (self);
    assert (size > 0);
    if (size > GT_SLABS_MAX) {
        void *record = malloc (size);
        assert (record);
        return record;
    }
    size_t record_size = s_record_size (size);
    s_class_t *class_ = &self->classes [record_size / S_GRAIN - 1];
    if (class_->free) {
        void *record = class_->free;
        GT_UNPOISON (record, record_size);
        memcpy (&class_->free, record, sizeof (void *));
        return record;
    }
    if (class_->fresh == NULL || class_->fresh + record_size > class_->fresh_end) {
        s_chunk_t *chunk = (s_chunk_t *) malloc (GT_SLABS_CHUNK);
        assert (chunk);
        chunk->next = self->chunks;
        self->chunks = chunk;
        self->bytes += GT_SLABS_CHUNK;
        class_->fresh = (char *) chunk + sizeof (s_chunk_t);
        class_->fresh_end = (char *) chunk + GT_SLABS_CHUNK;
        GT_POISON (class_->fresh, (size_t) (class_->fresh_end - class_->fresh));
    }
    void *record = class_->fresh;
    class_->fresh += record_size;
    GT_UNPOISON (record, record_size);
    return record;
}

void
gt_slabs_free (gt_slabs_t *self, void *record, size_t size)
{
    assert (self);
    if (!record)
        return;
    assert (size > 0);
    if (size > GT_SLABS_MAX) {
        free (record);
        return;
    }
    size_t record_size = s_record_size (size);
    s_class_t *class_ = &self->classes [record_size / S_GRAIN - 1];
    memcpy (record, &class_->free, sizeof (void *));
    class_->free = record;
    GT_POISON (record, record_size);
}

size_t
gt_slabs_bytes (gt_slabs_t *self)
{
    assert (self);
    return self->bytes;
}
