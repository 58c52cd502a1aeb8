/*  gt_records_test.c — selftest of gt_records: records across several
    blocks are aligned, distinct, hold their bytes, and go from record to
    index and back; indexes count up from 0 in the order records are first
    handed out; freed records are handed out again first, with the same
    index, before new memory is carved.  */
#include <czmq.h>
#include "gt_records.h"
#include "gt_poison.h"
#include "gt_broker_selftest.h"

#define S_TEST_SIZE     88
#define S_TEST_COUNT    (3 * GT_RECORDS_PER_BLOCK + 17)

void
gt_records_test (bool verbose)
{
    (void) verbose;
    printf (" * gt_records: ");
    gt_records_t *records = gt_records_new (S_TEST_SIZE);
    assert (gt_records_bytes (records) == 0);
    unsigned char **out = (unsigned char **) zmalloc (S_TEST_COUNT * sizeof (unsigned char *));
    for (size_t i = 0; i < S_TEST_COUNT; i++) {
        out [i] = (unsigned char *) gt_records_alloc (records);
        assert (((uintptr_t) out [i] & 7) == 0);
        memset (out [i], (int) (i % 251), S_TEST_SIZE);
        assert (gt_records_index (records, out [i]) == i);
        assert (gt_records_at (records, (uint32_t) i) == out [i]);
        assert (gt_records_out (records) == i + 1);
    }
    assert (gt_records_bytes (records) == (size_t) S_TEST_COUNT * S_TEST_SIZE);
    for (size_t i = 0; i < S_TEST_COUNT; i++)
        for (size_t at = 0; at < S_TEST_SIZE; at++)
            assert (out [i][at] == i % 251);

    //  Freed ones come back first, newest freed first, with their index;
    //  under AddressSanitizer a freed record, a block's header after its
    //  number and the bytes past a block's last record are poisoned
    gt_records_free (records, out [5]);
#if defined (GT_POISON_ASAN)
    assert (__asan_address_is_poisoned (out [5] + 8) && !__asan_address_is_poisoned (out [6]));
    assert (__asan_address_is_poisoned (out [0] - 56) && !__asan_address_is_poisoned (out [0] - 64));
    assert (__asan_address_is_poisoned (out [GT_RECORDS_PER_BLOCK - 1] + S_TEST_SIZE));
#endif
    gt_records_free (records, out [GT_RECORDS_PER_BLOCK + 1]);
    gt_records_free (records, NULL);                //  ignored
    assert (gt_records_out (records) == S_TEST_COUNT - 2);
    assert (gt_records_alloc (records) == out [GT_RECORDS_PER_BLOCK + 1]);
    assert (gt_records_alloc (records) == out [5]);
    assert (gt_records_index (records, out [5]) == 5);
    assert (gt_records_bytes (records) == (size_t) S_TEST_COUNT * S_TEST_SIZE);
    //  Then the next never used, next in index
    void *next = gt_records_alloc (records);
    assert (gt_records_index (records, next) == S_TEST_COUNT);
    assert (gt_records_out (records) == S_TEST_COUNT + 1);
    gt_records_destroy (&records);
    assert (records == NULL);
    gt_records_destroy (&records);                  //  twice is harmless

    //  Every record size, 8 .. 1024: a whole block and the next's first
    //  record go from record to index and back exactly
    for (size_t size = 8; size <= 1024; size += 8) {
        records = gt_records_new (size);
        for (size_t i = 0; i < GT_RECORDS_PER_BLOCK + 1; i++) {
            void *record = gt_records_alloc (records);
            memset (record, 0xab, size);
            assert (gt_records_index (records, record) == i && gt_records_at (records, (uint32_t) i) == record);
        }
        gt_records_destroy (&records);
    }
    //  Past one mapping's 64 blocks: the next blocks come from another
    records = gt_records_new (8);
    size_t many = 65 * GT_RECORDS_PER_BLOCK + 2;
    void *first = NULL, *last = NULL;
    for (size_t i = 0; i < many; i++) {
        last = gt_records_alloc (records);
        memset (last, 0xcd, 8);
        if (i == 0)
            first = last;
    }
    assert (gt_records_index (records, first) == 0 && gt_records_index (records, last) == many - 1);
    assert (gt_records_at (records, (uint32_t) (many - 1)) == last);
    assert (gt_records_index (records, gt_records_at (records, 64 * GT_RECORDS_PER_BLOCK)) == 64 * GT_RECORDS_PER_BLOCK);
    gt_records_destroy (&records);
    free (out);
    printf ("OK\n");
}
