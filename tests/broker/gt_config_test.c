/*  gt_config_test.c — selftest of gt_config: defaults, environment, flags,
    bad values, copies, the effective configuration with secrets hidden.  */
#include <czmq.h>
#include "gt_config.h"
#include "gt_broker_selftest.h"

typedef struct {
    char text [4096];               //  "NAME=value;" for each setting described
} s_described_t;

static void
s_describe_collect (void *ctx, const char *name, const char *value)
{
    s_described_t *described = (s_described_t *) ctx;
    size_t used = strlen (described->text);
    snprintf (described->text + used, sizeof (described->text) - used, "%s=%s;",
              name, value ? value : "(unset)");
}

//  The settings gt_config_describe hides (gt_config.h: SECRET, PASSWORD or
//  TOKEN in the name), by name
#define S_MAX_SECRETS   16

typedef struct {
    char names [S_MAX_SECRETS][64];     //  environment variable names
    size_t count;                       //  how many
} s_secrets_t;

static void
s_secret_collect (void *ctx, const char *name, const char *value)
{
    (void) value;
    s_secrets_t *secrets = (s_secrets_t *) ctx;
    if (strstr (name, "SECRET") || strstr (name, "PASSWORD") || strstr (name, "TOKEN")) {
        assert (secrets->count < S_MAX_SECRETS);
        snprintf (secrets->names [secrets->count++], sizeof (secrets->names [0]), "%s", name);
    }
}

static void
s_test_metrics_settings (void)
{
    char err [256];
    gt_config_t *config = gt_config_new ();
    assert (config->metrics_port == 9090 && streq (config->metrics_host, "127.0.0.1"));
    setenv ("GC_METRICS_PORT", "auto", 1);
    setenv ("GC_METRICS_HOST", "0.0.0.0", 1);
    assert (gt_config_load_env (config, err, sizeof (err)) == GT_CONFIG_OK);
    assert (config->metrics_port == -1 && streq (config->metrics_host, "0.0.0.0"));
    unsetenv ("GC_METRICS_PORT");
    unsetenv ("GC_METRICS_HOST");
    char *off [] = { "garbagetruck", "--metrics-port", "0" };
    assert (gt_config_load_args (config, 3, off, err, sizeof (err)) == GT_CONFIG_OK);
    assert (config->metrics_port == 0);
    char *fixed [] = { "garbagetruck", "--metrics-port=9191", "--metrics-host", "localhost" };
    assert (gt_config_load_args (config, 4, fixed, err, sizeof (err)) == GT_CONFIG_OK);
    assert (config->metrics_port == 9191 && streq (config->metrics_host, "localhost"));
    char *bad [] = { "garbagetruck", "--metrics-port", "65536" };
    assert (gt_config_load_args (config, 3, bad, err, sizeof (err)) == GT_CONFIG_ERROR);
    assert (strstr (err, "--metrics-port"));
    char *junk [] = { "garbagetruck", "--metrics-port", "sometimes" };
    assert (gt_config_load_args (config, 3, junk, err, sizeof (err)) == GT_CONFIG_ERROR);
    gt_config_t *copy = gt_config_dup (config);
    assert (copy->metrics_host != config->metrics_host && streq (copy->metrics_host, "localhost"));
    gt_config_destroy (&copy);
    assert (strstr (gt_config_usage (), "--metrics-port"));

    //  Masking
    char masked [256];
    gt_config_mask_url ("postgresql://gt:hunter2@db:5432/gt", masked, sizeof (masked));
    assert (streq (masked, "postgresql://gt:***@db:5432/gt"));
    gt_config_mask_url ("postgresql://gt@db/gt?password=hunter2&sslmode=off", masked, sizeof (masked));
    assert (streq (masked, "postgresql://gt@db/gt?password=***&sslmode=off"));
    gt_config_mask_url ("host=db user=gt password=hunter2 dbname=gt", masked, sizeof (masked));
    assert (streq (masked, "host=db user=gt password=*** dbname=gt"));
    gt_config_mask_url ("postgresql:///gt", masked, sizeof (masked));
    assert (streq (masked, "postgresql:///gt"));

    //  The effective configuration: every setting, secrets hidden
    config->metrics_port = -1;
    gt_config_set_database_url (config, "postgresql://gt:hunter2@db/gt");
    s_described_t described = { "" };
    gt_config_describe (config, s_describe_collect, &described);
    assert (strstr (described.text, "GC_SERVER_PORT=50051;"));
    assert (strstr (described.text, "GC_MIN_LEASE_DURATION=30.000;"));
    assert (strstr (described.text, "GC_METRICS_PORT=auto;"));
    assert (strstr (described.text, "DATABASE_URL=postgresql://gt:***@db/gt;"));
    assert (!strstr (described.text, "hunter2"));
    //  Every secret set: only stars.  The secrets are the settings whose
    //  names say so; each is set through its environment variable, which
    //  a setting that is not a string refuses (as it refuses any text)
    s_secrets_t secrets = { .count = 0 };
    gt_config_describe (config, s_secret_collect, &secrets);
    size_t strings = 0;
    for (size_t index = 0; index < secrets.count; index++) {
        setenv (secrets.names [index], "do-not-print", 1);
        if (gt_config_load_env (config, err, sizeof (err)) == GT_CONFIG_OK)
            strings++;
        unsetenv (secrets.names [index]);
    }
    assert (strings > 0);               //  GC_CALLBACK_SECRET at least
    described.text [0] = 0;
    gt_config_describe (config, s_describe_collect, &described);
    assert (!strstr (described.text, "do-not-print"));
    gt_config_destroy (&config);
}

//  The PostgreSQL store's settings (issue 3)
static void
s_test_store_settings (void)
{
    char err [256];
    gt_config_t *config = gt_config_new ();
    assert (config->db_connect_wait_ms == 0 && config->recovery_expiry_rate == 50000);
    assert (config->db_group_commit == 1);
    setenv ("GC_DB_CONNECT_WAIT", "2.5", 1);
    setenv ("GC_RECOVERY_EXPIRY_RATE", "1000", 1);
    assert (gt_config_load_env (config, err, sizeof (err)) == GT_CONFIG_OK);
    assert (config->db_connect_wait_ms == 2500 && config->recovery_expiry_rate == 1000);
    unsetenv ("GC_DB_CONNECT_WAIT");
    unsetenv ("GC_RECOVERY_EXPIRY_RATE");
    char *forever [] = { "garbagetruck", "--db-connect-wait=-1", "--recovery-expiry-rate", "7",
                         "--db-group-commit", "0" };
    assert (gt_config_load_args (config, 6, forever, err, sizeof (err)) == GT_CONFIG_OK);
    assert (config->db_connect_wait_ms == -1 && config->recovery_expiry_rate == 7);
    assert (config->db_group_commit == 0);
    gt_config_t *copy = gt_config_dup (config);
    assert (copy->db_connect_wait_ms == -1);
    gt_config_destroy (&copy);
    char *junk [] = { "garbagetruck", "--db-connect-wait", "soon" };
    assert (gt_config_load_args (config, 3, junk, err, sizeof (err)) == GT_CONFIG_ERROR);
    assert (strstr (err, "--db-connect-wait"));
    char *zero_rate [] = { "garbagetruck", "--recovery-expiry-rate", "0" };
    assert (gt_config_load_args (config, 3, zero_rate, err, sizeof (err)) == GT_CONFIG_ERROR);
    s_described_t described = { "" };
    gt_config_describe (config, s_describe_collect, &described);
    assert (strstr (described.text, "GC_DB_CONNECT_WAIT=-1;"));
    assert (strstr (described.text, "GC_RECOVERY_EXPIRY_RATE=7;"));
    const char *usage = gt_config_usage ();
    assert (strstr (usage, "--db-connect-wait S") && strstr (usage, "GC_RECOVERY_EXPIRY_RATE"));
    gt_config_destroy (&config);
}

void
gt_config_test (bool verbose)
{
    (void) verbose;
    char err [256];

    //  Defaults of the original product (grace 0 per our issue)
    gt_config_t *config = gt_config_new ();
    assert (streq (config->host, "127.0.0.1"));
    assert (config->port == 50051 && config->events_port == 50052);
    assert (config->default_lease_ms == 300000);
    assert (config->min_lease_ms == 30000 && config->max_lease_ms == 3600000);
    assert (config->max_leases_per_service == 10000);
    assert (config->grace_ms == 0 && config->lease_retention_ms == 300000);
    assert (config->event_history == 100000);
    assert (streq (config->storage, "memory"));
    assert (gt_config_check (config, err, sizeof (err)) == GT_CONFIG_OK);

    //  Seconds with fractions
    uint64_t ms = 0;
    assert (gt_config_parse_seconds ("0.05", &ms) && ms == 50);
    assert (gt_config_parse_seconds ("30", &ms) && ms == 30000);
    assert (gt_config_parse_seconds ("1.5", &ms) && ms == 1500);
    assert (gt_config_parse_seconds (".25", &ms) && ms == 250);
    assert (gt_config_parse_seconds ("0.0001", &ms) && ms == 1);
    assert (gt_config_parse_seconds ("0", &ms) && ms == 0);
    assert (!gt_config_parse_seconds ("-1", &ms));
    assert (!gt_config_parse_seconds ("abc", &ms));
    assert (!gt_config_parse_seconds ("1e3", &ms));
    assert (!gt_config_parse_seconds ("", &ms));
    assert (!gt_config_parse_seconds (".", &ms));
    assert (!gt_config_parse_seconds ("5s", &ms));

    //  Environment, then flags override it
    setenv ("GC_SERVER_PORT", "0", 1);
    setenv ("GC_MIN_LEASE_DURATION", "0.05", 1);
    setenv ("GC_MAX_LEASES_PER_SERVICE", "7", 1);
    assert (gt_config_load_env (config, err, sizeof (err)) == GT_CONFIG_OK);
    assert (config->port == 0);
    assert (config->min_lease_ms == 50);
    assert (config->max_leases_per_service == 7);
    char *args [] = { "garbagetruck", "--port", "6000", "--grace=0.5", "--storage", "memory",
                      "--max-leases-per-service", "9", "--verbose" };
    assert (gt_config_load_args (config, 9, args, err, sizeof (err)) == GT_CONFIG_OK);
    assert (config->port == 6000 && config->grace_ms == 500);
    assert (config->max_leases_per_service == 9 && config->verbose);
    unsetenv ("GC_SERVER_PORT");
    unsetenv ("GC_MIN_LEASE_DURATION");
    unsetenv ("GC_MAX_LEASES_PER_SERVICE");

    //  Bad values: a message naming the setting, and an error result
    setenv ("GC_MAX_LEASE_DURATION", "forever", 1);
    assert (gt_config_load_env (config, err, sizeof (err)) == GT_CONFIG_ERROR);
    assert (strstr (err, "GC_MAX_LEASE_DURATION"));
    unsetenv ("GC_MAX_LEASE_DURATION");
    char *bad_port [] = { "garbagetruck", "--port", "70000" };
    assert (gt_config_load_args (config, 3, bad_port, err, sizeof (err)) == GT_CONFIG_ERROR);
    assert (strstr (err, "--port"));
    char *bad_flag [] = { "garbagetruck", "--frobnicate", "1" };
    assert (gt_config_load_args (config, 3, bad_flag, err, sizeof (err)) == GT_CONFIG_ERROR);
    char *no_value [] = { "garbagetruck", "--port" };
    assert (gt_config_load_args (config, 2, no_value, err, sizeof (err)) == GT_CONFIG_ERROR);
    char *bad_store [] = { "garbagetruck", "--storage", "floppy" };
    assert (gt_config_load_args (config, 3, bad_store, err, sizeof (err)) == GT_CONFIG_ERROR);
    gt_config_set_storage (config, "memory");
    char *inverted [] = { "garbagetruck", "--min-lease", "100", "--max-lease", "10", "--default-lease", "50" };
    assert (gt_config_load_args (config, 7, inverted, err, sizeof (err)) == GT_CONFIG_ERROR);
    assert (strstr (err, "GC_MIN_LEASE_DURATION"));

    //  Duplicate is deep
    gt_config_set_host (config, "127.0.0.2");
    gt_config_set_callback_allow (config, "http://127.0.0.1/");
    gt_config_set_callback_secret (config, "s3cret");
    gt_config_t *copy = gt_config_dup (config);
    assert (copy->host != config->host && streq (copy->host, "127.0.0.2"));
    assert (streq (copy->callback_allow, "http://127.0.0.1/"));
    assert (copy->callback_secret != config->callback_secret && streq (copy->callback_secret, "s3cret"));
    gt_config_destroy (&copy);
    assert (copy == NULL);

    assert (strstr (gt_config_usage (), "--events-port"));
    assert (strstr (gt_config_usage (), "GC_LEASE_RETENTION"));

    //  Cleanup delivery settings: defaults, environment, flags
    gt_config_t *fresh = gt_config_new ();
    assert (fresh->cleanup_timeout_ms == 30000 && fresh->cleanup_max_retries == 3);
    assert (fresh->cleanup_retry_delay_ms == 5000 && fresh->callback_secret == NULL);
    assert (fresh->callback_max_pending == 100000 && fresh->callback_concurrency == 256);
    assert (fresh->callback_per_host == 32);
    setenv ("GC_CALLBACK_SECRET", "from-env", 1);
    setenv ("GC_CALLBACK_PER_HOST", "4", 1);
    assert (gt_config_load_env (fresh, err, sizeof (err)) == GT_CONFIG_OK);
    assert (streq (fresh->callback_secret, "from-env") && fresh->callback_per_host == 4);
    unsetenv ("GC_CALLBACK_SECRET");
    unsetenv ("GC_CALLBACK_PER_HOST");
    char *delivery [] = { "garbagetruck", "--cleanup-timeout", "0.25", "--cleanup-max-retries", "5",
                          "--cleanup-retry-delay", "0.01", "--callback-secret", "k",
                          "--callback-allow", "http://127.0.0.1:8080/,https://example.com",
                          "--callback-max-pending", "10", "--callback-concurrency", "8" };
    assert (gt_config_load_args (fresh, (int) (sizeof (delivery) / sizeof (delivery [0])), delivery,
                                 err, sizeof (err)) == GT_CONFIG_OK);
    assert (fresh->cleanup_timeout_ms == 250 && fresh->cleanup_max_retries == 5);
    assert (fresh->cleanup_retry_delay_ms == 10 && streq (fresh->callback_secret, "k"));
    assert (streq (fresh->callback_allow, "http://127.0.0.1:8080/,https://example.com"));
    assert (fresh->callback_max_pending == 10 && fresh->callback_concurrency == 8);
    char *bad_retries [] = { "garbagetruck", "--cleanup-max-retries", "101" };
    assert (gt_config_load_args (fresh, 3, bad_retries, err, sizeof (err)) == GT_CONFIG_ERROR);
    char *bad_pending [] = { "garbagetruck", "--callback-max-pending", "0" };
    assert (gt_config_load_args (fresh, 3, bad_pending, err, sizeof (err)) == GT_CONFIG_ERROR);
    gt_config_destroy (&fresh);
    const char *usage = gt_config_usage ();
    assert (strstr (usage, "--cleanup-timeout") && strstr (usage, "--callback-secret"));
    assert (strstr (usage, "GC_CALLBACK_PER_HOST") && strstr (usage, "--help"));
    gt_config_destroy (&config);
    assert (config == NULL);
    s_test_metrics_settings ();
    s_test_store_settings ();
}
