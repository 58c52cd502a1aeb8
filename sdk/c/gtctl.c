/*  gtctl.c — command-line client of the GarbageTruck broker.

    gtctl [--endpoint E[,E...]] [--events E] [--json] [--timeout-ms N] COMMAND ...

    Several endpoints (or GT_ENDPOINT with several) make the client routed
    (gt_client.h, docs/CLUSTER.md "Client routing").

    One table, s_commands, says everything about a command: what the parser
    accepts (options, arguments), its help (synopsis, summary, details,
    example) and its bash completion (gtctl completion bash).

    Exit codes: 0 success; 1 the broker answered with an error, or did not
    answer ("CODE: message" on stderr); 2 usage error; 3 watch timed out
    before --count events.  Durations (--ttl, --retry-delay, --timeout) are
    seconds and accept fractions, and messages say seconds too.  */
#include "gtctl_print.h"
#include "gt_jitter.h"
#include <getopt.h>
#include <math.h>

#define GTCTL_EXIT_OK       0
#define GTCTL_EXIT_ERROR    1
#define GTCTL_EXIT_USAGE    2
#define GTCTL_EXIT_TIMEOUT  3

//  Option bits, to check which options a command accepts.
enum {
    OPT_OBJECT = 1 << 0, OPT_TYPE = 1 << 1, OPT_SERVICE = 1 << 2, OPT_TTL = 1 << 3,
    OPT_META = 1 << 4, OPT_CLEANUP_URL = 1 << 5, OPT_PAYLOAD = 1 << 6,
    OPT_MAX_RETRIES = 1 << 7, OPT_RETRY_DELAY = 1 << 8, OPT_IDEMPOTENCY_KEY = 1 << 9,
    OPT_RETAIN = 1 << 10, OPT_STATE = 1 << 11, OPT_LIMIT = 1 << 12, OPT_CURSOR = 1 << 13,
    OPT_COUNT = 1 << 14, OPT_TIMEOUT = 1 << 15, OPT_FROM = 1 << 16, OPT_AFTER = 1 << 17,
    OPT_CLEANUP_STATUS = 1 << 18, OPT_ROLE = 1 << 19, OPT_ALL = 1 << 24,
    OPT_CALLBACK_ALLOW = 1 << 26, OPT_CALLBACK_SECRET_FILE = 1 << 27,
    OPT_RELEASE_ON_EXIT = 1 << 30,
    //  global options (any command)
    OPT_ENDPOINT = 1 << 20, OPT_EVENTS = 1 << 21, OPT_JSON = 1 << 22,
    OPT_TIMEOUT_MS = 1 << 23, OPT_SERVER_KEY = 1 << 28, OPT_CLIENT_CERT = 1 << 29,
    OPT_GLOBAL = OPT_ENDPOINT | OPT_EVENTS | OPT_JSON | OPT_TIMEOUT_MS
               | OPT_SERVER_KEY | OPT_CLIENT_CERT
};

//  --help and --version are handled before any bit is set: not bits
#define OPT_HELP        'h'
#define OPT_VERSION     'V'

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
    { "all",             no_argument,       NULL, OPT_ALL },
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

//  The global help: its head, the commands' synopses (from s_commands),
//  then this tail.
static const char *s_usage_head =
    "usage: gtctl [--endpoint E[,E...]] [--events E[,E...]] [--json] [--timeout-ms N]\n"
    "             [--server-key KEY|FILE --client-cert FILE] COMMAND ...\n"
    "       gtctl --help | --version | help COMMAND | COMMAND --help\n";

static const char *s_usage_tail =
    "defaults and environment (flags win over the environment):\n"
    "  --endpoint  $GT_ENDPOINT, else tcp://127.0.0.1:50051 (tcp://HOST:PORT; several:\n"
    "              tcp://a:50051,tcp://b:50051: requests go to the owner of their\n"
    "              shard, following the brokers' shard map across failovers)\n"
    "  --events    $GT_EVENTS_ENDPOINT, else tcp://127.0.0.1:50052 (with several\n"
    "              endpoints: those of the brokers in the shard map)\n"
    "  --service   $GT_SERVICE (the commands that act as or filter by a service;\n"
    "              not keygen), else with CURVE the key's service\n"
    "  --timeout-ms 5000; durations in seconds (fractions allowed)\n"
    "CURVE: --server-key ($GT_SERVER_KEY) the broker's public key or certificate file,\n"
    "       --client-cert ($GT_CLIENT_CERT) this client's secret certificate file\n"
    "exit codes: 0 success; 1 the broker refused or did not answer (CODE: message on\n"
    "       stderr); 2 usage error; 3 watch timed out before --count events\n"
    "gtctl help COMMAND: a command's description, options and example\n";

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
    const char *endpoint_origin;    //  where endpoint came from ("--endpoint", ...)
    const char *events_origin;      //  where events came from
    bool help;                      //  --help / -h seen
} gtctl_t;

//  A command: what the parser accepts, its help, its completion.
typedef struct {
    const char *name;
    int (*run) (gtctl_t *self, gt_client_t *client);
    unsigned options;               //  OPT_ bits it accepts (and the globals)
    int min_args;                   //  positional arguments: min, max (-1 = any)
    int max_args;
    bool needs_service;             //  --service (or GT_SERVICE, or CURVE) required
    bool local;                     //  runs without a broker (client is NULL)
    const char *arg_name;           //  its positional argument, for messages
    const char *arg_words;          //  what completes that argument, or NULL
    const char *synopsis;           //  after "gtctl "; continuation lines are
                                    //  indented relative to the command name
    const char *summary;            //  one line
    const char *details;            //  what it does, its options, its output
    const char *example;            //  one or more command lines
} s_command_t;

//  The command being parsed, once known: usage errors show its synopsis.
static const s_command_t *s_current = NULL;

static int s_usage_error (const char *format, ...);

//  A failed call: "CODE: message" on stderr, durations in seconds.
static int
s_call_error (gt_client_t *client, gt_code_t code)
{
    char *message = gtctl_seconds_message (gt_client_error (client));
    fprintf (stderr, "%s: %s\n", gt_code_name (code), message);
    free (message);
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

//  A usage error when list (origin: "--endpoint", "$GT_ENDPOINT"...) has
//  an item that is not an endpoint: tcp://HOST:PORT, or another ZeroMQ
//  transport (ipc://PATH...), several separated by commas.
static int
s_check_endpoints (const char *list, const char *origin)
{
    const char *prefixes [] = { "tcp://", "ipc://", "inproc://", "ws://", "wss://", "tipc://", "vmci://" };
    char *copy = strdup (list);
    assert (copy);
    char *bad = NULL;
    bool empty = true;
    char *saveptr = NULL;
    for (char *item = strtok_r (copy, ",", &saveptr); item && !bad;
         item = strtok_r (NULL, ",", &saveptr)) {
        while (isspace ((unsigned char) *item))
            item++;
        char *end = item + strlen (item);
        while (end > item && isspace ((unsigned char) end [-1]))
            *--end = '\0';
        bool valid = false;
        for (size_t index = 0; index < sizeof (prefixes) / sizeof (prefixes [0]); index++) {
            size_t length = strlen (prefixes [index]);
            if (strncmp (item, prefixes [index], length) == 0 && item [length] != '\0')
                valid = true;
        }
        if (valid && strncmp (item, "tcp://", 6) == 0) {
            //  HOST:PORT, the port a number 1 .. 65535 (or ZeroMQ's '*')
            const char *colon = strrchr (item + 6, ':');
            uint64_t port = 0;
            valid = colon && colon > item + 6
                 && (streq (colon + 1, "*")
                 || (s_parse_uint (colon + 1, &port) && port >= 1 && port <= 65535));
        }
        if (!valid)
            bad = strdup (item);
        empty = false;
    }
    free (copy);
    if (!bad && !empty)
        return 0;
    if (bad && strcmp (bad, list) != 0)
        fprintf (stderr, "gtctl: invalid endpoint '%s' in %s '%s'\n", bad, origin, list);
    else
        fprintf (stderr, "gtctl: invalid endpoint '%s' (%s)\n", list, origin);
    fprintf (stderr, "expected tcp://HOST:PORT (or ipc://PATH), several separated by commas:"
             " tcp://10.0.0.1:50051,tcp://10.0.0.2:50051\n");
    free (bad);
    return GTCTL_EXIT_USAGE;
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
        case OPT_ALL:             break;
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
    gt_code_t code = gt_client_create_lease (client, &args, &lease);
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
        code = gt_client_renew_lease (client, lease_id, self->ttl_ms, &lease);
    else
    if (streq (self->command, "release"))
        code = gt_client_release_lease (client, lease_id, (self->given & OPT_RETAIN) != 0, &lease);
    else
    if (streq (self->command, "retry"))
        code = gt_client_retry_cleanup (client, lease_id, &lease);
    else
        code = gt_client_get_lease (client, lease_id, &lease);
    if (code != GT_OK)
        return s_call_error (client, code);
    if (!self->json && streq (self->command, "get"))
        gtctl_print_lease (&lease);
    else
        s_show_lease (self, &lease, false);
    gt_lease_info_clear (&lease);
    return GTCTL_EXIT_OK;
}

//  Append word to the command line in text, quoted for a POSIX shell
//  when it needs to be.
static void
s_append_word (char **text, const char *word)
{
    bool plain = *word != '\0';
    for (const char *cursor = word; *cursor; cursor++)
        if (!isalnum ((unsigned char) *cursor) && !strchr ("_-./:@,+=%", *cursor))
            plain = false;
    char *quoted = NULL;
    if (plain)
        quoted = strdup (word);
    else {
        //  'it'\''s': each quote closes, is escaped, and reopens
        size_t length = 2;
        for (const char *cursor = word; *cursor; cursor++)
            length += *cursor == '\'' ? 4 : 1;
        quoted = (char *) malloc (length + 1);
        assert (quoted);
        char *out = quoted;
        *out++ = '\'';
        for (const char *cursor = word; *cursor; cursor++) {
            if (*cursor == '\'') {
                memcpy (out, "'\\''", 4);
                out += 4;
            }
            else
                *out++ = *cursor;
        }
        *out++ = '\'';
        *out = '\0';
    }
    char *joined = zsys_sprintf ("%s %s", *text, quoted);
    assert (joined);
    zstr_free (text);
    free (quoted);
    *text = joined;
}

//  The next page's command: this one's filters and limit with the cursor
//  (and the endpoint and keys when flags gave them).
static char *
s_list_next_command (gtctl_t *self, const char *cursor)
{
    char *text = strdup ("gtctl");
    assert (text);
    if (self->given & OPT_ENDPOINT) {
        s_append_word (&text, "--endpoint");
        s_append_word (&text, self->endpoint);
    }
    if (self->given & OPT_SERVER_KEY) {
        s_append_word (&text, "--server-key");
        s_append_word (&text, self->server_key);
    }
    if (self->given & OPT_CLIENT_CERT) {
        s_append_word (&text, "--client-cert");
        s_append_word (&text, self->client_cert);
    }
    s_append_word (&text, "list");
    if (self->service) {
        s_append_word (&text, "--service");
        s_append_word (&text, self->service);
    }
    if (self->object) {
        s_append_word (&text, "--object");
        s_append_word (&text, self->object);
    }
    if (self->given & OPT_TYPE) {
        s_append_word (&text, "--type");
        s_append_word (&text, gt_object_type_name (self->type));
    }
    if (self->given & OPT_STATE) {
        s_append_word (&text, "--state");
        s_append_word (&text, gt_state_name (self->state));
    }
    if (self->given & OPT_CLEANUP_STATUS) {
        s_append_word (&text, "--cleanup-status");
        s_append_word (&text, gt_cleanup_status_name (self->cleanup_status));
    }
    if (self->given & OPT_LIMIT) {
        char limit [32];
        snprintf (limit, sizeof (limit), "%" PRIu64, self->limit);
        s_append_word (&text, "--limit");
        s_append_word (&text, limit);
    }
    s_append_word (&text, "--cursor");
    s_append_word (&text, cursor);
    return text;
}

//  list: one page (the next page's command on stderr), or with --all every
//  page from the cursor to the end, as one table (one JSON reply).
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
    bool all = (self->given & OPT_ALL) != 0;
    gt_msg_t **pages = NULL;
    size_t page_count = 0;
    size_t lease_count = 0;
    int rc = GTCTL_EXIT_OK;
    while (true) {
        gt_msg_t *reply;
        gt_code_t code = gt_client_list_leases (client, &args, &reply);
        if (code != GT_OK) {
            rc = s_call_error (client, code);
            break;
        }
        gt_msg_t **grown = (gt_msg_t **) realloc (pages, (page_count + 1) * sizeof (gt_msg_t *));
        assert (grown);
        pages = grown;
        pages [page_count++] = reply;
        lease_count += reply->lease_count;
        if (!all || !reply->cursor)
            break;
        if (args.cursor && streq (args.cursor, reply->cursor)) {
            fprintf (stderr, "gtctl: the broker answered cursor %s twice; stopped\n", reply->cursor);
            rc = GTCTL_EXIT_ERROR;
            break;
        }
        args.cursor = reply->cursor;    //  lives as long as its page
    }
    if (rc == GTCTL_EXIT_OK) {
        const gt_msg_t *last = pages [page_count - 1];
        if (self->json) {
            //  The first reply, with every page's leases and no cursor
            json_t *json = gt_msg_to_json (pages [0]);
            json_t *leases = json? json_object_get (json, "leases"): NULL;
            for (size_t index = 1; index < page_count && leases; index++) {
                json_t *page = gt_msg_to_json (pages [index]);
                json_t *more = page? json_object_get (page, "leases"): NULL;
                if (more)
                    json_array_extend (leases, more);
                json_decref (page);
            }
            if (json && all)
                json_object_del (json, "cursor");
            gtctl_print_json (json, false);
        }
        else {
            const gt_lease_info_t **leases = (const gt_lease_info_t **)
                calloc (lease_count + 1, sizeof (gt_lease_info_t *));
            assert (leases);
            size_t count = 0;
            for (size_t index = 0; index < page_count; index++)
                for (size_t lease = 0; lease < pages [index]->lease_count; lease++)
                    leases [count++] = &pages [index]->leases [lease];
            gtctl_print_leases (leases, count);
            free (leases);
            if (last->cursor) {
                char *next = s_list_next_command (self, last->cursor);
                fprintf (stderr, "more leases: %s (or --all)\n", next);
                zstr_free (&next);
            }
        }
    }
    for (size_t index = 0; index < page_count; index++)
        gt_msg_destroy (&pages [index]);
    free (pages);
    return rc;
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
    if (self->events && s_check_endpoints (self->events, self->events_origin))
        return GTCTL_EXIT_USAGE;
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
            char *message = gtctl_seconds_message (gt_subscriber_error (subscriber));
            fprintf (stderr, "%s: %s\n", gt_code_name (gt_subscriber_code (subscriber)), message);
            free (message);
            rc = GTCTL_EXIT_ERROR;
            break;
        }
        else
        if (zsys_interrupted)
            break;
    }
    if (rc == GTCTL_EXIT_OK && self->count && received < self->count && !zsys_interrupted) {
        char seconds [32];
        gtctl_format_seconds (seconds, sizeof (seconds), (uint64_t) self->timeout_watch_ms);
        fprintf (stderr, "watch: timed out after %s s with %" PRIu64 " of %" PRIu64 " events\n",
                 seconds, received, self->count);
        rc = GTCTL_EXIT_TIMEOUT;
    }
    else
    if (rc == GTCTL_EXIT_OK && self->count && received < self->count)
        rc = GTCTL_EXIT_ERROR;          //  interrupted before --count events
    gt_subscriber_destroy (&subscriber);
    return rc;
}

//  cluster: the shard map (GTLP.md §14.2) of the brokers.
static int
s_cmd_cluster (gtctl_t *self, gt_client_t *client)
{
    gt_msg_t *reply;
    gt_code_t code = gt_client_shard_map (client, &reply);
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

//  keepalive: renew one lease at a third of its TTL, ±10 % (as gt_keepalive:
//  GT_KEEPALIVE_TTL_FRACTION, GT_KEEPALIVE_JITTER, a gt_jitter of its
//  own) until SIGINT/SIGTERM, one line per renewal.  A renewal that fails
//  for a while (a failover) is retried until the lease's deadline; a
//  refusal or the deadline passing is a loss (exit 1).  --release-on-exit
//  releases it at the end.
static int
s_cmd_keepalive (gtctl_t *self, gt_client_t *client)
{
    const char *lease_id = self->args [0];
    int64_t start = zclock_mono ();
    //  Before the first renewal the deadline is a guess: the TTL asked
    //  for, else the timeout
    int64_t deadline = start + (int64_t) (self->ttl_ms? self->ttl_ms: (uint64_t) self->timeout_ms);
    int64_t next = start;               //  the first renewal at once
    gt_jitter_t *jitter = gt_jitter_new ();
    int rc = GTCTL_EXIT_OK;
    while (s_sleep_until (next)) {
        int64_t sent_at = zclock_mono ();
        int64_t budget = deadline - sent_at;
        if (budget <= 0) {
            char *message = gtctl_seconds_message (gt_client_error (client));
            fprintf (stderr, "UNAVAILABLE: lease %s lost: no renewal succeeded before its deadline"
                     " (last error: %s)\n", lease_id, message);
            free (message);
            rc = GTCTL_EXIT_ERROR;
            break;
        }
        gt_client_set_timeout (client, budget < self->timeout_ms? (int) budget: self->timeout_ms);
        gt_lease_info_t lease;
        memset (&lease, 0, sizeof (lease));
        gt_code_t code = gt_client_renew_lease (client, lease_id, self->ttl_ms, &lease);
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
            next = sent_at + gt_jitter_share (jitter, lease.ttl_ms, GT_KEEPALIVE_TTL_FRACTION, GT_KEEPALIVE_JITTER);
            gt_lease_info_clear (&lease);
            continue;
        }
        if (zsys_interrupted)
            break;
        if (s_renewal_final (code)) {
            char *message = gtctl_seconds_message (gt_client_error (client));
            fprintf (stderr, "%s: %s (lease %s lost)\n", gt_code_name (code), message, lease_id);
            free (message);
            rc = GTCTL_EXIT_ERROR;
            break;
        }
        //  UNAVAILABLE, TRY_AGAIN, ...: again soon, until the deadline
        next = zclock_mono () + 100;
    }
    gt_jitter_destroy (&jitter);
    if (rc == GTCTL_EXIT_OK && (self->given & OPT_RELEASE_ON_EXIT)) {
        //  Stopped by a signal: release, the signal is handled
        zsys_interrupted = 0;
        gt_lease_info_t lease;
        memset (&lease, 0, sizeof (lease));
        gt_code_t code = gt_client_release_lease (client, lease_id, false, &lease);
        if (code != GT_OK)
            return s_call_error (client, code);
        s_show_lease (self, &lease, false);
        gt_lease_info_clear (&lease);
    }
    fflush (stdout);
    return rc;
}

static int s_cmd_help (gtctl_t *self, gt_client_t *client);
static int s_cmd_completion (gtctl_t *self, gt_client_t *client);

//  Every command: the parser, the help and the completion read this.
static const s_command_t s_commands [] = {
    { "health", s_cmd_health, 0, 0, 0, false, false, NULL, NULL,
      "health",
      "the broker's status, store, version, uptime",
      "Asks the broker how it is: SERVING or not, its store (memory or postgres)\n"
      "and the store's status, its version, its uptime and its active leases.\n"
      "--json prints the whole HEALTH reply.",
      "gtctl health\n"
      "gtctl --endpoint tcp://10.0.0.5:50051 --json health" },
    { "stats", s_cmd_stats, 0, 0, 0, false, false, NULL, NULL,
      "stats",
      "the broker's counters, one per line",
      "Prints the broker's counters, one \"name value\" line each (leases created,\n"
      "renewed, expired, callbacks delivered, last_seq of the event history...).\n"
      "--json prints the STATS reply.",
      "gtctl stats\n"
      "gtctl --json stats" },
    { "create", s_cmd_create, OPT_OBJECT | OPT_TYPE | OPT_SERVICE | OPT_TTL | OPT_META
                            | OPT_CLEANUP_URL | OPT_PAYLOAD | OPT_MAX_RETRIES
                            | OPT_RETRY_DELAY | OPT_IDEMPOTENCY_KEY,
      0, 0, true, false, NULL, NULL,
      "create --object ID [--type TYPE] --service SVC [--ttl S] [--meta K=V]...\n"
      "       [--cleanup-url URL] [--payload T] [--max-retries N] [--retry-delay S]\n"
      "       [--idempotency-key K]",
      "lease an object for a service; prints the lease id",
      "Creates a lease on the object for the service and prints the new lease's id.\n"
      "When the lease ends without a release (it expires), the object is reclaimed:\n"
      "an event is published and, with --cleanup-url, the URL is called.\n"
      "  --object ID          the object (any string: a path, a key, a row id)\n"
      "  --type TYPE          DATABASE_ROW, BLOB_STORAGE, TEMPORARY_FILE,\n"
      "                       WEBSOCKET_SESSION, CACHE_ENTRY, CUSTOM (any case)\n"
      "  --service SVC        the owning service (default $GT_SERVICE)\n"
      "  --ttl S              seconds until it expires unless renewed (fractions\n"
      "                       allowed); default: the broker's\n"
      "  --meta K=V           metadata, repeatable\n"
      "  --cleanup-url URL    called when the object is reclaimed, with --payload T,\n"
      "                       at most --max-retries N times, --retry-delay S apart\n"
      "  --idempotency-key K  a repeat with the same key returns the same lease",
      "gtctl create --object /tmp/upload-1.jpg --type TEMPORARY_FILE \\\n"
      "    --service upload-service --ttl 30" },
    { "renew", s_cmd_lease, OPT_SERVICE | OPT_TTL, 1, 1, true, false, "lease id", NULL,
      "renew ID --service SVC [--ttl S]",
      "push a lease's expiry back by its TTL",
      "Renews an active lease: it now expires its TTL from now.\n"
      "  --service SVC  the owning service (default $GT_SERVICE)\n"
      "  --ttl S        a new TTL in seconds (fractions allowed); default: the\n"
      "                 lease's own\n"
      "Exit 1 with LEASE_ENDED if it has expired or was released.",
      "gtctl renew 3f1c0c9d2b8e4a7f9e6d5c4b3a291807 --service upload-service --ttl 60" },
    { "release", s_cmd_lease, OPT_SERVICE | OPT_RETAIN, 1, 1, true, false, "lease id", NULL,
      "release ID --service SVC [--retain]",
      "end a lease: the object is reclaimed",
      "Releases a lease.  The object is reclaimed when its last lease ends (an event,\n"
      "and the cleanup URL if any), unless --retain says the service keeps it.\n"
      "  --service SVC  the owning service (default $GT_SERVICE)\n"
      "  --retain       keep the object: no reclaim, no callback",
      "gtctl release 3f1c0c9d2b8e4a7f9e6d5c4b3a291807 --service upload-service" },
    { "get", s_cmd_lease, 0, 1, 1, false, false, "lease id", NULL,
      "get ID",
      "every field of one lease",
      "Prints a lease: object, type, service, state, fence, TTL, times, metadata,\n"
      "cleanup and its callback's status.  --json prints the lease map.",
      "gtctl get 3f1c0c9d2b8e4a7f9e6d5c4b3a291807" },
    { "retry", s_cmd_lease, 0, 1, 1, false, false, "lease id", NULL,
      "retry ID",
      "deliver a dead-lettered cleanup callback again",
      "Queues the cleanup callback of a lease whose callback is DEAD (every attempt\n"
      "failed) for delivery again.  gtctl list --cleanup-status DEAD finds them.",
      "gtctl retry 3f1c0c9d2b8e4a7f9e6d5c4b3a291807" },
    { "list", s_cmd_list, OPT_SERVICE | OPT_OBJECT | OPT_TYPE | OPT_STATE | OPT_LIMIT
                        | OPT_CURSOR | OPT_CLEANUP_STATUS | OPT_ALL,
      0, 0, false, false, NULL, NULL,
      "list [--service S] [--object O] [--type T] [--state S]\n"
      "     [--cleanup-status PENDING|DELIVERED|DEAD] [--limit N]\n"
      "     [--cursor C | --all]",
      "a table of leases, filtered, one page or --all",
      "Prints a table of the leases that match every filter given.\n"
      "  --service S          that service's (default $GT_SERVICE)\n"
      "  --object O           that object's\n"
      "  --type T             that type's\n"
      "  --state S            ACTIVE, RELEASED or EXPIRED\n"
      "  --cleanup-status C   PENDING, DELIVERED or DEAD (its callback)\n"
      "  --limit N            leases per page (at most 1000)\n"
      "  --cursor C           the page after the one that gave C\n"
      "  --all                every page from here to the end, as one table\n"
      "When there are more, stderr says the next page's command, with the same\n"
      "filters: more leases: gtctl list --service S --limit N --cursor C (or --all).",
      "gtctl list --service upload-service --state ACTIVE\n"
      "gtctl list --cleanup-status DEAD --all" },
    { "watch", s_cmd_watch, OPT_SERVICE | OPT_COUNT | OPT_TIMEOUT | OPT_FROM,
      0, -1, false, false, "PREFIX", NULL,
      "watch [--service SVC] [PREFIX]... [--count N] [--timeout S] [--from SEQ]",
      "follow the events, one JSON line each",
      "Prints one JSON object per event per line, flushed, as they happen.\n"
      "Topics are SVC \\x1f verb.TYPE; with --service (default $GT_SERVICE) a PREFIX\n"
      "is within that service's: 'expired.', 'reclaimed.TEMPORARY_FILE'...\n"
      "  --count N    stop after N events (exit 0)\n"
      "  --timeout S  stop after S seconds: exit 0, or 3 if --count was given and\n"
      "               not reached (stderr: watch: timed out after S s with K of N events)\n"
      "  --from SEQ   first the history from sequence number SEQ, then live",
      "gtctl watch --service upload-service expired. --count 1 --timeout 60\n"
      "gtctl watch --from 1 --timeout 5" },
    { "replay", s_cmd_replay, OPT_AFTER | OPT_LIMIT, 0, 0, false, false, NULL, NULL,
      "replay --after SEQ [--limit N]",
      "one page of the event history",
      "Prints the events after sequence number SEQ, one line each, then last_seq N\n"
      "(the next --after).  --limit N: at most N events (at most 1000).",
      "gtctl replay --after 0 --limit 100" },
    { "keepalive", s_cmd_keepalive, OPT_SERVICE | OPT_TTL | OPT_RELEASE_ON_EXIT,
      1, 1, true, false, "lease id", NULL,
      "keepalive ID --service SVC [--ttl S] [--release-on-exit]",
      "renew a lease until SIGINT/SIGTERM",
      "Renews the lease at a third of its TTL (±10 %) until SIGINT or SIGTERM, one\n"
      "line per renewal: ID expires_at MS (with --json, the lease).  A renewal that\n"
      "fails for a while (a failover) is retried until the lease's deadline.\n"
      "  --service SVC      the owning service (default $GT_SERVICE)\n"
      "  --ttl S            the TTL each renewal asks for; default: the lease's own\n"
      "  --release-on-exit  release the lease when stopped (prints its RELEASED line)\n"
      "Exit 0 when stopped; 1 when the lease is lost (refused, or no renewal\n"
      "succeeded before its deadline).",
      "gtctl keepalive 3f1c0c9d2b8e4a7f9e6d5c4b3a291807 --service batch --release-on-exit &\n"
      "run-the-job; kill -INT $!" },
    { "cluster", s_cmd_cluster, 0, 0, 0, false, false, NULL, NULL,
      "cluster",
      "the shard map: brokers and their shards",
      "Prints the shard map: its version, single or cluster mode, and each broker\n"
      "with its endpoints and its shards (ranges, with their epochs).  --json\n"
      "prints the MAP reply.",
      "gtctl --endpoint tcp://10.0.0.1:50051,tcp://10.0.0.2:50051 cluster" },
    { "keygen", s_cmd_keygen, OPT_SERVICE | OPT_ROLE | OPT_CALLBACK_ALLOW | OPT_CALLBACK_SECRET_FILE,
      1, 1, false, true, "NAME", NULL,
      "keygen NAME [--service SVC] [--role service|observer|admin]\n"
      "       [--callback-allow PREFIXES] [--callback-secret-file FILE]",
      "write the CURVE certificates NAME and NAME_secret",
      "Writes a CURVE certificate pair: NAME (public: a client's goes into the\n"
      "broker's GC_CURVE_CLIENTS, the broker's is the clients' GT_SERVER_KEY) and\n"
      "NAME_secret (a client's GT_CLIENT_CERT, or the broker's GC_CURVE_CERT).\n"
      "  --service SVC               the service a client key acts as (not\n"
      "                              $GT_SERVICE: a key's service is explicit)\n"
      "  --role R                    service (default), observer or admin\n"
      "  --callback-allow PREFIXES   the cleanup URLs this key may name\n"
      "  --callback-secret-file FILE its callbacks' signing secret (first line)\n"
      "Needs no broker.  Never overwrites a file.",
      "gtctl keygen upload --service upload-service\n"
      "gtctl keygen ops --role observer" },
    { "help", s_cmd_help, 0, 0, 1, false, true, "COMMAND", NULL,
      "help [COMMAND]",
      "this text, or a command's own",
      "Prints the global help, or a command's description, options and example\n"
      "(as gtctl COMMAND --help does).",
      "gtctl help list\n"
      "gtctl watch --help" },
    { "completion", s_cmd_completion, 0, 1, 1, false, true, "SHELL (bash)", "bash",
      "completion bash",
      "print a bash completion script",
      "Prints a bash completion script for gtctl's commands, their options and\n"
      "the values of --type, --state, --cleanup-status and --role.",
      "source <(gtctl completion bash)\n"
      "gtctl completion bash > /etc/bash_completion.d/gtctl" },
};

static const size_t s_command_count = sizeof (s_commands) / sizeof (s_commands [0]);

static const s_command_t *
s_find_command (const char *name)
{
    for (size_t index = 0; index < s_command_count; index++)
        if (streq (s_commands [index].name, name))
            return &s_commands [index];
    return NULL;
}

//  A command's synopsis, its first line after prefix, the others after as
//  many blanks; with a note, that at column 28 (on the last line if it fits,
//  else on one of its own).
static void
s_print_synopsis (FILE *out, const s_command_t *command, const char *prefix, const char *note)
{
    const char *line = command->synopsis;
    int width = 0;
    bool first = true;
    while (*line) {
        int length = (int) strcspn (line, "\n");
        if (!first)
            fprintf (out, "\n");
        width = fprintf (out, "%*s%.*s", first? 0: (int) strlen (prefix), first? prefix: "",
                         length, line);
        first = false;
        line += length;
        if (*line)
            line++;
    }
    if (note) {
        if (width < 27)
            fprintf (out, "%*s(%s)", 28 - width, "", note);
        else
            fprintf (out, "\n%28s(%s)", "", note);
    }
    fprintf (out, "\n");
}

//  The global help: every command's synopsis and summary.
static void
s_print_usage (FILE *out)
{
    fprintf (out, "%s", s_usage_head);
    for (size_t index = 0; index < s_command_count; index++)
        s_print_synopsis (out, &s_commands [index], "  ", s_commands [index].summary);
    fprintf (out, "%s", s_usage_tail);
}

//  A command's help: synopsis, details, example.
static void
s_print_help (FILE *out, const s_command_t *command)
{
    s_print_synopsis (out, command, "usage: gtctl ", NULL);
    fprintf (out, "\n%s\n", command->details);
    if (!command->local)
        fprintf (out, "\nand gtctl's global options: --endpoint, --events, --json, --timeout-ms,\n"
                      "--server-key, --client-cert (gtctl --help)\n");
    fprintf (out, "\nexample%s:\n", strchr (command->example, '\n')? "s": "");
    const char *line = command->example;
    while (*line) {
        int length = (int) strcspn (line, "\n");
        fprintf (out, "  %.*s\n", length, line);
        line += length;
        if (*line)
            line++;
    }
}

static int
s_usage_error (const char *format, ...)
{
    va_list args;
    va_start (args, format);
    fprintf (stderr, "gtctl: ");
    vfprintf (stderr, format, args);
    fprintf (stderr, "\n");
    va_end (args);
    if (s_current) {
        s_print_synopsis (stderr, s_current, "usage: gtctl ", NULL);
        fprintf (stderr, "(gtctl help %s: its options and an example)\n", s_current->name);
    }
    else
        s_print_usage (stderr);
    return GTCTL_EXIT_USAGE;
}

//  help [COMMAND] (and COMMAND --help): exit 0, or 2 for no such command.
static int
s_help (const char *name)
{
    if (!name) {
        s_print_usage (stdout);
        return GTCTL_EXIT_OK;
    }
    const s_command_t *command = s_find_command (name);
    if (!command) {
        fprintf (stderr, "gtctl: no command '%s'; the commands:", name);
        for (size_t index = 0; index < s_command_count; index++)
            fprintf (stderr, " %s", s_commands [index].name);
        fprintf (stderr, "\n");
        return GTCTL_EXIT_USAGE;
    }
    s_print_help (stdout, command);
    return GTCTL_EXIT_OK;
}

static int
s_cmd_help (gtctl_t *self, gt_client_t *client)
{
    (void) client;
    return s_help (self->arg_count? self->args [0]: NULL);
}

//  The long options whose bits are in mask, " --a --b", into text.
static void
s_print_option_words (const char *before, unsigned mask, bool valued_only, const char *separator)
{
    printf ("%s", before);
    bool first = true;
    for (const struct option *entry = s_options; entry->name; entry++)
        if ((unsigned) entry->val & mask && (entry->val & (entry->val - 1)) == 0
        &&  (!valued_only || entry->has_arg == required_argument)) {
            printf ("%s--%s", first? "": separator, entry->name);
            first = false;
        }
}

//  completion bash: a completion function from s_commands and s_options.
static int
s_cmd_completion (gtctl_t *self, gt_client_t *client)
{
    (void) client;
    if (!streq (self->args [0], "bash"))
        return s_usage_error ("completion knows bash, not '%s'", self->args [0]);
    printf ("# bash completion for gtctl %s, generated by 'gtctl completion bash' from\n"
            "# gtctl's command table.  Source it, or install it as\n"
            "# /usr/share/bash-completion/completions/gtctl\n"
            "_gtctl ()\n"
            "{\n"
            "    local cur=\"${COMP_WORDS[COMP_CWORD]}\" prev=\"\" command=\"\" word index words\n"
            "    (( COMP_CWORD > 0 )) && prev=\"${COMP_WORDS[COMP_CWORD-1]}\"\n"
            "    # --opt=value and host:port are split at = and : (COMP_WORDBREAKS)\n"
            "    if [[ \"$cur\" == \"=\" || \"$cur\" == \":\" ]]; then\n"
            "        cur=\"\"\n"
            "    elif [[ \"$prev\" == \"=\" ]] && (( COMP_CWORD > 1 )); then\n"
            "        prev=\"${COMP_WORDS[COMP_CWORD-2]}\"\n"
            "    fi\n"
            "    # The command: the first word that is not an option or an option's value\n"
            "    for (( index = 1; index < COMP_CWORD; index++ )); do\n"
            "        word=\"${COMP_WORDS[index]}\"\n"
            "        case \"$word\" in\n", GT_VERSION_STRING);
    s_print_option_words ("            ", ~0u, true, "|");
    printf (")\n"
            "                (( index++ ))\n"
            "                [[ \"${COMP_WORDS[index]}\" == \"=\" ]] && (( index++ ))\n"
            "                while [[ \"${COMP_WORDS[index+1]}\" == \":\" ]]; do (( index += 2 )); done ;;\n"
            "            -*) ;;\n"
            "            *) command=\"$word\"; break ;;\n"
            "        esac\n"
            "    done\n"
            "    case \"$prev\" in\n");
    //  The values of the options that have a closed set
    printf ("        --type) words=\"");
    for (int type = 0; type < GT_TYPE_COUNT_; type++)
        printf ("%s%s", type? " ": "", gt_object_type_name ((gt_object_type_t) type));
    printf ("\" ;;\n        --state) words=\"");
    for (int state = 0; state < GT_STATE_COUNT_; state++)
        printf ("%s%s", state? " ": "", gt_state_name ((gt_lease_state_t) state));
    printf ("\" ;;\n        --cleanup-status) words=\"");
    for (int status = GT_CLEANUP_NONE + 1; status < GT_CLEANUP_STATUS_COUNT_; status++)
        printf ("%s%s", status > GT_CLEANUP_NONE + 1? " ": "",
                gt_cleanup_status_name ((gt_cleanup_status_t) status));
    printf ("\" ;;\n        --role) words=\"service observer admin\" ;;\n"
            "        --server-key|--client-cert|--callback-secret-file)\n"
            "            COMPREPLY=( $(compgen -f -- \"$cur\") ); return ;;\n");
    s_print_option_words ("        ", ~0u & ~(unsigned) (OPT_TYPE | OPT_STATE | OPT_CLEANUP_STATUS
                          | OPT_ROLE | OPT_SERVER_KEY | OPT_CLIENT_CERT | OPT_CALLBACK_SECRET_FILE),
                          true, "|");
    printf (")\n            COMPREPLY=(); return ;;\n"
            "    esac\n"
            "    if [[ -z \"$words\" ]]; then\n"
            "        case \"$command\" in\n"
            "            \"\")\n"
            "                if [[ \"$cur\" == -* ]]; then\n");
    s_print_option_words ("                    words=\"", OPT_GLOBAL, false, " ");
    printf (" --help --version\"\n"
            "                else\n"
            "                    words=\"");
    for (size_t index = 0; index < s_command_count; index++)
        printf ("%s%s", index? " ": "", s_commands [index].name);
    printf ("\"\n                fi ;;\n");
    for (size_t index = 0; index < s_command_count; index++) {
        const s_command_t *command = &s_commands [index];
        printf ("            %s) ", command->name);
        s_print_option_words ("words=\"", command->options, false, " ");
        //  help and completion: nothing global matters
        bool globals = !command->local || command->options;
        s_print_option_words (command->options? " ": "", globals? OPT_GLOBAL: 0, false, " ");
        printf (" --help");
        if (command->run == s_cmd_help)
            for (size_t other = 0; other < s_command_count; other++)
                printf (" %s", s_commands [other].name);
        else
        if (command->arg_words)
            printf (" %s", command->arg_words);
        printf ("\" ;;\n");
    }
    printf ("        esac\n"
            "    fi\n"
            "    COMPREPLY=( $(compgen -W \"$words\" -- \"$cur\") )\n"
            "}\n"
            "complete -F _gtctl gtctl\n");
    return GTCTL_EXIT_OK;
}

//  Parse argv into self and find the command; returns it, or NULL with
//  *exit_code set (usage error, or 0 for help).
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
        if (option == OPT_HELP) {
            self->help = true;
            continue;
        }
        if (option == OPT_VERSION) {
            printf ("gtctl %s (GTLP/%d)\n", GT_VERSION_STRING, GT_PROTOCOL_VERSION);
            *exit_code = GTCTL_EXIT_OK;
            return NULL;
        }
        if (self->help)
            continue;                   //  help wins over the other options
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
    if (self->help) {
        //  gtctl --help, gtctl COMMAND --help, gtctl help COMMAND --help
        const char *name = self->command;
        if (name && streq (name, "help") && self->arg_count > 0)
            name = self->args [0];
        *exit_code = s_help (name);
        return NULL;
    }
    if (!self->command) {
        s_usage_error ("no command given");
        return NULL;
    }
    const s_command_t *command = s_find_command (self->command);
    if (!command) {
        s_usage_error ("unknown command '%s'", self->command);
        return NULL;
    }
    s_current = command;
    unsigned stray = self->given & ~(command->options | (unsigned) OPT_GLOBAL);
    if (stray) {
        for (const struct option *entry = s_options; entry->name; entry++)
            if (stray & (unsigned) entry->val) {
                s_usage_error ("%s does not take --%s", command->name, entry->name);
                return NULL;
            }
    }
    if (self->arg_count < command->min_args) {
        s_usage_error ("%s needs one %s", command->name, command->arg_name);
        return NULL;
    }
    if (command->max_args >= 0 && self->arg_count > command->max_args) {
        if (command->max_args == 0)
            s_usage_error ("%s takes no argument ('%s')", command->name, self->args [0]);
        else
            s_usage_error ("%s takes one %s only", command->name, command->arg_name);
        return NULL;
    }
    //  $GT_SERVICE: the default --service of a command that acts as or
    //  filters by a service (a key's service, keygen's, is always explicit)
    const char *env_service = getenv ("GT_SERVICE");
    if (!(self->given & OPT_SERVICE) && (command->options & OPT_SERVICE)
    &&  command->run != s_cmd_keygen && env_service && *env_service)
        self->service = env_service;
    if (self->service && (!*self->service || strlen (self->service) > GT_MAX_SERVICE_ID)) {
        s_usage_error ("%s '%s' must be 1 .. %d bytes", self->given & OPT_SERVICE? "--service":
                       "$GT_SERVICE", self->service, GT_MAX_SERVICE_ID);
        return NULL;
    }
    //  With CURVE the key's service is the default (the broker fills it in)
    bool curve = self->server_key || self->client_cert
              || (getenv ("GT_SERVER_KEY") && *getenv ("GT_SERVER_KEY"))
              || (getenv ("GT_CLIENT_CERT") && *getenv ("GT_CLIENT_CERT"));
    if (command->needs_service && !self->service && !curve) {
        s_usage_error ("%s needs --service (or $GT_SERVICE)", command->name);
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
    self.endpoint_origin = env_endpoint && *env_endpoint? "$GT_ENDPOINT": "the default";
    self.events = env_events && *env_events? env_events: NULL;
    self.events_origin = "$GT_EVENTS_ENDPOINT";
    self.timeout_ms = GT_CLIENT_DEFAULT_TIMEOUT_MS;
    self.meta = (gt_meta_entry_t *) calloc ((size_t) argc + 1, sizeof (gt_meta_entry_t));
    char **words = (char **) calloc ((size_t) argc + 1, sizeof (char *));
    assert (self.meta && words);
    self.args = words;

    int rc;
    const s_command_t *command = s_parse (&self, argc, argv, &rc);
    if (self.given & OPT_ENDPOINT)
        self.endpoint_origin = "--endpoint";
    if (self.given & OPT_EVENTS)
        self.events_origin = "--events";
    //  No events endpoint given: with several request endpoints, those of
    //  the shard map; else the local default
    if (command && !self.events && !strchr (self.endpoint, ',')) {
        self.events = "tcp://127.0.0.1:50052";
        self.events_origin = "the default";
    }
    if (command && command->local)
        rc = command->run (&self, NULL);
    else
    if (command && (rc = s_check_endpoints (self.endpoint, self.endpoint_origin)) == 0) {
        //  Requests other than CREATE/RENEW/RELEASE need no owner; without
        //  --service they name none (CURVE: the key's service)
        gt_client_t *client = gt_client_new (self.endpoint, self.service);
        if (!client)
            rc = s_usage_error ("cannot use endpoint '%s' (%s)", self.endpoint, self.endpoint_origin);
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
