/*  gtctl_print.c — how gtctl shows replies to people, or as JSON.  */
#include "gtctl_print.h"

//  Wall clock now, ms since the epoch (the broker's timestamps are wall ms).
static int64_t
s_wall_ms (void)
{
    return zclock_time ();
}

//  "12.3s", "4m05s", "2h03m", "3d04h" — short and readable.
static void
s_format_duration (char *buf, size_t size, int64_t ms)
{
    const char *sign = ms < 0? "-": "";
    uint64_t value = (uint64_t) (ms < 0? -ms: ms);
    uint64_t seconds = value / 1000;
    if (seconds < 60)
        snprintf (buf, size, "%s%.1fs", sign, (double) value / 1000.0);
    else
    if (seconds < 3600)
        snprintf (buf, size, "%s%" PRIu64 "m%02" PRIu64 "s", sign, seconds / 60, seconds % 60);
    else
    if (seconds < 86400)
        snprintf (buf, size, "%s%" PRIu64 "h%02" PRIu64 "m", sign, seconds / 3600,
                  (seconds % 3600) / 60);
    else
        snprintf (buf, size, "%s%" PRIu64 "d%02" PRIu64 "h", sign, seconds / 86400,
                  (seconds % 86400) / 3600);
}

//  ISO 8601 UTC with milliseconds.
static void
s_format_time (char *buf, size_t size, uint64_t wall_ms)
{
    time_t seconds = (time_t) (wall_ms / 1000);
    struct tm tm;
    gmtime_r (&seconds, &tm);
    char date [32];
    strftime (date, sizeof (date), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf (buf, size, "%s.%03uZ", date, (unsigned) (wall_ms % 1000));
}

//  "in 29.9s" for an active lease, "-" for an ended one.
static void
s_format_expiry (char *buf, size_t size, const gt_lease_info_t *lease)
{
    if (lease->state != GT_STATE_ACTIVE) {
        snprintf (buf, size, "-");
        return;
    }
    int64_t left = (int64_t) lease->expires_at - s_wall_ms ();
    s_format_duration (buf, size, left > 0? left: 0);
}

void
gtctl_print_json (json_t *json, bool compact)
{
    if (!json) {
        fprintf (stderr, "gtctl: cannot represent the reply as JSON\n");
        return;
    }
    char *text = json_dumps (json, compact? JSON_COMPACT: JSON_INDENT (2));
    if (text) {
        printf ("%s\n", text);
        free (text);
    }
    fflush (stdout);
    json_decref (json);
}

json_t *
gtctl_event_json (const gt_event_t *event)
{
    json_t *json = gt_event_to_json (event);
    char topic [GT_MAX_SERVICE_ID + 64];
    if (json && gt_event_topic (topic, sizeof (topic), event->kind,
                                event->lease.object_type, event->lease.service_id) >= 0)
        json_object_set_new (json, "topic", json_string (topic));
    return json;
}

void
gtctl_print_health (const gt_msg_t *reply)
{
    printf ("%s (%s, %s) version %s uptime %" PRIu64 "s leases %" PRIu64 "\n",
            reply->status,
            reply->store? reply->store: "?",
            reply->store_status? reply->store_status: "?",
            reply->server_version? reply->server_version: "?",
            reply->uptime_ms / 1000, reply->active_leases);
}

void
gtctl_print_stats (const gt_msg_t *reply)
{
    int width = 0;
    for (size_t index = 0; index < reply->stat_count; index++) {
        int length = (int) strlen (reply->stats [index].name);
        if (length > width)
            width = length;
    }
    for (size_t index = 0; index < reply->stat_count; index++)
        printf ("%-*s  %" PRIu64 "\n", width, reply->stats [index].name,
                reply->stats [index].value);
}

void
gtctl_print_lease_line (const gt_lease_info_t *lease)
{
    if (lease->state == GT_STATE_ACTIVE) {
        char expiry [32];
        s_format_expiry (expiry, sizeof (expiry), lease);
        printf ("%s ACTIVE expires in %s renewals %" PRIu64 "\n",
                lease->id, expiry, lease->renewals);
    }
    else
    if (lease->cleanup_status != GT_CLEANUP_NONE)
        printf ("%s %s cleanup %s\n", lease->id, gt_state_name (lease->state),
                gt_cleanup_status_name (lease->cleanup_status));
    else
        printf ("%s %s\n", lease->id, gt_state_name (lease->state));
}

void
gtctl_print_lease (const gt_lease_info_t *lease)
{
    char text [64];
    printf ("id          %s\n", lease->id);
    printf ("object      %s\n", lease->object_id);
    printf ("type        %s\n", gt_object_type_name (lease->object_type));
    printf ("service     %s\n", lease->service_id);
    s_format_expiry (text, sizeof (text), lease);
    if (lease->state == GT_STATE_ACTIVE)
        printf ("state       ACTIVE, expires in %s\n", text);
    else
        printf ("state       %s\n", gt_state_name (lease->state));
    printf ("fence       %" PRIu64 "\n", lease->fence);
    s_format_duration (text, sizeof (text), (int64_t) lease->ttl_ms);
    printf ("ttl         %s\n", text);
    s_format_time (text, sizeof (text), lease->created_at);
    printf ("created     %s\n", text);
    s_format_time (text, sizeof (text), lease->renewed_at);
    printf ("renewed     %s (%" PRIu64 " renewals)\n", text, lease->renewals);
    s_format_time (text, sizeof (text), lease->expires_at);
    printf ("%s %s\n", lease->state == GT_STATE_ACTIVE? "expires    ": "ended      ", text);
    for (size_t index = 0; index < lease->metadata.count; index++)
        printf ("metadata    %s=%s\n", lease->metadata.entries [index].key,
                lease->metadata.entries [index].value);
    if (lease->cleanup) {
        s_format_duration (text, sizeof (text), (int64_t) lease->cleanup->retry_delay_ms);
        printf ("cleanup     %s (max retries %u, retry delay %s)\n", lease->cleanup->url,
                lease->cleanup->max_retries, text);
        if (lease->cleanup->payload)
            printf ("payload     %s\n", lease->cleanup->payload);
    }
    if (lease->cleanup_status != GT_CLEANUP_NONE) {
        printf ("callback    %s after %" PRIu64 " attempt%s", gt_cleanup_status_name (lease->cleanup_status),
                lease->cleanup_attempts, lease->cleanup_attempts == 1? "": "s");
        if (lease->cleanup_error)
            printf (": %s", lease->cleanup_error);
        if (lease->cleanup_status == GT_CLEANUP_DEAD)
            printf ("  (gtctl retry %s)", lease->id);
        printf ("\n");
    }
}

//  Object ids can be long: cut them for the table.
#define GTCTL_OBJECT_WIDTH  40

void
gtctl_print_leases (const gt_lease_info_t *const *leases, size_t count)
{
    int object_width = 6, service_width = 7, type_width = 4;
    for (size_t index = 0; index < count; index++) {
        const gt_lease_info_t *lease = leases [index];
        int length = (int) strlen (lease->object_id);
        if (length > object_width)
            object_width = length < GTCTL_OBJECT_WIDTH? length: GTCTL_OBJECT_WIDTH;
        length = (int) strlen (lease->service_id);
        if (length > service_width)
            service_width = length;
        length = (int) strlen (gt_object_type_name (lease->object_type));
        if (length > type_width)
            type_width = length;
    }
    printf ("%-32s  %-*s  %-*s  %-*s  %-8s  %-9s  %s\n", "ID", object_width, "OBJECT",
            type_width, "TYPE", service_width, "SERVICE", "STATE", "CLEANUP", "EXPIRES IN");
    for (size_t index = 0; index < count; index++) {
        const gt_lease_info_t *lease = leases [index];
        char object [GTCTL_OBJECT_WIDTH + 1];
        if (strlen (lease->object_id) > GTCTL_OBJECT_WIDTH)
            snprintf (object, sizeof (object), "%.*s...",
                      GTCTL_OBJECT_WIDTH - 3, lease->object_id);
        else
            snprintf (object, sizeof (object), "%s", lease->object_id);
        char expiry [32];
        s_format_expiry (expiry, sizeof (expiry), lease);
        const char *cleanup = lease->cleanup_status != GT_CLEANUP_NONE
                            ? gt_cleanup_status_name (lease->cleanup_status) : "-";
        printf ("%-32s  %-*s  %-*s  %-*s  %-8s  %-9s  %s\n", lease->id, object_width, object,
                type_width, gt_object_type_name (lease->object_type),
                service_width, lease->service_id, gt_state_name (lease->state), cleanup, expiry);
    }
}

void
gtctl_print_list (const gt_msg_t *reply)
{
    const gt_lease_info_t **leases = (const gt_lease_info_t **)
        calloc (reply->lease_count + 1, sizeof (gt_lease_info_t *));
    assert (leases);
    for (size_t index = 0; index < reply->lease_count; index++)
        leases [index] = &reply->leases [index];
    gtctl_print_leases (leases, reply->lease_count);
    free (leases);
}

void
gtctl_format_seconds (char *buf, size_t size, uint64_t ms)
{
    snprintf (buf, size, "%" PRIu64 ".%03u", ms / 1000, (unsigned) (ms % 1000));
    char *end = buf + strlen (buf);
    while (end [-1] == '0')
        *--end = '\0';
    if (end [-1] == '.')
        end [-1] = '\0';
}

//  A number at text (digits only); its end, or NULL.
static const char *
s_scan_number (const char *text, uint64_t *value)
{
    if (!isdigit ((unsigned char) *text))
        return NULL;
    errno = 0;
    char *end;
    unsigned long long parsed = strtoull (text, &end, 10);
    if (errno)
        return NULL;
    *value = parsed;
    return end;
}

char *
gtctl_seconds_message (const char *message)
{
    //  The broker's TTL check (gt_leases_check_ttl)
    uint64_t ttl, low, high;
    const char *cursor = strncmp (message, "ttl_ms ", 7) == 0? s_scan_number (message + 7, &ttl): NULL;
    if (cursor && strncmp (cursor, " is outside [", 13) == 0
    && (cursor = s_scan_number (cursor + 13, &low)) && strncmp (cursor, ", ", 2) == 0
    && (cursor = s_scan_number (cursor + 2, &high)) && *cursor == ']') {
        char ttl_s [32], low_s [32], high_s [32];
        gtctl_format_seconds (ttl_s, sizeof (ttl_s), ttl);
        gtctl_format_seconds (low_s, sizeof (low_s), low);
        gtctl_format_seconds (high_s, sizeof (high_s), high);
        char *text = zsys_sprintf ("ttl %s s is outside the broker's range [%s, %s] s%s",
                                   ttl_s, low_s, high_s, cursor + 1);
        assert (text);
        return text;
    }
    //  Any other "N ms" (a word of digits, then " ms" as a word): "N s"
    char *text = strdup ("");
    assert (text);
    const char *rest = message;
    for (const char *at = message; *at; at++) {
        uint64_t ms;
        const char *end;
        if ((at == message || !isalnum ((unsigned char) at [-1]))
        &&  (end = s_scan_number (at, &ms)) && strncmp (end, " ms", 3) == 0
        &&  !isalnum ((unsigned char) end [3])) {
            char seconds [32];
            gtctl_format_seconds (seconds, sizeof (seconds), ms);
            char *joined = zsys_sprintf ("%s%.*s%s s", text, (int) (at - rest), rest, seconds);
            assert (joined);
            zstr_free (&text);
            text = joined;
            rest = end + 3;
            at = end + 2;
        }
    }
    char *joined = zsys_sprintf ("%s%s", text, rest);
    assert (joined);
    zstr_free (&text);
    return joined;
}

void
gtctl_print_replay (const gt_msg_t *reply)
{
    for (size_t index = 0; index < reply->event_count; index++) {
        const gt_event_t *event = &reply->events [index];
        char topic [GT_MAX_SERVICE_ID + 64] = "?";
        gt_event_topic (topic, sizeof (topic), event->kind,
                        event->lease.object_type, event->lease.service_id);
        //  For the eye: the service ends at a '/' (on the wire, at U+001F)
        char *separator = strrchr (topic, GT_TOPIC_SEPARATOR);
        if (separator)
            *separator = '/';
        char at [40];
        s_format_time (at, sizeof (at), event->at);
        printf ("%" PRIu64 "  %s  %-16s  %s  %s\n", event->seq, at,
                gt_event_kind_name (event->kind), event->lease.id, topic);
    }
    printf ("last_seq %" PRIu64 "\n", reply->last_seq);
}

void
gtctl_format_shards (char *buf, size_t size, const gt_broker_info_t *broker)
{
    size_t used = 0;
    buf [0] = '\0';
    unsigned shard = 0;
    while (shard < GT_SHARD_COUNT) {
        if (!gt_broker_info_owns (broker, shard)) {
            shard++;
            continue;
        }
        //  A range: consecutive owned shards (held at the same epoch)
        unsigned last = shard;
        while (last + 1 < GT_SHARD_COUNT && gt_broker_info_owns (broker, last + 1)
        &&  (!broker->has_epochs || broker->epochs [last + 1] == broker->epochs [shard]))
            last++;
        char range [32];
        if (last == shard)
            snprintf (range, sizeof (range), "%u", shard);
        else
            snprintf (range, sizeof (range), "%u-%u", shard, last);
        int written = broker->has_epochs
                    ? snprintf (buf + used, size - used, "%s%s@%" PRIu64, used? ",": "", range,
                                broker->epochs [shard])
                    : snprintf (buf + used, size - used, "%s%s", used? ",": "", range);
        if (written < 0 || (size_t) written >= size - used) {
            buf [used] = '\0';
            break;                      //  cut (GTCTL_SHARDS_MAX fits 256 shards)
        }
        used += (size_t) written;
        shard = last + 1;
    }
    if (!used)
        snprintf (buf, size, "-");
}

void
gtctl_print_map (const gt_msg_t *reply)
{
    printf ("map_version %" PRIu64 " mode %s\n", reply->map_version,
            reply->cluster? "cluster": "single");
    int id_width = 6, endpoint_width = 8, events_width = 6;
    for (size_t index = 0; index < reply->broker_count; index++) {
        const gt_broker_info_t *broker = &reply->brokers [index];
        int length = (int) strlen (broker->broker_id);
        if (length > id_width)
            id_width = length;
        length = (int) strlen (broker->endpoint);
        if (length > endpoint_width)
            endpoint_width = length;
        length = (int) strlen (broker->events_endpoint);
        if (length > events_width)
            events_width = length;
    }
    //  Epochs next to the shards when the brokers send them (GTLP.md §14.2)
    bool epochs = false;
    for (size_t index = 0; index < reply->broker_count; index++)
        epochs |= reply->brokers [index].has_epochs;
    printf ("%-*s  %-*s  %-*s  %s\n", id_width, "BROKER", endpoint_width, "ENDPOINT",
            events_width, "EVENTS", epochs? "SHARDS@EPOCH": "SHARDS");
    for (size_t index = 0; index < reply->broker_count; index++) {
        const gt_broker_info_t *broker = &reply->brokers [index];
        char shards [GTCTL_SHARDS_MAX];
        gtctl_format_shards (shards, sizeof (shards), broker);
        printf ("%-*s  %-*s  %-*s  %s\n", id_width, broker->broker_id,
                endpoint_width, *broker->endpoint? broker->endpoint: "-",
                events_width, *broker->events_endpoint? broker->events_endpoint: "-", shards);
    }
}
