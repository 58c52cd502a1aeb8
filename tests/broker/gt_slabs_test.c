/*  gt_slabs_test.c — selftest of gt_slabs: records of every size are
    aligned (to 8 when their rounded size is a multiple of 8, else to 4),
    take their size rounded up to 4 (8 at least), hold their bytes without
    overlapping each other across many chunks, and freed ones are reused
    before new memory is taken.  */
#include <czmq.h>
#include "gt_slabs.h"
#include "gt_broker_selftest.h"

#define S_TEST_RECORDS  50000

//  Fill a record with a byte derived from its index, and check it back
static void
s_test_fill (unsigned char *record, size_t size, size_t index)
{
    memset (record, (int) (index * 7 + 1) & 0xFF, size);
}

static bool
s_test_holds (const unsigned char *record, size_t size, size_t index)
{
    for (size_t at = 0; at < size; at++)
        if (record [at] != ((index * 7 + 1) & 0xFF))
            return false;
    return true;
}

void
gt_slabs_test (bool verbose)
{
    printf (" * gt_slabs: ");
    gt_slabs_t *slabs = gt_slabs_new ();
    assert (gt_slabs_bytes (slabs) == 0);

    //  Every size up to past the largest class, many of each: all aligned,
    //  none overlapping (each keeps its own fill)
    unsigned char **records = (unsigned char **) zmalloc (S_TEST_RECORDS * sizeof (unsigned char *));
    size_t *sizes = (size_t *) zmalloc (S_TEST_RECORDS * sizeof (size_t));
    for (size_t index = 0; index < S_TEST_RECORDS; index++) {
        sizes [index] = 1 + index % (GT_SLABS_MAX + 40);
        records [index] = (unsigned char *) gt_slabs_alloc (slabs, sizes [index]);
        size_t rounded = (sizes [index] + 3) / 4 * 4;
        if (sizes [index] > GT_SLABS_MAX || rounded % 8 == 0)
            assert (((uintptr_t) records [index] & 7) == 0);
        else
            assert (((uintptr_t) records [index] & 3) == 0);
        s_test_fill (records [index], sizes [index], index);
    }
    for (size_t index = 0; index < S_TEST_RECORDS; index++)
        assert (s_test_holds (records [index], sizes [index], index));
    size_t taken = gt_slabs_bytes (slabs);
    //  Every class of the first 50,000 records needs a chunk or more (sizes
    //  1 .. 8 share one)
    assert (taken >= (GT_SLABS_MAX / 4 - 1) * (size_t) GT_SLABS_CHUNK);
    if (verbose)
        printf ("\n   %d records of 1 .. %d bytes: %zu chunks\n", S_TEST_RECORDS, GT_SLABS_MAX + 40,
                taken / GT_SLABS_CHUNK);

    //  Free every other one, allocate them again: no new memory, and the
    //  ones kept are untouched
    for (size_t index = 0; index < S_TEST_RECORDS; index += 2)
        gt_slabs_free (slabs, records [index], sizes [index]);
    for (size_t index = 0; index < S_TEST_RECORDS; index += 2) {
        records [index] = (unsigned char *) gt_slabs_alloc (slabs, sizes [index]);
        s_test_fill (records [index], sizes [index], index);
    }
    assert (gt_slabs_bytes (slabs) == taken);
    for (size_t index = 0; index < S_TEST_RECORDS; index++)
        assert (s_test_holds (records [index], sizes [index], index));

    //  A record freed is the next one of its class (sizes 33 .. 36 share one)
    unsigned char *freed = records [32];
    assert (sizes [32] == 33);
    gt_slabs_free (slabs, freed, 33);
    unsigned char *again = (unsigned char *) gt_slabs_alloc (slabs, 36);
    assert (gt_slabs_bytes (slabs) == taken);
    assert (again == freed);
    records [32] = again;
    sizes [32] = 36;
    s_test_fill (again, 36, 32);
    //  A record takes its size rounded up to 4: two fresh records of 25
    //  bytes in a row are 28 apart; and 8 at least (1 byte: 8 apart)
    gt_slabs_t *fresh = gt_slabs_new ();
    unsigned char *first = (unsigned char *) gt_slabs_alloc (fresh, 25);
    unsigned char *second = (unsigned char *) gt_slabs_alloc (fresh, 25);
    assert (second - first == 28);
    first = (unsigned char *) gt_slabs_alloc (fresh, 1);
    second = (unsigned char *) gt_slabs_alloc (fresh, 1);
    assert (second - first == 8);
    gt_slabs_free (fresh, first, 1);
    assert (gt_slabs_alloc (fresh, 5) == first);    //  (1 .. 8 share a class)
    gt_slabs_destroy (&fresh);
    gt_slabs_free (slabs, NULL, 10);           //  NULL is ignored

    //  Give every record back (the large ones are malloc'd)
    for (size_t index = 0; index < S_TEST_RECORDS; index++)
        gt_slabs_free (slabs, records [index], sizes [index]);
    assert (gt_slabs_bytes (slabs) == taken);
    free (records);
    free (sizes);
    gt_slabs_destroy (&slabs);
    assert (slabs == NULL);
    gt_slabs_destroy (&slabs);                  //  twice is harmless
    printf ("OK\n");
}
