/*  gtctl.c — command-line client of the GarbageTruck broker.

    gtctl [--endpoint E[,E...]] [--events E] [--json] [--timeout-ms N] COMMAND ...

    Several endpoints (or GT_ENDPOINT with several) make the client routed
    (gt_client.h, docs/CLUSTER.md "Client routing").

    Exit codes: 0 success; 1 the broker answered with an error, or did not
    answer ("CODE: message" on stderr); 2 usage error.  Durations (--ttl,
    --retry-delay, --timeout) are seconds and accept fractions.  */
#include "gtctl_print.h"
#include <getopt.h>
#include <math.h>

#define GTCTL_EXIT_OK       0
#define GTCTL_EXIT_ERROR    1
#define GTCTL_EXIT_USAGE    2

//  Option bits, to check which options a command accepts.
enum {
    OPT_OBJECT = 1 << 0, OPT_TYPE = 1 << 1, OPT_SERVICE = 1 << 2, OPT_TTL = 1 << 3,
    OPT_META = 1 << 4, OPT_CLEANUP_URL = 1 << 5, OPT_PAYLOAD = 1 << 6,
    OPT_MAX_RETRIES = 1 << 7, OPT_RETRY_DELAY = 1 << 8, OPT_IDEMPOTENCY_KEY = 1 << 9,
    OPT_RETAIN = 1 << 10, OPT_STATE = 1 << 11, OPT_LIMIT = 1 << 12, OPT_CURSOR = 1 << 13,
    OPT_COUNT = 1 << 14, OPT_TIMEOUT = 1 << 15, OPT_FROM = 1 << 16, OPT_AFTER = 1 << 17,
    OPT_CLEANUP_STATUS = 1 << 18, OPT_ROLE = 1 << 19, OPT_CALLBACK_ALLOW = 1 << 26,
    OPT_CALLBACK_SECRET_FILE = 1 << 27,
    //  global options (any command)
    OPT_ENDPOINT = 1 << 20, OPT_EVENTS = 1 << 21, OPT_JSON = 1 << 22,
    OPT_TIMEOUT_MS = 1 << 23, OPT_HELP = 1 << 24, OPT_VERSION = 1 << 25,
    OPT_SERVER_KEY = 1 << 28, OPT_CLIENT_CERT = 1 << 29,
    OPT_RELEASE_ON_EXIT = 1 << 30
};

static const struct option s_options [] = {
    { "object",          required_argument, NULL, OPT_OBJECT },
    { "type",            required_argument, NULL, OPT_TYPE },
    { "service",         required_argument, NULL, OPT_SERVICE },
    { "ttl",             required_argument, NULL, OPT_TTL },
    { "meta",            required_argument, NULL, OPT_META },
    { "cleanup-url",     required_argument, NULL, OPT_CLEANUP_URL },
    { "payload",         required_argument, NULL, OPT_PAYLOAD },
    { "max-retries",     required_argument, NULL, OPT_MAX_RETRIES },
    { "retry-delay",     required_argument, NULL, OPT_RETRY_DELAY },
    { "idempotency-key", required_argument, NULL, OPT_IDEMPOTENCY_KEY },
    { "retain",          no_argument,       NULL, OPT_RETAIN },
    { "state",           required_argument, NULL, OPT_STATE },
    { "cleanup-status",  required_argument, NULL, OPT_CLEANUP_STATUS },
    { "limit",           required_argument, NULL, OPT_LIMIT },
    { "cursor",          required_argument, NULL, OPT_CURSOR },
    { "count",           required_argument, NULL, OPT_COUNT },
    { "timeout",         required_argument, NULL, OPT_TIMEOUT },
    { "from",            required_argument, NULL, OPT_FROM },
    { "after",           required_argument, NULL, OPT_AFTER },
    { "endpoint",        required_argument, NULL, OPT_ENDPOINT },
    { "events",          required_argument, NULL, OPT_EVENTS },
    { "json",            no_argument,       NULL, OPT_JSON },
    { "timeout-ms",      required_argument, NULL, OPT_TIMEOUT_MS },
    { "server-key",      required_argument, NULL, OPT_SERVER_KEY },
    { "client-cert",     required_argument, NULL, OPT_CLIENT_CERT },
    { "role",            required_argument, NULL, OPT_ROLE },
    { "callback-allow",  required_argument, NULL, OPT_CALLBACK_ALLOW },
    { "callback-secret-file", required_argument, NULL, OPT_CALLBACK_SECRET_FILE },
    { "release-on-exit", no_argument,       NULL, OPT_RELEASE_ON_EXIT },
    { "help",            no_argument,       NULL, OPT_HELP },
    { "version",         no_argument,       NULL, OPT_VERSION },
    { NULL, 0, NULL, 0 }
};

static const char *s_usage =
    "usage: gtctl [--endpoint E[,E...]] [--events E[,E...]] [--json] [--timeout-ms N]\n"
    "             [--server-key KEY|FILE --client-cert FILE] COMMAND ...\n"
    "       gtctl --help | --version\n"
    "  keygen NAME [--service SVC] [--role service|observer|admin]\n"
    "         [--callback-allow PREFIXES] [--callback-secret-file FILE]\n"
    "                            (write the CURVE certificates NAME and NAME_secret)\n"
    "  health | stats\n"
    "  create --object ID [--type TYPE] --service SVC [--ttl S] [--meta K=V]...\n"
    "         [--cleanup-url URL] [--payload T] [--max-retries N] [--retry-delay S]\n"
    "         [--idempotency-key K]\n"
    "  renew ID --service SVC [--ttl S]\n"
    "  release ID --service SVC [--retain]\n"
    "  get ID\n"
    "  retry ID                  (deliver a dead-lettered cleanup callback again)\n"
    "  list [--service S] [--object O] [--type T] [--state S]\n"
    "       [--cleanup-status PENDING|DELIVERED|DEAD] [--limit N] [--cursor C]\n"
    "  watch [--service SVC] [PREFIX]... [--count N] [--timeout S] [--from SEQ]\n"
    "                            (topics are SVC \\x1f verb.TYPE: with --service,\n"
    "                            PREFIX is 'expired.', 'reclaimed.TEMPORARY_FILE'...)\n"
    "  replay --after SEQ [--limit N]\n"
    "  keepalive ID --service SVC [--ttl S] [--release-on-exit]\n"
    "                            (renew at a third of the TTL until SIGINT/SIGTERM, one\n"
    "                            line per renewal: ID expires_at MS; exit 1 if it is lost)\n"
    "  cluster                   (the shard map: version, mode, brokers and their shards)\n"
    "defaults: --endpoint $GT_ENDPOINT, else tcp://127.0.0.1:50051\n"
    "          --events $GT_EVENTS_ENDPOINT, else tcp://127.0.0.1:50052 (with several\n"
    "          endpoints: those of the brokers in the shard map)\n"
    "          --timeout-ms 5000; durations in seconds (fractions allowed)\n"
    "several endpoints (tcp://a:50051,tcp://b:50051): requests go to the owner of their\n"
    "          shard, following the brokers' shard map across failovers\n"
    "CURVE: --server-key (GT_SERVER_KEY) the broker's public key or certificate file,\n"
    "       --client-cert (GT_CLIENT_CERT) this client's secret certificate file;\n"
    "       the key's service is then the default --service\n";

//  Everything the command line says.
typedef struct {
    const char *endpoint;           //  request endpoint
    const char *events;             //  events endpoint(s), or NULL: the map's
    bool json;                      //  print JSON instead of text
    int timeout_ms;                 //  request timeout
    unsigned given;                 //  OPT_ bits seen
    const char *command;            //  the command name
    char **args;                    //  positional arguments after it
    int arg_count;                  //  how many
    const char *object;             //  --object
    gt_object_type_t type;          //  --type
    const char *service;            //  --service
    uint64_t ttl_ms;                //  --ttl
    gt_meta_entry_t *meta;          //  --meta entries (keys allocated)
    size_t meta_count;              //  how many
    const char *cleanup_url;        //  --cleanup-url
    const char *payload;            //  --payload
    uint32_t max_retries;           //  --max-retries
    uint64_t retry_delay_ms;        //  --retry-delay
    const char *idempotency_key;    //  --idempotency-key
    gt_lease_state_t state;         //  --state
    gt_cleanup_status_t cleanup_status;     //  --cleanup-status
    uint64_t limit;                 //  --limit
    const char *cursor;             //  --cursor
    uint64_t count;                 //  --count
    int64_t timeout_watch_ms;       //  --timeout
    uint64_t from;                  //  --from
    uint64_t after;                 //  --after
    const char *server_key;         //  --server-key (else GT_SERVER_KEY)
    const char *client_cert;        //  --client-cert (else GT_CLIENT_CERT)
    const char *role;               //  keygen --role
    const char *callback_allow;     //  keygen --callback-allow
    const char *callback_secret_file;   //  keygen --callback-secret-file
} gtctl_t;

//  A usage error: message and usage on stderr.
static int
s_usage_error (const char *format, ...)
{
    va_list args;
    va_start (args, format);
    fprintf (stderr, "gtctl: ");
    vfprintf (stderr, format, args);
    fprintf (stderr, "\n%s", s_usage);
    va_end (args);
    return GTCTL_EXIT_USAGE;
}

//  A failed call: "CODE: message" on stderr.
static int
s_call_error (gt_client_t *client, gt_code_t code)
{
    fprintf (stderr, "%s: %s\n", gt_code_name (code), gt_client_error (client));
    return GTCTL_EXIT_ERROR;
}

//  The end of a command that shows its reply: the call's error, else the
//  reply as JSON (--json) or as print writes it for people.
static int
s_show_reply (gtctl_t *self, gt_client_t *client, gt_code_t code, gt_msg_t *reply,
              void (*print) (const gt_msg_t *reply))
{
    if (code != GT_OK)
        return s_call_error (client, code);
    if (self->json)
        gtctl_print_json (gt_msg_to_json (reply), false);
    else
        print (reply);
    gt_msg_destroy (&reply);
    return GTCTL_EXIT_OK;
}

//  Parse a non-negative integer; false if it is not one.
static bool
s_parse_uint (const char *text, uint64_t *value)
{
    if (!text || !isdigit ((unsigned char) *text))
        return false;
    errno = 0;
    char *end;
    unsigned long long parsed = strtoull (text, &end, 10);
    if (errno || *end)
        return false;
    *value = parsed;
    return true;
}

//  Parse seconds (fractions allowed) into ms; false if not a number >= 0.
static bool
s_parse_seconds (const char *text, uint64_t *ms)
{
    if (!text || !(isdigit ((unsigned char) *text) || *text == '.'))
        return false;
    char *end;
    double seconds = strtod (text, &end);
    if (*end || !isfinite (seconds) || seconds < 0 || seconds > 1e12)
        return false;
    *ms = (uint64_t) (seconds * 1000.0 + 0.5);
    return true;
}

//  Parse an enum name in any case with the codec's parser (wire names are
//  upper case).
static bool
s_parse_upper (const char *text, bool (*parse) (const char *, void *), void *value)
{
    char upper [64];
    size_t length = strlen (text);
    if (length >= sizeof (upper))
        return false;
    for (size_t index = 0; index <= length; index++)
        upper [index] = (char) toupper ((unsigned char) text [index]);
    return parse (upper, value);
}

static bool
s_parse_type (const char *text, void *value)
{
    return gt_object_type_parse (text, (gt_object_type_t *) value);
}

static bool
s_parse_state (const char *text, void *value)
{
    return gt_state_parse (text, (gt_lease_state_t *) value);
}

static bool
s_parse_cleanup_status (const char *text, void *value)
{
    return gt_cleanup_status_parse (text, (gt_cleanup_status_t *) value);
}

//  Parse one option's argument into self; returns 0 or a usage error.
static int
s_parse_option (gtctl_t *self, int option, const char *value)
{
    const char *name = NULL;
    for (const struct option *entry = s_options; entry->name; entry++)
        if (entry->val == option)
            name = entry->name;
    uint64_t number;
    self->given |= (unsigned) option;
    switch (option) {
        case OPT_OBJECT:          self->object = value; break;
        case OPT_SERVICE:         self->service = value; break;
        case OPT_CLEANUP_URL:     self->cleanup_url = value; break;
        case OPT_PAYLOAD:         self->payload = value; break;
        case OPT_IDEMPOTENCY_KEY: self->idempotency_key = value; break;
        case OPT_CURSOR:          self->cursor = value; break;
        case OPT_ENDPOINT:        self->endpoint = value; break;
        case OPT_EVENTS:          self->events = value; break;
        case OPT_JSON:            self->json = true; break;
        case OPT_SERVER_KEY:      self->server_key = value; break;
        case OPT_CLIENT_CERT:     self->client_cert = value; break;
        case OPT_ROLE:            self->role = value; break;
        case OPT_CALLBACK_ALLOW:  self->callback_allow = value; break;
        case OPT_CALLBACK_SECRET_FILE: self->callback_secret_file = value; break;
        case OPT_RETAIN:          break;
        case OPT_RELEASE_ON_EXIT: break;
        case OPT_TYPE:
            if (!s_parse_upper (value, s_parse_type, &self->type))
                return s_usage_error ("unknown object type '%s'", value);
            break;
        case OPT_STATE:
            if (!s_parse_upper (value, s_parse_state, &self->state))
                return s_usage_error ("unknown state '%s' (ACTIVE, RELEASED, EXPIRED)", value);
            break;
        case OPT_CLEANUP_STATUS:
            if (!s_parse_upper (value, s_parse_cleanup_status, &self->cleanup_status))
                return s_usage_error ("unknown cleanup status '%s' (PENDING, DELIVERED, DEAD)", value);
            break;
        case OPT_TTL:
            if (!s_parse_seconds (value, &self->ttl_ms) || self->ttl_ms == 0)
                return s_usage_error ("--ttl needs seconds > 0, not '%s'", value);
            break;
        case OPT_RETRY_DELAY:
            if (!s_parse_seconds (value, &self->retry_delay_ms))
                return s_usage_error ("--retry-delay needs seconds, not '%s'", value);
            break;
        case OPT_TIMEOUT:
            if (!s_parse_seconds (value, &number))
                return s_usage_error ("--timeout needs seconds, not '%s'", value);
            self->timeout_watch_ms = (int64_t) number;
            break;
        case OPT_MAX_RETRIES:
            if (!s_parse_uint (value, &number) || number > UINT32_MAX)
                return s_usage_error ("--max-retries needs a number, not '%s'", value);
            self->max_retries = (uint32_t) number;
            break;
        case OPT_LIMIT:
            if (!s_parse_uint (value, &self->limit) || self->limit == 0)
                return s_usage_error ("--limit needs a number > 0, not '%s'", value);
            break;
        case OPT_COUNT:
            if (!s_parse_uint (value, &self->count) || self->count == 0)
                return s_usage_error ("--count needs a number > 0, not '%s'", value);
            break;
        case OPT_FROM:
            if (!s_parse_uint (value, &self->from))
                return s_usage_error ("--from needs a sequence number, not '%s'", value);
            break;
        case OPT_AFTER:
            if (!s_parse_uint (value, &self->after))
                return s_usage_error ("--after needs a sequence number, not '%s'", value);
            break;
        case OPT_TIMEOUT_MS:
            if (!s_parse_uint (value, &number) || number == 0 || number > INT_MAX)
                return s_usage_error ("--timeout-ms needs milliseconds > 0, not '%s'", value);
            self->timeout_ms = (int) number;
            break;
        case OPT_META: {
            const char *equals = strchr (value, '=');
            if (!equals || equals == value)
                return s_usage_error ("--meta needs KEY=VALUE, not '%s'", value);
            gt_meta_entry_t *entry = &self->meta [self->meta_count++];
            entry->key = strndup (value, (size_t) (equals - value));
            entry->value = (char *) equals + 1;
            assert (entry->key);
            break;
        }
        default:
            return s_usage_error ("unexpected option --%s", name? name: "?");
    }
    return 0;
}

//  ---------------------------------------------------------------------
//  Commands

static int
s_cmd_health (gtctl_t *self, gt_client_t *client)
{
    gt_msg_t *reply;
    gt_code_t code = gt_client_health (client, &reply);
    return s_show_reply (self, client, code, reply, gtctl_print_health);
}

static int
s_cmd_stats (gtctl_t *self, gt_client_t *client)
{
    gt_msg_t *reply;
    gt_code_t code = gt_client_stats (client, &reply);
    return s_show_reply (self, client, code, reply, gtctl_print_stats);
}

//  Print a lease result: JSON, the id alone, or a status line.
static void
s_show_lease (gtctl_t *self, const gt_lease_info_t *lease, bool id_only)
{
    if (self->json)
        gtctl_print_json (gt_lease_info_to_json (lease), false);
    else
    if (id_only)
        printf ("%s\n", lease->id);
    else
        gtctl_print_lease_line (lease);
}

static int
s_cmd_create (gtctl_t *self, gt_client_t *client)
{
    if (!self->object)
        return s_usage_error ("create needs --object");
    if (!(self->given & OPT_CLEANUP_URL)
    &&  (self->given & (OPT_PAYLOAD | OPT_MAX_RETRIES | OPT_RETRY_DELAY)))
        return s_usage_error ("--payload, --max-retries and --retry-delay need --cleanup-url");

    gt_meta_t metadata = { self->meta, self->meta_count };
    gt_cleanup_t cleanup = {
        .url = (char *) self->cleanup_url,
        .payload = (char *) self->payload,
        .has_max_retries = (self->given & OPT_MAX_RETRIES) != 0,
        .max_retries = self->max_retries,
        .has_retry_delay = (self->given & OPT_RETRY_DELAY) != 0,
        .retry_delay_ms = self->retry_delay_ms
    };
    gt_create_args_t args = {
        .object_id = self->object,
        .object_type = self->type,
        .ttl_ms = self->ttl_ms,
        .metadata = &metadata,
        .cleanup = self->cleanup_url? &cleanup: NULL,
        .idempotency_key = self->idempotency_key
    };
    gt_lease_info_t lease;
    memset (&lease, 0, sizeof (lease));
    gt_code_t code = gt_client_create (client, &args, &lease);
    if (code != GT_OK)
        return s_call_error (client, code);
    s_show_lease (self, &lease, true);
    gt_lease_info_clear (&lease);
    return GTCTL_EXIT_OK;
}

//  renew, release, get, retry: one lease id, a lease in reply.
static int
s_cmd_lease (gtctl_t *self, gt_client_t *client)
{
    const char *lease_id = self->args [0];
    gt_lease_info_t lease;
    memset (&lease, 0, sizeof (lease));
    gt_code_t code;
    if (streq (self->command, "renew"))
        code = gt_client_renew (client, lease_id, self->ttl_ms, &lease);
    else
    if (streq (self->command, "release"))
        code = gt_client_release (client, lease_id, (self->given & OPT_RETAIN) != 0, &lease);
    else
    if (streq (self->command, "retry"))
        code = gt_client_retry (client, lease_id, &lease);
    else
        code = gt_client_get (client, lease_id, &lease);
    if (code != GT_OK)
        return s_call_error (client, code);
    if (!self->json && streq (self->command, "get"))
        gtctl_print_lease (&lease);
    else
        s_show_lease (self, &lease, false);
    gt_lease_info_clear (&lease);
    return GTCTL_EXIT_OK;
}

static int
s_cmd_list (gtctl_t *self, gt_client_t *client)
{
    if (self->limit > GT_MAX_PAGE)
        return s_usage_error ("--limit must be at most %d", GT_MAX_PAGE);
    gt_list_args_t args = {
        .service_id = self->service,
        .object_id = self->object,
        .has_object_type = (self->given & OPT_TYPE) != 0,
        .object_type = self->type,
        .has_state = (self->given & OPT_STATE) != 0,
        .state = self->state,
        .cursor = self->cursor,
        .limit = self->limit,
        .has_cleanup_status = (self->given & OPT_CLEANUP_STATUS) != 0,
        .cleanup_status = self->cleanup_status
    };
    gt_msg_t *reply;
    gt_code_t code = gt_client_list (client, &args, &reply);
    return s_show_reply (self, client, code, reply, gtctl_print_list);
}

static int
s_cmd_replay (gtctl_t *self, gt_client_t *client)
{
    if (!(self->given & OPT_AFTER))
        return s_usage_error ("replay needs --after SEQ");
    if (self->limit > GT_MAX_PAGE)
        return s_usage_error ("--limit must be at most %d", GT_MAX_PAGE);
    gt_msg_t *reply;
    gt_code_t code = gt_client_replay (client, self->after, self->limit, &reply);
    return s_show_reply (self, client, code, reply, gtctl_print_replay);
}

//  keygen: a CZMQ certificate pair, NAME (public, for the broker's
//  GC_CURVE_CLIENTS) and NAME_secret (for the client, or GC_CURVE_CERT).
static int
s_cmd_keygen (gtctl_t *self, gt_client_t *client)
{
    (void) client;
    const char *name = self->args [0];
    const char *role = self->role ? self->role : "service";
    if (!streq (role, "service") && !streq (role, "observer") && !streq (role, "admin"))
        return s_usage_error ("--role must be service, observer or admin, not '%s'", role);
    if (streq (role, "service") && (self->given & OPT_ROLE) && !self->service)
        return s_usage_error ("a service's key needs --service");
    //  Never overwrite a key (the broker's own, say), nor keep an old
    //  file's mode (a secret in a file others may read)
    char *secret_name = zsys_sprintf ("%s_secret", name);
    bool exists = zsys_file_exists (name) || zsys_file_exists (secret_name);
    if (exists)
        fprintf (stderr, "%s or %s exists already: remove it first, or choose another NAME\n",
                 name, secret_name);
    zstr_free (&secret_name);
    if (exists)
        return GTCTL_EXIT_ERROR;
    char *secret = NULL;
    if (self->callback_secret_file) {
        //  Its first line, without the line end
        FILE *file = fopen (self->callback_secret_file, "r");
        char line [1024] = "";
        bool read = file && fgets (line, sizeof (line), file);
        if (file)
            fclose (file);
        if (!read)
            return s_usage_error ("cannot read --callback-secret-file '%s'", self->callback_secret_file);
        line [strcspn (line, "\r\n")] = '\0';
        secret = strdup (line);
        memset (line, 0, sizeof (line));
    }
    zcert_t *cert = zcert_new ();
    assert (cert);
    if (self->service)
        zcert_set_meta (cert, "service", "%s", self->service);
    zcert_set_meta (cert, "role", "%s", role);
    if (self->callback_allow)
        zcert_set_meta (cert, "callback-allow", "%s", self->callback_allow);
    if (secret && *secret)
        zcert_set_meta (cert, "callback-secret", "%s", secret);
    //  Files readable by the owner only from the start: both hold secrets
    //  when a callback-secret is given, and NAME_secret always does
    mode_t mask = umask (077);
    int rc = zcert_save (cert, name);
    umask (mask);
    if (rc == 0) {
        //  A public certificate is safe to hand out, unless it carries a secret
        char *secret_name = zsys_sprintf ("%s_secret", name);
        if (chmod (secret_name, 0600) || chmod (name, secret && *secret ? 0600 : 0644))
            rc = -1;
        zstr_free (&secret_name);
    }
    if (secret)
        memset (secret, 0, strlen (secret));
    free (secret);
    if (rc != 0) {
        zcert_destroy (&cert);
        fprintf (stderr, "cannot write %s and %s_secret\n", name, name);
        return GTCTL_EXIT_ERROR;
    }
    if (self->json)
        printf ("{\"public_key\":\"%s\",\"public\":\"%s\",\"secret\":\"%s_secret\"}\n",
                zcert_public_txt (cert), name, name);
    else
        printf ("%s\npublic certificate: %s (a client's: into the broker's GC_CURVE_CLIENTS; "
                "the broker's: the clients' GT_SERVER_KEY)\n"
                "secret certificate: %s_secret (a client's GT_CLIENT_CERT; the broker's GC_CURVE_CERT)\n",
                zcert_public_txt (cert), name, name);
    zcert_destroy (&cert);
    return GTCTL_EXIT_OK;
}

//  watch: one JSON line per event until --count events or --timeout.
static int
s_cmd_watch (gtctl_t *self, gt_client_t *client)
{
    (void) client;
    gt_subscriber_t *subscriber = gt_subscriber_new (self->events, self->endpoint);
    if (!subscriber)
        return s_usage_error ("cannot use endpoint '%s' / '%s'",
                              self->events? self->events: "(the map's)", self->endpoint);
    if (gt_subscriber_set_curve (subscriber, self->server_key, self->client_cert) != 0) {
        fprintf (stderr, "%s\n", gt_subscriber_error (subscriber));
        gt_subscriber_destroy (&subscriber);
        return GTCTL_EXIT_USAGE;
    }
    gt_subscriber_set_timeout (subscriber, self->timeout_ms);
    //  --service SVC: that service's topics ("SVC\x1f" + each PREFIX, or all
    //  of them); else each PREFIX as it is
    char service_topic [GT_MAX_SERVICE_ID + 2] = "";
    if (self->service && gt_service_topic (service_topic, sizeof (service_topic), self->service) < 0) {
        gt_subscriber_destroy (&subscriber);
        return s_usage_error ("--service '%s' is too long", self->service);
    }
    for (int index = 0; index < self->arg_count; index++) {
        char *prefix = zsys_sprintf ("%s%s", service_topic, self->args [index]);
        gt_subscriber_subscribe (subscriber, prefix);
        zstr_free (&prefix);
    }
    if (self->arg_count == 0 && *service_topic)
        gt_subscriber_subscribe (subscriber, service_topic);
    if (self->given & OPT_FROM)
        gt_subscriber_set_from_seq (subscriber, self->from);

    bool has_deadline = (self->given & OPT_TIMEOUT) != 0;
    int64_t deadline = zclock_mono () + self->timeout_watch_ms;
    uint64_t received = 0;
    int rc = GTCTL_EXIT_OK;
    while (!(self->count && received >= self->count)) {
        int wait = -1;
        if (has_deadline) {
            int64_t remaining = deadline - zclock_mono ();
            if (remaining <= 0)
                break;
            wait = remaining > INT_MAX? INT_MAX: (int) remaining;
        }
        gt_msg_t *event = gt_subscriber_recv (subscriber, wait);
        if (event) {
            gtctl_print_json (gtctl_event_json (&event->event), true);
            gt_msg_destroy (&event);
            received++;
        }
        else
        if (gt_subscriber_code (subscriber) != GT_OK) {
            fprintf (stderr, "%s: %s\n", gt_code_name (gt_subscriber_code (subscriber)),
                     gt_subscriber_error (subscriber));
            rc = GTCTL_EXIT_ERROR;
            break;
        }
        else
        if (zsys_interrupted)
            break;
    }
    if (rc == GTCTL_EXIT_OK && self->count && received < self->count)
        rc = GTCTL_EXIT_ERROR;          //  timed out before --count events
    gt_subscriber_destroy (&subscriber);
    return rc;
}

//  cluster: the shard map (GTLP.md §14.2) of the brokers.
static int
s_cmd_cluster (gtctl_t *self, gt_client_t *client)
{
    gt_msg_t *reply;
    gt_code_t code = gt_client_map (client, &reply);
    return s_show_reply (self, client, code, reply, gtctl_print_map);
}

//  Sleep until the mono time, waking for SIGINT / SIGTERM; false if one came.
static bool
s_sleep_until (int64_t until)
{
    while (!zsys_interrupted) {
        int64_t left = until - zclock_mono ();
        if (left <= 0)
            return true;
        zclock_sleep (left < 100? (int) left: 100);
    }
    return false;
}

//  Codes after which renewing again cannot succeed.
static bool
s_renewal_final (gt_code_t code)
{
    return code == GT_ERR_LEASE_ENDED || code == GT_ERR_NOT_FOUND
        || code == GT_ERR_PERMISSION_DENIED || code == GT_ERR_INVALID_ARGUMENT;
}

//  keepalive: renew one lease at a third of its TTL until SIGINT/SIGTERM,
//  one line per renewal.  A renewal that fails for a while (a failover)
//  is retried until the lease's deadline; a refusal or the deadline
//  passing is a loss (exit 1).  --release-on-exit releases it at the end.
static int
s_cmd_keepalive (gtctl_t *self, gt_client_t *client)
{
    const char *lease_id = self->args [0];
    int64_t start = zclock_mono ();
    //  Before the first renewal the deadline is a guess: the TTL asked
    //  for, else the timeout
    int64_t deadline = start + (int64_t) (self->ttl_ms? self->ttl_ms: (uint64_t) self->timeout_ms);
    int64_t next = start;               //  the first renewal at once
    int rc = GTCTL_EXIT_OK;
    while (s_sleep_until (next)) {
        int64_t sent_at = zclock_mono ();
        int64_t budget = deadline - sent_at;
        if (budget <= 0) {
            fprintf (stderr, "UNAVAILABLE: lease %s lost: no renewal succeeded before its deadline"
                     " (last error: %s)\n", lease_id, gt_client_error (client));
            rc = GTCTL_EXIT_ERROR;
            break;
        }
        gt_client_set_timeout (client, budget < self->timeout_ms? (int) budget: self->timeout_ms);
        gt_lease_info_t lease;
        memset (&lease, 0, sizeof (lease));
        gt_code_t code = gt_client_renew (client, lease_id, self->ttl_ms, &lease);
        gt_client_set_timeout (client, self->timeout_ms);
        if (code == GT_OK) {
            if (self->json)
                gtctl_print_json (gt_lease_info_to_json (&lease), true);
            else {
                printf ("%s expires_at %" PRIu64 "\n", lease.id, lease.expires_at);
                fflush (stdout);
            }
            //  The renewal counts from before it was sent: never later
            //  than the broker's deadline
            deadline = sent_at + (int64_t) lease.ttl_ms;
            next = sent_at + (int64_t) (lease.ttl_ms / 3);
            gt_lease_info_clear (&lease);
            continue;
        }
        if (zsys_interrupted)
            break;
        if (s_renewal_final (code)) {
            fprintf (stderr, "%s: %s (lease %s lost)\n", gt_code_name (code),
                     gt_client_error (client), lease_id);
            rc = GTCTL_EXIT_ERROR;
            break;
        }
        //  UNAVAILABLE, TRY_AGAIN, ...: again soon, until the deadline
        next = zclock_mono () + 100;
    }
    if (rc == GTCTL_EXIT_OK && (self->given & OPT_RELEASE_ON_EXIT)) {
        //  Stopped by a signal: release, the signal is handled
        zsys_interrupted = 0;
        gt_lease_info_t lease;
        memset (&lease, 0, sizeof (lease));
        gt_code_t code = gt_client_release (client, lease_id, false, &lease);
        if (code != GT_OK)
            return s_call_error (client, code);
        s_show_lease (self, &lease, false);
        gt_lease_info_clear (&lease);
    }
    fflush (stdout);
    return rc;
}

//  name, handler, options it accepts, positional arguments (min, max; -1 = any).
typedef struct {
    const char *name;
    int (*run) (gtctl_t *self, gt_client_t *client);
    unsigned options;
    int min_args;
    int max_args;
    bool needs_service;
} s_command_t;

static const s_command_t s_commands [] = {
    { "health",  s_cmd_health, 0, 0, 0, false },
    { "stats",   s_cmd_stats,  0, 0, 0, false },
    { "create",  s_cmd_create, OPT_OBJECT | OPT_TYPE | OPT_SERVICE | OPT_TTL | OPT_META
                             | OPT_CLEANUP_URL | OPT_PAYLOAD | OPT_MAX_RETRIES
                             | OPT_RETRY_DELAY | OPT_IDEMPOTENCY_KEY, 0, 0, true },
    { "renew",   s_cmd_lease,  OPT_SERVICE | OPT_TTL, 1, 1, true },
    { "release", s_cmd_lease,  OPT_SERVICE | OPT_RETAIN, 1, 1, true },
    { "get",     s_cmd_lease,  0, 1, 1, false },
    { "retry",   s_cmd_lease,  0, 1, 1, false },
    { "list",    s_cmd_list,   OPT_SERVICE | OPT_OBJECT | OPT_TYPE | OPT_STATE | OPT_LIMIT
                             | OPT_CURSOR | OPT_CLEANUP_STATUS, 0, 0, false },
    { "watch",   s_cmd_watch,  OPT_SERVICE | OPT_COUNT | OPT_TIMEOUT | OPT_FROM, 0, -1, false },
    { "replay",  s_cmd_replay, OPT_AFTER | OPT_LIMIT, 0, 0, false },
    { "keepalive", s_cmd_keepalive, OPT_SERVICE | OPT_TTL | OPT_RELEASE_ON_EXIT, 1, 1, true },
    { "cluster", s_cmd_cluster, 0, 0, 0, false },
    { "keygen",  s_cmd_keygen, OPT_SERVICE | OPT_ROLE | OPT_CALLBACK_ALLOW | OPT_CALLBACK_SECRET_FILE,
                 1, 1, false },
};

//  Parse argv into self and find the command; returns it, or NULL with
//  *exit_code set (usage error, or 0 for --help).
static const s_command_t *
s_parse (gtctl_t *self, int argc, char *argv [], int *exit_code)
{
    *exit_code = GTCTL_EXIT_USAGE;
    opterr = 0;
    //  "+": stop at each word that is not an option, so that the command
    //  and its arguments may sit anywhere among the options.
    char **words = self->args;
    while (optind < argc) {
        int option = getopt_long (argc, argv, "+:h", s_options, NULL);
        if (option == -1) {
            if (optind >= argc)
                break;
            if (optind > 1 && streq (argv [optind - 1], "--")) {
                while (optind < argc)   //  after "--", only words
                    words [self->arg_count++] = argv [optind++];
                break;
            }
            words [self->arg_count++] = argv [optind++];
            continue;
        }
        if (option == 'h' || option == OPT_HELP) {
            printf ("%s", s_usage);
            *exit_code = GTCTL_EXIT_OK;
            return NULL;
        }
        if (option == OPT_VERSION) {
            printf ("gtctl %s (GTLP/%d)\n", GT_VERSION_STRING, GT_PROTOCOL_VERSION);
            *exit_code = GTCTL_EXIT_OK;
            return NULL;
        }
        if (option == '?') {
            s_usage_error ("unknown option '%s'", argv [optind - 1]);
            return NULL;
        }
        if (option == ':') {
            s_usage_error ("option '%s' needs a value", argv [optind - 1]);
            return NULL;
        }
        if (s_parse_option (self, option, optarg))
            return NULL;
    }
    if (self->arg_count > 0) {
        self->command = words [0];
        self->args = words + 1;
        self->arg_count--;
    }
    if (!self->command) {
        s_usage_error ("no command given");
        return NULL;
    }
    const s_command_t *command = NULL;
    for (size_t index = 0; index < sizeof (s_commands) / sizeof (s_commands [0]); index++)
        if (streq (s_commands [index].name, self->command))
            command = &s_commands [index];
    if (!command) {
        s_usage_error ("unknown command '%s'", self->command);
        return NULL;
    }
    unsigned global = OPT_ENDPOINT | OPT_EVENTS | OPT_JSON | OPT_TIMEOUT_MS | OPT_SERVER_KEY | OPT_CLIENT_CERT;
    unsigned stray = self->given & ~(command->options | global);
    if (stray) {
        for (const struct option *entry = s_options; entry->name; entry++)
            if (stray & (unsigned) entry->val) {
                s_usage_error ("%s does not take --%s", command->name, entry->name);
                return NULL;
            }
    }
    if (self->arg_count < command->min_args
    || (command->max_args >= 0 && self->arg_count > command->max_args)) {
        if (command->max_args == 0)
            s_usage_error ("%s takes no argument ('%s')", command->name, self->args [0]);
        else
        if (streq (command->name, "keygen"))
            s_usage_error ("keygen needs one NAME");
        else
            s_usage_error ("%s needs one lease id", command->name);
        return NULL;
    }
    //  With CURVE the key's service is the default (the broker fills it in)
    bool curve = self->server_key || self->client_cert
              || (getenv ("GT_SERVER_KEY") && *getenv ("GT_SERVER_KEY"))
              || (getenv ("GT_CLIENT_CERT") && *getenv ("GT_CLIENT_CERT"));
    if (command->needs_service && !self->service && !curve) {
        s_usage_error ("%s needs --service", command->name);
        return NULL;
    }
    return command;
}

int
main (int argc, char *argv [])
{
    gtctl_t self;
    memset (&self, 0, sizeof (self));
    //  The environment's endpoints, else the local defaults; flags win
    const char *env_endpoint = getenv ("GT_ENDPOINT");
    const char *env_events = getenv ("GT_EVENTS_ENDPOINT");
    self.endpoint = env_endpoint && *env_endpoint? env_endpoint: "tcp://127.0.0.1:50051";
    self.events = env_events && *env_events? env_events: NULL;
    self.timeout_ms = GT_CLIENT_DEFAULT_TIMEOUT;
    self.meta = (gt_meta_entry_t *) calloc ((size_t) argc + 1, sizeof (gt_meta_entry_t));
    char **words = (char **) calloc ((size_t) argc + 1, sizeof (char *));
    assert (self.meta && words);
    self.args = words;

    int rc;
    const s_command_t *command = s_parse (&self, argc, argv, &rc);
    //  No events endpoint given: with several request endpoints, those of
    //  the shard map; else the local default
    if (command && !self.events && !strchr (self.endpoint, ','))
        self.events = "tcp://127.0.0.1:50052";
    if (command) {
        //  Requests other than CREATE/RENEW/RELEASE need no owner; without
        //  --service they name none (CURVE: the key's service)
        gt_client_t *client = gt_client_new (self.endpoint, self.service);
        if (!client)
            rc = s_usage_error ("invalid --endpoint '%s' or --service", self.endpoint);
        else
        if (gt_client_set_curve (client, self.server_key, self.client_cert) != 0) {
            fprintf (stderr, "%s\n", gt_client_error (client));
            rc = GTCTL_EXIT_USAGE;
            gt_client_destroy (&client);
        }
        else {
            gt_client_set_timeout (client, self.timeout_ms);
            rc = command->run (&self, client);
            gt_client_destroy (&client);
        }
    }
    for (size_t index = 0; index < self.meta_count; index++)
        free (self.meta [index].key);
    free (self.meta);
    free (words);
    fflush (stdout);
    return rc;
}
