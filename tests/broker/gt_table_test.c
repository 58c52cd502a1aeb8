/*  gt_table_test.c — selftest of gt_table: SipHash-1-3 reference values, then
    the table under a poor hash (many collisions) and a uniform one, as a
    table of pointers and as one of gt_records indexes.  */
#include <czmq.h>
#include "gt_table.h"
#include "gt_broker_selftest.h"

typedef struct {
    uint64_t key;                   //  test key
} s_item_t;

static uint64_t
s_item_hash (const void *entry, void *ctx)
{
    (void) ctx;
    //  A deliberately poor hash (many collisions) exercises the probing
    return ((const s_item_t *) entry)->key % 7 * 0x9E3779B97F4A7C15ULL;
}

static bool
s_item_match (const void *entry, const void *key)
{
    return ((const s_item_t *) entry)->key == *(const uint64_t *) key;
}

//  Every key at one home slot, the low 16 bits of the key as the hash's
//  (the bits gt_table keeps in each slot)
static uint64_t
s_one_home_hash (const void *entry, void *ctx)
{
    (void) ctx;
    return 0x8000000000000000ULL | (((const s_item_t *) entry)->key & 0xFFFF);
}

static size_t s_matches;           //  calls of s_counted_match

static bool
s_counted_match (const void *entry, const void *key)
{
    s_matches++;
    return s_item_match (entry, key);
}

//  A probe reads an entry only when the hash bits kept in its slot agree
static void
s_test_probe_reads (void)
{
    gt_table_t *table = gt_table_new (s_one_home_hash, NULL);
    s_item_t items [100];
    for (uint64_t i = 0; i < 100; i++) {
        items [i].key = i + 1;
        gt_table_insert (table, s_one_home_hash (&items [i], NULL), &items [i]);
    }
    s_item_t probe = { 200 };                   //  absent, bits unlike any
    s_matches = 0;
    assert (gt_table_lookup (table, s_one_home_hash (&probe, NULL), s_counted_match, &probe.key) == NULL);
    assert (s_matches == 0);
    probe.key = 50;                             //  present: read once
    assert (gt_table_lookup (table, s_one_home_hash (&probe, NULL), s_counted_match, &probe.key) == &items [49]);
    assert (s_matches == 1);
    probe.key = 50 + 0x10000;                   //  absent, the same bits as 50
    assert (gt_table_lookup (table, s_one_home_hash (&probe, NULL), s_counted_match, &probe.key) == NULL);
    assert (s_matches == 2);
    //  Removing from the middle of the cluster keeps the rest reachable
    assert (gt_table_remove (table, s_one_home_hash (&items [10], NULL), &items [10]));
    for (uint64_t i = 0; i < 100; i++)
        assert ((gt_table_lookup (table, s_one_home_hash (&items [i], NULL), s_item_match, &items [i].key)
                 == &items [i]) == (i != 10));
    gt_table_destroy (&table);
}

static void
s_count (void *entry, void *arg)
{
    (void) entry;
    (*(size_t *) arg)++;
}

//  A uniform hash (a bijection of the key)
static uint64_t
s_uniform_hash (const void *entry, void *ctx)
{
    (void) ctx;
    return ((const s_item_t *) entry)->key * 0x9E3779B97F4A7C15ULL;
}

//  Every key homed at the last slot, 4 bits of the key as the hash's
static uint64_t
s_last_home_hash (const void *entry, void *ctx)
{
    (void) ctx;
    return 0xFFFFFFFFFFFFFFF0ULL | (((const s_item_t *) entry)->key & 0xF);
}

//  An indexed table: records of a gt_records store, by key; the probes
//  read an entry only when the 4 hash bits in its slot agree
static void
s_test_indexed (void)
{
    gt_records_t *records = gt_records_new (sizeof (s_item_t));
    gt_table_t *table = gt_table_new_indexed (s_one_home_hash, NULL, records);
    enum { COUNT = 3 * GT_RECORDS_PER_BLOCK + 5 };
    s_item_t **items = (s_item_t **) calloc (COUNT, sizeof (s_item_t *));
    gt_table_reserve (table, 100);              //  no growth: the cluster stays in insertion order
    for (uint64_t i = 0; i < 100; i++) {
        items [i] = (s_item_t *) gt_records_alloc (records);
        items [i]->key = i + 1;
        gt_table_insert (table, s_one_home_hash (items [i], NULL), items [i]);
    }
    s_item_t probe = { 0x10000 };               //  absent, bits 0: like keys 16, 32, .. 96
    s_matches = 0;
    assert (gt_table_lookup (table, s_one_home_hash (&probe, NULL), s_counted_match, &probe.key) == NULL);
    assert (s_matches == 6);
    probe.key = 0x20005;                        //  absent, bits 5: like keys 5, 21, .. 85
    s_matches = 0;
    assert (gt_table_lookup (table, s_one_home_hash (&probe, NULL), s_counted_match, &probe.key) == NULL);
    assert (s_matches == 6);
    probe.key = 37;                             //  present: keys 5 and 21 with its bits come first
    s_matches = 0;
    assert (gt_table_lookup (table, s_one_home_hash (&probe, NULL), s_counted_match, &probe.key) == items [36]);
    assert (s_matches == 3);
    for (uint64_t i = 0; i < 100; i++)
        assert (gt_table_remove (table, s_one_home_hash (items [i], NULL), items [i]));
    assert (gt_table_size (table) == 0);
    gt_table_destroy (&table);

    //  Across several blocks, through growth, removals and shrinking
    table = gt_table_new_indexed (s_uniform_hash, NULL, records);
    for (uint64_t i = 100; i < COUNT; i++)
        items [i] = (s_item_t *) gt_records_alloc (records);
    for (uint64_t i = 0; i < COUNT; i++) {
        items [i]->key = i;
        gt_table_insert (table, s_uniform_hash (items [i], NULL), items [i]);
    }
    assert (gt_table_size (table) == COUNT && gt_table_capacity (table) * 3 >= COUNT * 4);
    for (uint64_t i = 0; i < COUNT; i += 3)
        assert (gt_table_remove (table, s_uniform_hash (items [i], NULL), items [i]));
    assert (!gt_table_remove (table, s_uniform_hash (items [0], NULL), items [0]));
    size_t counted = 0;
    gt_table_foreach (table, s_count, &counted);
    assert (counted == gt_table_size (table) && counted == COUNT - (COUNT + 2) / 3);
    for (uint64_t i = 0; i < COUNT; i++)
        assert (gt_table_lookup (table, s_uniform_hash (items [i], NULL), s_item_match, &i)
                == (i % 3 ? items [i] : NULL));
    for (uint64_t i = 0; i < COUNT; i++)
        if (i % 3)
            assert (gt_table_remove (table, s_uniform_hash (items [i], NULL), items [i]));
    assert (gt_table_size (table) == 0 && gt_table_capacity (table) <= 2048);
    gt_table_destroy (&table);
    gt_records_destroy (&records);
    free (items);

    //  Indexes past 16 bits (70,000 records), and a cluster at the last
    //  slot that wraps to the first: every entry found, then none
    enum { MANY = 70000 };
    records = gt_records_new (sizeof (s_item_t));
    table = gt_table_new_indexed (s_uniform_hash, NULL, records);
    items = (s_item_t **) calloc (MANY, sizeof (s_item_t *));
    for (uint64_t i = 0; i < MANY; i++) {
        items [i] = (s_item_t *) gt_records_alloc (records);
        items [i]->key = i;
        gt_table_insert (table, s_uniform_hash (items [i], NULL), items [i]);
    }
    for (uint64_t i = 0; i < MANY; i++)
        assert (gt_table_lookup (table, s_uniform_hash (items [i], NULL), s_item_match, &i) == items [i]);
    gt_table_t *wrapping = gt_table_new_indexed (s_last_home_hash, NULL, records);
    for (uint64_t i = MANY - 40; i < MANY; i++)
        gt_table_insert (wrapping, s_last_home_hash (items [i], NULL), items [i]);
    for (uint64_t i = MANY - 40; i < MANY; i++)
        assert (gt_table_lookup (wrapping, s_last_home_hash (items [i], NULL), s_item_match, &i) == items [i]);
    for (uint64_t i = MANY - 40; i < MANY; i += 2)
        assert (gt_table_remove (wrapping, s_last_home_hash (items [i], NULL), items [i]));
    for (uint64_t i = MANY - 40; i < MANY; i++)
        assert ((gt_table_lookup (wrapping, s_last_home_hash (items [i], NULL), s_item_match, &i) != NULL)
                == (i % 2 == 1));
    gt_table_destroy (&wrapping);
    for (uint64_t i = 0; i < MANY; i++)
        assert (gt_table_remove (table, s_uniform_hash (items [i], NULL), items [i]));
    assert (gt_table_size (table) == 0);
    gt_table_destroy (&table);
    gt_records_destroy (&records);
    free (items);
}

void
gt_table_test (bool verbose)
{
    (void) verbose;
    //  SipHash-1-3 reference values (the reference implementation,
    //  github.com/veorq/SipHash, built with cROUNDS=1 dROUNDS=3; the empty
    //  message's is also the first of Rust's SipHasher13 test vectors): key
    //  00..0f, message 00, 01, 02... of each length
    uint8_t key [16], message [64];
    for (int i = 0; i < 16; i++)
        key [i] = (uint8_t) i;
    for (int i = 0; i < 64; i++)
        message [i] = (uint8_t) i;
    assert (gt_siphash (key, message, 0) == 0xabac0158050fc4dcULL);
    assert (gt_siphash (key, message, 1) == 0xc9f49bf37d57ca93ULL);
    assert (gt_siphash (key, message, 7) == 0xd3927d989bb11140ULL);
    assert (gt_siphash (key, message, 8) == 0x369095118d299a8eULL);
    assert (gt_siphash (key, message, 15) == 0xd320d86d2a519956ULL);
    assert (gt_siphash (key, message, 16) == 0xcc4fdd1a7d908b66ULL);
    assert (gt_siphash (key, message, 17) == 0x9cf2689063dbd80cULL);
    assert (gt_siphash (key, message, 63) == 0x9d199062b7bbb3a8ULL);

    gt_table_t *table = gt_table_new (s_item_hash, NULL);
    assert (gt_table_lookup (table, 0, s_item_match, &(uint64_t) { 1 }) == NULL);
    enum { COUNT = 5000 };
    s_item_t *items = (s_item_t *) calloc (COUNT, sizeof (s_item_t));
    for (uint64_t i = 0; i < COUNT; i++) {
        items [i].key = i;
        gt_table_insert (table, s_item_hash (&items [i], NULL), &items [i]);
    }
    assert (gt_table_size (table) == COUNT);
    assert (gt_table_capacity (table) * 3 >= COUNT * 4);
    for (uint64_t i = 0; i < COUNT; i++)
        assert (gt_table_lookup (table, s_item_hash (&items [i], NULL), s_item_match, &i) == &items [i]);
    //  Remove every odd one; the even ones must all stay reachable
    for (uint64_t i = 1; i < COUNT; i += 2)
        assert (gt_table_remove (table, s_item_hash (&items [i], NULL), &items [i]));
    assert (!gt_table_remove (table, s_item_hash (&items [1], NULL), &items [1]));
    for (uint64_t i = 0; i < COUNT; i++) {
        void *found = gt_table_lookup (table, s_item_hash (&items [i], NULL), s_item_match, &i);
        assert (found == (i % 2 ? NULL : &items [i]));
    }
    size_t counted = 0;
    gt_table_foreach (table, s_count, &counted);
    assert (counted == COUNT / 2);
    //  Remove the rest: the table shrinks and ends empty
    for (uint64_t i = 0; i < COUNT; i += 2)
        assert (gt_table_remove (table, s_item_hash (&items [i], NULL), &items [i]));
    assert (gt_table_size (table) == 0);
    assert (gt_table_capacity (table) <= 2048);

    //  Uniform hashes at scale (as lease ids are): random insert/remove mix
    gt_table_t *big = gt_table_new (s_item_hash, NULL);
    for (uint64_t i = 0; i < COUNT; i++)
        gt_table_insert (big, s_item_hash (&items [i], NULL), &items [i]);
    for (uint64_t i = 0; i < COUNT; i += 3)
        assert (gt_table_remove (big, s_item_hash (&items [i], NULL), &items [i]));
    for (uint64_t i = 0; i < COUNT; i++)
        assert ((gt_table_lookup (big, s_item_hash (&items [i], NULL), s_item_match, &i) != NULL) == (i % 3 != 0));
    gt_table_destroy (&big);

    //  Reserved room: the inserts that fill it do not grow the table
    gt_table_t *sized = gt_table_new (s_item_hash, NULL);
    gt_table_insert (sized, s_item_hash (&items [0], NULL), &items [0]);
    gt_table_reserve (sized, COUNT - 1);
    size_t reserved = gt_table_capacity (sized);
    assert (reserved * 3 >= COUNT * 4);
    for (uint64_t i = 1; i < COUNT; i++) {
        gt_table_insert (sized, s_item_hash (&items [i], NULL), &items [i]);
        assert (gt_table_capacity (sized) == reserved);
    }
    for (uint64_t i = 0; i < COUNT; i++)
        assert (gt_table_lookup (sized, s_item_hash (&items [i], NULL), s_item_match, &i) == &items [i]);
    gt_table_reserve (sized, 0);                //  room enough already: nothing changes
    assert (gt_table_capacity (sized) == reserved);
    gt_table_destroy (&sized);

    gt_table_destroy (&table);
    assert (table == NULL);
    free (items);
    s_test_probe_reads ();
    s_test_indexed ();
}
