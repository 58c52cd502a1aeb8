/*  client.c — a program built only from an installed libgarbagetruck (its
    headers, its pkg-config file or its CMake package): proves the install
    can be compiled against, linked and run.  Against the broker at argv[1]
    it does HEALTH, CREATE, GET, RELEASE, and checks a callback signature
    (gt_webhook, which links libsodium), and exits 0 only if every step did
    what it should; each failure is printed.  */
#include <garbagetruck.h>
#include <time.h>

//  Report a failed step and return 1 (the exit status)
static int
s_fail (gt_client_t *client, const char *step, gt_code_t code)
{
    fprintf (stderr, "client: %s: %s: %s\n", step,
             gt_code_name (code)? gt_code_name (code): "?", gt_client_error (client));
    return 1;
}

static int
s_run (gt_client_t *client)
{
    gt_msg_t *health = NULL;
    gt_code_t code = gt_client_health (client, &health);
    if (code != GT_OK)
        return s_fail (client, "HEALTH", code);
    printf ("client: HEALTH %s (%s) version %s\n",
            health->status, health->store, health->server_version);
    gt_msg_destroy (&health);

    gt_meta_entry_t entry = { "origin", "tests/install" };
    gt_meta_t metadata = { &entry, 1 };
    gt_create_args_t args = {
        .object_id = "/tmp/garbagetruck-install-test",
        .object_type = GT_TYPE_TEMPORARY_FILE,
        .ttl_ms = 60000,
        .metadata = &metadata
    };
    gt_lease_info_t created = { .state = GT_STATE_COUNT_ };
    code = gt_client_create_lease (client, &args, &created);
    if (code != GT_OK)
        return s_fail (client, "CREATE", code);
    printf ("client: CREATE %s\n", created.id);

    int rc = 1;
    gt_lease_info_t got = { .state = GT_STATE_COUNT_ };
    gt_lease_info_t released = { .state = GT_STATE_COUNT_ };
    code = gt_client_get_lease (client, created.id, &got);
    if (code != GT_OK)
        s_fail (client, "GET", code);
    else
    if (strcmp (got.id, created.id) != 0 || got.state != GT_STATE_ACTIVE
    ||  strcmp (got.object_id, args.object_id) != 0
    ||  got.metadata.count != 1 || strcmp (got.metadata.entries [0].value, "tests/install") != 0)
        fprintf (stderr, "client: GET %s: not the lease just created\n", created.id);
    else {
        printf ("client: GET %s %s\n", got.id, gt_state_name (got.state));
        code = gt_client_release_lease (client, created.id, false, &released);
        if (code != GT_OK)
            s_fail (client, "RELEASE", code);
        else
        if (released.state != GT_STATE_RELEASED)
            fprintf (stderr, "client: RELEASE %s: state %s\n", created.id,
                     gt_state_name (released.state));
        else {
            printf ("client: RELEASE %s %s\n", created.id, gt_state_name (released.state));
            rc = 0;
        }
    }
    gt_lease_info_clear (&released);
    gt_lease_info_clear (&got);
    gt_lease_info_clear (&created);
    return rc;
}

//  A callback signature: proto-spec/vectors/callbacks/signature_simple.json
//  (a fixed timestamp of 2023: its age is not judged, tolerance -1), and
//  one made now, judged with the default tolerance
static int
s_webhook (void)
{
    const char *body = "{\"seq\":1}";
    const char *signature = "v1=cbdcfdffb94ac16f20fc7dff420aed60e8abb875b1394e892e008fdba0124439";
    char now [24], fresh [GT_WEBHOOK_SIGNATURE_SIZE];
    snprintf (now, sizeof (now), "%lld", (long long) time (NULL));
    if (!gt_webhook_verify_signature (body, strlen (body), "1700000000", signature, "s3cret", -1)
    ||  gt_webhook_verify_signature (body, strlen (body), "1700000000", signature, "other", -1)
    ||  gt_webhook_verify_signature (body, strlen (body), "1700000000", signature, "s3cret",
                                     GT_WEBHOOK_DEFAULT_TOLERANCE_S)
    ||  gt_webhook_sign (body, strlen (body), "s3cret", now, fresh) != 0
    ||  !gt_webhook_verify_signature (body, strlen (body), now, fresh, "s3cret",
                                      GT_WEBHOOK_DEFAULT_TOLERANCE_S)) {
        fprintf (stderr, "client: gt_webhook_verify_signature: wrong answer\n");
        return 1;
    }
    printf ("client: gt_webhook_verify_signature OK\n");
    return 0;
}

int
main (int argc, char *argv [])
{
    if (argc != 2) {
        fprintf (stderr, "usage: client tcp://HOST:PORT\n");
        return 2;
    }
    gt_client_t *client = gt_client_new (argv [1], "install-test");
    if (!client) {
        fprintf (stderr, "client: cannot use endpoint %s\n", argv [1]);
        return 1;
    }
    gt_client_set_timeout (client, 5000);
    int rc = s_run (client) || s_webhook ();
    gt_client_destroy (&client);
    if (rc == 0)
        printf ("client: OK\n");
    return rc;
}
