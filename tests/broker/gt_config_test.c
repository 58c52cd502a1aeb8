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

//  ---------------------------------------------------------------------------
//  The config file (issue 15)

//  Write text into a new temporary file; its path into path
static void
s_write_file (char *path, size_t size, const char *text)
{
    snprintf (path, size, "/tmp/gt_config_test_XXXXXX");
    int fd = mkstemp (path);
    assert (fd >= 0);
    FILE *file = fdopen (fd, "w");
    assert (file);
    fputs (text, file);
    fclose (file);
}

//  The value one setting describes as, "(unset)" when unset
typedef struct {
    const char *name;
    char value [1024];
} s_one_t;

static void
s_one_collect (void *ctx, const char *name, const char *value)
{
    s_one_t *one = (s_one_t *) ctx;
    if (streq (name, one->name))
        snprintf (one->value, sizeof (one->value), "%s", value ? value : "(unset)");
}

static void
s_describe_one (const gt_config_t *config, const char *name, char *value, size_t size)
{
    s_one_t one = { name, "" };
    gt_config_describe (config, s_one_collect, &one);
    snprintf (value, size, "%s", one.value);
}

//  Load a file holding text into a fresh config: its result, err filled
static gt_config_result_t
s_load_text (const char *text, gt_config_t **config_p, char *path, size_t path_size,
             char *err, size_t err_size)
{
    s_write_file (path, path_size, text);
    *config_p = gt_config_new ();
    gt_config_result_t rc = gt_config_load_file (*config_p, path, err, err_size);
    unlink (path);
    return rc;
}

//  The error of a file holding text: "path:line: expected..."
static void
s_assert_file_error (const char *text, unsigned line, const char *expected)
{
    char path [64], err [512] = "", prefix [96];
    gt_config_t *config = NULL;
    assert (s_load_text (text, &config, path, sizeof (path), err, sizeof (err)) == GT_CONFIG_ERROR);
    snprintf (prefix, sizeof (prefix), "%s:%u: ", path, line);
    if (strncmp (err, prefix, strlen (prefix)) != 0 || !strstr (err, expected)) {
        fprintf (stderr, "gt_config_test: for %s: got '%s', wanted '%s...%s'\n", text, err, prefix, expected);
        assert (false);
    }
    gt_config_destroy (&config);
}

//  A string setting's extra check (as the daemon's for GC_CALLBACK_ALLOW)
static bool
s_check_no_ftp (const char *value, char *err, size_t err_size)
{
    if (strstr (value, "ftp://")) {
        snprintf (err, err_size, "ftp is not allowed");
        return false;
    }
    return true;
}

static void
s_test_config_file (void)
{
    char path [64], err [512];
    gt_config_t *config = NULL;

    //  The format: comments, blanks, blanks around, double quotes
    const char *text =
        "# GarbageTruck\n"
        "\n"
        "   \t\n"
        "GC_SERVER_PORT=6001\n"
        "  GC_EVENTS_PORT = 6002  \r\n"
        "   # indented comment\n"
        "GC_CALLBACK_SECRET=\"  two words #not a comment  \"\n"
        "GC_BROKER_ID=a#b$HOME\n"
        "DATABASE_URL=\"postgresql://gt:p@ss@db/gt?sslmode=disable\"\n"
        "GC_MIN_LEASE_DURATION=\"0.5\"\n"
        "GC_LOG_LEVEL=Debug\n"
        "GC_SERVER_PORT=6003\n";            //  the last line of a name wins
    assert (s_load_text (text, &config, path, sizeof (path), err, sizeof (err)) == GT_CONFIG_OK);
    assert (config->port == 6003 && config->events_port == 6002);
    assert (streq (config->callback_secret, "  two words #not a comment  "));
    assert (streq (config->broker_id, "a#b$HOME"));
    assert (streq (config->database_url, "postgresql://gt:p@ss@db/gt?sslmode=disable"));
    assert (config->min_lease_ms == 500 && streq (config->log_level, "debug"));
    assert (streq (config->config_file, path));
    gt_config_t *copy = gt_config_dup (config);
    assert (copy->config_file != config->config_file && streq (copy->config_file, path));
    gt_config_destroy (&copy);
    gt_config_destroy (&config);
    //  An empty file and a file without a final newline
    assert (s_load_text ("", &config, path, sizeof (path), err, sizeof (err)) == GT_CONFIG_OK);
    gt_config_destroy (&config);
    assert (s_load_text ("GC_SERVER_PORT=7", &config, path, sizeof (path), err, sizeof (err)) == GT_CONFIG_OK);
    assert (config->port == 7);
    gt_config_destroy (&config);

    //  Errors name the file, the line and the setting
    s_assert_file_error ("# ok\n\nGC_SERVER_PORT=5x\n", 3, "GC_SERVER_PORT: '5x' is not a port number");
    s_assert_file_error ("GC_SERVER_PORT=1\nGC_SERVR_PORT=2\n", 2, "unknown setting 'GC_SERVR_PORT'");
    s_assert_file_error ("GC_CONFIG=/etc/x\n", 1, "unknown setting 'GC_CONFIG'");
    s_assert_file_error ("\nGC_SERVER_PORT\n", 2, "not NAME=value");
    s_assert_file_error ("=5\n", 1, "no setting name");
    s_assert_file_error ("export GC_SERVER_PORT=5\n", 1, "not a setting name");
    s_assert_file_error ("GC_MAX_LEASE_DURATION=forever\n", 1, "GC_MAX_LEASE_DURATION: 'forever'");
    s_assert_file_error ("GC_LOG_FORMAT=xml\n", 1, "GC_LOG_FORMAT: 'xml' is not text or json");
    s_assert_file_error ("GC_SERVER_HOST=\n", 1, "GC_SERVER_HOST: empty value");
    s_assert_file_error ("GC_BROKER_ID=\"open\n", 1, "no closing quote");
    s_assert_file_error ("GC_BROKER_ID=\"a\" b\n", 1, "after the closing double quote");
    s_assert_file_error ("GC_BROKER_ID='a'\n", 1, "single-quoted");
    s_assert_file_error ("GC_BROKER_ID=a\\b\n", 1, "backslash");
    s_assert_file_error ("GC_BROKER_ID=\"a\\\"b\"\n", 1, "");
    s_assert_file_error ("GC_BROKER_ID=a\"b\n", 1, "quote or backslash");
    s_assert_file_error ("GC_METRICS_PORT=65536\n", 1, "GC_METRICS_PORT: '65536' is not a port");
    //  A registered check runs on file values too
    gt_config_set_check ("GC_CALLBACK_ALLOW", s_check_no_ftp);
    s_assert_file_error ("\nGC_CALLBACK_ALLOW=ftp://x\n", 2, "GC_CALLBACK_ALLOW: ftp is not allowed");
    setenv ("GC_CALLBACK_ALLOW", "ftp://y", 1);
    config = gt_config_new ();
    assert (gt_config_load_env (config, err, sizeof (err)) == GT_CONFIG_ERROR);
    assert (streq (err, "GC_CALLBACK_ALLOW: ftp is not allowed"));
    unsetenv ("GC_CALLBACK_ALLOW");
    char *ftp [] = { "garbagetruck", "--callback-allow", "ftp://z" };
    assert (gt_config_load_args (config, 3, ftp, err, sizeof (err)) == GT_CONFIG_ERROR);
    assert (streq (err, "--callback-allow: ftp is not allowed"));
    gt_config_destroy (&config);
    gt_config_set_check ("GC_CALLBACK_ALLOW", NULL);
    //  A file that cannot be read
    config = gt_config_new ();
    assert (gt_config_load_file (config, "/nonexistent/gt.conf", err, sizeof (err)) == GT_CONFIG_ERROR);
    assert (strstr (err, "/nonexistent/gt.conf") && strstr (err, "No such file"));
    assert (gt_config_load_file (config, "/tmp", err, sizeof (err)) == GT_CONFIG_ERROR);
    assert (strstr (err, "/tmp"));
    gt_config_destroy (&config);

    //  Every setting of the table can be set from a file: a value that
    //  changes what the setting describes as is accepted for each
    size_t count = gt_config_setting_count ();
    assert (count >= 40 && gt_config_setting_name (count) == NULL);
    for (size_t index = 0; index < count; index++) {
        const char *name = gt_config_setting_name (index);
        gt_config_t *defaults = gt_config_new ();
        char before [1024];
        s_describe_one (defaults, name, before, sizeof (before));
        gt_config_destroy (&defaults);
        char bumped [64];
        snprintf (bumped, sizeof (bumped), "%llu", strtoull (before, NULL, 10) + 1);
        const char *candidates [] = { bumped, "1", "0", "2", "debug", "json", "from-file", "auto" };
        bool set = false;
        for (size_t c = 0; c < sizeof (candidates) / sizeof (candidates [0]) && !set; c++) {
            char line [256], after [1024];
            snprintf (line, sizeof (line), "# every setting\n%s=%s\n", name, candidates [c]);
            if (s_load_text (line, &config, path, sizeof (path), err, sizeof (err)) == GT_CONFIG_OK) {
                s_describe_one (config, name, after, sizeof (after));
                set = !streq (after, before);
            }
            else
                assert (strstr (err, ":2: ") && strstr (err, name));     //  refused: says where and what
            gt_config_destroy (&config);
        }
        if (!set) {
            fprintf (stderr, "gt_config_test: %s cannot be set from a config file\n", name);
            assert (false);
        }
        //  and it is in --help
        assert (strstr (gt_config_usage (), name));
    }

    //  Precedence: flags over environment over file over defaults
    s_write_file (path, sizeof (path),
                  "GC_SERVER_PORT=1111\nGC_EVENTS_PORT=2222\nGC_MAX_LEASES_PER_SERVICE=3\n");
    setenv ("GC_EVENTS_PORT", "3333", 1);
    setenv ("GC_MAX_LEASES_PER_SERVICE", "4", 1);
    char *flags [] = { "garbagetruck", "--config", path, "--max-leases-per-service", "5" };
    config = gt_config_new ();
    assert (gt_config_load_from (config, 5, flags, NULL, err, sizeof (err)) == GT_CONFIG_OK);
    assert (config->port == 1111 && config->events_port == 3333 && config->max_leases_per_service == 5);
    assert (config->event_history == 100000);                   //  the default
    assert (streq (config->config_file, path));
    gt_config_destroy (&config);
    unsetenv ("GC_EVENTS_PORT");
    unsetenv ("GC_MAX_LEASES_PER_SERVICE");
    //  GC_CONFIG names the file; --config wins over it; --config=FILE
    char other [64];
    s_write_file (other, sizeof (other), "GC_SERVER_PORT=4444\n");
    setenv ("GC_CONFIG", other, 1);
    char *none [] = { "garbagetruck" };
    config = gt_config_new ();
    assert (gt_config_load_from (config, 1, none, NULL, err, sizeof (err)) == GT_CONFIG_OK);
    assert (config->port == 4444);
    gt_config_destroy (&config);
    config = gt_config_new ();
    assert (gt_config_load_from (config, 3, flags, NULL, err, sizeof (err)) == GT_CONFIG_OK);
    assert (config->port == 1111);
    gt_config_destroy (&config);
    char equals [96];
    snprintf (equals, sizeof (equals), "--config=%s", path);
    char *with_equals [] = { "garbagetruck", equals };
    config = gt_config_new ();
    assert (gt_config_load_from (config, 2, with_equals, NULL, err, sizeof (err)) == GT_CONFIG_OK);
    assert (config->port == 1111);
    gt_config_destroy (&config);
    //  The default file: read when it exists and nothing names another
    unsetenv ("GC_CONFIG");
    config = gt_config_new ();
    assert (gt_config_load_from (config, 1, none, other, err, sizeof (err)) == GT_CONFIG_OK);
    assert (config->port == 4444 && streq (config->config_file, other));
    gt_config_destroy (&config);
    config = gt_config_new ();
    assert (gt_config_load_from (config, 1, none, "/nonexistent/gt.conf", err, sizeof (err)) == GT_CONFIG_OK);
    assert (config->port == 50051 && config->config_file == NULL);
    gt_config_destroy (&config);
    config = gt_config_new ();
    assert (gt_config_load_from (config, 3, flags, other, err, sizeof (err)) == GT_CONFIG_OK);
    assert (config->port == 1111);                              //  --config: not the default
    gt_config_destroy (&config);
    //  An empty name: no file at all, not even the default
    setenv ("GC_CONFIG", "", 1);
    config = gt_config_new ();
    assert (gt_config_load_from (config, 1, none, other, err, sizeof (err)) == GT_CONFIG_OK);
    assert (config->port == 50051 && config->config_file == NULL);
    gt_config_destroy (&config);
    //  A named file that does not exist is an error
    setenv ("GC_CONFIG", "/nonexistent/gt.conf", 1);
    config = gt_config_new ();
    assert (gt_config_load_from (config, 1, none, other, err, sizeof (err)) == GT_CONFIG_ERROR);
    assert (strstr (err, "/nonexistent/gt.conf"));
    gt_config_destroy (&config);
    unsetenv ("GC_CONFIG");
    char *dangling [] = { "garbagetruck", "--config" };
    config = gt_config_new ();
    assert (gt_config_load_from (config, 2, dangling, NULL, err, sizeof (err)) == GT_CONFIG_ERROR);
    assert (strstr (err, "--config"));
    gt_config_destroy (&config);
    //  A bad file is an error even where the environment overrides it
    s_write_file (other, sizeof (other), "GC_SERVER_PORT=x\n");
    setenv ("GC_SERVER_PORT", "5555", 1);
    char *bad_file [] = { "garbagetruck", "--config", other };
    config = gt_config_new ();
    assert (gt_config_load_from (config, 3, bad_file, NULL, err, sizeof (err)) == GT_CONFIG_ERROR);
    assert (strstr (err, ":1: GC_SERVER_PORT"));
    gt_config_destroy (&config);
    unsetenv ("GC_SERVER_PORT");
    //  GC_METRICS_PORT given in a file counts as chosen
    s_write_file (other, sizeof (other), "GC_METRICS_PORT=9191\n");
    config = gt_config_new ();
    assert (!config->metrics_port_chosen);
    assert (gt_config_load_from (config, 3, bad_file, NULL, err, sizeof (err)) == GT_CONFIG_OK);
    assert (config->metrics_port == 9191 && config->metrics_port_chosen);
    gt_config_destroy (&config);
    unlink (other);
    unlink (path);
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
    assert (config->max_leases == 268435455);
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
    //  GC_MAX_LEASES: 1 .. 2^28 - 1 (the id table's 28-bit record numbers)
    char *most_leases [] = { "garbagetruck", "--max-leases", "268435455" };
    assert (gt_config_load_args (config, 3, most_leases, err, sizeof (err)) == GT_CONFIG_OK);
    assert (config->max_leases == 268435455);
    char *too_many [] = { "garbagetruck", "--max-leases", "268435456" };
    assert (gt_config_load_args (config, 3, too_many, err, sizeof (err)) == GT_CONFIG_ERROR);
    assert (strstr (err, "--max-leases"));
    char *no_leases [] = { "garbagetruck", "--max-leases", "0" };
    assert (gt_config_load_args (config, 3, no_leases, err, sizeof (err)) == GT_CONFIG_ERROR);
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
    s_test_config_file ();
}
