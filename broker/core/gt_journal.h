/*  gt_journal.h — an undo log: fixed-size entries in the order they were
    pushed, taken off from the oldest end when they are committed and from
    the newest end when they are rolled back.

    The journal does not know what an entry means: its owner (the lease
    tables) writes a before-image or "how to unmake this" into each entry
    and, at commit or rollback, takes the entries off one by one and acts
    on them.  So there is no callback and no indirection: the owner drives
    the loop, as with gt_wheel_pop.

    Positions: every entry has an absolute position, counted from the
    journal's creation and never reused, so a position taken before a batch
    (gt_journal_position) still names the same point however many entries
    were committed since.  Commit takes off the entries before a position;
    rollback the entries at or after it, newest first.

    Memory: one array, doubled when full; committed entries at its start
    are reused by sliding the live ones down rather than growing.  An entry
    pointer stays valid until the next gt_journal_push.  */
#ifndef GT_JOURNAL_H_INCLUDED
#define GT_JOURNAL_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gt_journal_t gt_journal_t;

//  Create an empty journal of entries of entry_size bytes.
gt_journal_t *gt_journal_new (size_t entry_size);
//  Destroy the journal; entries still in it are dropped as they are (the
//  owner takes them off first if they own memory).  Nulls the pointer.
void gt_journal_destroy (gt_journal_t **self_p);

//  Append an entry, zeroed; returns it for the caller to fill.
void *gt_journal_push (gt_journal_t *self);
//  Position of the next entry to be pushed.
size_t gt_journal_position (gt_journal_t *self);
//  Entries in the journal (pushed, neither committed nor rolled back).
size_t gt_journal_size (gt_journal_t *self);

//  Commit: take off the oldest entry if it lies before position, else
//  return NULL.  Call until NULL to commit everything before position.
void *gt_journal_commit_next (gt_journal_t *self, size_t position);
//  Rollback: take off the newest entry if it lies at or after position,
//  else return NULL.  The position must not lie before the oldest entry
//  still in the journal (what was committed cannot be undone).
void *gt_journal_undo_next (gt_journal_t *self, size_t position);

#ifdef __cplusplus
}
#endif
#endif
