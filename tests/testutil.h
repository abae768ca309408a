/* testutil.h — helpers shared by the cmocka test programs. */
#ifndef TESTUTIL_H
#define TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

/* Creates a fresh directory under $TMPDIR (or /tmp); caller frees the path
 * after tu_rmtree(). */
char *tu_tmpdir(void);
void tu_rmtree(const char *dir);
/* Joins dir and name into a static-free malloc'd path. */
char *tu_path(const char *dir, const char *name);

/* Path of a file in the shared reference data, or NULL when the folder (or
 * that file) is absent: callers then skip(). Caller frees. */
char *tu_shared(const char *rel);

/* Runs the oddsky binary with the given shell-quoted arguments; returns the
 * exit code and puts stdout / stderr (truncated) in out / err if non-NULL. */
int tu_run(const char *args, char *out, size_t outlen, char *err, size_t errlen);

/* The same, the command line prefixed by launcher ("mpirun -np 2"). */
int tu_run_under(const char *launcher, const char *args, char *out, size_t outlen, char *err, size_t errlen);

/* Fails unless the first table HDUs of FITS files a and b hold the same
 * bytes and DATASUM (not the whole headers: they carry dates), and unless
 * every HDU of both has right checksums. */
void tu_same_table(const char *a, const char *b);

int tu_file_exists(const char *path);

/* Asserts that a library call succeeded, showing its error message if not. */
#define assert_ok(expr, err)                                                 \
    do {                                                                     \
        int rc_ = (expr);                                                    \
        if (rc_) fail_msg("%s returned %d: %s", #expr, rc_, (err).msg);      \
    } while (0)

#endif
