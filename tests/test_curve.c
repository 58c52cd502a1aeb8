/*  test_curve.c — CURVE authentication end to end (GTLP.md §12, issue 13),
    through the C SDK (gt_client, gt_subscriber with CURVE) against a real
    broker over TCP loopback: certificates made with zcert in a temporary
    directory, as `gtctl keygen` makes them.

    One CURVE broker per process (ZeroMQ allows one ZAP handler per
    context), so the cases run one after the other, each on its own broker.  */
#include <czmq.h>
#include <unistd.h>
#include "gt_client.h"
#include "gt_subscriber.h"
#include "gt_test_util.h"
#include "gt_http_server.h"
#include "gt_webhook.h"

//  A temporary key directory: the broker's certificate, and clients/
typedef struct {
    char root [64];                 //  mkdtemp directory
    char clients [96];              //  root/clients (GC_CURVE_CLIENTS)
    char broker_secret [96];        //  root/broker_secret (GC_CURVE_CERT)
    char broker_public [96];        //  root/broker (the server key file)
} s_keys_t;

static void
s_keys_init (s_keys_t *keys)
{
    snprintf (keys->root, sizeof (keys->root), "/tmp/gt-curve-XXXXXX");
    assert (mkdtemp (keys->root));
    snprintf (keys->clients, sizeof (keys->clients), "%s/clients", keys->root);
    assert (mkdir (keys->clients, 0700) == 0);
    zcert_t *broker = zcert_new ();
    snprintf (keys->broker_public, sizeof (keys->broker_public), "%s/broker", keys->root);
    snprintf (keys->broker_secret, sizeof (keys->broker_secret), "%s/broker_secret", keys->root);
    assert (zcert_save (broker, keys->broker_public) == 0);
    zcert_destroy (&broker);
}

//  A client key: root/NAME_secret for the client; the public part into
//  clients/ when trusted.  Returns the secret file's path (caller frees).
static char *
s_key_with_secret (s_keys_t *keys, const char *name, const char *service, const char *role,
                   const char *callback_allow, const char *callback_secret, bool trusted)
{
    zcert_t *cert = zcert_new ();
    if (callback_secret)
        zcert_set_meta (cert, "callback-secret", "%s", callback_secret);
    if (service)
        zcert_set_meta (cert, "service", "%s", service);
    zcert_set_meta (cert, "role", "%s", role);
    if (callback_allow)
        zcert_set_meta (cert, "callback-allow", "%s", callback_allow);
    char *path = zsys_sprintf ("%s/%s", keys->root, name);
    assert (zcert_save (cert, path) == 0);
    if (trusted) {
        char *public_path = zsys_sprintf ("%s/%s", keys->clients, name);
        assert (zcert_save_public (cert, public_path) == 0);
        //  A callback-secret is refused in a file others may read
        assert (chmod (public_path, callback_secret ? 0600 : 0644) == 0);
        zstr_free (&public_path);
    }
    zcert_destroy (&cert);
    char *secret = zsys_sprintf ("%s_secret", path);
    zstr_free (&path);
    return secret;
}

static char *
s_key (s_keys_t *keys, const char *name, const char *service, const char *role,
       const char *callback_allow, bool trusted)
{
    return s_key_with_secret (keys, name, service, role, callback_allow, NULL, trusted);
}

static void
s_keys_remove (s_keys_t *keys)
{
    char *command = zsys_sprintf ("rm -rf '%s'", keys->root);
    assert (system (command) == 0);
    zstr_free (&command);
}

static gt_test_broker_t *
s_start (s_keys_t *keys)
{
    gt_config_t *config = gt_test_config ();
    gt_config_set_curve (config, keys->broker_secret, keys->clients);
    gt_test_broker_t *broker = gt_test_broker_start (config);
    gt_config_destroy (&config);
    return broker;
}

static gt_client_t *
s_client (gt_test_broker_t *broker, s_keys_t *keys, const char *service, const char *secret, int timeout_ms)
{
    gt_client_t *client = gt_client_new (broker->requests, service);
    assert (client);
    if (secret)
        assert (gt_client_set_curve (client, keys->broker_public, secret) == 0);
    gt_client_set_timeout (client, timeout_ms);
    return client;
}

//  CREATE an object; returns the code (and the lease id into id, if OK)
static gt_code_t
s_create (gt_client_t *client, const char *object, const char *url, char *id)
{
    gt_cleanup_t cleanup;
    memset (&cleanup, 0, sizeof (cleanup));
    cleanup.url = (char *) url;
    gt_create_args_t args = { .object_id = object, .ttl_ms = 30000, .cleanup = url ? &cleanup : NULL };
    gt_lease_info_t lease;
    memset (&lease, 0, sizeof (lease));
    gt_code_t code = gt_client_create_lease (client, &args, &lease);
    if (code == GT_OK && id)
        strcpy (id, lease.id);
    gt_lease_info_clear (&lease);
    return code;
}

static void
s_test_identity (void)
{
    s_keys_t keys;
    s_keys_init (&keys);
    char *a_secret = s_key (&keys, "a", "svc-a", "service", "http://127.0.0.1:9/svc-a/", true);
    char *observer_secret = s_key (&keys, "observer", NULL, "observer", NULL, true);
    char *stranger_secret = s_key (&keys, "stranger", "svc-a", "service", NULL, false);
    gt_test_broker_t *broker = s_start (&keys);

    //  A valid key for service A works; the service comes from the key
    gt_client_t *a = s_client (broker, &keys, NULL, a_secret, GT_TEST_TIMEOUT);
    char lease [GT_LEASE_ID_LEN + 1];
    assert (s_create (a, "a-object", NULL, lease) == GT_OK);
    gt_lease_info_t info;
    memset (&info, 0, sizeof (info));
    assert (gt_client_get_lease (a, lease, &info) == GT_OK);
    assert (streq (info.service_id, "svc-a"));
    gt_lease_info_clear (&info);
    assert (gt_client_renew_lease (a, lease, 0, &info) == GT_OK);
    gt_lease_info_clear (&info);
    gt_msg_t *reply = NULL;

    //  The same key claiming service B: PERMISSION_DENIED
    gt_client_t *a_as_b = s_client (broker, &keys, "svc-b", a_secret, GT_TEST_TIMEOUT);
    assert (s_create (a_as_b, "b-object", NULL, NULL) == GT_ERR_PERMISSION_DENIED);
    assert (strstr (gt_client_error (a_as_b), "not this key's service"));
    gt_client_destroy (&a_as_b);

    //  A cleanup URL outside the key's callback-allow prefixes
    assert (s_create (a, "a-cleanup", "http://127.0.0.1:9/other/x", NULL) == GT_ERR_INVALID_ARGUMENT);
    assert (strstr (gt_client_error (a), "callback-allow"));
    assert (s_create (a, "a-cleanup", "http://127.0.0.1:9/svc-a/x", NULL) == GT_OK);

    //  An observer reads everything and changes nothing
    gt_client_t *observer = s_client (broker, &keys, NULL, observer_secret, GT_TEST_TIMEOUT);
    assert (gt_client_get_lease (observer, lease, &info) == GT_OK);
    gt_lease_info_clear (&info);
    assert (s_create (observer, "o-object", NULL, NULL) == GT_ERR_PERMISSION_DENIED);
    assert (gt_client_release_lease (observer, lease, false, &info) == GT_ERR_PERMISSION_DENIED);
    assert (gt_client_stats (observer, &reply) == GT_OK);
    gt_msg_destroy (&reply);

    //  An unknown key and a plaintext client get nothing, and no crash
    gt_client_t *stranger = s_client (broker, &keys, NULL, stranger_secret, 500);
    assert (gt_client_health (stranger, &reply) == GT_ERR_UNAVAILABLE && gt_client_timed_out (stranger));
    gt_client_t *plain = s_client (broker, &keys, "svc-a", NULL, 500);
    assert (gt_client_health (plain, &reply) == GT_ERR_UNAVAILABLE && gt_client_timed_out (plain));
    gt_client_destroy (&stranger);
    gt_client_destroy (&plain);
    //  ... counted, and the broker still serves
    assert (gt_client_stats (observer, &reply) == GT_OK);
    assert (gt_client_stat_value (reply, "curve_handshakes_failed", 0) >= 2);
    assert (gt_client_stat_value (reply, "curve_keys_refused", 0) >= 1);
    gt_msg_destroy (&reply);

    //  A key removed from the directory stops working on its open
    //  connection within 1 s (GT_PRINCIPALS_REFRESH_MS, then every request)
    char *a_public = zsys_sprintf ("%s/a", keys.clients);
    assert (unlink (a_public) == 0);
    int64_t removed = zclock_mono ();
    gt_code_t code = GT_OK;
    while (code == GT_OK && zclock_mono () - removed < 1000) {
        code = gt_client_get_lease (a, lease, &info);
        gt_lease_info_clear (&info);
    }
    assert (code == GT_ERR_PERMISSION_DENIED);
    assert (strstr (gt_client_error (a), "no longer trusted"));
    zstr_free (&a_public);

    gt_client_destroy (&observer);
    gt_client_destroy (&a);
    gt_test_broker_stop (&broker);
    s_keys_remove (&keys);
    zstr_free (&a_secret);
    zstr_free (&observer_secret);
    zstr_free (&stranger_secret);
}

//  Service A's subscriber receives none of service B's events, even on
//  the empty prefix; REPLAY follows the same rule.
static void
s_test_events (void)
{
    s_keys_t keys;
    s_keys_init (&keys);
    char *a_secret = s_key (&keys, "a", "svc-a", "service", NULL, true);
    char *b_secret = s_key (&keys, "b", "svc-ab", "service", NULL, true);   //  starts like svc-a
    char *admin_secret = s_key (&keys, "admin", "svc-a", "admin", NULL, true);
    gt_test_broker_t *broker = s_start (&keys);
    gt_client_t *a = s_client (broker, &keys, NULL, a_secret, GT_TEST_TIMEOUT);
    gt_client_t *b = s_client (broker, &keys, NULL, b_secret, GT_TEST_TIMEOUT);

    gt_subscriber_t *subscriber = gt_subscriber_new (broker->events, broker->requests);
    assert (gt_subscriber_set_curve (subscriber, keys.broker_public, a_secret) == 0);
    gt_subscriber_subscribe (subscriber, "");
    //  Until the subscription works, A creates probes; B creates between
    gt_msg_t *event = NULL;
    int64_t deadline = zclock_mono () + GT_TEST_TIMEOUT;
    int probe = 0;
    while (!event && zclock_mono () < deadline) {
        char object [32];
        snprintf (object, sizeof (object), "b-%d", probe);
        assert (s_create (b, object, NULL, NULL) == GT_OK);
        snprintf (object, sizeof (object), "a-%d", probe++);
        assert (s_create (a, object, NULL, NULL) == GT_OK);
        event = gt_subscriber_recv (subscriber, 100);
    }
    assert (event);
    size_t seen = 0;
    while (event) {
        assert (streq (event->event.lease.service_id, "svc-a"));
        seen++;
        gt_msg_destroy (&event);
        event = gt_subscriber_recv (subscriber, 200);
    }
    assert (seen >= 1);
    assert (gt_subscriber_code (subscriber) == GT_OK);

    //  REPLAY as A: only A's events, and scanned_seq reaches the head
    gt_msg_t *reply = NULL;
    assert (gt_client_replay (a, 0, 1000, &reply) == GT_OK);
    assert (reply->event_count == (size_t) probe);
    for (size_t index = 0; index < reply->event_count; index++)
        assert (streq (reply->events [index].lease.service_id, "svc-a"));
    assert (reply->has_scanned_seq && reply->scanned_seq == reply->last_seq);
    assert (reply->last_seq == (uint64_t) probe * 2);
    gt_msg_destroy (&reply);

    //  LIST: A sees its own; an admin, though its key names svc-a, everything
    gt_client_t *admin = s_client (broker, &keys, NULL, admin_secret, GT_TEST_TIMEOUT);
    gt_list_args_t all = { .limit = 1000 };
    assert (gt_client_list_leases (a, &all, &reply) == GT_OK);
    assert (reply->lease_count == (size_t) probe);
    gt_msg_destroy (&reply);
    assert (gt_client_list_leases (admin, &all, &reply) == GT_OK);
    assert (reply->lease_count == (size_t) probe * 2);
    gt_msg_destroy (&reply);
    assert (gt_client_replay (admin, 0, 1000, &reply) == GT_OK);
    assert (reply->event_count == (size_t) probe * 2);
    gt_msg_destroy (&reply);
    gt_client_destroy (&admin);
    zstr_free (&admin_secret);

    gt_subscriber_destroy (&subscriber);
    gt_client_destroy (&a);
    gt_client_destroy (&b);
    gt_test_broker_stop (&broker);
    s_keys_remove (&keys);
    zstr_free (&a_secret);
    zstr_free (&b_secret);
}

//  A key's callback-secret signs its service's callbacks instead of
//  GC_CALLBACK_SECRET; another service's callbacks keep the broker's.
static void
s_test_secret (void)
{
    gt_http_server_t *server = gt_http_server_new ();
    char *url = gt_http_server_url (server, "/cleanup");
    s_keys_t keys;
    s_keys_init (&keys);
    char *a_secret = s_key_with_secret (&keys, "a", "svc-a", "service", NULL, "a-only", true);
    char *b_secret = s_key (&keys, "b", "svc-b", "service", NULL, true);
    gt_config_t *config = gt_test_config ();
    gt_config_set_curve (config, keys.broker_secret, keys.clients);
    gt_config_set_callback_secret (config, "broker-wide");
    config->grace_ms = 0;
    gt_test_broker_t *broker = gt_test_broker_start (config);
    gt_config_destroy (&config);
    const char *secrets [] = { "a-only", "broker-wide" };
    char *keys_of [] = { a_secret, b_secret };
    for (size_t index = 0; index < 2; index++) {
        gt_client_t *client = s_client (broker, &keys, NULL, keys_of [index], GT_TEST_TIMEOUT);
        char lease [GT_LEASE_ID_LEN + 1];
        assert (s_create (client, index ? "b-object" : "a-object", url, lease) == GT_OK);
        gt_lease_info_t info;
        memset (&info, 0, sizeof (info));
        assert (gt_client_release_lease (client, lease, false, &info) == GT_OK);
        gt_lease_info_clear (&info);
        assert (gt_http_server_wait (server, index + 1, 4 * GT_TEST_TIMEOUT));
        const gt_http_request_t *request = gt_http_server_request (server, index);
        assert (request && strstr (request->body, index ? "svc-b" : "svc-a"));
        const char *timestamp = gt_http_request_header (request, "X-GarbageTruck-Timestamp");
        const char *signature = gt_http_request_header (request, "X-GarbageTruck-Signature");
        assert (timestamp && signature);
        assert (gt_webhook_verify_signature (request->body, request->body_size, timestamp, signature,
                                             secrets [index], GT_WEBHOOK_DEFAULT_TOLERANCE_S));
        assert (!gt_webhook_verify_signature (request->body, request->body_size, timestamp, signature,
                                              secrets [1 - index], GT_WEBHOOK_DEFAULT_TOLERANCE_S));
        gt_client_destroy (&client);
    }
    gt_test_broker_stop (&broker);
    s_keys_remove (&keys);
    zstr_free (&a_secret);
    zstr_free (&b_secret);
    free (url);
    gt_http_server_destroy (&server);
}

//  Without keys, the broker binds loopback only (an embedding program
//  meets the refusal at BIND; the daemon at start, tests/gtctl).
static void
s_test_secure_default (void)
{
    assert (gt_config_endpoint_is_local ("tcp://127.0.0.1:5"));
    assert (gt_config_endpoint_is_local ("tcp://127.9.8.7:*"));
    assert (gt_config_endpoint_is_local ("tcp://localhost:5"));
    assert (gt_config_endpoint_is_local ("tcp://[::1]:5"));
    assert (gt_config_endpoint_is_local ("ipc:///tmp/x"));
    assert (!gt_config_endpoint_is_local ("tcp://0.0.0.0:5"));
    assert (!gt_config_endpoint_is_local ("tcp://*:5"));
    assert (!gt_config_endpoint_is_local ("tcp://eth0:5"));
    assert (!gt_config_endpoint_is_local ("tcp://127.0.0.1.evil:5"));
    assert (!gt_config_endpoint_is_local ("tcp://10.1.2.3:5"));
    gt_config_t *config = gt_test_config ();
    zactor_t *actor = zactor_new (gt_broker_actor, config);
    zstr_sendx (actor, "BIND", "tcp://0.0.0.0:*", NULL);
    char *port = zstr_recv (actor);
    assert (port && streq (port, "-1"));
    zstr_free (&port);
    zstr_sendx (actor, "BIND", "tcp://127.0.0.1:*", NULL);
    port = zstr_recv (actor);
    assert (port && atoi (port) > 0);
    zstr_free (&port);
    zactor_destroy (&actor);
    gt_config_destroy (&config);
}

static const struct {
    const char *name;
    void (*run) (void);
} s_cases [] = {
    { "identity", s_test_identity },
    { "events", s_test_events },
    { "secure_default", s_test_secure_default },
    { "secret", s_test_secret },
};

int
main (int argc, char *argv [])
{
    const char *which = argc > 1 ? argv [1] : "all";
    zsys_init ();
    bool found = false;
    for (size_t index = 0; index < sizeof (s_cases) / sizeof (s_cases [0]); index++)
        if (streq (which, "all") || streq (which, s_cases [index].name)) {
            printf ("test_curve %s...\n", s_cases [index].name);
            s_cases [index].run ();
            found = true;
        }
    if (!found) {
        fprintf (stderr, "test_curve: no case '%s'\n", which);
        return 2;
    }
    printf ("OK\n");
    return 0;
}
