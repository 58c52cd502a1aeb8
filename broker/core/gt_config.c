/*  gt_config.c — broker settings: defaults, config file, environment, flags.

    One table describes every setting (its environment variable, its flag,
    its kind and its bounds), so that the config file, env, flags and --help
    cannot drift: the file's lines go through the same parser as the
    environment's variables.  */
#include <czmq.h>
#include <math.h>
#include <unistd.h>
#include "gt_config.h"
#include "gt_proto.h"
#include "gt_lease_tables.h"

typedef enum {
    S_SECONDS,                      //  seconds with fraction, stored as uint64 ms
    S_UINT,                         //  unsigned integer, stored as uint64
    S_PORT,                         //  0 .. 65535, stored as int
    S_METRICS_PORT,                 //  0 .. 65535 or "auto" (stored as -1), as int
    S_WAIT_SECONDS,                 //  seconds as S_SECONDS, or negative = forever (stored as -1), as int64
    S_STRING,                       //  stored as char * (owned)
    S_CHOICE                        //  one of s_choices (), stored lower case as char * (owned)
} s_kind_t;

typedef struct {
    const char *env;                //  environment variable
    const char *flag;               //  long flag without "--", or NULL
    s_kind_t kind;                  //  how to parse
    size_t offset;                  //  field in gt_config_t
    uint64_t min;                   //  lower bound (ms for durations)
    uint64_t max;                   //  upper bound (ms for durations)
    const char *help;               //  one line for --help
} s_setting_t;

#define S_FIELD(f) offsetof (gt_config_t, f)
//  Lease TTLs are stored in 32 bits per lease: about 49 days at most.
#define S_MAX_TTL_MS    ((uint64_t) UINT32_MAX)
#define S_MAX_LEASES    ((uint64_t) GT_LEASE_MAX)
#define S_DAY_MS        (86400ULL * 1000)

static const s_setting_t s_settings [] = {
    { "GC_SERVER_HOST", "host", S_STRING, S_FIELD (host), 0, 0,
      "interface to bind (127.0.0.1)" },
    { "GC_SERVER_PORT", "port", S_PORT, S_FIELD (port), 0, 65535,
      "requests port, 0 = ephemeral (50051)" },
    { "GC_EVENTS_PORT", "events-port", S_PORT, S_FIELD (events_port), 0, 65535,
      "events port, 0 = ephemeral (50052)" },
    { "GC_DEFAULT_LEASE_DURATION", "default-lease", S_SECONDS, S_FIELD (default_lease_ms), 1, S_MAX_TTL_MS,
      "seconds: TTL of a lease created without one (300)" },
    { "GC_MIN_LEASE_DURATION", "min-lease", S_SECONDS, S_FIELD (min_lease_ms), 1, S_MAX_TTL_MS,
      "seconds: shortest TTL accepted (30)" },
    { "GC_MAX_LEASE_DURATION", "max-lease", S_SECONDS, S_FIELD (max_lease_ms), 1, S_MAX_TTL_MS,
      "seconds: longest TTL accepted (3600)" },
    { "GC_MAX_LEASES_PER_SERVICE", "max-leases-per-service", S_UINT, S_FIELD (max_leases_per_service), 1, UINT32_MAX,
      "active leases one service may hold (10000)" },
    { "GC_MAX_LEASES", "max-leases", S_UINT, S_FIELD (max_leases), 1, S_MAX_LEASES,
      "leases the broker holds, active and ended ones still kept (268435455, the most)" },
    { "GC_CLEANUP_GRACE_PERIOD", "grace", S_SECONDS, S_FIELD (grace_ms), 0, 365 * S_DAY_MS,
      "seconds: delay before an unreferenced object is reclaimed (0)" },
    { "GC_LEASE_RETENTION", "lease-retention", S_SECONDS, S_FIELD (lease_retention_ms), 0, 365 * S_DAY_MS,
      "seconds: ended leases stay visible this long (300)" },
    { "GC_EVENT_HISTORY", "event-history", S_UINT, S_FIELD (event_history), 0, 100000000,
      "events kept for REPLAY (100000)" },
    { "GC_STORAGE_BACKEND", "storage", S_STRING, S_FIELD (storage), 0, 0,
      "memory or postgres (memory)" },
    { "DATABASE_URL", "database-url", S_STRING, S_FIELD (database_url), 0, 0,
      "PostgreSQL connection string (postgres store)" },
    { "GC_MAX_DB_CONNECTIONS", "max-db-connections", S_UINT, S_FIELD (max_db_connections), 1, 1000,
      "PostgreSQL connections allowed; the store uses 2 (writer, shard ownership) (10)" },
    { "GC_DB_CONNECT_WAIT", "db-connect-wait", S_WAIT_SECONDS, S_FIELD (db_connect_wait_ms), 0, S_DAY_MS,
      "seconds to wait for PostgreSQL at start; 0 = fail at once, -1 = forever (0)" },
    { "GC_RECOVERY_EXPIRY_RATE", "recovery-expiry-rate", S_UINT, S_FIELD (recovery_expiry_rate), 1, 100000000,
      "expiries per second while catching up after a start (50000)" },
    { "GC_DB_GROUP_COMMIT", "db-group-commit", S_UINT, S_FIELD (db_group_commit), 0, 1,
      "1 = group commit; 0 = one transaction per request, for comparison (1)" },
    { "GC_CLEANUP_INTERVAL", "cleanup-interval", S_SECONDS, S_FIELD (cleanup_interval_ms), 0, 365 * S_DAY_MS,
      "seconds: accepted for compatibility, no effect: leases expire at their deadline (60)" },
    { "GC_CLEANUP_TIMEOUT", "cleanup-timeout", S_SECONDS, S_FIELD (cleanup_timeout_ms), 1, S_DAY_MS,
      "seconds: timeout of one cleanup call (30)" },
    { "GC_CLEANUP_MAX_RETRIES", "cleanup-max-retries", S_UINT, S_FIELD (cleanup_max_retries), 0, 100,
      "default retries of a cleanup call (3)" },
    { "GC_CLEANUP_RETRY_DELAY", "cleanup-retry-delay", S_SECONDS, S_FIELD (cleanup_retry_delay_ms), 0, 3600 * 1000,
      "seconds: default base delay between cleanup retries (5)" },
    { "GC_CALLBACK_ALLOW", "callback-allow", S_STRING, S_FIELD (callback_allow), 0, 0,
      "comma-separated URL prefixes cleanup URLs must start with (any http/https)" },
    { "GC_CALLBACK_SECRET", "callback-secret", S_STRING, S_FIELD (callback_secret), 0, 0,
      "HMAC-SHA256 key signing cleanup calls; prefer the env var (unsigned)" },
    { "GC_CALLBACK_MAX_PENDING", "callback-max-pending", S_UINT, S_FIELD (callback_max_pending), 1, 100000000,
      "cleanup calls waiting for delivery; past it: dead letter (100000)" },
    { "GC_CALLBACK_CONCURRENCY", "callback-concurrency", S_UINT, S_FIELD (callback_concurrency), 1, 100000,
      "cleanup requests in flight (256)" },
    { "GC_CALLBACK_PER_HOST", "callback-per-host", S_UINT, S_FIELD (callback_per_host), 1, 100000,
      "cleanup requests in flight per endpoint (32)" },
    { "GC_METRICS_PORT", "metrics-port", S_METRICS_PORT, S_FIELD (metrics_port), 0, 65535,
      "HTTP /metrics /healthz /readyz port; 0 = off, auto = ephemeral (9090)" },
    { "GC_METRICS_HOST", "metrics-host", S_STRING, S_FIELD (metrics_host), 0, 0,
      "interface of the metrics port (127.0.0.1)" },
    { "GC_CONNECTION_MAX_PENDING", "connection-max-pending", S_UINT, S_FIELD (connection_max_pending), 1, 10000000,
      "requests of one connection waiting for their reply; past it: UNAVAILABLE (10000)" },
    { "GC_CONNECTION_MAX_QUEUED_BYTES", "connection-max-queued-bytes", S_UINT, S_FIELD (connection_max_queued_bytes),
      1024, 1ULL << 40, "bytes of replies queued for a connection that does not read; past it: UNAVAILABLE (4194304)" },
    { "GC_CURVE_CERT", "curve-cert", S_STRING, S_FIELD (curve_cert), 0, 0,
      "the broker's secret CURVE certificate (gtctl keygen): turns CURVE on (off)" },
    { "GC_CURVE_CLIENTS", "curve-clients", S_STRING, S_FIELD (curve_clients), 0, 0,
      "directory of the client certificates the broker trusts (with --curve-cert)" },
    { "GC_INSECURE", "insecure", S_UINT, S_FIELD (insecure), 0, 1,
      "bind beyond loopback without CURVE, knowingly (GC_INSECURE=1) (0)" },
    { "GC_BROKER_ID", "broker-id", S_STRING, S_FIELD (broker_id), 0, 0,
      "this broker's name among those on one database; unique (host:port)" },
    { "GC_ADVERTISE_ENDPOINT", "advertise-endpoint", S_STRING, S_FIELD (advertise_endpoint), 0, 0,
      "requests endpoint other brokers tell clients (tcp://host:port bound)" },
    { "GC_ADVERTISE_EVENTS", "advertise-events", S_STRING, S_FIELD (advertise_events), 0, 0,
      "events endpoint other brokers tell clients (tcp://host:events-port bound)" },
    { "GC_SHARD_LEASE", "shard-lease", S_SECONDS, S_FIELD (shard_lease_ms), 300, 600 * 1000,
      "seconds: ownership lease of the shards; a dead broker's shards move after it (3)" },
    { "GC_CLUSTER", "cluster", S_UINT, S_FIELD (cluster), 0, 1,
      "1: several active brokers share the database's shards (cluster mode, docs/CLUSTER.md) (0)" },
    { "GC_SHARD_RENEW", "shard-renew", S_SECONDS, S_FIELD (shard_renew_ms), 100, 300 * 1000,
      "seconds: how often a broker renews its shards (1)" },
    { "GC_SHUTDOWN_LINGER", "shutdown-linger", S_SECONDS, S_FIELD (shutdown_linger_ms), 0, 3600 * 1000,
      "seconds: a stop waits this long for commits in flight and owed replies (15)" },
    { "GC_LOG_LEVEL", "log-level", S_CHOICE, S_FIELD (log_level), 0, 0,
      "error, warn, info or debug; --verbose = debug (info)" },
    { "GC_LOG_FORMAT", "log-format", S_CHOICE, S_FIELD (log_format), 0, 0,
      "text, or json: one JSON object per line (text)" },
};
#define S_SETTING_COUNT (sizeof (s_settings) / sizeof (s_settings [0]))

//  Extra checks of string settings, registered by the daemon (one per
//  setting at most; set at start, before any load)
static gt_config_check_fn *s_checks [S_SETTING_COUNT];

//  The values an S_CHOICE setting accepts, NULL-terminated, and how an
//  error message lists them
static const char *const *
s_choices (const char *env, const char **listed_p)
{
    static const char *const levels [] = { "error", "warn", "info", "debug", "warning", NULL };
    static const char *const formats [] = { "text", "json", NULL };
    bool level = streq (env, "GC_LOG_LEVEL");
    *listed_p = level ? "error, warn, info or debug" : "text or json";
    return level ? levels : formats;
}

gt_config_t *
gt_config_new (void)
{
    gt_config_t *self = (gt_config_t *) zmalloc (sizeof (gt_config_t));
    assert (self);
    self->host = strdup ("127.0.0.1");
    self->port = 50051;
    self->events_port = 50052;
    self->default_lease_ms = 300 * 1000;
    self->min_lease_ms = 30 * 1000;
    self->max_lease_ms = 3600 * 1000;
    self->max_leases_per_service = 10000;
    self->max_leases = S_MAX_LEASES;
    self->grace_ms = 0;
    self->lease_retention_ms = 300 * 1000;
    self->event_history = 100000;
    self->storage = strdup ("memory");
    self->database_url = NULL;
    self->max_db_connections = 10;
    self->db_connect_wait_ms = 0;
    self->recovery_expiry_rate = 50000;
    self->connection_max_pending = 10000;
    self->connection_max_queued_bytes = 4 * 1024 * 1024;
    self->shutdown_linger_ms = 15 * 1000;
    self->shard_lease_ms = 3 * 1000;
    self->shard_renew_ms = 1000;
    self->db_group_commit = 1;
    self->cleanup_interval_ms = 60 * 1000;
    self->cleanup_timeout_ms = 30 * 1000;
    self->cleanup_max_retries = 3;
    self->cleanup_retry_delay_ms = 5 * 1000;
    self->callback_allow = NULL;
    self->callback_secret = NULL;
    self->callback_max_pending = 100000;
    self->callback_concurrency = 256;
    self->callback_per_host = 32;
    self->metrics_port = 9090;
    self->metrics_host = strdup ("127.0.0.1");
    self->log_level = strdup ("info");
    self->log_format = strdup ("text");
    return self;
}

void
gt_config_destroy (gt_config_t **self_p)
{
    assert (self_p);
    gt_config_t *self = *self_p;
    if (self) {
        free (self->host);
        free (self->storage);
        free (self->database_url);
        free (self->callback_allow);
        free (self->callback_secret);
        free (self->metrics_host);
        free (self->curve_cert);
        free (self->curve_clients);
        free (self->broker_id);
        free (self->advertise_endpoint);
        free (self->advertise_events);
        free (self->log_level);
        free (self->log_format);
        free (self->config_file);
        free (self);
        *self_p = NULL;
    }
}

static char *
s_strdup_or_null (const char *s)
{
    return s ? strdup (s) : NULL;
}

gt_config_t *
gt_config_dup (const gt_config_t *self)
{
    assert (self);
    gt_config_t *copy = (gt_config_t *) zmalloc (sizeof (gt_config_t));
    assert (copy);
    *copy = *self;
    copy->host = s_strdup_or_null (self->host);
    copy->storage = s_strdup_or_null (self->storage);
    copy->database_url = s_strdup_or_null (self->database_url);
    copy->callback_allow = s_strdup_or_null (self->callback_allow);
    copy->callback_secret = s_strdup_or_null (self->callback_secret);
    copy->metrics_host = s_strdup_or_null (self->metrics_host);
    copy->curve_cert = s_strdup_or_null (self->curve_cert);
    copy->curve_clients = s_strdup_or_null (self->curve_clients);
    copy->broker_id = s_strdup_or_null (self->broker_id);
    copy->advertise_endpoint = s_strdup_or_null (self->advertise_endpoint);
    copy->advertise_events = s_strdup_or_null (self->advertise_events);
    copy->log_level = s_strdup_or_null (self->log_level);
    copy->log_format = s_strdup_or_null (self->log_format);
    copy->config_file = s_strdup_or_null (self->config_file);
    return copy;
}

static void
s_set_string (char **field, const char *value)
{
    free (*field);
    *field = s_strdup_or_null (value);
}

void
gt_config_set_host (gt_config_t *self, const char *host)
{
    assert (self);
    s_set_string (&self->host, host ? host : "127.0.0.1");
}

void
gt_config_set_storage (gt_config_t *self, const char *storage)
{
    assert (self);
    s_set_string (&self->storage, storage ? storage : "memory");
}

void
gt_config_set_database_url (gt_config_t *self, const char *url)
{
    assert (self);
    s_set_string (&self->database_url, url);
}

void
gt_config_set_callback_allow (gt_config_t *self, const char *allow)
{
    assert (self);
    s_set_string (&self->callback_allow, allow);
}

void
gt_config_set_callback_secret (gt_config_t *self, const char *secret)
{
    assert (self);
    s_set_string (&self->callback_secret, secret);
}

bool
gt_config_parse_seconds (const char *text, uint64_t *ms_p)
{
    //  Digits, optionally a dot and more digits; nothing else (no sign,
    //  no exponent, no spaces): settings should be boring.
    if (!text || !*text)
        return false;
    const char *p = text;
    size_t int_digits = 0, frac_digits = 0;
    while (*p >= '0' && *p <= '9') {
        p++;
        int_digits++;
    }
    if (*p == '.') {
        p++;
        while (*p >= '0' && *p <= '9') {
            p++;
            frac_digits++;
        }
    }
    if (*p || (int_digits == 0 && frac_digits == 0) || int_digits > 12)
        return false;
    double seconds = strtod (text, NULL);
    if (!isfinite (seconds) || seconds < 0)
        return false;
    //  Round to the nearest ms, but a non-zero duration never becomes 0
    double ms = seconds * 1000.0;
    uint64_t rounded = (uint64_t) llround (ms);
    if (rounded == 0 && ms > 0)
        rounded = 1;
    *ms_p = rounded;
    return true;
}

static bool
s_parse_uint (const char *text, uint64_t *value_p)
{
    if (!text || !*text || strlen (text) > 19)
        return false;
    for (const char *p = text; *p; p++)
        if (*p < '0' || *p > '9')
            return false;
    *value_p = strtoull (text, NULL, 10);
    return true;
}

//  Parse and store one setting; on error writes "NAME: why" into err.
static gt_config_result_t
s_apply (gt_config_t *self, const s_setting_t *setting, const char *name,
         const char *text, char *err, size_t err_size)
{
    void *field = (char *) self + setting->offset;
    uint64_t value = 0;
    switch (setting->kind) {
        case S_STRING: {
            if (!text || !*text) {
                snprintf (err, err_size, "%s: empty value", name);
                return GT_CONFIG_ERROR;
            }
            gt_config_check_fn *check = s_checks [setting - s_settings];
            char why [400] = "";
            if (check && !check (text, why, sizeof (why))) {
                snprintf (err, err_size, "%s: %s", name, why);
                return GT_CONFIG_ERROR;
            }
            s_set_string ((char **) field, text);
            return GT_CONFIG_OK;
        }
        case S_CHOICE: {
            const char *listed = NULL;
            const char *const *choices = s_choices (setting->env, &listed);
            for (size_t i = 0; text && choices [i]; i++)
                if (strcasecmp (text, choices [i]) == 0) {
                    s_set_string ((char **) field, choices [i]);
                    return GT_CONFIG_OK;
                }
            snprintf (err, err_size, "%s: '%s' is not %s", name, text ? text : "", listed);
            return GT_CONFIG_ERROR;
        }
        case S_WAIT_SECONDS:
            if (text && *text == '-' && gt_config_parse_seconds (text + 1, &value)) {
                *(int64_t *) field = -1;        //  negative: forever
                return GT_CONFIG_OK;
            }
            if (!gt_config_parse_seconds (text, &value) || value > setting->max) {
                snprintf (err, err_size, "%s: '%s' is not a number of seconds up to %.0f "
                          "(0 = do not wait, negative = forever)", name, text, setting->max / 1000.0);
                return GT_CONFIG_ERROR;
            }
            *(int64_t *) field = (int64_t) value;
            return GT_CONFIG_OK;
        case S_SECONDS:
            if (!gt_config_parse_seconds (text, &value)) {
                snprintf (err, err_size, "%s: '%s' is not a number of seconds (e.g. 30 or 0.05)",
                          name, text);
                return GT_CONFIG_ERROR;
            }
            if (value < setting->min || value > setting->max) {
                snprintf (err, err_size, "%s: '%s' is out of range (%.3f .. %.3f seconds)",
                          name, text, setting->min / 1000.0, setting->max / 1000.0);
                return GT_CONFIG_ERROR;
            }
            *(uint64_t *) field = value;
            return GT_CONFIG_OK;
        case S_METRICS_PORT:
            if (text && strcasecmp (text, "auto") == 0) {
                *(int *) field = -1;
                self->metrics_port_chosen = true;
                return GT_CONFIG_OK;
            }
            if (!s_parse_uint (text, &value) || value > setting->max) {
                snprintf (err, err_size, "%s: '%s' is not a port (0 .. 65535; 0 = off) or 'auto'",
                          name, text);
                return GT_CONFIG_ERROR;
            }
            *(int *) field = (int) value;
            self->metrics_port_chosen = true;
            return GT_CONFIG_OK;
        case S_UINT:
        case S_PORT:
            if (!s_parse_uint (text, &value)) {
                snprintf (err, err_size, setting->kind == S_PORT ? "%s: '%s' is not a port number (0 .. 65535)"
                          : "%s: '%s' is not a non-negative integer", name, text);
                return GT_CONFIG_ERROR;
            }
            if (value < setting->min || value > setting->max) {
                snprintf (err, err_size, "%s: '%s' is out of range (%" PRIu64 " .. %" PRIu64 ")",
                          name, text, setting->min, setting->max);
                return GT_CONFIG_ERROR;
            }
            if (setting->kind == S_PORT)
                *(int *) field = (int) value;
            else
                *(uint64_t *) field = value;
            return GT_CONFIG_OK;
    }
    return GT_CONFIG_ERROR;
}

gt_config_result_t
gt_config_check (const gt_config_t *self, char *err, size_t err_size)
{
    assert (self);
    if (self->min_lease_ms > self->max_lease_ms) {
        snprintf (err, err_size, "GC_MIN_LEASE_DURATION (%.3f s) is above GC_MAX_LEASE_DURATION (%.3f s)",
                  self->min_lease_ms / 1000.0, self->max_lease_ms / 1000.0);
        return GT_CONFIG_ERROR;
    }
    if (self->default_lease_ms < self->min_lease_ms || self->default_lease_ms > self->max_lease_ms) {
        snprintf (err, err_size,
                  "GC_DEFAULT_LEASE_DURATION (%.3f s) is outside [GC_MIN_LEASE_DURATION, GC_MAX_LEASE_DURATION] = [%.3f, %.3f] s",
                  self->default_lease_ms / 1000.0, self->min_lease_ms / 1000.0, self->max_lease_ms / 1000.0);
        return GT_CONFIG_ERROR;
    }
    if (!self->storage || (strcmp (self->storage, "memory") && strcmp (self->storage, "postgres"))) {
        snprintf (err, err_size, "GC_STORAGE_BACKEND: '%s' is not 'memory' or 'postgres'",
                  self->storage ? self->storage : "");
        return GT_CONFIG_ERROR;
    }
    if (streq (self->storage, "postgres") && !self->database_url) {
        snprintf (err, err_size, "GC_STORAGE_BACKEND=postgres needs DATABASE_URL");
        return GT_CONFIG_ERROR;
    }
    if (!self->host || !*self->host) {
        snprintf (err, err_size, "GC_SERVER_HOST: empty value");
        return GT_CONFIG_ERROR;
    }
    if (!self->curve_cert != !self->curve_clients) {
        snprintf (err, err_size, "CURVE needs both GC_CURVE_CERT (--curve-cert, the broker's secret certificate) "
                  "and GC_CURVE_CLIENTS (--curve-clients, the directory of trusted client certificates)");
        return GT_CONFIG_ERROR;
    }
    //  The renewal must land before the self-fencing margin (1/6 of the
    //  lease, at least 100 ms) runs out
    if (self->shard_renew_ms + gt_config_shard_margin_ms (self) >= self->shard_lease_ms) {
        snprintf (err, err_size, "GC_SHARD_RENEW (%.3f s) must be shorter than GC_SHARD_LEASE (%.3f s) minus "
                  "its self-fencing margin (%.3f s)", self->shard_renew_ms / 1000.0,
                  self->shard_lease_ms / 1000.0, gt_config_shard_margin_ms (self) / 1000.0);
        return GT_CONFIG_ERROR;
    }
    if (self->cluster && !streq (self->storage, "postgres")) {
        snprintf (err, err_size, "GC_CLUSTER=1 (cluster mode) needs GC_STORAGE_BACKEND=postgres: the brokers "
                  "share their shards through the database");
        return GT_CONFIG_ERROR;
    }
    if (self->broker_id && (!*self->broker_id || strlen (self->broker_id) > 200)) {
        snprintf (err, err_size, "GC_BROKER_ID: 1 to 200 characters");
        return GT_CONFIG_ERROR;
    }
    char endpoint [300];
    snprintf (endpoint, sizeof (endpoint), "tcp://%s:1", self->host);
    if (!self->curve_cert && !self->insecure && !gt_config_endpoint_is_local (endpoint)) {
        snprintf (err, err_size,
                  "refusing to bind %s without authentication: GTLP trusts the service_id a client writes, so "
                  "anyone who can reach the port could renew, release or list any service's leases. "
                  "Create keys and turn CURVE on: 'gtctl keygen broker' and, per client, "
                  "'gtctl keygen NAME --service SVC [--role service|observer|admin]' into a directory DIR, then "
                  "--curve-cert broker_secret --curve-clients DIR (README \"Running it on a network\"). "
                  "Or pass --insecure (GC_INSECURE=1) to bind it without authentication knowingly",
                  self->host);
        return GT_CONFIG_ERROR;
    }
    return GT_CONFIG_OK;
}

uint64_t
gt_config_shard_margin_ms (const gt_config_t *self)
{
    uint64_t margin = self->shard_lease_ms / 6;
    return margin < 100? 100: margin;
}

void
gt_config_set_broker_id (gt_config_t *self, const char *broker_id)
{
    assert (self);
    s_set_string (&self->broker_id, broker_id);
}

bool
gt_config_endpoint_is_local (const char *endpoint)
{
    if (!endpoint)
        return false;
    if (strncmp (endpoint, "ipc://", 6) == 0 || strncmp (endpoint, "inproc://", 9) == 0)
        return true;
    if (strncmp (endpoint, "tcp://", 6) != 0)
        return false;
    //  The host: up to the last ':' (the port), without IPv6 brackets
    const char *host = endpoint + 6;
    const char *colon = strrchr (host, ':');
    size_t length = colon ? (size_t) (colon - host) : strlen (host);
    if (length >= 2 && host [0] == '[' && host [length - 1] == ']') {
        host++;
        length -= 2;
    }
    char name [256];
    if (length == 0 || length >= sizeof (name))
        return false;
    memcpy (name, host, length);
    name [length] = '\0';
    if (streq (name, "localhost") || streq (name, "::1"))
        return true;
    //  127.0.0.0/8, as a dotted quad only (an interface name is not loopback)
    unsigned a, b, c, d;
    char tail;
    return sscanf (name, "%u.%u.%u.%u%c", &a, &b, &c, &d, &tail) == 4
        && a == 127 && b < 256 && c < 256 && d < 256;
}

gt_config_result_t
gt_config_load_env (gt_config_t *self, char *err, size_t err_size)
{
    assert (self);
    for (size_t i = 0; i < S_SETTING_COUNT; i++) {
        const char *text = getenv (s_settings [i].env);
        if (text == NULL)
            continue;
        if (s_apply (self, &s_settings [i], s_settings [i].env, text, err, err_size) != GT_CONFIG_OK)
            return GT_CONFIG_ERROR;
    }
    return GT_CONFIG_OK;
}

const char *
gt_config_usage (void)
{
    static char usage [16384];
    if (!*usage) {
        size_t used = (size_t) snprintf (usage, sizeof (usage),
            "usage: garbagetruck [options]\n"
            "GarbageTruck lease broker (GTLP/1 over ZeroMQ).\n"
            "Every setting is a flag, an environment variable and a config file line (NAME=value);\n"
            "flags override the environment, which overrides the config file, which overrides the defaults.\n\n"
            "  %-32s %-26s %s\n",
            "--config FILE", "GC_CONFIG", "config file (" GT_CONFIG_DEFAULT_FILE " if it exists; '' = none)");
        for (size_t i = 0; i < S_SETTING_COUNT && used < sizeof (usage); i++) {
            const s_setting_t *setting = &s_settings [i];
            char flag [64];
            if (streq (setting->env, "GC_INSECURE"))
                snprintf (flag, sizeof (flag), "--insecure");
            else
                snprintf (flag, sizeof (flag), "--%s %s", setting->flag,
                          setting->kind == S_SECONDS || setting->kind == S_WAIT_SECONDS ? "S"
                          : setting->kind == S_STRING || setting->kind == S_CHOICE ? "TEXT" : "N");
            used += (size_t) snprintf (usage + used, sizeof (usage) - used, "  %-32s %-26s %s\n",
                                       flag, setting->env, setting->help);
        }
        if (used < sizeof (usage))
            snprintf (usage + used, sizeof (usage) - used,
                "  %-32s %-26s %s\n  %-32s %-26s %s\n  %-32s %-26s %s\n",
                "--verbose", "", "log every request (GC_LOG_LEVEL=debug)",
                "--help", "", "print this text and exit",
                "--version", "", "print the version and exit");
    }
    return usage;
}

gt_config_result_t
gt_config_load_args (gt_config_t *self, int argc, char *argv [],
                     char *err, size_t err_size)
{
    assert (self);
    for (int argn = 1; argn < argc; argn++) {
        const char *arg = argv [argn];
        if (streq (arg, "--help") || streq (arg, "-h")) {
            fputs (gt_config_usage (), stdout);
            return GT_CONFIG_HELP;
        }
        if (streq (arg, "--version")) {
            printf ("garbagetruck %s (GTLP/%d)\n", GT_VERSION_STRING, GT_PROTOCOL_VERSION);
            return GT_CONFIG_HELP;
        }
        if (streq (arg, "--verbose") || streq (arg, "-v")) {
            self->verbose = true;
            continue;
        }
        if (streq (arg, "--insecure")) {
            self->insecure = 1;
            continue;
        }
        if (strncmp (arg, "--", 2) != 0) {
            snprintf (err, err_size, "unexpected argument '%s' (see --help)", arg);
            return GT_CONFIG_ERROR;
        }
        //  --config FILE: read by gt_config_load, before the environment
        if (streq (arg, "--config")) {
            if (argn + 1 >= argc) {
                snprintf (err, err_size, "option '%s' needs a value", arg);
                return GT_CONFIG_ERROR;
            }
            argn++;
            continue;
        }
        if (strncmp (arg, "--config=", 9) == 0)
            continue;
        //  --name value  or  --name=value
        const char *name = arg + 2;
        const char *equals = strchr (name, '=');
        size_t name_len = equals ? (size_t) (equals - name) : strlen (name);
        const s_setting_t *setting = NULL;
        for (size_t i = 0; i < S_SETTING_COUNT; i++)
            if (s_settings [i].flag && strlen (s_settings [i].flag) == name_len
            && memcmp (s_settings [i].flag, name, name_len) == 0)
                setting = &s_settings [i];
        if (!setting) {
            snprintf (err, err_size, "unknown option '%s' (see --help)", arg);
            return GT_CONFIG_ERROR;
        }
        const char *value = NULL;
        if (equals)
            value = equals + 1;
        else
        if (argn + 1 < argc)
            value = argv [++argn];
        else {
            snprintf (err, err_size, "option '%s' needs a value", arg);
            return GT_CONFIG_ERROR;
        }
        char label [80];
        snprintf (label, sizeof (label), "--%s", setting->flag);
        if (s_apply (self, setting, label, value, err, err_size) != GT_CONFIG_OK)
            return GT_CONFIG_ERROR;
    }
    return gt_config_check (self, err, err_size);
}

//  --------------------------------------------------------------------------
//  The config file (issue 15)

void
gt_config_set_check (const char *env, gt_config_check_fn *check)
{
    assert (env);
    for (size_t i = 0; i < S_SETTING_COUNT; i++)
        if (streq (s_settings [i].env, env)) {
            assert (s_settings [i].kind == S_STRING);
            s_checks [i] = check;
            return;
        }
    assert (!"gt_config_set_check: no such setting");
}

size_t
gt_config_setting_count (void)
{
    return S_SETTING_COUNT;
}

const char *
gt_config_setting_name (size_t index)
{
    return index < S_SETTING_COUNT ? s_settings [index].env : NULL;
}

static bool
s_blank (char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

//  Split one line of a config file (gt_config.h) into *name_p and *value_p
//  in place; both NULL for a blank line or a comment.  Returns why the line
//  is not accepted, or NULL.
static const char *
s_split_line (char *line, char **name_p, char **value_p)
{
    *name_p = *value_p = NULL;
    size_t length = strlen (line);
    while (length > 0 && s_blank (line [length - 1]))
        line [--length] = 0;
    while (s_blank (*line))
        line++;
    if (*line == 0 || *line == '#')
        return NULL;
    char *equals = strchr (line, '=');
    if (!equals)
        return "not NAME=value (nor a # comment)";
    char *name_end = equals;
    while (name_end > line && s_blank (name_end [-1]))
        name_end--;
    *name_end = 0;
    if (!*line)
        return "no setting name before '='";
    for (const char *p = line; *p; p++)
        if (!(*p == '_' || (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z')
           || (p > line && *p >= '0' && *p <= '9')))
            return "the name is not a setting name (letters, digits and _)";
    char *value = equals + 1;
    while (s_blank (*value))
        value++;
    if (*value == '"') {
        char *close = strchr (value + 1, '"');
        if (!close)
            return "a double quote with no closing quote";
        if (close [1])
            return "text after the closing double quote";
        *close = 0;
        value++;
        if (strchr (value, '\\'))
            return "a backslash (escapes are not accepted)";
    }
    else
    if (*value == '\'')
        return "a single-quoted value (use double quotes)";
    else
    if (strpbrk (value, "\"'\\"))
        return "a quote or backslash inside an unquoted value (escapes are not accepted)";
    *name_p = line;
    *value_p = value;
    return NULL;
}

gt_config_result_t
gt_config_load_file (gt_config_t *self, const char *path, char *err, size_t err_size)
{
    assert (self && path);
    FILE *file = fopen (path, "r");
    if (!file) {
        snprintf (err, err_size, "cannot read the config file %s: %s", path, strerror (errno));
        return GT_CONFIG_ERROR;
    }
    gt_config_result_t rc = GT_CONFIG_OK;
    char *line = NULL;
    size_t capacity = 0;
    unsigned number = 0;
    errno = 0;
    while (rc == GT_CONFIG_OK && getline (&line, &capacity, file) != -1) {
        number++;
        char *name = NULL, *value = NULL;
        char why [512] = "";
        const char *bad = s_split_line (line, &name, &value);
        if (bad)
            snprintf (why, sizeof (why), "%s", bad);
        else
        if (name) {
            const s_setting_t *setting = NULL;
            for (size_t i = 0; i < S_SETTING_COUNT && !setting; i++)
                if (streq (s_settings [i].env, name))
                    setting = &s_settings [i];
            if (!setting)
                snprintf (why, sizeof (why), "unknown setting '%.100s' (garbagetruck --help lists them)", name);
            else
                s_apply (self, setting, name, value, why, sizeof (why));
        }
        if (*why) {
            snprintf (err, err_size, "%s:%u: %s", path, number, why);
            rc = GT_CONFIG_ERROR;
        }
        errno = 0;
    }
    if (rc == GT_CONFIG_OK && ferror (file)) {
        snprintf (err, err_size, "cannot read the config file %s: %s", path, strerror (errno ? errno : EIO));
        rc = GT_CONFIG_ERROR;
    }
    free (line);
    fclose (file);
    if (rc == GT_CONFIG_OK)
        s_set_string (&self->config_file, path);
    return rc;
}

gt_config_result_t
gt_config_load_from (gt_config_t *self, int argc, char *argv [], const char *default_file,
                     char *err, size_t err_size)
{
    assert (self);
    //  --help and --version answer whatever the file and environment say
    for (int argn = 1; argn < argc; argn++)
        if (streq (argv [argn], "--help") || streq (argv [argn], "-h") || streq (argv [argn], "--version"))
            return gt_config_load_args (self, argc, argv, err, err_size);
    //  The file: --config, else GC_CONFIG, else the default if it exists
    const char *file = NULL;
    for (int argn = 1; argn < argc; argn++) {
        if (streq (argv [argn], "--config") && argn + 1 < argc)
            file = argv [++argn];
        else
        if (strncmp (argv [argn], "--config=", 9) == 0)
            file = argv [argn] + 9;
        else
        if (streq (argv [argn], "--config"))
            return gt_config_load_args (self, argc, argv, err, err_size);   //  says it needs a value
    }
    if (!file)
        file = getenv ("GC_CONFIG");
    if (!file && default_file && access (default_file, F_OK) == 0)
        file = default_file;
    gt_config_result_t rc = GT_CONFIG_OK;
    if (file && *file)
        rc = gt_config_load_file (self, file, err, err_size);
    if (rc == GT_CONFIG_OK)
        rc = gt_config_load_env (self, err, err_size);
    if (rc == GT_CONFIG_OK)
        rc = gt_config_load_args (self, argc, argv, err, err_size);
    return rc;
}

gt_config_result_t
gt_config_load (gt_config_t *self, int argc, char *argv [], char *err, size_t err_size)
{
    return gt_config_load_from (self, argc, argv, GT_CONFIG_DEFAULT_FILE, err, err_size);
}

//  --------------------------------------------------------------------------
//  Metrics settings and the effective configuration (issue 7)

void
gt_config_set_curve (gt_config_t *self, const char *cert, const char *clients)
{
    assert (self);
    s_set_string (&self->curve_cert, cert);
    s_set_string (&self->curve_clients, clients);
}

void
gt_config_set_metrics_host (gt_config_t *self, const char *host)
{
    assert (self);
    s_set_string (&self->metrics_host, host ? host : "127.0.0.1");
}

void
gt_config_mask_url (const char *url, char *out, size_t size)
{
    snprintf (out, size, "%s", url);
    //  URI: scheme://user:password@host...
    char *scheme = strstr (out, "://");
    if (scheme) {
        char *user = scheme + 3;
        char *at = strchr (user, '@');
        char *slash = strchr (user, '/');
        char *colon = strchr (user, ':');
        if (at && (!slash || at < slash) && colon && colon < at) {
            char rest [1024];
            snprintf (rest, sizeof (rest), "%s", at);
            snprintf (colon + 1, size - (size_t) (colon + 1 - out), "***%s", rest);
        }
    }
    //  key=value: password=secret (also as a URI query parameter)
    for (char *found = strstr (out, "password="); found; found = strstr (found + 1, "password=")) {
        char *value = found + 9;
        size_t length = strcspn (value, " &");
        char rest [1024];
        snprintf (rest, sizeof (rest), "%s", value + length);
        snprintf (value, size - (size_t) (value - out), "***%s", rest);
    }
}

static bool
s_secret_name (const char *name)
{
    return strstr (name, "SECRET") || strstr (name, "PASSWORD") || strstr (name, "TOKEN");
}

void
gt_config_describe (const gt_config_t *self, gt_config_describe_fn *fn, void *ctx)
{
    assert (self && fn);
    for (size_t i = 0; i < S_SETTING_COUNT; i++) {
        const s_setting_t *setting = &s_settings [i];
        const void *field = (const char *) self + setting->offset;
        char text [1024];
        const char *value = text;
        switch (setting->kind) {
            case S_SECONDS: {
                uint64_t ms = *(const uint64_t *) field;
                snprintf (text, sizeof (text), "%" PRIu64 ".%03u", ms / 1000, (unsigned) (ms % 1000));
                break;
            }
            case S_WAIT_SECONDS: {
                int64_t ms = *(const int64_t *) field;
                if (ms < 0)
                    snprintf (text, sizeof (text), "-1");
                else
                    snprintf (text, sizeof (text), "%" PRId64 ".%03d", ms / 1000, (int) (ms % 1000));
                break;
            }
            case S_UINT:
                snprintf (text, sizeof (text), "%" PRIu64, *(const uint64_t *) field);
                break;
            case S_PORT:
                snprintf (text, sizeof (text), "%d", *(const int *) field);
                break;
            case S_METRICS_PORT: {
                int port = *(const int *) field;
                if (port < 0)
                    snprintf (text, sizeof (text), "auto");
                else
                    snprintf (text, sizeof (text), "%d", port);
                break;
            }
            case S_STRING:
            case S_CHOICE: {
                const char *string = *(char *const *) field;
                if (!string)
                    value = NULL;
                else
                if (s_secret_name (setting->env))
                    snprintf (text, sizeof (text), "***");
                else
                if (streq (setting->env, "DATABASE_URL"))
                    gt_config_mask_url (string, text, sizeof (text));
                else
                    snprintf (text, sizeof (text), "%s", string);
                break;
            }
        }
        fn (ctx, setting->env, value);
    }
}
