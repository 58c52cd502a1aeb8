/*  gt_log.c — the broker's log (see gt_log.h).  */
#include <czmq.h>
#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include "gt_log.h"

//  Process-wide settings: written at start, read by every thread.
static gt_log_level_t s_level = GT_LOG_INFO;
static gt_log_format_t s_format = GT_LOG_TEXT;
static FILE *s_stream = NULL;       //  NULL = stderr
static pthread_mutex_t s_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *s_level_names [] = { "error", "warn", "info", "debug" };
static const char *s_level_tags [] = { "ERROR", "WARN", "INFO", "DEBUG" };

bool
gt_log_parse_level (const char *text, gt_log_level_t *level_p)
{
    if (!text)
        return false;
    for (int level = GT_LOG_ERROR; level <= GT_LOG_DEBUG; level++)
        if (strcasecmp (text, s_level_names [level]) == 0) {
            *level_p = (gt_log_level_t) level;
            return true;
        }
    if (strcasecmp (text, "warning") == 0) {
        *level_p = GT_LOG_WARN;
        return true;
    }
    return false;
}

bool
gt_log_parse_format (const char *text, gt_log_format_t *format_p)
{
    if (text && strcasecmp (text, "text") == 0) {
        *format_p = GT_LOG_TEXT;
        return true;
    }
    if (text && strcasecmp (text, "json") == 0) {
        *format_p = GT_LOG_JSON;
        return true;
    }
    return false;
}

bool
gt_log_configure_env (char *err, size_t err_size)
{
    const char *level_text = getenv ("GC_LOG_LEVEL");
    const char *format_text = getenv ("GC_LOG_FORMAT");
    gt_log_level_t level = s_level;
    gt_log_format_t format = s_format;
    if (level_text && !gt_log_parse_level (level_text, &level)) {
        snprintf (err, err_size, "GC_LOG_LEVEL: '%s' is not error, warn, info or debug", level_text);
        return false;
    }
    if (format_text && !gt_log_parse_format (format_text, &format)) {
        snprintf (err, err_size, "GC_LOG_FORMAT: '%s' is not text or json", format_text);
        return false;
    }
    s_level = level;
    s_format = format;
    return true;
}

void
gt_log_set_level (gt_log_level_t level)
{
    assert (level >= GT_LOG_ERROR && level <= GT_LOG_DEBUG);
    s_level = level;
}

gt_log_level_t
gt_log_level (void)
{
    return s_level;
}

void
gt_log_set_format (gt_log_format_t format)
{
    s_format = format;
}

gt_log_format_t
gt_log_format (void)
{
    return s_format;
}

void
gt_log_set_stream (FILE *stream)
{
    pthread_mutex_lock (&s_lock);
    s_stream = stream;
    pthread_mutex_unlock (&s_lock);
}

bool
gt_log_enabled (gt_log_level_t level)
{
    return level <= s_level;
}

const char *
gt_log_level_name (gt_log_level_t level)
{
    return level >= GT_LOG_ERROR && level <= GT_LOG_DEBUG ? s_level_names [level] : "?";
}

//  --------------------------------------------------------------------------
//  Rendering

//  Length of the valid UTF-8 sequence at text, 0 if invalid.
static size_t
s_utf8_length (const unsigned char *text)
{
    unsigned char c = text [0];
    size_t length;
    uint32_t point;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        length = 2;
        point = c & 0x1F;
    }
    else
    if (c >= 0xE0 && c <= 0xEF) {
        length = 3;
        point = c & 0x0F;
    }
    else
    if (c >= 0xF0 && c <= 0xF4) {
        length = 4;
        point = c & 0x07;
    }
    else
        return 0;
    for (size_t i = 1; i < length; i++) {
        if ((text [i] & 0xC0) != 0x80)
            return 0;
        point = (point << 6) | (text [i] & 0x3F);
    }
    if ((length == 3 && point < 0x800) || (length == 4 && (point < 0x10000 || point > 0x10FFFF))
    || (point >= 0xD800 && point <= 0xDFFF))
        return 0;
    return length;
}

//  Copy of text with invalid UTF-8 bytes replaced by '?' (JSON needs UTF-8).
static char *
s_sanitize (const char *text)
{
    size_t size = strlen (text);
    char *copy = (char *) malloc (size + 1);
    assert (copy);
    size_t at = 0;
    while (at < size) {
        size_t length = s_utf8_length ((const unsigned char *) text + at);
        if (length == 0) {
            copy [at++] = '?';
            continue;
        }
        memcpy (copy + at, text + at, length);
        at += length;
    }
    copy [size] = 0;
    return copy;
}

//  Append text escaped for the text format: control characters become
//  \n, \t, \xNN; with quote, also " and \ are escaped.
static void
s_append_escaped (zchunk_t *line, const char *text, bool quote)
{
    for (const unsigned char *p = (const unsigned char *) text; *p; p++) {
        char escape [8];
        if (*p == '\n')
            zchunk_extend (line, "\\n", 2);
        else
        if (*p == '\t')
            zchunk_extend (line, "\\t", 2);
        else
        if (*p < 0x20 || *p == 0x7F) {
            snprintf (escape, sizeof (escape), "\\x%02x", *p);
            zchunk_extend (line, escape, 4);
        }
        else
        if (quote && (*p == '"' || *p == '\\')) {
            escape [0] = '\\';
            escape [1] = (char) *p;
            zchunk_extend (line, escape, 2);
        }
        else
            zchunk_extend (line, p, 1);
    }
}

static void
s_append (zchunk_t *line, const char *text)
{
    zchunk_extend (line, text, strlen (text));
}

static bool
s_needs_quotes (const char *value)
{
    if (!*value)
        return true;
    for (const unsigned char *p = (const unsigned char *) value; *p; p++)
        if (*p <= ' ' || *p == '"' || *p == '=' || *p == '\\' || *p == 0x7F)
            return true;
    return false;
}

static void
s_timestamp (uint64_t wall_ms, char *buffer, size_t size)
{
    time_t seconds = (time_t) (wall_ms / 1000);
    struct tm tm;
    gmtime_r (&seconds, &tm);
    snprintf (buffer, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
              tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
              (int) (wall_ms % 1000));
}

static bool
s_reserved_key (const char *key)
{
    return streq (key, "ts") || streq (key, "level") || streq (key, "component") || streq (key, "msg");
}

static void
s_json_set (json_t *object, const char *key, const char *value)
{
    char *clean_key = s_sanitize (key);
    char *clean_value = s_sanitize (value);
    json_object_set_new (object, clean_key, json_string (clean_value));
    free (clean_key);
    free (clean_value);
}

//  The whole line with its newline; the caller frees it.
static char *
s_render (gt_log_format_t format, uint64_t wall_ms, gt_log_level_t level, const char *component,
          const char *message, const char *const *fields, size_t pairs, size_t *size_p)
{
    char ts [80];
    s_timestamp (wall_ms, ts, sizeof (ts));
    component = component ? component : "garbagetruck";
    message = message ? message : "";
    if (format == GT_LOG_JSON) {
        json_t *object = json_object ();
        assert (object);
        s_json_set (object, "ts", ts);
        s_json_set (object, "level", gt_log_level_name (level));
        s_json_set (object, "component", component);
        s_json_set (object, "msg", message);
        for (size_t i = 0; i < pairs; i++) {
            const char *key = fields [2 * i], *value = fields [2 * i + 1];
            if (key && value && !s_reserved_key (key))
                s_json_set (object, key, value);
        }
        char *text = json_dumps (object, JSON_COMPACT | JSON_PRESERVE_ORDER);
        json_decref (object);
        assert (text);
        size_t size = strlen (text);
        char *line = (char *) malloc (size + 2);
        assert (line);
        memcpy (line, text, size);
        line [size++] = '\n';
        line [size] = 0;
        free (text);
        *size_p = size;
        return line;
    }
    zchunk_t *line = zchunk_new (NULL, 256);
    assert (line);
    s_append (line, ts);
    s_append (line, " ");
    s_append (line, level >= GT_LOG_ERROR && level <= GT_LOG_DEBUG ? s_level_tags [level] : "?");
    s_append (line, " ");
    s_append_escaped (line, component, false);
    s_append (line, ": ");
    s_append_escaped (line, message, false);
    for (size_t i = 0; i < pairs; i++) {
        const char *key = fields [2 * i], *value = fields [2 * i + 1];
        if (!key || !value)
            continue;
        s_append (line, " ");
        s_append_escaped (line, key, false);
        s_append (line, "=");
        bool quote = s_needs_quotes (value);
        if (quote)
            s_append (line, "\"");
        s_append_escaped (line, value, quote);
        if (quote)
            s_append (line, "\"");
    }
    zchunk_extend (line, "\n", 2);          //  with the terminating NUL
    size_t size = zchunk_size (line) - 1;
    char *text = (char *) malloc (size + 1);
    assert (text);
    memcpy (text, zchunk_data (line), size + 1);
    zchunk_destroy (&line);
    *size_p = size;
    return text;
}

size_t
gt_log_format_line (char *buffer, size_t size, gt_log_format_t format, uint64_t wall_ms,
                    gt_log_level_t level, const char *component, const char *message,
                    const char *const *fields, size_t pairs)
{
    size_t length = 0;
    char *line = s_render (format, wall_ms, level, component, message, fields, pairs, &length);
    if (size) {
        size_t copied = length < size - 1 ? length : size - 1;
        memcpy (buffer, line, copied);
        if (copied < length && copied)
            buffer [copied - 1] = '\n';
        buffer [copied] = 0;
        length = copied;
    }
    free (line);
    return length;
}

static uint64_t
s_wall_ms (void)
{
    struct timespec now;
    clock_gettime (CLOCK_REALTIME, &now);
    return (uint64_t) now.tv_sec * 1000 + (uint64_t) now.tv_nsec / 1000000;
}

void
gt_log_fields (gt_log_level_t level, const char *component, const char *message,
               const char *const *fields, size_t pairs)
{
    if (!gt_log_enabled (level))
        return;
    size_t size = 0;
    char *line = s_render (s_format, s_wall_ms (), level, component, message, fields, pairs, &size);
    pthread_mutex_lock (&s_lock);
    FILE *stream = s_stream ? s_stream : stderr;
    fwrite (line, 1, size, stream);
    fflush (stream);
    pthread_mutex_unlock (&s_lock);
    free (line);
}

void
gt_log (gt_log_level_t level, const char *component, const char *format, ...)
{
    if (!gt_log_enabled (level))
        return;
    va_list args;
    va_start (args, format);
    char *message = zsys_vprintf (format, args);
    va_end (args);
    gt_log_fields (level, component, message, NULL, 0);
    zstr_free (&message);
}

#define S_MAX_KV_PAIRS  64

void
gt_log_kv (gt_log_level_t level, const char *component, const char *message, ...)
{
    if (!gt_log_enabled (level))
        return;
    const char *fields [2 * S_MAX_KV_PAIRS];
    size_t pairs = 0;
    va_list args;
    va_start (args, message);
    const char *key;
    while ((key = va_arg (args, const char *)) != NULL) {
        const char *value = va_arg (args, const char *);
        assert (pairs < S_MAX_KV_PAIRS);
        fields [2 * pairs] = key;
        fields [2 * pairs + 1] = value;
        pairs++;
    }
    va_end (args);
    gt_log_fields (level, component, message, fields, pairs);
}
