/*  gt_metrics_render.c — a metrics snapshot in the Prometheus text
    exposition format, version 0.0.4 (part of gt_metrics).

    Plain figures come from the snapshot's STATS map by name, so STATS and
    /metrics cannot disagree; a name absent from STATS (a component not
    built in) renders as 0, so every series always exists.  Durations are
    kept in integer microseconds and printed as exact decimal seconds.  */
#include <czmq.h>
#include <ctype.h>
#include <stdarg.h>
#include "gt_metrics.h"
#include "gt_figures.h"

//  The command label: the wire name, "MALFORMED" for undecodable requests.
static const char *
s_command_label (gt_cmd_t cmd)
{
    return cmd == GT_CMD_NONE ? "MALFORMED" : gt_cmd_name (cmd);
}

//  --------------------------------------------------------------------------
//  Text building

typedef struct {
    char *data;                     //  text so far, NUL-terminated
    size_t size;                    //  its length
    size_t cap;                     //  bytes allocated
} s_text_t;

static void
s_reserve (s_text_t *text, size_t more)
{
    if (text->size + more + 1 > text->cap) {
        while (text->size + more + 1 > text->cap)
            text->cap = text->cap ? text->cap * 2 : 16384;
        text->data = (char *) realloc (text->data, text->cap);
        assert (text->data);
    }
}

static void
s_put (s_text_t *text, const char *string)
{
    size_t length = strlen (string);
    s_reserve (text, length);
    memcpy (text->data + text->size, string, length + 1);
    text->size += length;
}

static void
s_printf (s_text_t *text, const char *format, ...)
    __attribute__ ((format (printf, 2, 3)));

static void
s_printf (s_text_t *text, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    va_list copy;
    va_copy (copy, args);
    int length = vsnprintf (NULL, 0, format, copy);
    va_end (copy);
    assert (length >= 0);
    s_reserve (text, (size_t) length);
    vsnprintf (text->data + text->size, (size_t) length + 1, format, args);
    va_end (args);
    text->size += (size_t) length;
}

//  A label value: backslash, double quote and newline escaped (0.0.4).
static void
s_put_label (s_text_t *text, const char *value)
{
    s_reserve (text, 2 * strlen (value));
    for (const char *p = value; *p; p++) {
        if (*p == '\\' || *p == '"') {
            text->data [text->size++] = '\\';
            text->data [text->size++] = *p;
        }
        else
        if (*p == '\n') {
            text->data [text->size++] = '\\';
            text->data [text->size++] = 'n';
        }
        else
            text->data [text->size++] = *p;
    }
    text->data [text->size] = 0;
}

//  value / scale as an exact decimal ("0.00005", "2.5", "3").
static void
s_put_scaled (s_text_t *text, uint64_t value, uint64_t scale)
{
    if (scale <= 1) {
        s_printf (text, "%" PRIu64, value);
        return;
    }
    uint64_t whole = value / scale, part = value % scale;
    if (part == 0) {
        s_printf (text, "%" PRIu64, whole);
        return;
    }
    //  Digits of part, as many as scale has zeros, trailing zeros cut
    char digits [24];
    size_t length = 0;
    for (uint64_t unit = scale / 10; unit >= 1 && length < sizeof (digits) - 1; unit /= 10) {
        digits [length++] = (char) ('0' + (part / unit) % 10);
        if (unit == 1)
            break;
    }
    while (length > 1 && digits [length - 1] == '0')
        length--;
    digits [length] = 0;
    s_printf (text, "%" PRIu64 ".%s", whole, digits);
}

static void
s_header (s_text_t *text, const char *name, const char *type, const char *help)
{
    s_printf (text, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void
s_family_header (s_text_t *text, gt_figure_family_t family, const char *type)
{
    s_header (text, gt_figure_families [family].prometheus, type, gt_figure_families [family].help);
}

static uint64_t
s_stat (const gt_metrics_snapshot_t *snapshot, const char *names)
{
    //  "a|b|c": the first name present
    char buffer [256];
    snprintf (buffer, sizeof (buffer), "%s", names);
    char *save = NULL;
    for (char *name = strtok_r (buffer, "|", &save); name; name = strtok_r (NULL, "|", &save)) {
        uint64_t value;
        if (gt_metrics_stat (snapshot, name, &value))
            return value;
    }
    return 0;
}

//  The series of one histogram; labels is "" or 'name="value",' (escaped).
static void
s_put_histogram (s_text_t *text, const char *name, const char *labels,
                 const gt_histogram_t *histogram, uint64_t scale)
{
    for (size_t i = 0; i <= histogram->bound_count; i++) {
        s_printf (text, "%s_bucket{%sle=\"", name, labels);
        if (i < histogram->bound_count)
            s_put_scaled (text, histogram->bounds [i], scale);
        else
            s_put (text, "+Inf");
        s_printf (text, "\"} %" PRIu64 "\n", gt_histogram_cumulative (histogram, i));
    }
    //  Labels without the trailing comma for _sum and _count
    size_t length = strlen (labels);
    s_printf (text, "%s_sum%s%.*s%s ", name, length ? "{" : "", (int) (length ? length - 1 : 0),
              labels, length ? "}" : "");
    s_put_scaled (text, histogram->sum, scale);
    s_printf (text, "\n%s_count%s%.*s%s %" PRIu64 "\n", name, length ? "{" : "",
              (int) (length ? length - 1 : 0), labels, length ? "}" : "", histogram->count);
}

//  --------------------------------------------------------------------------
//  The exposition

char *
gt_metrics_render (const gt_metrics_snapshot_t *snapshot, size_t *size_p)
{
    s_text_t text = { NULL, 0, 0 };
    s_reserve (&text, 0);
    text.data [0] = 0;

    for (size_t i = 0; i < GT_FIGURE_COUNT_; i++) {
        const gt_figure_info_t *figure = &gt_figures [i];
        if (!figure->prometheus)
            continue;               //  STATS only
        s_header (&text, figure->prometheus, figure->kind == GT_FIGURE_COUNTER ? "counter" : "gauge",
                  figure->help);
        s_printf (&text, "%s ", figure->prometheus);
        s_put_scaled (&text, s_stat (snapshot, figure->stat), figure->scale);
        s_put (&text, "\n");
    }

    s_family_header (&text, GT_FIGURE_FAMILY_STORE_UP, "gauge");
    s_printf (&text, "%s %d\n", gt_figure_families [GT_FIGURE_FAMILY_STORE_UP].prometheus, snapshot->store_up ? 1 : 0);
    s_family_header (&text, GT_FIGURE_FAMILY_BUILD_INFO, "gauge");
    s_printf (&text, "%s{version=\"%s\",protocol=\"%d\"} 1\n", gt_figure_families [GT_FIGURE_FAMILY_BUILD_INFO].prometheus,
              GT_VERSION_STRING, GT_PROTOCOL_VERSION);

    s_family_header (&text, GT_FIGURE_FAMILY_REQUESTS_BY_COMMAND, "counter");
    char stat [GT_METRICS_STAT_NAME];
    for (int cmd = 0; cmd < GT_CMD_COUNT_; cmd++) {
        s_printf (&text, "%s{command=\"%s\"} ", gt_figure_families [GT_FIGURE_FAMILY_REQUESTS_BY_COMMAND].prometheus, s_command_label ((gt_cmd_t) cmd));
        gt_figures_family_name (stat, sizeof (stat), GT_FIGURE_FAMILY_REQUESTS_BY_COMMAND,
                                cmd == GT_CMD_NONE ? NULL : gt_cmd_name ((gt_cmd_t) cmd));
        s_put_scaled (&text, s_stat (snapshot, stat), 1);
        s_put (&text, "\n");
    }
    s_family_header (&text, GT_FIGURE_FAMILY_ERRORS_BY_CODE, "counter");
    for (int code = 1; code < GT_CODE_COUNT_; code++) {
        s_printf (&text, "%s{code=\"%s\"} ", gt_figure_families [GT_FIGURE_FAMILY_ERRORS_BY_CODE].prometheus, gt_code_name ((gt_code_t) code));
        gt_figures_family_name (stat, sizeof (stat), GT_FIGURE_FAMILY_ERRORS_BY_CODE, gt_code_name ((gt_code_t) code));
        s_put_scaled (&text, s_stat (snapshot, stat), 1);
        s_put (&text, "\n");
    }

    s_family_header (&text, GT_FIGURE_FAMILY_ACTIVE_BY_TYPE, "gauge");
    for (int type = 0; type < GT_TYPE_COUNT_; type++)
        s_printf (&text, "%s{object_type=\"%s\"} %" PRIu64 "\n", gt_figure_families [GT_FIGURE_FAMILY_ACTIVE_BY_TYPE].prometheus,
                  gt_object_type_name ((gt_object_type_t) type), snapshot->active_by_type [type]);

    s_family_header (&text, GT_FIGURE_FAMILY_ACTIVE_BY_SERVICE, "gauge");
    uint64_t other = snapshot->services_other;
    for (size_t i = 0; i < snapshot->service_count; i++) {
        //  A service really named "_other" joins the sum: series stay unique
        if (streq (snapshot->services [i].name, "_other")) {
            other += snapshot->services [i].active;
            continue;
        }
        s_printf (&text, "%s{service=\"", gt_figure_families [GT_FIGURE_FAMILY_ACTIVE_BY_SERVICE].prometheus);
        s_put_label (&text, snapshot->services [i].name);
        s_printf (&text, "\"} %" PRIu64 "\n", snapshot->services [i].active);
    }
    s_printf (&text, "%s{service=\"_other\"} %" PRIu64 "\n", gt_figure_families [GT_FIGURE_FAMILY_ACTIVE_BY_SERVICE].prometheus, other);

    s_family_header (&text, GT_FIGURE_FAMILY_REQUEST_DURATION, "histogram");
    for (int cmd = 0; cmd < GT_CMD_COUNT_; cmd++) {
        char labels [64];
        snprintf (labels, sizeof (labels), "command=\"%s\",", s_command_label ((gt_cmd_t) cmd));
        s_put_histogram (&text, gt_figure_families [GT_FIGURE_FAMILY_REQUEST_DURATION].prometheus, labels,
                         &snapshot->request_duration [cmd], 1000000);
    }
    s_family_header (&text, GT_FIGURE_FAMILY_EXPIRY_LATENESS, "histogram");
    s_put_histogram (&text, gt_figure_families [GT_FIGURE_FAMILY_EXPIRY_LATENESS].prometheus, "", &snapshot->expiry_lateness, 1000000);
    s_family_header (&text, GT_FIGURE_FAMILY_STORE_BATCH_SIZE, "histogram");
    s_put_histogram (&text, gt_figure_families [GT_FIGURE_FAMILY_STORE_BATCH_SIZE].prometheus, "", &snapshot->store_batch_size, 1);
    s_family_header (&text, GT_FIGURE_FAMILY_STORE_COMMIT, "histogram");
    s_put_histogram (&text, gt_figure_families [GT_FIGURE_FAMILY_STORE_COMMIT].prometheus, "", &snapshot->store_commit, 1000000);

    *size_p = text.size;
    return text.data;
}
