/*  gt_log_test.c — selftest of gt_log: levels and formats, text and JSON
    lines, truncation, writing to a stream, the environment.  */
#include <czmq.h>
#include <jansson.h>
#include "gt_log.h"
#include "gt_broker_selftest.h"

void
gt_log_test (bool verbose)
{
    (void) verbose;
    char line [1024];
    //  2025-01-31T12:00:00.123Z
    uint64_t wall = 1738324800123ULL;

    //  Levels and formats parse; junk does not
    gt_log_level_t level;
    gt_log_format_t format;
    assert (gt_log_parse_level ("DEBUG", &level) && level == GT_LOG_DEBUG);
    assert (gt_log_parse_level ("warning", &level) && level == GT_LOG_WARN);
    assert (gt_log_parse_level ("error", &level) && level == GT_LOG_ERROR);
    assert (!gt_log_parse_level ("loud", &level) && !gt_log_parse_level (NULL, &level));
    assert (gt_log_parse_format ("json", &format) && format == GT_LOG_JSON);
    assert (gt_log_parse_format ("Text", &format) && format == GT_LOG_TEXT);
    assert (!gt_log_parse_format ("xml", &format));

    //  Text: timestamp, level, component, message, fields; awkward values quoted
    const char *fields [] = { "count", "12", "url", "http://x/?a=1", "note", "two words \"q\"",
                              "skipped", NULL, "empty", "" };
    size_t length = gt_log_format_line (line, sizeof (line), GT_LOG_TEXT, wall, GT_LOG_INFO,
                                        "broker", "expired leases", fields, 5);
    assert (length == strlen (line));
    assert (streq (line, "2025-01-31T12:00:00.123Z INFO broker: expired leases count=12"
                         " url=\"http://x/?a=1\" note=\"two words \\\"q\\\"\" empty=\"\"\n"));
    //  A message with newlines stays one line
    gt_log_format_line (line, sizeof (line), GT_LOG_TEXT, wall, GT_LOG_WARN, "broker",
                        "line one\nline two\x01", NULL, 0);
    assert (streq (line, "2025-01-31T12:00:00.123Z WARN broker: line one\\nline two\\x01\n"));

    //  JSON: valid, one line, fields as strings, reserved keys not overridden,
    //  invalid UTF-8 replaced
    const char *json_fields [] = { "count", "12", "msg", "override?", "bad", ("a\xff" "b"),
                                   "quote", "say \"hi\"\n" };
    length = gt_log_format_line (line, sizeof (line), GT_LOG_JSON, wall, GT_LOG_ERROR,
                                 "store", "degraded", json_fields, 4);
    assert (line [length - 1] == '\n');
    assert (strchr (line, '\n') == line + length - 1);
    json_error_t error;
    json_t *parsed = json_loads (line, 0, &error);
    assert (parsed);
    assert (streq (json_string_value (json_object_get (parsed, "ts")), "2025-01-31T12:00:00.123Z"));
    assert (streq (json_string_value (json_object_get (parsed, "level")), "error"));
    assert (streq (json_string_value (json_object_get (parsed, "component")), "store"));
    assert (streq (json_string_value (json_object_get (parsed, "msg")), "degraded"));
    assert (streq (json_string_value (json_object_get (parsed, "count")), "12"));
    assert (streq (json_string_value (json_object_get (parsed, "bad")), "a?b"));
    assert (streq (json_string_value (json_object_get (parsed, "quote")), "say \"hi\"\n"));
    json_decref (parsed);

    //  Truncation keeps the newline
    char small [16];
    length = gt_log_format_line (small, sizeof (small), GT_LOG_TEXT, wall, GT_LOG_INFO, "b", "m", NULL, 0);
    assert (length == 15 && small [14] == '\n' && small [15] == 0);

    //  Writing: level filter, one line per call, to the chosen stream
    char *captured = NULL;
    size_t captured_size = 0;
    FILE *stream = open_memstream (&captured, &captured_size);
    assert (stream);
    gt_log_level_t saved_level = gt_log_level ();
    gt_log_format_t saved_format = gt_log_format ();
    gt_log_set_stream (stream);
    gt_log_set_level (GT_LOG_INFO);
    gt_log_set_format (GT_LOG_JSON);
    assert (gt_log_enabled (GT_LOG_WARN) && !gt_log_enabled (GT_LOG_DEBUG));
    gt_log_debug ("test", "not written %d", 1);
    gt_log_info ("test", "written %d", 2);
    gt_log_kv (GT_LOG_WARN, "test", "with fields", "a", "1", "b", "2", NULL);
    gt_log_set_stream (NULL);
    fclose (stream);
    assert (captured);
    assert (strstr (captured, "not written") == NULL);
    char *second = strchr (captured, '\n');
    assert (second && second [1] == '{');
    assert (strchr (second + 1, '\n') && strchr (second + 1, '\n') [1] == 0);
    //  Each line parses on its own
    *second = 0;
    parsed = json_loads (captured, 0, &error);
    assert (parsed && streq (json_string_value (json_object_get (parsed, "msg")), "written 2"));
    json_decref (parsed);
    parsed = json_loads (second + 1, 0, &error);
    assert (parsed && streq (json_string_value (json_object_get (parsed, "b")), "2"));
    assert (streq (json_string_value (json_object_get (parsed, "level")), "warn"));
    json_decref (parsed);
    free (captured);

    //  Environment
    char err [256];
    setenv ("GC_LOG_LEVEL", "debug", 1);
    setenv ("GC_LOG_FORMAT", "text", 1);
    assert (gt_log_configure_env (err, sizeof (err)));
    assert (gt_log_level () == GT_LOG_DEBUG && gt_log_format () == GT_LOG_TEXT);
    setenv ("GC_LOG_LEVEL", "chatty", 1);
    assert (!gt_log_configure_env (err, sizeof (err)) && strstr (err, "GC_LOG_LEVEL"));
    assert (gt_log_level () == GT_LOG_DEBUG);
    unsetenv ("GC_LOG_LEVEL");
    unsetenv ("GC_LOG_FORMAT");
    gt_log_set_level (saved_level);
    gt_log_set_format (saved_format);
}
