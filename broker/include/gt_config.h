/*  gt_config.h — broker settings: defaults of the original GarbageTruck,
    then a config file, then environment variables (GC_*), then
    command-line flags (each overrides the ones before it).

    Durations are kept in milliseconds; on the command line and in the
    environment they are seconds and may have a fraction ("0.05" = 50 ms).
    The struct is plain data: set numeric fields directly, strings with the
    setters (the config owns its strings).  */
#ifndef GT_CONFIG_H_INCLUDED
#define GT_CONFIG_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    char *host;                         //  GC_SERVER_HOST: interface to bind
    int port;                           //  GC_SERVER_PORT: requests (0 = ephemeral)
    int events_port;                    //  GC_EVENTS_PORT: events (0 = ephemeral)
    uint64_t default_lease_ms;          //  GC_DEFAULT_LEASE_DURATION
    uint64_t min_lease_ms;              //  GC_MIN_LEASE_DURATION
    uint64_t max_lease_ms;              //  GC_MAX_LEASE_DURATION
    uint64_t max_leases_per_service;    //  GC_MAX_LEASES_PER_SERVICE (active leases)
    uint64_t max_leases;                //  GC_MAX_LEASES (lease records, active and ended)
    uint64_t grace_ms;                  //  GC_CLEANUP_GRACE_PERIOD
    uint64_t lease_retention_ms;        //  GC_LEASE_RETENTION: ended leases kept
    uint64_t event_history;             //  GC_EVENT_HISTORY: events kept for REPLAY
    char *storage;                      //  GC_STORAGE_BACKEND: memory or postgres
    char *database_url;                 //  DATABASE_URL, or NULL
    uint64_t max_db_connections;        //  GC_MAX_DB_CONNECTIONS: accepted; the store uses 1 connection
    int64_t db_connect_wait_ms;         //  GC_DB_CONNECT_WAIT: start-up wait for PostgreSQL (0 = none, -1 = forever)
    uint64_t recovery_expiry_rate;      //  GC_RECOVERY_EXPIRY_RATE: overdue expiries per second after a start
    uint64_t db_group_commit;           //  GC_DB_GROUP_COMMIT: 1 = group commit; 0 = one transaction per request
    uint64_t cleanup_interval_ms;       //  GC_CLEANUP_INTERVAL: accepted for compatibility, no effect
                                        //  (the original's expiry sweep period; leases expire at their deadline here)
    uint64_t cleanup_timeout_ms;        //  GC_CLEANUP_TIMEOUT: one cleanup call, all included
    uint64_t cleanup_max_retries;       //  GC_CLEANUP_MAX_RETRIES: default per lease
    uint64_t cleanup_retry_delay_ms;    //  GC_CLEANUP_RETRY_DELAY: default per lease
    char *callback_allow;               //  GC_CALLBACK_ALLOW: comma-separated URL prefixes, or NULL
    char *callback_secret;              //  GC_CALLBACK_SECRET: signs callbacks (HMAC-SHA256), or NULL
    uint64_t callback_max_pending;      //  GC_CALLBACK_MAX_PENDING: callbacks waiting for delivery
    uint64_t callback_concurrency;      //  GC_CALLBACK_CONCURRENCY: cleanup requests in flight
    uint64_t callback_per_host;         //  GC_CALLBACK_PER_HOST: of those, per endpoint
    int metrics_port;                   //  GC_METRICS_PORT: /metrics, /healthz, /readyz (9090; 0 = off; -1 = "auto": ephemeral)
    bool metrics_port_chosen;           //  GC_METRICS_PORT was given (file, env or flag): failing to serve it is fatal
    char *metrics_host;                 //  GC_METRICS_HOST: interface of the metrics port (127.0.0.1)
    uint64_t connection_max_pending;    //  GC_CONNECTION_MAX_PENDING: requests of one connection not yet answered
    uint64_t connection_max_queued_bytes;   //  GC_CONNECTION_MAX_QUEUED_BYTES: reply bytes the broker queues for one connection
    uint64_t shutdown_linger_ms;        //  GC_SHUTDOWN_LINGER: a graceful stop's wait for commits and replies
    char *curve_cert;                   //  GC_CURVE_CERT: the broker's secret certificate file, or NULL (no CURVE)
    char *curve_clients;                //  GC_CURVE_CLIENTS: directory of trusted client certificates, or NULL
    uint64_t insecure;                  //  GC_INSECURE, --insecure: 1 = may bind beyond loopback without CURVE
    char *broker_id;                    //  GC_BROKER_ID: unique per broker on one database, or NULL (host:port)
    char *advertise_endpoint;           //  GC_ADVERTISE_ENDPOINT: what clients are told to connect to, or NULL
    char *advertise_events;             //  GC_ADVERTISE_EVENTS: the same for the events socket, or NULL
    uint64_t shard_lease_ms;            //  GC_SHARD_LEASE: ownership lease of a broker's shards (postgres)
    uint64_t shard_renew_ms;            //  GC_SHARD_RENEW: its renewal period
    uint64_t cluster;                   //  GC_CLUSTER, --cluster: 1 = brokers share the shards (GTLP.md §14.1)
    char *log_level;                    //  GC_LOG_LEVEL: error, warn, info (default), debug (or warning)
    char *log_format;                   //  GC_LOG_FORMAT: text (default) or json
    char *config_file;                  //  the config file read (--config, GC_CONFIG, the default), or NULL
    bool verbose;                       //  --verbose: log every request
} gt_config_t;

//  The packaged config file: read when neither --config nor GC_CONFIG is
//  given and it exists.
#define GT_CONFIG_DEFAULT_FILE "/etc/garbagetruck/garbagetruck.conf"

typedef enum {
    GT_CONFIG_OK = 0,                   //  loaded; run
    GT_CONFIG_HELP,                     //  --help or --version was printed; exit 0
    GT_CONFIG_ERROR                     //  bad value; message written; exit 2
} gt_config_result_t;

//  New config holding the defaults.
gt_config_t *gt_config_new (void);
//  Destroy; nulls the pointer.
void gt_config_destroy (gt_config_t **self_p);
//  Deep copy (the broker actor keeps its own).
gt_config_t *gt_config_dup (const gt_config_t *self);

//  String setters (copy the value; NULL clears optional ones).
void gt_config_set_host (gt_config_t *self, const char *host);
void gt_config_set_storage (gt_config_t *self, const char *storage);
void gt_config_set_database_url (gt_config_t *self, const char *url);
void gt_config_set_callback_allow (gt_config_t *self, const char *allow);
void gt_config_set_callback_secret (gt_config_t *self, const char *secret);
void gt_config_set_metrics_host (gt_config_t *self, const char *host);
void gt_config_set_curve (gt_config_t *self, const char *cert, const char *clients);
void gt_config_set_broker_id (gt_config_t *self, const char *broker_id);

//  True if a bind to this endpoint reaches this host only: tcp:// on a
//  loopback address (127.0.0.0/8, ::1, localhost), ipc://, inproc://.
//  Without CURVE the broker binds nothing else unless insecure is set.
bool gt_config_endpoint_is_local (const char *endpoint);

//  The self-fencing margin of the shard lease: a broker stops acting on its
//  shards this long before their ownership lease can run out (lease / 6,
//  at least 100 ms: 500 ms for the default 3 s).
uint64_t gt_config_shard_margin_ms (const gt_config_t *self);

//  Apply GC_* environment variables.  On a bad value writes a message into
//  err and returns GT_CONFIG_ERROR.
gt_config_result_t gt_config_load_env (gt_config_t *self, char *err, size_t err_size);
//  Apply a config file: the settings by their environment variable names,
//  parsed as the environment's values are.  The format, a subset of what a
//  systemd EnvironmentFile accepts (so one file serves both):
//    - one NAME=value per line; blank lines and lines whose first non-blank
//      character is '#' are ignored (a '#' after a value is part of it);
//    - blanks around the line, the name and the value are ignored;
//    - the value may be in double quotes (then it may hold blanks at its
//      ends and single quotes); no escapes: a backslash, a single-quoted
//      value or a quote inside an unquoted value is an error;
//    - no variable expansion ($ is a character); the last line of a name wins.
//  An unknown name, a malformed line or a bad value: err is
//  "FILE:LINE: NAME: why" and GT_CONFIG_ERROR.
gt_config_result_t gt_config_load_file (gt_config_t *self, const char *path, char *err, size_t err_size);
//  Apply flags (argv [1..]); --help writes the usage text into stdout and
//  returns GT_CONFIG_HELP.  Also re-checks consistency (gt_config_check).
//  --config FILE is accepted and skipped (gt_config_load reads the file).
gt_config_result_t gt_config_load_args (gt_config_t *self, int argc, char *argv [],
                                        char *err, size_t err_size);
//  What the daemon calls: the config file (--config FILE, else GC_CONFIG,
//  else default_file if it exists; an empty name = no file), then the
//  environment, then the flags.  --help and --version skip the file.
gt_config_result_t gt_config_load_from (gt_config_t *self, int argc, char *argv [],
                                        const char *default_file, char *err, size_t err_size);
//  gt_config_load_from with GT_CONFIG_DEFAULT_FILE.
gt_config_result_t gt_config_load (gt_config_t *self, int argc, char *argv [],
                                   char *err, size_t err_size);

//  An extra check of a string setting's value (e.g. GC_CALLBACK_ALLOW's
//  prefixes, which a higher layer parses), run wherever the value comes
//  from: false with why in err (the caller adds the file, line and name).
typedef bool (gt_config_check_fn) (const char *value, char *err, size_t err_size);
//  Register it for the setting named env (process-wide; call before loading).
void gt_config_set_check (const char *env, gt_config_check_fn *check);

//  The settings table: how many, and the environment name of each (NULL
//  past the end); every one of them is a config file line, a variable and a
//  flag.
size_t gt_config_setting_count (void);
const char *gt_config_setting_name (size_t index);
//  Check cross-field consistency (min <= default <= max, ...).
gt_config_result_t gt_config_check (const gt_config_t *self, char *err, size_t err_size);

//  Parse a duration in seconds ("30", "0.05") into ms; false if malformed.
bool gt_config_parse_seconds (const char *text, uint64_t *ms_p);

//  Every setting by its environment variable name and its value as text,
//  for the start log line: secrets (names with SECRET, PASSWORD or TOKEN)
//  are "***" and a password inside DATABASE_URL is masked; value is NULL
//  for an unset optional setting.
typedef void (gt_config_describe_fn) (void *ctx, const char *name, const char *value);
void gt_config_describe (const gt_config_t *self, gt_config_describe_fn *fn, void *ctx);
//  Mask the password of a PostgreSQL connection string (URI or key=value).
void gt_config_mask_url (const char *url, char *out, size_t size);

//  The usage text printed by --help.
const char *gt_config_usage (void);


#ifdef __cplusplus
}
#endif
#endif
