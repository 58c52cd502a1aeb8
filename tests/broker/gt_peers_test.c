/*  gt_peers_test.c — selftest of gt_peers (what a connection makes the broker hold), kept out of the
    production library.  */
#include <czmq.h>
#include "gt_peers.h"
#include "gt_broker_selftest.h"

//  --------------------------------------------------------------------------
//  Selftest

//  A seeded walk against a model: ids that share a cache slot (the same
//  last byte modulo 8, and ids that differ only before it), the empty id
//  and one cut at 255 bytes, each owed, settled and admitted at random;
//  the verdicts, the records and their count always agree with the model
#define S_WALK_IDS  13

static void
s_test_walk (void)
{
    gt_peers_t *peers = gt_peers_new (3, 1000);
    uint8_t ids [S_WALK_IDS][300];
    size_t sizes [S_WALK_IDS];
    for (int i = 0; i < S_WALK_IDS; i++) {
        memset (ids [i], 0, sizeof (ids [i]));
        sizes [i] = 5;
        ids [i][3] = (uint8_t) (i / 4);         //  differ before the last byte too
        ids [i][4] = (uint8_t) (1 + 8 * (i % 4));   //  last bytes 1, 9, 17, 25: one slot
    }
    ids [4][4] = 2;                             //  slot 2, with the long id below
    sizes [10] = 0;                             //  the empty id
    memset (ids [11], 0x5a, sizeof (ids [11]));
    sizes [11] = 300;                           //  cut at 255: slot 2 (0x5a)
    memset (ids [11] + 255, 0x07, 300 - 255);   //  past the cut: slot 7, were it not cut
    memcpy (ids [12], ids [0], 5);
    ids [12][5] = 1;                            //  ids [0] is its prefix; slot 1 as well
    sizes [12] = 6;
    uint64_t pending [S_WALK_IDS] = { 0 };
    gt_peer_t *records [S_WALK_IDS] = { NULL };
    uint64_t state = 0x9E3779B97F4A7C15ULL;
    for (int step = 0; step < 20000; step++) {
        state = state * 6364136223846793005ULL + 1442695040888963407ULL;
        int who = (int) ((state >> 33) % S_WALK_IDS);
        int what = (int) ((state >> 20) % 3);
        if (what == 0) {
            gt_peer_verdict_t verdict = gt_peers_admit (peers, ids [who], sizes [who]);
            assert (verdict == (pending [who] < 3 ? GT_PEER_ADMIT : GT_PEER_REFUSE));
        }
        else
        if (what == 1 && pending [who] < 4) {
            gt_peer_t *peer = gt_peers_owe (peers, ids [who], sizes [who]);
            assert (pending [who] == 0 || peer == records [who]);
            for (int other = 0; other < S_WALK_IDS; other++)
                assert (other == who || pending [other] == 0 || records [other] != peer);
            records [who] = peer;
            pending [who]++;
        }
        else
        if (pending [who] > 0) {
            gt_peers_settle (peers, records [who]);
            if (--pending [who] == 0)
                records [who] = NULL;
        }
        size_t owing = 0;
        for (int i = 0; i < S_WALK_IDS; i++)
            owing += pending [i] > 0;
        assert (gt_peers_count (peers) == owing);
    }
    gt_peers_destroy (&peers);
}

void
gt_peers_test (bool verbose)
{
    if (verbose)
        printf (" * gt_peers: ");
    gt_peers_t *peers = gt_peers_new (3, 1000);
    const uint8_t alice [5] = { 0, 0, 0, 0, 1 };
    const uint8_t bob [5] = { 0, 0, 0, 0, 2 };

    //  Nothing owed: admitted, no record
    assert (gt_peers_admit (peers, alice, sizeof (alice)) == GT_PEER_ADMIT);
    assert (gt_peers_count (peers) == 0);

    //  Up to the pending bound: admitted; at it: refused (pipe not full)
    gt_peer_t *held [3];
    for (int i = 0; i < 3; i++) {
        assert (gt_peers_admit (peers, alice, sizeof (alice)) == GT_PEER_ADMIT);
        held [i] = gt_peers_owe (peers, alice, sizeof (alice));
        assert (held [i] == held [0]);
    }
    assert (gt_peers_count (peers) == 1);
    assert (gt_peers_admit (peers, alice, sizeof (alice)) == GT_PEER_REFUSE);
    //  Another peer does not notice
    assert (gt_peers_admit (peers, bob, sizeof (bob)) == GT_PEER_ADMIT);

    //  One reply queued for a full pipe: over the bound, the peer is shed
    gt_peers_queued (peers, held [0], 10);
    assert (gt_peers_queued_bytes (peers) == 10);
    assert (gt_peers_admit (peers, alice, sizeof (alice)) == GT_PEER_SHED);
    gt_peers_unqueued (peers, held [0], 10);
    gt_peers_settle (peers, held [0]);
    assert (gt_peers_admit (peers, alice, sizeof (alice)) == GT_PEER_ADMIT);

    //  The byte bound alone: one big queued reply
    gt_peer_t *peer = gt_peers_owe (peers, bob, sizeof (bob));
    gt_peers_queued (peers, peer, 2000);
    assert (gt_peers_admit (peers, bob, sizeof (bob)) == GT_PEER_SHED);
    gt_peers_unqueued (peers, peer, 2000);
    assert (gt_peers_admit (peers, bob, sizeof (bob)) == GT_PEER_ADMIT);
    gt_peers_settle (peers, peer);

    //  Records go when nothing is owed
    gt_peers_settle (peers, held [0]);
    gt_peers_settle (peers, held [0]);
    assert (gt_peers_count (peers) == 0);
    assert (gt_peers_queued_bytes (peers) == 0);

    //  Ids longer than ZMTP allows are cut, not trusted; empty ids work
    uint8_t long_id [300];
    memset (long_id, 7, sizeof (long_id));
    peer = gt_peers_owe (peers, long_id, sizeof (long_id));
    assert (gt_peers_owe (peers, long_id, 255) == peer);
    gt_peer_t *empty = gt_peers_owe (peers, "", 0);
    assert (empty != peer && gt_peers_count (peers) == 2);
    gt_peers_settle (peers, peer);
    gt_peers_settle (peers, peer);
    gt_peers_destroy (&peers);      //  frees the record still held
    assert (peers == NULL);
    s_test_walk ();
    if (verbose)
        printf ("OK\n");
}
