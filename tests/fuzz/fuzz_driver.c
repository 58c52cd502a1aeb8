/*  fuzz_driver.c — runs a fuzz harness without libFuzzer.

        fuzz_<harness>_driver PATH...

    Calls LLVMFuzzerTestOneInput once on every file named, and on every
    file in every directory named (not recursively; names starting with
    '.' and README files are skipped).  Exits 0 when every input ran; a
    broken invariant aborts (fuzz_check.h), a sanitizer stops the program.
    Prints the number of inputs run, so an empty corpus is visible.

    This is how the ordinary ctest run (gcc, AddressSanitizer + UBSan in
    build-asan) replays the seeds and the committed reproducers under
    tests/fuzz/regressions/; the libFuzzer build (tests/run-all) links the
    same harness with libFuzzer's main instead.  */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static int
s_run_file (const char *path)
{
    FILE *file = fopen (path, "rb");
    if (!file) {
        fprintf (stderr, "fuzz_driver: %s: %s\n", path, strerror (errno));
        return -1;
    }
    size_t capacity = 4096, size = 0;
    uint8_t *data = (uint8_t *) malloc (capacity);
    size_t got;
    while (data && (got = fread (data + size, 1, capacity - size, file)) > 0) {
        size += got;
        if (size == capacity) {
            capacity *= 2;
            uint8_t *bigger = (uint8_t *) realloc (data, capacity);
            if (!bigger)
                free (data);
            data = bigger;
        }
    }
    int failed = ferror (file);
    fclose (file);
    if (!data || failed) {
        fprintf (stderr, "fuzz_driver: %s: cannot read\n", path);
        free (data);
        return -1;
    }
    //  An exact-size copy, so that ASan sees a read past the input
    uint8_t *input = (uint8_t *) malloc (size? size: 1);
    if (!input) {
        free (data);
        return -1;
    }
    memcpy (input, data, size);
    free (data);
    fprintf (stderr, "fuzz_driver: %s (%zu bytes)\n", path, size);
    LLVMFuzzerTestOneInput (input, size);
    free (input);
    return 0;
}

static int
s_compare (const void *a, const void *b)
{
    return strcmp (*(char * const *) a, *(char * const *) b);
}

int
main (int argc, char *argv [])
{
    if (argc < 2) {
        fprintf (stderr, "usage: %s FILE-OR-DIRECTORY...\n", argv [0]);
        return 2;
    }
    size_t runs = 0;
    for (int arg = 1; arg < argc; arg++) {
        struct stat info;
        if (stat (argv [arg], &info) != 0) {
            fprintf (stderr, "fuzz_driver: %s: %s\n", argv [arg], strerror (errno));
            return 1;
        }
        if (!S_ISDIR (info.st_mode)) {
            if (s_run_file (argv [arg]))
                return 1;
            runs++;
            continue;
        }
        DIR *dir = opendir (argv [arg]);
        if (!dir) {
            fprintf (stderr, "fuzz_driver: %s: %s\n", argv [arg], strerror (errno));
            return 1;
        }
        //  In name order, so that a run is reproducible
        char **names = NULL;
        size_t count = 0, capacity = 0;
        struct dirent *entry;
        while ((entry = readdir (dir))) {
            if (entry->d_name [0] == '.' || strncmp (entry->d_name, "README", 6) == 0)
                continue;
            if (count == capacity) {
                capacity = capacity? 2 * capacity: 64;
                char **bigger = (char **) realloc (names, capacity * sizeof (char *));
                if (!bigger)
                    return 1;
                names = bigger;
            }
            size_t length = strlen (argv [arg]) + strlen (entry->d_name) + 2;
            names [count] = (char *) malloc (length);
            if (!names [count])
                return 1;
            snprintf (names [count], length, "%s/%s", argv [arg], entry->d_name);
            count++;
        }
        closedir (dir);
        if (count > 1)
            qsort (names, count, sizeof (char *), s_compare);
        int status = 0;
        for (size_t index = 0; index < count; index++) {
            if (status == 0 && stat (names [index], &info) == 0 && S_ISREG (info.st_mode)) {
                if (s_run_file (names [index]))
                    status = 1;
                else
                    runs++;
            }
            free (names [index]);
        }
        free (names);
        if (status)
            return status;
    }
    printf ("fuzz_driver: %zu inputs run, no finding\n", runs);
    return 0;
}
