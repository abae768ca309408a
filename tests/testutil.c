#define _GNU_SOURCE
#include "testutil.h"

#include <fitsio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

char *tu_tmpdir(void)
{
    const char *base = getenv("TMPDIR");
    char *tmpl;
    if (asprintf(&tmpl, "%s/oddsky-test-XXXXXX", base && *base ? base : "/tmp") < 0) return NULL;
    if (!mkdtemp(tmpl)) { free(tmpl); return NULL; }
    return tmpl;
}

void tu_rmtree(const char *dir)
{
    char *cmd;
    if (!dir || strstr(dir, "oddsky-test-") == NULL) return; /* never anything else */
    if (asprintf(&cmd, "rm -rf '%s'", dir) < 0) return;
    if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", dir);
    free(cmd);
}

char *tu_path(const char *dir, const char *name)
{
    char *p;
    if (asprintf(&p, "%s/%s", dir, name) < 0) return NULL;
    return p;
}

int tu_file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

char *tu_shared(const char *rel)
{
    const char *base = getenv("ODDSKY_SHARED_DATA");
    if (!base || !*base) base = "../shared/data";
    char *p = tu_path(base, rel);
    if (p && !tu_file_exists(p)) { free(p); return NULL; }
    return p;
}

static void slurp(const char *path, char *buf, size_t len)
{
    if (!buf || !len) return;
    buf[0] = 0;
    FILE *f = fopen(path, "r");
    if (!f) return;
    size_t n = fread(buf, 1, len - 1, f);
    buf[n] = 0;
    fclose(f);
}

int tu_run(const char *args, char *out, size_t outlen, char *err, size_t errlen)
{
    return tu_run_under("", args, out, outlen, err, errlen);
}

int tu_run_under(const char *launcher, const char *args, char *out, size_t outlen, char *err, size_t errlen)
{
    const char *bin = getenv("ODDSKY_BIN");
    if (!bin || !*bin) bin = "./oddsky";
    char *dir = tu_tmpdir();
    char *o = tu_path(dir, "out"), *e = tu_path(dir, "err"), *cmd;
    if (asprintf(&cmd, "%s '%s' %s >'%s' 2>'%s' </dev/null", launcher, bin, args, o, e) < 0) return -1;
    int st = system(cmd);
    int rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    slurp(o, out, outlen);
    slurp(e, err, errlen);
    tu_rmtree(dir);
    free(cmd); free(o); free(e); free(dir);
    return rc;
}

/* The bytes of table HDU 2 of a FITS file (data only: headers carry
 * dates) and its DATASUM; every HDU's checksums checked on the way. */
static unsigned char *table_bytes(const char *path, size_t *n, char *sum)
{
    fitsfile *f;
    int status = 0, nhdu = 0, type, dataok = 0, hduok = 0;
    long nrows = 0, rowlen = 0;
    fits_open_file(&f, path, READONLY, &status);
    fits_get_num_hdus(f, &nhdu, &status);
    for (int h = 1; h <= nhdu && !status; h++) {
        fits_movabs_hdu(f, h, &type, &status);
        fits_verify_chksum(f, &dataok, &hduok, &status);
        if (!status && (dataok != 1 || hduok != 1))
            fail_msg("%s: HDU %d: wrong checksum (data %d, HDU %d)", path, h, dataok, hduok);
    }
    fits_movabs_hdu(f, 2, &type, &status);
    fits_read_key(f, TSTRING, "DATASUM", sum, NULL, &status);
    fits_get_num_rows(f, &nrows, &status);
    fits_read_key(f, TLONG, "NAXIS1", &rowlen, NULL, &status);
    *n = (size_t)(nrows * rowlen);
    unsigned char *b = malloc(*n ? *n : 1);
    fits_read_tblbytes(f, 1, 1, (LONGLONG)*n, b, &status);
    fits_close_file(f, &status);
    assert_int_equal(status, 0);
    return b;
}

void tu_same_table(const char *a, const char *b)
{
    size_t na, nb;
    char sa[FLEN_VALUE], sb[FLEN_VALUE];
    unsigned char *x = table_bytes(a, &na, sa), *y = table_bytes(b, &nb, sb);
    assert_int_equal(na, nb);
    if (memcmp(x, y, na)) fail_msg("%s and %s differ", a, b);
    assert_string_equal(sa, sb);
    free(x);
    free(y);
}
