/*  gt_peers_test.c — selftest of gt_peers (what a connection makes the broker hold), kept out of the
    production library.  */
#include <czmq.h>
#include "gt_peers.h"
#include "gt_broker_selftest.h"

//  --------------------------------------------------------------------------
//  Selftest

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
    if (verbose)
        printf ("OK\n");
}
