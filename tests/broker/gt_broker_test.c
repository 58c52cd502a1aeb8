/*  gt_broker_test.c — selftest of the broker actor (gt_broker_test):
    pipe commands, and the reply backlog for full or vanished peers.
    The protocol itself is covered by tests/test_broker.c.

    Over inproc:// on purpose: with no kernel socket buffers in between, a
    peer's pipe is full after exactly (broker HWM + peer HWM) replies.  */
#include <czmq.h>
#include "gt_broker.h"
#include "gt_msg.h"
#include "gt_broker_selftest.h"

static char *
s_command (zactor_t *broker, const char *command, const char *arg)
{
    zstr_sendx (broker, command, arg, NULL);
    return zstr_recv (broker);
}

static void
s_send_request (zsock_t *dealer, gt_cmd_t cmd, uint64_t rid)
{
    gt_msg_t request;
    memset (&request, 0, sizeof (request));
    request.kind = GT_MSG_REQUEST;
    request.version = GT_PROTOCOL_VERSION;
    request.cmd = cmd;
    request.rid = rid;
    void *data;
    size_t size;
    int rc = gt_msg_encode_alloc (&request, &data, &size);
    assert (rc == 0);
    rc = zmq_send (zsock_resolve (dealer), data, size, 0);
    assert (rc == (int) size);
    free (data);
}

static gt_msg_t *
s_recv_reply (zsock_t *dealer, int timeout_ms)
{
    zpoller_t *poller = zpoller_new (dealer, NULL);
    zsock_t *which = (zsock_t *) zpoller_wait (poller, timeout_ms);
    zpoller_destroy (&poller);
    if (!which)
        return NULL;
    zframe_t *frame = zframe_recv (dealer);
    gt_msg_t *reply = NULL;
    char err [128];
    gt_code_t code = gt_msg_decode (zframe_data (frame), zframe_size (frame), GT_MSG_REPLY,
                                    &reply, NULL, err, sizeof (err));
    assert (code == GT_OK);
    zframe_destroy (&frame);
    return reply;
}

static uint64_t
s_stat (zsock_t *dealer, const char *name)
{
    static uint64_t rid = 1000000;
    s_send_request (dealer, GT_CMD_STATS, ++rid);
    gt_msg_t *reply = s_recv_reply (dealer, 5000);
    assert (reply && reply->rid == rid);
    uint64_t value = UINT64_MAX;
    for (size_t i = 0; i < reply->stat_count; i++)
        if (streq (reply->stats [i].name, name))
            value = reply->stats [i].value;
    gt_msg_destroy (&reply);
    assert (value != UINT64_MAX);
    return value;
}

//  Ask STATS until the counter reaches at least value (or the deadline).
static bool
s_await_stat (zsock_t *dealer, const char *name, uint64_t value)
{
    int64_t deadline = zclock_mono () + 5000;
    while (zclock_mono () < deadline)
        if (s_stat (dealer, name) >= value)
            return true;
    return false;
}

static zsock_t *
s_dealer (const char *endpoint, int rcvhwm)
{
    zsock_t *dealer = zsock_new (ZMQ_DEALER);
    assert (dealer);
    zsock_set_rcvhwm (dealer, rcvhwm);
    zsock_set_sndhwm (dealer, 0);
    zsock_set_linger (dealer, 0);
    int rc = zsock_connect (dealer, "%s", endpoint);
    assert (rc == 0);
    return dealer;
}

void
gt_broker_test (bool verbose)
{
    gt_config_t *config = gt_config_new ();
    config->verbose = verbose;
    zactor_t *broker = zactor_new (gt_broker_actor, config);
    assert (broker);

    //  Pipe commands
    char *reply = s_command (broker, "BIND", "tcp://256.0.0.1:1");
    assert (streq (reply, "-1"));
    zstr_free (&reply);
    reply = s_command (broker, "EVENTS", "nonsense://x");
    assert (streq (reply, "-1"));
    zstr_free (&reply);
    reply = s_command (broker, "HWM", "10");
    assert (streq (reply, "0"));
    zstr_free (&reply);
    reply = s_command (broker, "BIND", "inproc://gt-broker-test");
    assert (streq (reply, "0"));
    zstr_free (&reply);
    reply = s_command (broker, "BIND", "tcp://127.0.0.1:*");
    assert (atoi (reply) > 0);
    zstr_free (&reply);
    reply = s_command (broker, "STORE", "FAIL");
    assert (streq (reply, "-1"));       //  not the test store
    zstr_free (&reply);
    reply = s_command (broker, "NO-SUCH-COMMAND", NULL);
    assert (reply && streq (reply, "-1"));  //  answered, so the caller does not hang
    zstr_free (&reply);

    //  A slow peer: its replies wait in the backlog, then all arrive
    zsock_t *control = s_dealer ("inproc://gt-broker-test", 1000);
    zsock_t *slow = s_dealer ("inproc://gt-broker-test", 1);
    enum { COUNT = 300 };
    for (uint64_t rid = 1; rid <= COUNT; rid++)
        s_send_request (slow, GT_CMD_HEALTH, rid);
    assert (s_await_stat (control, "replies_queued", 1));
    assert (s_stat (control, "replies_backlog") > 0);
    bool answered [COUNT + 1] = { false };
    for (int received = 0; received < COUNT; received++) {
        gt_msg_t *health = s_recv_reply (slow, 5000);
        assert (health && health->rid >= 1 && health->rid <= COUNT && !answered [health->rid]);
        assert (health->code == GT_OK);
        answered [health->rid] = true;
        gt_msg_destroy (&health);
    }
    assert (s_stat (control, "replies_backlog") == 0);
    assert (s_stat (control, "replies_dropped") == 0);

    //  A peer that leaves with replies queued: they are dropped, counted
    zsock_t *gone = s_dealer ("inproc://gt-broker-test", 1);
    for (uint64_t rid = 1; rid <= COUNT; rid++)
        s_send_request (gone, GT_CMD_HEALTH, rid);
    assert (s_await_stat (control, "replies_backlog", 1));
    zsock_destroy (&gone);
    assert (s_await_stat (control, "replies_dropped", 1));
    int64_t deadline = zclock_mono () + 5000;
    while (s_stat (control, "replies_backlog") > 0 && zclock_mono () < deadline)
        ;
    assert (s_stat (control, "replies_backlog") == 0);

    zsock_destroy (&slow);
    zsock_destroy (&control);
    zactor_destroy (&broker);

    //  A store that cannot open: the broker refuses to bind
    gt_config_set_storage (config, "postgres");
    gt_config_set_database_url (config, "postgresql://127.0.0.1/none");
    broker = zactor_new (gt_broker_actor, config);
    reply = s_command (broker, "BIND", "tcp://127.0.0.1:*");
    assert (streq (reply, "-1"));
    zstr_free (&reply);
    zactor_destroy (&broker);
    gt_config_destroy (&config);
}
