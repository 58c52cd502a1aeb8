/*  gt_log.h — the broker's log: one line per event that matters, to stderr.

    Levels error, warn, info, debug (GC_LOG_LEVEL, default info); plain
    text (default) or one JSON object per line (GC_LOG_FORMAT=json).  The
    settings are process-wide: set them once at start, before threads log.

    Text:   2025-01-31T12:00:00.123Z INFO broker: expired leases count=12
    JSON:   {"ts":"2025-01-31T12:00:00.123Z","level":"info","component":"broker",
             "msg":"expired leases","count":"12"}

    A line is written with one call under a lock, so lines of different
    threads never interleave.  Messages and values are escaped so that an
    event is always exactly one line (newlines become \n).  */
#ifndef GT_LOG_H_INCLUDED
#define GT_LOG_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    GT_LOG_ERROR = 0,
    GT_LOG_WARN,
    GT_LOG_INFO,
    GT_LOG_DEBUG
} gt_log_level_t;

typedef enum {
    GT_LOG_TEXT = 0,
    GT_LOG_JSON
} gt_log_format_t;

//  Parse "error", "warn" (or "warning"), "info", "debug" (any case).
bool gt_log_parse_level (const char *text, gt_log_level_t *level_p);
//  Parse "text" or "json" (any case).
bool gt_log_parse_format (const char *text, gt_log_format_t *format_p);
//  Apply GC_LOG_LEVEL and GC_LOG_FORMAT; false with a message on a bad value.
bool gt_log_configure_env (char *err, size_t err_size);

void gt_log_set_level (gt_log_level_t level);
gt_log_level_t gt_log_level (void);
void gt_log_set_format (gt_log_format_t format);
gt_log_format_t gt_log_format (void);
//  Where lines go (NULL = stderr, the default).
void gt_log_set_stream (FILE *stream);
//  True if lines of this level are written (skip costly formatting if not).
bool gt_log_enabled (gt_log_level_t level);
//  "error", "warn", "info", "debug"
const char *gt_log_level_name (gt_log_level_t level);

//  One line, message printf-style.
void gt_log (gt_log_level_t level, const char *component, const char *format, ...)
    __attribute__ ((format (printf, 3, 4)));
//  One line with fields: key, value pairs (strings) ending with NULL.
void gt_log_kv (gt_log_level_t level, const char *component, const char *message, ...)
    __attribute__ ((sentinel));
//  One line with fields: pairs * 2 strings, key then value (a NULL value is skipped).
void gt_log_fields (gt_log_level_t level, const char *component, const char *message,
                    const char *const *fields, size_t pairs);

//  Format one line (with its newline) into buffer, as the log writes it at
//  wall_ms; returns the length (truncated lines still end with a newline).
size_t gt_log_format_line (char *buffer, size_t size, gt_log_format_t format, uint64_t wall_ms,
                           gt_log_level_t level, const char *component, const char *message,
                           const char *const *fields, size_t pairs);

#define gt_log_error(component, ...)    gt_log (GT_LOG_ERROR, component, __VA_ARGS__)
#define gt_log_warn(component, ...)     gt_log (GT_LOG_WARN, component, __VA_ARGS__)
#define gt_log_info(component, ...)     gt_log (GT_LOG_INFO, component, __VA_ARGS__)
#define gt_log_debug(component, ...)    gt_log (GT_LOG_DEBUG, component, __VA_ARGS__)

#ifdef __cplusplus
}
#endif
#endif
