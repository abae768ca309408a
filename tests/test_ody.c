/* test_ody.c — shared helpers: errors, CFITSIO wrapper, logging. */
#include <errno.h>
#include <fitsio.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ody.h"
#include "testutil.h"

static void test_edit_distance(void **state)
{
    (void)state;
    assert_int_equal(ody_edit_distance("redshift", "REDSHIFT"), 0);
    assert_int_equal(ody_edit_distance("redshft", "redshift"), 1);
    assert_int_equal(ody_edit_distance("", "abc"), 3);
    assert_int_equal(ody_edit_distance("kitten", "sitting"), 3);
}

/* A folder named with ( and [, which CFITSIO would read as its syntax:
 * files in it created and opened literally, and with syntax after them. */
static void test_fits_paths_with_syntax_characters(void **state)
{
    (void)state;
    char *top = tu_tmpdir(), *dir = tu_path(top, "Run (2024) [v2]"), cmd[4400];
    snprintf(cmd, sizeof cmd, "mkdir '%s'", dir);
    assert_int_equal(system(cmd), 0);
    char *t = tu_path(dir, "cat (1).fits"), with[4400];
    fitsfile *f = NULL;
    int status = 0, hdu = 0;
    ody_fits_create(&f, t, &status);  /* an empty primary array, then a table */
    fits_create_img(f, BYTE_IMG, 0, NULL, &status);
    char *tt[] = {"X"}, *tf[] = {"D"};
    fits_create_tbl(f, BINARY_TBL, 0, 1, tt, tf, NULL, "T", &status);
    double x[3] = {1, 2, 3};
    fits_write_col(f, TDOUBLE, 1, 1, 1, 3, x, &status);
    fits_close_file(f, &status);
    assert_int_equal(status, 0);
    assert_int_equal(ody_fits_file_len(t), strlen(t));
    snprintf(with, sizeof with, "%s[T][X > 1]", t);
    assert_int_equal(ody_fits_file_len(with), strlen(t));
    long rows = 0;
    ody_fits_open(&f, t, ODY_FITS_TABLE, READONLY, &status);  /* past the empty primary, as fits_open_table */
    fits_get_hdu_num(f, &hdu);
    fits_get_num_rows(f, &rows, &status);
    fits_close_file(f, &status);
    assert_int_equal(status, 0);
    assert_int_equal(hdu, 2);
    assert_int_equal(rows, 3);
    ody_fits_open(&f, with, ODY_FITS_TABLE, READONLY, &status);  /* the filter applies */
    fits_get_num_rows(f, &rows, &status);
    fits_close_file(f, &status);
    assert_int_equal(status, 0);
    assert_int_equal(rows, 2);
    ody_fits_open(&f, t, ODY_FITS_FILE, READONLY, &status);
    fits_get_hdu_num(f, &hdu);
    fits_close_file(f, &status);
    assert_int_equal(hdu, 1);
    ody_fits_open(&f, t, ODY_FITS_IMAGE, READONLY, &status);  /* the primary is empty and HDU 2 a table */
    assert_int_equal(status, NOT_IMAGE);
    ody_fits_close(f);  /* handed back open, as CFITSIO does */
    f = NULL;
    status = 0;
    /* a primary image with pixels: an image, not a table */
    char *im = tu_path(dir, "img (1).fits");
    long ax[2] = {2, 2};
    float px[4] = {1, 2, 3, 4};
    ody_fits_create(&f, im, &status);
    fits_create_img(f, FLOAT_IMG, 2, ax, &status);
    fits_write_img(f, TFLOAT, 1, 4, px, &status);
    fits_close_file(f, &status);
    assert_int_equal(status, 0);
    ody_fits_open(&f, im, ODY_FITS_IMAGE, READONLY, &status);
    fits_get_hdu_num(f, &hdu);
    fits_close_file(f, &status);
    assert_int_equal(status, 0);
    assert_int_equal(hdu, 1);
    ody_fits_open(&f, im, ODY_FITS_TABLE, READONLY, &status);
    assert_int_equal(status, NOT_TABLE);
    ody_fits_close(f);
    f = NULL;
    status = 0;
    free(im);
    snprintf(with, sizeof with, "%s/none.fits[T]", dir);
    assert_int_not_equal(ody_fits_open(&f, with, ODY_FITS_TABLE, READONLY, &status), 0);
    ody_fits_close(f);
    f = NULL;
    snprintf(cmd, sizeof cmd, "ls '%s' | grep -qv '^cat (1).fits$\\|^img (1).fits$'", dir);  /* nothing else beside */
    assert_int_not_equal(system(cmd), 0);
    tu_rmtree(top);
    free(top); free(dir); free(t);
}

/* Integer keywords read as text and parsed here: CFITSIO's own integer
 * read overran a stack buffer on a long value that is not a number (a
 * fuzzed NLAYERS in a model file; glibc's fortify aborted the process). */
static void test_read_int_keywords(void **state)
{
    (void)state;
    char *dir = tu_tmpdir(), *path = tu_path(dir, "keys.fits");
    fitsfile *f = NULL;
    int status = 0;
    ody_fits_create(&f, path, &status);
    fits_create_img(f, BYTE_IMG, 0, NULL, &status);
    const char *cards[] = {"GOOD    =                   78 / a count",
                           "NEG     =                  -12",
                           "BIG     =          99999999999",
                           "HUGE    = 999999999999999999999999",
                           "JUNK    =           000000012A09E52BBAB05C1F15B8381 89  C        0000007F7F7CB77",
                           "REAL    =                  7.5",
                           "TEXT    = '12      '",
                           "EMPTY   =                     "};
    for (size_t k = 0; k < sizeof cards / sizeof *cards; k++) fits_write_record(f, cards[k], &status);
    assert_int_equal(status, 0);
    long long v = -1;
    int i = -1;
    assert_int_equal(ody_fits_read_int(f, "GOOD", 0, 100, &v, &status), 0);
    assert_int_equal(v, 78);
    assert_int_equal(ody_fits_read_int32(f, "NEG", INT_MIN, INT_MAX, &i, &status), 0);
    assert_int_equal(i, -12);
    assert_int_equal(ody_fits_read_int(f, "BIG", LLONG_MIN, LLONG_MAX, &v, &status), 0);
    assert_true(v == 99999999999LL);
    struct { const char *key; int want; } bad[] = {{"BIG", NUM_OVERFLOW}, {"HUGE", NUM_OVERFLOW}, {"JUNK", BAD_INTKEY},
                                                  {"REAL", BAD_INTKEY}, {"TEXT", BAD_INTKEY}, {"EMPTY", VALUE_UNDEFINED},
                                                  {"NOPE", KEY_NO_EXIST}, {"GOOD", NUM_OVERFLOW}};
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
        status = 0;
        i = 5;
        int hi = k == 7 ? 10 : INT_MAX;  /* GOOD (78) outside a range of 0 to 10 */
        if (ody_fits_read_int32(f, bad[k].key, 0, hi, &i, &status) != bad[k].want)
            fail_msg("%s: status %d, not %d", bad[k].key, status, bad[k].want);
        assert_int_equal(i, 5);  /* left unchanged */
    }
    /* the text parser the header walk shares */
    long long t = 7;
    assert_int_equal(ody_fits_int_text("  -42 / a comment", &t), 0);
    assert_true(t == -42);
    assert_int_equal(ody_fits_int_text("+8", &t), 0);
    assert_true(t == 8);
    assert_int_equal(ody_fits_int_text("8.5", &t), -1);
    assert_int_equal(ody_fits_int_text("'8'", &t), -1);
    assert_int_equal(ody_fits_int_text("", &t), -1);
    assert_int_equal(ody_fits_int_text("99999999999999999999", &t), -2);
    assert_true(t == 8);
    status = 0;
    fits_clear_errmsg();
    fits_close_file(f, &status);
    tu_rmtree(dir);
    free(dir);
    free(path);
}

static void test_fail_and_fits_fail(void **state)
{
    (void)state;
    ody_err e = {0};
    assert_int_equal(ody_fail(&e, ODY_EINPUT, "x=%d", 3), ODY_EINPUT);
    assert_string_equal(e.msg, "x=3");
    assert_int_equal(ody_fail(NULL, ODY_ENOMEM, "ignored"), ODY_ENOMEM);
    /* a lead put before a message passed on, its code kept; a full message gives way at its end */
    assert_int_equal(ody_prefix(&e, "%s: ", "c.yaml"), ODY_EINPUT);
    assert_string_equal(e.msg, "c.yaml: x=3");
    memset(e.msg, 'm', sizeof e.msg - 1);
    e.msg[sizeof e.msg - 1] = 0;
    ody_prefix(&e, "lead: ");
    assert_int_equal(strlen(e.msg), sizeof e.msg - 1);
    assert_true(!strncmp(e.msg, "lead: mmm", 9));
    int rc = ody_fits_fail(&e, FILE_NOT_OPENED, "a.fits[2][x>1]", "cannot open", NULL);
    assert_int_equal(rc, ODY_EINPUT);
    assert_non_null(strstr(e.msg, "a.fits[2][x>1]: cannot open (CFITSIO: "));
    /* the hint names the file without the filter */
    assert_non_null(strstr(e.msg, "check the path"));
    rc = ody_fits_fail(&e, END_OF_FILE, "b.fits[1]", "short", NULL);
    assert_non_null(strstr(e.msg, "`fitsverify b.fits`"));
    assert_int_equal(ody_fits_fail(&e, WRITE_ERROR, "c.fits", "w", "h"), ODY_EIO);
    /* a failed write says what to do for the system's reason */
    errno = ENOSPC;
    ody_fits_fail(&e, WRITE_ERROR, "c.fits", "w", NULL);
    if (!strstr(e.msg, "make room on the disk")) fail_msg("%s", e.msg);
    errno = EACCES;
    ody_fits_fail(&e, FILE_NOT_CREATED, "c.fits", "w", NULL);
    if (!strstr(e.msg, "Permission denied") || !strstr(e.msg, "choose a folder you can write to")) fail_msg("%s", e.msg);
    errno = ENOENT;
    ody_fits_fail(&e, FILE_NOT_CREATED, "c.fits", "w", NULL);
    if (!strstr(e.msg, "check the folder exists")) fail_msg("%s", e.msg);
    errno = 0;
    assert_int_equal(ody_exit_code(ODY_OK), 0);
    assert_int_equal(ody_exit_code(ODY_EINPUT), 2);
    assert_int_equal(ody_exit_code(ODY_ENOMEM), 1);
}

static void test_logging_levels(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    char *p1 = tu_path(dir, "console"), *p2 = tu_path(dir, "run.log");
    FILE *con = fopen(p1, "w+"), *lf = fopen(p2, "w+");
    ody_log log = {ODY_LOG_WARN, con, lf};
    ody_logf(&log, ODY_LOG_INFO, "quiet %d", 1);
    ody_logf(&log, ODY_LOG_WARN, "loud %d", 2);
    ody_logf(NULL, ODY_LOG_ERROR, "nowhere");
    fflush(con);
    fflush(lf);
    char buf[512] = "";
    rewind(con);
    size_t n = fread(buf, 1, sizeof buf - 1, con);
    buf[n] = 0;
    assert_null(strstr(buf, "quiet"));
    assert_non_null(strstr(buf, "oddsky: warning: loud 2"));
    rewind(lf);
    n = fread(buf, 1, sizeof buf - 1, lf);
    buf[n] = 0;
    assert_non_null(strstr(buf, "quiet 1"));  /* the run log keeps everything */
    assert_non_null(strstr(buf, "loud 2"));
    fclose(con);
    fclose(lf);
    tu_rmtree(dir);
    free(p1); free(p2); free(dir);
}

/* ody_fmt_g and ody_fmt_ll write what snprintf writes, cut the same way. */
static void test_fmt_as_printf(void **state)
{
    (void)state;
    double special[] = {0.0, -0.0, NAN, -NAN, INFINITY, -INFINITY, 5e-324, 1.7976931348623157e308, 0.1, 1e-5,
                        123456789012345678.0, -2.5, 1.0 / 3.0};
    ody_rng r;
    ody_rng_stream(&r, 7, 0);
    char want[64], got[64], fmt[16];
    for (int t = 0; t < 2000; t++) {
        double v = t < (int)(sizeof special / sizeof *special) ? special[t]
                 : (ody_rng_uniform(&r) - 0.5) * pow(10.0, (double)ody_rng_below(&r, 80) - 40.0);
        for (int d = 1; d <= 17; d++) {
            snprintf(fmt, sizeof fmt, "%%.%dg", d);
            int nw = snprintf(want, sizeof want, fmt, v);
            assert_int_equal(ody_fmt_g(got, sizeof got, d, v), nw);
            assert_string_equal(got, want);
            float f = (float)v;
            snprintf(want, sizeof want, fmt, f);
            ody_fmt_g(got, sizeof got, d, f);
            assert_string_equal(got, want);
        }
    }
    long long ints[] = {0, 1, -1, 9, 10, -10, 2147483647, -2147483647LL - 1, 9223372036854775807LL,
                        -9223372036854775807LL - 1};
    for (size_t k = 0; k < sizeof ints / sizeof *ints; k++) {
        for (size_t len = 1; len <= 24; len++) {
            memset(got, 'x', sizeof got);
            int nw = snprintf(want, len, "%lld", ints[k]);
            assert_int_equal(ody_fmt_ll(got, len, ints[k]), nw);
            assert_string_equal(got, want);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_edit_distance),
        cmocka_unit_test(test_fail_and_fits_fail),
        cmocka_unit_test(test_read_int_keywords),
        cmocka_unit_test(test_fits_paths_with_syntax_characters),
        cmocka_unit_test(test_logging_levels),
        cmocka_unit_test(test_fmt_as_printf),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
