/*  fuzz_check.h — the invariant check of the fuzz harnesses.

    FUZZ_CHECK (cond, ...) prints what broke (with printf-style details)
    and aborts: libFuzzer reports the abort as a crash and saves the input,
    the plain driver (fuzz_driver.c) fails its ctest.  Unlike assert(), it
    does not depend on NDEBUG.  */
#ifndef FUZZ_CHECK_H_INCLUDED
#define FUZZ_CHECK_H_INCLUDED

#include <stdio.h>
#include <stdlib.h>

#define FUZZ_CHECK(cond, ...) \
    do { \
        if (!(cond)) { \
            fprintf (stderr, "%s:%d: invariant broken: %s\n  ", __FILE__, __LINE__, #cond); \
            fprintf (stderr, __VA_ARGS__); \
            fprintf (stderr, "\n"); \
            abort (); \
        } \
    } while (0)

#endif
