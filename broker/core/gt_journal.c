/*  gt_journal.c — an undo log; the contract is in gt_journal.h.

    Entries [head, tail) of the array are live; position of entry i is
    base + i.  Committing moves head up; once the journal is empty, base
    absorbs tail and the array is reused from its start.  */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "gt_journal.h"

struct gt_journal_t {
    uint8_t *entries;               //  cap entries of entry_size bytes
    size_t entry_size;              //  bytes per entry
    size_t head;                    //  oldest live entry
    size_t tail;                    //  one past the newest
    size_t cap;                     //  entries allocated
    size_t base;                    //  absolute position of entries [0]
};

gt_journal_t *
gt_journal_new (size_t entry_size)
{
    assert (entry_size > 0);
    gt_journal_t *self = (gt_journal_t *) calloc (1, sizeof (gt_journal_t));
    assert (self);
    self->entry_size = entry_size;
    return self;
}

void
gt_journal_destroy (gt_journal_t **self_p)
{
    assert (self_p);
    gt_journal_t *self = *self_p;
    if (!self)
        return;
    free (self->entries);
    free (self);
    *self_p = NULL;
}

static void *
s_entry (gt_journal_t *self, size_t index)
{
    return self->entries + index * self->entry_size;
}

void *
gt_journal_push (gt_journal_t *self)
{
    assert (self);
    if (self->tail == self->cap) {
        if (self->head > 0) {
            //  Slide the live entries down rather than grow: a journal
            //  committed as it goes stays the size of one batch
            memmove (self->entries, s_entry (self, self->head),
                     (self->tail - self->head) * self->entry_size);
            self->base += self->head;
            self->tail -= self->head;
            self->head = 0;
        }
        if (self->tail == self->cap) {
            self->cap = self->cap ? self->cap * 2 : 256;
            self->entries = (uint8_t *) realloc (self->entries, self->cap * self->entry_size);
            assert (self->entries);
        }
    }
    void *entry = s_entry (self, self->tail++);
    memset (entry, 0, self->entry_size);
    return entry;
}

size_t
gt_journal_position (gt_journal_t *self)
{
    assert (self);
    return self->base + self->tail;
}

size_t
gt_journal_size (gt_journal_t *self)
{
    assert (self);
    return self->tail - self->head;
}

void *
gt_journal_commit_next (gt_journal_t *self, size_t position)
{
    assert (self);
    if (self->base + self->head < position) {
        assert (self->head < self->tail);
        return s_entry (self, self->head++);
    }
    if (self->head == self->tail) {
        //  Empty: start again at the front of the array
        self->base += self->tail;
        self->head = self->tail = 0;
    }
    return NULL;
}

void *
gt_journal_undo_next (gt_journal_t *self, size_t position)
{
    assert (self);
    assert (position >= self->base + self->head);
    if (self->base + self->tail > position)
        return s_entry (self, --self->tail);
    return NULL;
}
