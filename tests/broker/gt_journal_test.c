/*  gt_journal_test.c — selftest of gt_journal: commits from the oldest
    end, rollbacks from the newest, positions that never repeat.  */
#include <czmq.h>
#include "gt_journal.h"
#include "gt_broker_selftest.h"

void
gt_journal_test (bool verbose)
{
    printf (" * gt_journal: ");
    if (verbose)
        printf ("\n");
    gt_journal_t *journal = gt_journal_new (sizeof (uint64_t));
    assert (gt_journal_position (journal) == 0 && gt_journal_size (journal) == 0);
    for (uint64_t value = 0; value < 1000; value++) {
        uint64_t *entry = (uint64_t *) gt_journal_push (journal);
        assert (*entry == 0);           //  zeroed
        *entry = value;
    }
    assert (gt_journal_position (journal) == 1000 && gt_journal_size (journal) == 1000);
    //  Commit the oldest 600, in order
    uint64_t *entry;
    uint64_t expect = 0;
    while ((entry = (uint64_t *) gt_journal_commit_next (journal, 600)))
        assert (*entry == expect++);
    assert (expect == 600 && gt_journal_size (journal) == 400);
    //  Roll back to 900, newest first
    expect = 999;
    while ((entry = (uint64_t *) gt_journal_undo_next (journal, 900)))
        assert (*entry == expect--);
    assert (expect == 899 && gt_journal_position (journal) == 900);
    //  Positions go on from there, across a slide of the live entries
    for (uint64_t value = 900; value < 2000; value++)
        *(uint64_t *) gt_journal_push (journal) = value;
    assert (gt_journal_position (journal) == 2000);
    expect = 600;
    while ((entry = (uint64_t *) gt_journal_commit_next (journal, 1500)))
        assert (*entry == expect++);
    assert (expect == 1500);
    expect = 1999;
    while ((entry = (uint64_t *) gt_journal_undo_next (journal, 1700)))
        assert (*entry == expect--);
    assert (gt_journal_position (journal) == 1700);
    //  Committing everything empties it; positions never repeat
    while (gt_journal_commit_next (journal, gt_journal_position (journal)))
        ;
    assert (gt_journal_size (journal) == 0 && gt_journal_position (journal) == 1700);
    *(uint64_t *) gt_journal_push (journal) = 7;
    assert (gt_journal_position (journal) == 1701);
    assert (gt_journal_undo_next (journal, 1700) != NULL);
    assert (gt_journal_undo_next (journal, 1700) == NULL);
    gt_journal_destroy (&journal);
    assert (journal == NULL);
    printf ("OK\n");
}
