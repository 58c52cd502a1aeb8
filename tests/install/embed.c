/*  embed.c — a program that embeds the broker, built only from an install
    (tests/install/run: find_package(GarbageTruck) with GarbageTruck::broker,
    and pkg-config garbagetruck-broker): proves the installed broker
    libraries can be compiled against, linked and run.

    Its main is README.md's "Embedding the broker" snippet, line for line
    (tests/install/run checks it: the snippet's #include among these, the
    rest in this order, this program's own lines only where the snippet
    says ...).  There, it talks to its own broker with the C SDK: HEALTH,
    CREATE, GET.  Exits 0 only if every step did what it should; each
    failure is printed.  */
#include <garbagetruck.h>
#include <gt_broker.h>

//  A port the broker replied to BIND or EVENTS: a number, or 0 ("-1", the
//  failure, or no reply)
static int
s_port (const char *reply)
{
    char *end = NULL;
    long port = reply ? strtol (reply, &end, 10) : 0;
    return reply && *reply && end && *end == '\0' && port > 0 && port < 65536 ? (int) port : 0;
}

//  Report a failed request and return 1 (the exit status)
static int
s_fail (gt_client_t *client, const char *step, gt_code_t code)
{
    fprintf (stderr, "embed: %s: %s: %s\n", step,
             gt_code_name (code)? gt_code_name (code): "?", gt_client_error (client));
    return 1;
}

//  HEALTH, CREATE, GET with client
static int
s_requests (gt_client_t *client)
{
    gt_msg_t *health = NULL;
    gt_code_t code = gt_client_health (client, &health);
    if (code != GT_OK)
        return s_fail (client, "HEALTH", code);
    printf ("embed: HEALTH %s (%s) version %s\n",
            health->status, health->store, health->server_version);
    gt_msg_destroy (&health);

    gt_create_args_t args = {
        .object_id = "/tmp/garbagetruck-install-embed",
        .object_type = GT_TYPE_TEMPORARY_FILE,
        .ttl_ms = 60000
    };
    gt_lease_info_t created = { .state = GT_STATE_COUNT_ };
    code = gt_client_create_lease (client, &args, &created);
    if (code != GT_OK)
        return s_fail (client, "CREATE", code);
    printf ("embed: CREATE %s\n", created.id);

    int rc = 1;
    gt_lease_info_t got = { .state = GT_STATE_COUNT_ };
    code = gt_client_get_lease (client, created.id, &got);
    if (code != GT_OK)
        s_fail (client, "GET", code);
    else
    if (strcmp (got.id, created.id) != 0 || got.state != GT_STATE_ACTIVE
    ||  strcmp (got.object_id, args.object_id) != 0)
        fprintf (stderr, "embed: GET %s: not the lease just created\n", created.id);
    else {
        printf ("embed: GET %s %s\n", got.id, gt_state_name (got.state));
        rc = 0;
    }
    gt_lease_info_clear (&got);
    gt_lease_info_clear (&created);
    return rc;
}

//  The client part: the C SDK against the broker this program embeds, on
//  the ports it bound
static int
s_client (const char *port, const char *events_port)
{
    if (!s_port (port) || !s_port (events_port)) {
        fprintf (stderr, "embed: BIND replied '%s', EVENTS '%s': not ports\n",
                 port? port: "(nothing)", events_port? events_port: "(nothing)");
        return 1;
    }
    char endpoint [64];
    snprintf (endpoint, sizeof (endpoint), "tcp://127.0.0.1:%d", s_port (port));
    printf ("embed: broker at %s, events on port %d\n", endpoint, s_port (events_port));
    gt_client_t *client = gt_client_new (endpoint, "install-embed");
    if (!client) {
        fprintf (stderr, "embed: cannot use endpoint %s\n", endpoint);
        return 1;
    }
    gt_client_set_timeout (client, 5000);
    int rc = s_requests (client);
    gt_client_destroy (&client);
    return rc;
}

int
main (void)
{
    gt_config_t *config = gt_config_new ();
    zactor_t *broker = zactor_new (gt_broker_actor, config);
    zstr_sendx (broker, "BIND", "tcp://127.0.0.1:*", NULL);
    char *port = zstr_recv (broker);            // the port it bound
    zstr_sendx (broker, "EVENTS", "tcp://127.0.0.1:*", NULL);
    char *events_port = zstr_recv (broker);
    /* ... */
    int rc = s_client (port, events_port);
    zstr_free (&events_port);
    zstr_free (&port);
    zactor_destroy (&broker);
    gt_config_destroy (&config);
    if (rc == 0)
        printf ("embed: OK\n");
    return rc;
}
