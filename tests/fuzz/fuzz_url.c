/*  fuzz_url.c — libFuzzer harness of the cleanup URL policy
    (broker/delivery/gt_callback.h: gt_callback_url_allowed and
    gt_callback_allow_check; proto-spec/CALLBACKS.md "Allowed URLs",
    GTLP.md §5.1).

    A client chooses the cleanup URL of its CREATE; the operator writes
    GC_CALLBACK_ALLOW.  Both go through libcurl's URL parser and our checks.

    Input: up to three parts, an allow-list, a URL and an extra allow-list,
    separated by the first NUL bytes if the input has any, else by newlines
    ("http://h/\nhttp://h/x" is the list "http://h/" and the URL
    "http://h/x").  A missing URL is the empty string; a missing extra list
    is "https://extra.example/".

    Invariants checked, each one stated by gt_callback.h (an abort is a
    finding; the sanitizers' findings too):
      1. NULL and a list without entries (only commas and blanks) both mean
         "any well-formed http(s) URL".
      2. Always required of an allowed URL: http:// or https:// (any case),
         a host right after "://", at most GT_MAX_URL bytes, no blank or
         control character.
      3. With entries: an allowed URL has no user info, '%' or '\\' in its
         authority, no host ending with '.', and a path (up to '?' or '#')
         in normal form: no "." or ".." segment (also "..;x"), no
         backslash, no %2e, %2f, %5c, %00 in any case, no malformed escape.
         The URL is checked as written ("nothing is rewritten"), so these
         hold of the raw text.
      4. With entries, stricter than without: allowed under the list means
         allowed under no list.
      5. A list allows a URL exactly when one of its entries, alone, does.
      6. More entries never refuse more: allowed under L means allowed
         under "L,X" and "X,L".
      7. The scheme ignores case: changing its case changes nothing.
      8. Under an entry's path on a '/' boundary: a URL allowed under a list
         stays allowed with "/x" appended to its path (when that fits in
         GT_MAX_URL bytes).
      9. gt_callback_allow_check accepts a list exactly when it accepts each
         entry alone; when it refuses, err names GC_CALLBACK_ALLOW and is
         terminated, whatever its size; the verdict does not depend on err.
     10. An entry that gt_callback_allow_check refuses matches nothing; one
         it accepts allows itself (its path lies under its own path).
     11. "Nothing is rewritten, so the URL libcurl sends is the URL
         checked": for a URL allowed under a list with entries, the path
         libcurl requests (its URL API with the flags of a transfer, which
         remove dot segments) is the path as checked (CURLU_PATH_AS_IS),
         and that is the path as written ("/" when none is written).  */
#include "gt_callback.h"
#include "fuzz_check.h"
#include <curl/curl.h>
#include <ctype.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

//  At most this many entries are checked one by one (5, 10): each costs
//  libcurl parses, and a long list teaches the fuzzer nothing new
#define S_MAX_ENTRIES   8

static char *
s_strndup (const char *s, size_t size)
{
    char *copy = (char *) malloc (size + 1);
    FUZZ_CHECK (copy != NULL, "out of memory");
    memcpy (copy, s, size);
    copy [size] = 0;
    return copy;
}

static char *
s_concat3 (const char *a, const char *b, const char *c)
{
    size_t la = strlen (a), lb = strlen (b), lc = strlen (c);
    char *out = (char *) malloc (la + lb + lc + 1);
    FUZZ_CHECK (out != NULL, "out of memory");
    memcpy (out, a, la);
    memcpy (out + la, b, lb);
    memcpy (out + la + lb, c, lc + 1);
    return out;
}

//  The entries of a list as gt_callback.h defines them: comma-separated,
//  blanks around each ignored, empty ones skipped.  Returns the number of
//  entries (all of them), stores at most max copies (caller frees).
static size_t
s_entries (const char *list, char **entries, size_t max)
{
    size_t count = 0;
    const char *cursor = list;
    while (*cursor) {
        const char *end = cursor + strcspn (cursor, ",");
        const char *start = cursor;
        while (start < end && isspace ((unsigned char) *start))
            start++;
        const char *stop = end;
        while (stop > start && isspace ((unsigned char) stop [-1]))
            stop--;
        if (stop > start) {
            if (count < max)
                entries [count] = s_strndup (start, (size_t) (stop - start));
            count++;
        }
        cursor = *end? end + 1: end;
    }
    return count;
}

static int
s_hex (char c)
{
    return c >= '0' && c <= '9'? c - '0'
         : c >= 'a' && c <= 'f'? c - 'a' + 10
         : c >= 'A' && c <= 'F'? c - 'A' + 10: -1;
}

static size_t
s_scheme_length (const char *url)
{
    return strncasecmp (url, "http://", 7) == 0? 7
         : strncasecmp (url, "https://", 8) == 0? 8: 0;
}

//  2: what any allowed URL is
static void
s_check_well_formed (const char *url, const char *list)
{
    size_t length = strlen (url);
    FUZZ_CHECK (length >= 1 && length <= GT_MAX_URL, "allowed a URL of %zu bytes (list '%s')",
                length, list);
    for (size_t i = 0; i < length; i++)
        FUZZ_CHECK ((unsigned char) url [i] > ' ' && url [i] != 0x7f,
                    "allowed a URL with byte 0x%02x at %zu: '%s' (list '%s')",
                    (unsigned char) url [i], i, url, list);
    size_t scheme = s_scheme_length (url);
    FUZZ_CHECK (scheme > 0, "allowed a URL that is not http(s): '%s' (list '%s')", url, list);
    FUZZ_CHECK (strcspn (url + scheme, "/?#") > 0, "allowed a URL without a host: '%s' (list '%s')",
                url, list);
}

//  3: what a URL allowed under a list with entries is, on its raw text
static void
s_check_strict (const char *url, const char *list)
{
    size_t scheme = s_scheme_length (url);
    const char *authority = url + scheme;
    size_t authority_length = strcspn (authority, "/?#");
    for (size_t i = 0; i < authority_length; i++)
        FUZZ_CHECK (authority [i] != '@' && authority [i] != '%' && authority [i] != '\\',
                    "allowed '%c' in the authority: '%s' (list '%s')", authority [i], url, list);
    FUZZ_CHECK (authority_length > 0 && authority [authority_length - 1] != '.',
                "allowed a host ending with a dot: '%s' (list '%s')", url, list);
    char *host_dot_port = s_strndup (authority, authority_length);
    FUZZ_CHECK (strstr (host_dot_port, ".:") == NULL,
                "allowed a host ending with a dot (before the port): '%s' (list '%s')", url, list);
    free (host_dot_port);

    const char *raw_path = authority + authority_length;
    char *path = s_strndup (raw_path, strcspn (raw_path, "?#"));
    for (const char *c = path; *c; c++) {
        FUZZ_CHECK (*c != '\\', "allowed a backslash in the path: '%s' (list '%s')", url, list);
        if (*c == '%') {
            int high = s_hex (c [1]);
            int low = high < 0? -1: s_hex (c [2]);
            FUZZ_CHECK (low >= 0, "allowed a malformed escape in the path: '%s' (list '%s')", url, list);
            int value = high * 16 + low;
            FUZZ_CHECK (value != '.' && value != '/' && value != '\\' && value != 0,
                        "allowed %%%c%c in the path: '%s' (list '%s')", c [1], c [2], url, list);
        }
    }
    for (const char *segment = path; segment; segment = strchr (segment, '/')) {
        if (*segment == '/')
            segment++;
        size_t length = strcspn (segment, "/;");
        FUZZ_CHECK (!(length == 1 && segment [0] == '.')
                 && !(length == 2 && segment [0] == '.' && segment [1] == '.'),
                    "allowed a dot segment in the path: '%s' (list '%s')", url, list);
    }
    free (path);
}

//  11: the path of url as libcurl takes it apart with flags (caller
//  frees), or NULL if libcurl refuses the URL
static char *
s_curl_path (const char *url, unsigned int flags)
{
    CURLU *handle = curl_url ();
    FUZZ_CHECK (handle != NULL, "out of memory");
    char *path = NULL, *copy = NULL;
    if (curl_url_set (handle, CURLUPART_URL, url, flags) == CURLUE_OK
    &&  curl_url_get (handle, CURLUPART_PATH, &path, 0) == CURLUE_OK && path) {
        copy = s_strndup (path, strlen (path));
        curl_free (path);
    }
    curl_url_cleanup (handle);
    return copy;
}

static void
s_check_sent (const char *url, const char *list)
{
    //  What a transfer does with CURLOPT_URL: guess no scheme (ours is
    //  http or https), keep any, remove dot segments unless PATH_AS_IS
    char *checked = s_curl_path (url, CURLU_NON_SUPPORT_SCHEME | CURLU_PATH_AS_IS);
    char *sent = s_curl_path (url, CURLU_NON_SUPPORT_SCHEME);
    FUZZ_CHECK (checked && sent, "allowed '%s' under '%s', which libcurl cannot parse", url, list);
    FUZZ_CHECK (strcmp (checked, sent) == 0, "allowed '%s' under '%s': checked path '%s', sent path '%s'",
                url, list, checked, sent);
    size_t scheme = s_scheme_length (url);
    const char *raw = url + scheme + strcspn (url + scheme, "/?#");
    size_t raw_length = strcspn (raw, "?#");
    FUZZ_CHECK (raw_length == 0? strcmp (checked, "/") == 0
                               : strlen (checked) == raw_length && memcmp (checked, raw, raw_length) == 0,
                "allowed '%s' under '%s': libcurl's path '%s' is not the path written", url, list, checked);
    free (checked);
    free (sent);
}

//  9: the start-up check of a list, with a few err buffers
static bool
s_allow_check (const char *list)
{
    char err [256];
    memset (err, 'x', sizeof (err));
    bool verdict = gt_callback_allow_check (list, err, sizeof (err));
    //  err is written only on a refusal
    if (!verdict) {
        FUZZ_CHECK (memchr (err, 0, sizeof (err)) != NULL, "allow_check left err unterminated");
        FUZZ_CHECK (strstr (err, "GC_CALLBACK_ALLOW") != NULL,
                    "allow_check refused '%s' without saying why: '%s'", list, err);
    }
    char tiny [5];
    memset (tiny, 'x', sizeof (tiny));
    FUZZ_CHECK (gt_callback_allow_check (list, tiny, sizeof (tiny)) == verdict,
                "allow_check verdict depends on err_size");
    if (!verdict)
        FUZZ_CHECK (memchr (tiny, 0, sizeof (tiny)) != NULL, "allow_check left a tiny err unterminated");
    char untouched = 'u';
    FUZZ_CHECK (gt_callback_allow_check (list, &untouched, 0) == verdict && untouched == 'u',
                "allow_check with err_size 0");
    FUZZ_CHECK (gt_callback_allow_check (list, NULL, 0) == verdict, "allow_check with err NULL");
    return verdict;
}

//  7: the URL with its scheme in upper case, or lower case
static char *
s_scheme_case (const char *url, bool upper)
{
    char *copy = s_strndup (url, strlen (url));
    size_t scheme = s_scheme_length (url);
    for (size_t i = 0; i + 3 < scheme; i++)
        copy [i] = (char) (upper? toupper ((unsigned char) copy [i]): tolower ((unsigned char) copy [i]));
    return copy;
}

//  8: the URL with "/x" appended to its path (before any query or fragment)
static char *
s_deeper (const char *url)
{
    size_t scheme = s_scheme_length (url);
    size_t path_end = scheme + strcspn (url + scheme, "?#");
    size_t length = strlen (url);
    char *out = (char *) malloc (length + 3);
    FUZZ_CHECK (out != NULL, "out of memory");
    memcpy (out, url, path_end);
    memcpy (out + path_end, "/x", 2);
    memcpy (out + path_end + 2, url + path_end, length - path_end + 1);
    return out;
}

static void
s_check (const char *list, const char *url, const char *extra)
{
    bool open = gt_callback_url_allowed (NULL, url);
    //  1
    FUZZ_CHECK (gt_callback_url_allowed ("", url) == open, "NULL and \"\" differ for '%s'", url);
    if (open)
        s_check_well_formed (url, "NULL");
    FUZZ_CHECK (!gt_callback_url_allowed (list, NULL), "allowed a NULL URL");

    char *entries [S_MAX_ENTRIES];
    size_t count = s_entries (list, entries, S_MAX_ENTRIES);
    bool allowed = gt_callback_url_allowed (list, url);
    if (count == 0)
        FUZZ_CHECK (allowed == open, "a list without entries ('%s') is not the open policy for '%s'",
                    list, url);
    else
    if (allowed) {
        s_check_well_formed (url, list);            //  2
        s_check_strict (url, list);                 //  3
        s_check_sent (url, list);                   //  11
        FUZZ_CHECK (open, "allowed '%s' under '%s' but not under no list", url, list);     //  4
        //  6
        char *after = s_concat3 (list, ",", extra);
        char *before = s_concat3 (extra, ",", list);
        FUZZ_CHECK (gt_callback_url_allowed (after, url),
                    "allowed '%s' under '%s' but not under '%s'", url, list, after);
        FUZZ_CHECK (gt_callback_url_allowed (before, url),
                    "allowed '%s' under '%s' but not under '%s'", url, list, before);
        free (after);
        free (before);
        //  7
        for (int upper = 0; upper <= 1; upper++) {
            char *variant = s_scheme_case (url, upper);
            FUZZ_CHECK (gt_callback_url_allowed (list, variant),
                        "allowed '%s' under '%s' but not '%s'", url, list, variant);
            free (variant);
        }
        //  8
        if (strlen (url) + 2 <= GT_MAX_URL) {
            char *deeper = s_deeper (url);
            FUZZ_CHECK (gt_callback_url_allowed (list, deeper),
                        "allowed '%s' under '%s' but not '%s'", url, list, deeper);
            free (deeper);
        }
    }

    //  5, 9, 10 entry by entry (all of them when there are few)
    size_t checked = count < S_MAX_ENTRIES? count: S_MAX_ENTRIES;
    bool any_allows = false, all_usable = true;
    for (size_t index = 0; index < checked; index++) {
        const char *entry = entries [index];
        bool usable = s_allow_check (entry);
        bool allows = gt_callback_url_allowed (entry, url);
        if (!usable)
            FUZZ_CHECK (!allows, "entry '%s' is refused by allow_check, yet allows '%s'", entry, url);
        else
            FUZZ_CHECK (gt_callback_url_allowed (entry, entry), "entry '%s' does not allow itself", entry);
        any_allows |= allows;
        all_usable &= usable;
    }
    bool usable = s_allow_check (list);
    if (count <= S_MAX_ENTRIES) {
        FUZZ_CHECK (allowed == any_allows || count == 0,
                    "'%s' under '%s': %d, but its entries one by one: %d", url, list, allowed, any_allows);
        FUZZ_CHECK (usable == all_usable, "allow_check ('%s') = %d, but its entries one by one: %d",
                    list, usable, all_usable);
    }
    else
    if (!all_usable)
        FUZZ_CHECK (!usable, "allow_check ('%s') accepted a list with a bad entry", list);
    for (size_t index = 0; index < checked; index++)
        free (entries [index]);

    //  10, on the URL taken as an entry, when it is one (no comma, no
    //  blanks around it)
    char *self [1];
    size_t self_count = s_entries (url, self, 1);
    if (self_count == 1 && strcmp (self [0], url) == 0 && s_allow_check (url))
        FUZZ_CHECK (gt_callback_url_allowed (url, url), "entry '%s' does not allow itself", url);
    if (self_count > 0)
        free (self [0]);
}

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    char separator = memchr (data, 0, size)? '\0': '\n';
    char *parts [3] = { NULL, NULL, NULL };
    size_t offset = 0;
    for (int part = 0; part < 3 && offset <= size; part++) {
        const uint8_t *end = size > offset? (const uint8_t *) memchr (data + offset, separator, size - offset)
                                          : NULL;
        size_t length = end? (size_t) (end - (data + offset)): size - offset;
        parts [part] = s_strndup ((const char *) data + offset, length);
        offset += length + 1;
        if (!end)
            break;
    }
    s_check (parts [0],
             parts [1]? parts [1]: "",
             parts [2]? parts [2]: "https://extra.example/");
    for (int part = 0; part < 3; part++)
        free (parts [part]);
    return 0;
}
