/*  gt_pgmigrations.h — the SQL migrations in broker/store/pg/migrations/, embedded.

    The table is generated at build time (postgres.cmake reads every
    migrations/NNN_name.sql into gt_pgmigrations.c), so the installed broker
    needs no files and the .sql files stay the one source of truth.  */
#ifndef GT_PGMIGRATIONS_H_INCLUDED
#define GT_PGMIGRATIONS_H_INCLUDED

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int version;                    //  NNN of the file name: 1, 2, ... without gaps
    const char *name;               //  the file name's _name part
    const char *sql;                //  the file's text, NUL-terminated
} gt_pgmigration_t;

//  All migrations, by ascending version.
extern const gt_pgmigration_t gt_pgmigrations [];
//  How many there are.
extern const size_t gt_pgmigration_count;

#ifdef __cplusplus
}
#endif
#endif
