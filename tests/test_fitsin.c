/* test_fitsin.c — hostile FITS files, each built at run time: every one is
 * an input error naming the file and the place, never a crash or a hang.
 * And the other way: table rows made by hand (fitsout_rows_bytes) are the
 * bytes CFITSIO writes. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <fitsio.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cat.h"
#include "cutout.h"
#include "fitsin.h"
#include "fitsout.h"
#include "testutil.h"

/* A small valid table: columns A and B, 20 rows. */
static char *good_table(const char *dir, const char *name)
{
    char *p = tu_path(dir, name), bang[4200];
    snprintf(bang, sizeof bang, "!%s", p);
    fitsfile *f;
    int status = 0;
    char *tt[] = {"A", "B"}, *tf[] = {"E", "E"};
    fits_create_file(&f, bang, &status);
    fits_create_img(f, BYTE_IMG, 0, NULL, &status);
    fits_create_tbl(f, BINARY_TBL, 20, 2, tt, tf, NULL, "CAT", &status);
    float v[20];
    for (int k = 0; k < 20; k++) v[k] = (float)k;
    fits_write_col(f, TFLOAT, 1, 1, 1, 20, v, &status);
    fits_write_col(f, TFLOAT, 2, 1, 1, 20, v, &status);
    fits_close_file(f, &status);
    assert_int_equal(status, 0);
    return p;
}

/* Replaces the first 80-byte card starting with `key` by `card`. */
static void patch_card(const char *path, const char *key, const char *card)
{
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    char buf[80];
    for (long off = 0; fread(buf, 1, 80, f) == 80; off += 80) {
        if (strncmp(buf, key, strlen(key))) continue;
        char c[80];
        memset(c, ' ', 80);
        memcpy(c, card, strlen(card) < 80 ? strlen(card) : 80);
        fseek(f, off, SEEK_SET);
        fwrite(c, 1, 80, f);
        fclose(f);
        return;
    }
    fclose(f);
    fail_msg("no card %s in %s", key, path);
}

/* cat_read of features A, B: the error code, and the message in e. */
static int read_ab(const char *path, ody_err *e)
{
    const char *feats[] = {"A", "B"};
    cat_opt o;
    cat_opt_init(&o);
    o.path = path;
    o.features = feats;
    o.n_features = 2;
    cat *c = NULL;
    int rc = cat_read(&o, &c, NULL, e);
    cat_destroy(c);
    return rc;
}

static void expect_input_error(const char *path, const char *n1, const char *n2)
{
    ody_err e = {0};
    cat_info *info = NULL;
    assert_int_equal(read_ab(path, &e), ODY_EINPUT);
    if (n1 && !strstr(e.msg, n1)) fail_msg("'%s' not in: %s", n1, e.msg);
    if (n2 && !strstr(e.msg, n2)) fail_msg("'%s' not in: %s", n2, e.msg);
    assert_int_equal(cat_inspect(path, &info, &e), ODY_EINPUT);
    assert_null(info);
    if (n1 && !strstr(e.msg, n1)) fail_msg("inspect: '%s' not in: %s", n1, e.msg);
}

static void test_header_keywords_cfitsio_copies(void **state)
{
    (void)state;
    char *dir = tu_tmpdir(), *p = good_table(dir, "t.fits");
    /* a 70-character unquoted TTYPE overran CFITSIO's column-name buffer */
    char card[81];
    snprintf(card, sizeof card, "TTYPE1  = %s", "XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX");
    patch_card(p, "TTYPE1", card);
    expect_input_error(p, "HDU 1", "TTYPE1: the value is not a closed, quoted string");
    free(p);
    /* an unclosed quote, and a control byte in a card */
    p = good_table(dir, "u.fits");
    patch_card(p, "TFORM2", "TFORM2  = 'E");
    expect_input_error(p, "TFORM2", "quoted");
    free(p);
    p = good_table(dir, "v.fits");
    patch_card(p, "EXTNAME", "EXTNAME = 'CAT\x01'");
    expect_input_error(p, "not printable ASCII (0x01)", NULL);
    free(p);
    /* a header that says 10^12 rows: an error before any allocation */
    p = good_table(dir, "w.fits");
    patch_card(p, "NAXIS2", "NAXIS2  =        1000000000000");
    expect_input_error(p, "HDU 1 is cut short", "truncated");
    free(p);
    p = good_table(dir, "x.fits");
    patch_card(p, "BITPIX", "BITPIX  =                   12");
    expect_input_error(p, "BITPIX", NULL);
    free(p);
    /* cards without a single space up to the end of a header block: the
     * guard once searched past the block for the end of the name (the
     * sixth fuzz finding); now an ordinary "no table" error */
    p = tu_path(dir, "y.fits");
    FILE *f = fopen(p, "wb");
    char block[2 * 2880];
    memset(block, 'X', 2880);
    memset(block + 2880, ' ', 2880);
    const char *head[] = {"SIMPLE  =                    T", "BITPIX  =                    8",
                          "NAXIS   =                    0"};
    for (int c = 0; c < 3; c++) {
        memset(block + 80 * c, ' ', 80);
        memcpy(block + 80 * c, head[c], strlen(head[c]));
    }
    memcpy(block + 2880, "END", 3);
    fwrite(block, 1, sizeof block, f);
    fclose(f);
    ody_err e = {0};
    assert_int_equal(read_ab(p, &e), ODY_EINPUT);
    free(p);
    tu_rmtree(dir);
    free(dir);
}

static void test_not_a_regular_file(void **state)
{
    (void)state;
    char *dir = tu_tmpdir(), *fifo = tu_path(dir, "pipe.fits"), *empty = tu_path(dir, "empty.fits");
    assert_int_equal(mkfifo(fifo, 0600), 0);
    FILE *f = fopen(empty, "w");
    fclose(f);
    ody_err e = {0};
    assert_int_equal(read_ab("/dev/zero", &e), ODY_EINPUT);  /* at once: never read for ever */
    assert_non_null(strstr(e.msg, "not a regular file"));
    assert_int_equal(read_ab(fifo, &e), ODY_EINPUT);
    assert_non_null(strstr(e.msg, "not a regular file"));
    assert_int_equal(read_ab(dir, &e), ODY_EINPUT);
    assert_non_null(strstr(e.msg, "is a directory"));
    assert_int_equal(read_ab(empty, &e), ODY_EINPUT);
    assert_non_null(strstr(e.msg, "is empty"));
    char *missing = tu_path(dir, "nothere.fits[1][col X=A]");
    assert_int_equal(read_ab(missing, &e), ODY_EINPUT);
    assert_non_null(strstr(e.msg, "No such file"));
    free(missing);
    tu_rmtree(dir);
    free(dir);
    free(fifo);
    free(empty);
}

static void test_truncated_files(void **state)
{
    (void)state;
    char *dir = tu_tmpdir(), *p = good_table(dir, "t.fits"), cmd[4400];
    /* cut inside the table's data */
    assert_int_equal(truncate(p, 2 * 2880 + 40), 0);
    expect_input_error(p, "HDU 1 is cut short", NULL);
    /* cut inside the table's header */
    assert_int_equal(truncate(p, 2880 + 400), 0);
    expect_input_error(p, "HDU 1: the file ends inside its header", NULL);
    free(p);
    /* a gzip file cut short */
    p = good_table(dir, "g.fits");
    snprintf(cmd, sizeof cmd, "gzip -f '%s' && head -c 150 '%s.gz' > '%s/cut.fits.gz'", p, p, dir);
    assert_int_equal(system(cmd), 0);
    char *gz = tu_path(dir, "cut.fits.gz");
    expect_input_error(gz, "gzip stream is truncated or corrupt", NULL);
    free(gz);
    /* bytes after the gzip stream: its size field no longer matches (CFITSIO
     * allocated what the last four bytes said: a fuzz finding) */
    snprintf(cmd, sizeof cmd, "printf 'zzzz' | cat '%s.gz' - > '%s/tail.fits.gz'", p, dir);
    assert_int_equal(system(cmd), 0);
    gz = tu_path(dir, "tail.fits.gz");
    expect_input_error(gz, "gzip size field", "bytes after the end of the stream");
    free(gz);
    /* bytes after the stream that end in the right size field, more of them
     * than the stream holds: CFITSIO took the file for one past 4 GB and
     * asked for 4 GB (a fuzz finding) */
    snprintf(cmd, sizeof cmd, "head -c 20000 /dev/zero | cat '%s.gz' - > '%s/wrap.fits.gz' && tail -c 4 '%s.gz' >> "
             "'%s/wrap.fits.gz'", p, dir, p, dir);
    assert_int_equal(system(cmd), 0);
    gz = tu_path(dir, "wrap.fits.gz");
    expect_input_error(gz, "is larger than the", "bytes after the end of the stream");
    free(gz);
    free(p);
    /* an extension whose first card is not XTENSION= 'type' (a fuzz finding:
     * CFITSIO, looking for a named HDU, read it and asked for petabytes) */
    p = good_table(dir, "x2.fits");
    patch_card(p, "XTENSION", "XTENSION M='BINTABLE'");
    expect_input_error(p, "HDU 1 does not open with a valid XTENSION card", NULL);
    free(p);
    /* ... or "XTENSION=" and blanks to the end of its header block (a fuzz
     * finding: the check ran off the block, which holds no NUL) */
    p = good_table(dir, "x3.fits");
    FILE *f = fopen(p, "r+b");
    assert_non_null(f);
    char blank[2880];
    memset(blank, ' ', sizeof blank);
    memcpy(blank, "XTENSION=", 9);
    assert_int_equal(fseek(f, 2880, SEEK_SET), 0);
    assert_int_equal(fwrite(blank, 1, sizeof blank, f), sizeof blank);
    fclose(f);
    expect_input_error(p, "HDU 1 does not open with a valid XTENSION card", NULL);
    free(p);
    tu_rmtree(dir);
    free(dir);
}

/* A Rice-compressed 64 x 64 image with tiles of one row. */
static char *rice_image(const char *dir, const char *name)
{
    char *p = tu_path(dir, name), bang[4200];
    snprintf(bang, sizeof bang, "!%s", p);
    fitsfile *f;
    int status = 0;
    long ax[2] = {64, 64};
    int img[64 * 64];
    for (int k = 0; k < 64 * 64; k++) img[k] = (k * 7919) % 1000;
    fits_create_file(&f, bang, &status);
    fits_set_compression_type(f, RICE_1, &status);
    fits_create_img(f, LONG_IMG, 2, ax, &status);
    fits_write_img(f, TINT, 1, 64 * 64, img, &status);
    fits_close_file(f, &status);
    assert_int_equal(status, 0);
    return p;
}

/* Overwrites the bytes of compressed tile `row` (1-based) with pattern. */
static void corrupt_tile(const char *path, long row, unsigned char first, unsigned char rest)
{
    fitsfile *f;
    int status = 0, type;
    LONGLONG nelem = 0, off = 0, head = 0, data = 0, end = 0;
    fits_open_file(&f, path, READONLY, &status);
    fits_movabs_hdu(f, 2, &type, &status);
    fits_read_descriptll(f, f->Fptr->cn_compressed, row, &nelem, &off, &status);
    fits_get_hduaddrll(f, &head, &data, &end, &status);
    LONGLONG heap = data + f->Fptr->heapstart + off;
    fits_close_file(f, &status);
    assert_int_equal(status, 0);
    FILE *fp = fopen(path, "r+b");
    fseek(fp, (long)heap + 4, SEEK_SET);  /* after the first pixel, stored raw */
    fputc(first, fp);
    for (LONGLONG k = 5; k < nelem; k++) fputc(rest, fp);
    fclose(fp);
}

static void test_corrupt_rice_tiles(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    /* "fs = 0, then zeros": CFITSIO's decoder counts leading zeros past the
     * end of the tile; and a block code no encoder writes */
    unsigned char pattern[2][2] = {{0x08, 0x00}, {0xff, 0xff}};
    for (int k = 0; k < 2; k++) {
        char name[32];
        snprintf(name, sizeof name, "rice%d.fits", k);
        char *p = rice_image(dir, name);
        corrupt_tile(p, 3, pattern[k][0], pattern[k][1]);
        cat_info *info = NULL;
        ody_err e = {0};
        assert_int_equal(cat_inspect(p, &info, &e), ODY_EINPUT);
        assert_non_null(strstr(e.msg, "compressed tile 3 does not decode"));
        free(p);
    }
    /* a tile size of 0: CFITSIO divided by it while opening the HDU */
    char *zt = rice_image(dir, "ztile.fits");
    patch_card(zt, "ZTILE2", "ZTILE2  =                    0");
    cat_info *zi = NULL;
    ody_err ze = {0};
    assert_int_equal(cat_inspect(zt, &zi, &ze), ODY_EINPUT);
    assert_non_null(strstr(ze.msg, "ZTILE2"));
    free(zt);
    /* ... and written without the space after '=', which CFITSIO accepts */
    zt = rice_image(dir, "ztile2.fits");
    patch_card(zt, "ZTILE2", "ZTILE2  =0                   1");
    assert_int_equal(cat_inspect(zt, &zi, &ze), ODY_EINPUT);
    assert_non_null(strstr(ze.msg, "ZTILE2"));
    free(zt);
    /* a Rice block size of 0: another division while opening */
    zt = rice_image(dir, "zval.fits");
    patch_card(zt, "ZVAL1", "ZVAL1   =                    0");
    assert_int_equal(cat_inspect(zt, &zi, &ze), ODY_EINPUT);
    assert_non_null(strstr(ze.msg, "ZVAL1"));
    free(zt);
    /* an unclosed string where CFITSIO reads a number overran its buffer */
    zt = rice_image(dir, "zdither.fits");
    patch_card(zt, "ZVAL2", "ZVAL2   =          'RICE_17062 / bytes a pixel");
    assert_int_equal(cat_inspect(zt, &zi, &ze), ODY_EINPUT);
    assert_non_null(strstr(ze.msg, "ZVAL2"));
    free(zt);
    /* a name CFITSIO matches up to its first space, with an unclosed complex value */
    zt = rice_image(dir, "zname.fits");
    patch_card(zt, "ZVAL2", "ZVAL2  0=     (              4 / bytes per pixel");
    assert_int_equal(cat_inspect(zt, &zi, &ze), ODY_EINPUT);
    assert_non_null(strstr(ze.msg, "ZVAL2"));
    free(zt);
    /* a tile size whose '=' is not in column 9: CFITSIO still read 0 there */
    zt = rice_image(dir, "ztile.fits");
    patch_card(zt, "ZTILE1", "ZTILE1        NAXIS   =                    0 / Number of axes");
    assert_int_equal(cat_inspect(zt, &zi, &ze), ODY_EINPUT);
    if (!strstr(ze.msg, "ZTILE1") || !strstr(ze.msg, "not in column 9")) fail_msg("%s", ze.msg);
    free(zt);
    /* an intact Rice file reads as before */
    char *ok = rice_image(dir, "fine.fits");
    cat_info *info = NULL;
    ody_err e = {0};
    assert_ok(cat_inspect(ok, &info, &e), e);
    assert_true(info->hdu[1].compressed);
    cat_info_destroy(info);
    free(ok);
    tu_rmtree(dir);
    free(dir);
}

/* The dir layout reads a corrupt cutout as an error, not a crash. */
static void test_corrupt_cutout(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    char *p = rice_image(dir, "7.fits");
    corrupt_tile(p, 1, 0x08, 0x00);
    char tpl[4200];
    snprintf(tpl, sizeof tpl, "%s/{id}.fits", dir);
    cut_opt co;
    cut_opt_init(&co);
    co.path = tpl;
    co.size = 32;
    cat_col ids = {0};
    int64_t idv[1] = {7};
    ids.type = CAT_COL_INT;
    ids.i = idv;
    cut_set *cs = NULL;
    ody_err e = {0};
    assert_int_equal(cut_read(&co, &ids, 1, &cs, NULL, &e), ODY_EINPUT);
    assert_null(cs);
    assert_non_null(strstr(e.msg, "compressed tile 1"));
    free(p);
    tu_rmtree(dir);
    free(dir);
}

/* Every column type the exports write, NaNs, a null integer, strings empty,
 * short and full, UTF-8, and row maps: fitsout_rows_bytes and
 * fitsout_table_rows against what CFITSIO's fits_write_col writes for the
 * same rows, read back as raw bytes. */
static void test_rows_bytes_as_cfitsio(void **state)
{
    (void)state;
    enum { N = 6 };
    double d[N] = {1.5, -0.0, NAN, 1e300, -2.25, 3};
    float fv[2 * N] = {1, 2, NAN, -4, 5e-30f, 6, 7, 8, 9, 10, 11, -INFINITY};
    int32_t j[N] = {0, -1, 2147483647, -2147483647 - 1, 42, 7};
    int16_t h[N] = {-32768, 32767, 0, 1, -1, 300};
    int64_t kk[N] = {CAT_INT_NULL, 1, -1, INT64_MAX, 5, 6};
    char s[N][6] = {"", "ab", "abcde", "x", "\xc3\xa9t\xc3\xa9", "abcde"};
    char s3[N][4] = {"abc", "", "a", "ab", "xyz", "q"};
    size_t map[N] = {5, 4, 3, 2, 1, 0};
    const size_t *rows[7] = {NULL, map, NULL, map, NULL, map, NULL};
    fitsout_col cols[7] = {{"D", TDOUBLE, 1, d, NULL, NULL}, {"F", TFLOAT, 2, fv, NULL, NULL},
                           {"J", TINT, 1, j, NULL, NULL},    {"H", TSHORT, 1, h, NULL, NULL},
                           {"K", TLONGLONG, 1, kk, NULL, NULL}, {"S", TSTRING, 5, s, NULL, NULL},
                           {"C", TSTRING, 3, s3, NULL, NULL}};
    char *dir = tu_tmpdir(), *p = tu_path(dir, "t.fits");
    fitsout w;
    ody_err e = {0};
    assert_int_equal(fitsout_open(&w, p, 1, &e), 0);
    int status = 0;
    /* the reference: CFITSIO's fits_write_col, a column at a time, the
     * mapped columns gathered here */
    fitsout_table(w.f, "T", cols, 7, 0, &status);
    float fm[2 * N];
    int16_t hm[N];
    char *sp[N], *s3p[N];
    for (int r = 0; r < N; r++) {
        fm[2 * r] = fv[2 * map[r]];
        fm[2 * r + 1] = fv[2 * map[r] + 1];
        hm[r] = h[map[r]];
        sp[r] = s[map[r]];
        s3p[r] = s3[r];
    }
    fits_write_col(w.f, TDOUBLE, 1, 1, 1, N, d, &status);
    fits_write_col(w.f, TFLOAT, 2, 1, 1, 2 * N, fm, &status);
    fits_write_col(w.f, TINT, 3, 1, 1, N, j, &status);
    fits_write_col(w.f, TSHORT, 4, 1, 1, N, hm, &status);
    fits_write_col(w.f, TLONGLONG, 5, 1, 1, N, kk, &status);
    fits_write_col(w.f, TSTRING, 6, 1, 1, N, sp, &status);
    fits_write_col(w.f, TSTRING, 7, 1, 1, N, s3p, &status);
    assert_int_equal(status, 0);
    size_t rb = fitsout_row_bytes(cols, 7), len = 0;
    assert_int_equal(rb, 8 + 8 + 4 + 2 + 8 + 5 + 3);
    unsigned char *want = malloc(N * rb), *tab = malloc(N * rb);
    fits_read_tblbytes(w.f, 1, 1, (LONGLONG)(N * rb), want, &status);
    /* the artifacts' writer (fitsout_table_rows) makes the same bytes */
    fitsout_table_rows(w.f, "T2", cols, rows, 7, N, &status);
    fits_read_tblbytes(w.f, 1, 1, (LONGLONG)(N * rb), tab, &status);
    assert_int_equal(status, 0);
    assert_memory_equal(tab, want, N * rb);
    free(tab);
    assert_int_equal(fitsout_commit(&w, &e), 0);
    /* every row at once, then rows [2, 5) alone (unmapped columns hold
     * those rows from their start) */
    char *got = NULL;
    assert_int_equal(fitsout_rows_bytes(cols, rows, 7, 0, N, &got, &len, &status), 0);
    assert_int_equal(len, N * rb);
    assert_memory_equal(got, want, N * rb);
    free(got);
    fitsout_col part[7];
    memcpy(part, cols, sizeof part);
    part[0].data = d + 2;
    part[2].data = j + 2;
    part[4].data = kk + 2;
    part[6].data = s3 + 2;
    assert_int_equal(fitsout_rows_bytes(part, rows, 7, 2, 3, &got, &len, &status), 0);
    assert_int_equal(len, 3 * rb);
    assert_memory_equal(got, want + 2 * rb, 3 * rb);
    free(got);
    free(want);
    free(p);
    tu_rmtree(dir);
    free(dir);
}

/* The FITS checksum of bytes summed a byte at a time (32-bit big-endian
 * words from the data unit's start, end-around carry): the definition. */
static uint32_t slow_sum(const unsigned char *b, size_t n)
{
    uint64_t s = 0;
    for (size_t i = 0; i < n; i++) {
        s += (uint64_t)b[i] << (8 * (3 - i % 4));
        s = (s & 0xffffffffu) + (s >> 32);
    }
    return (uint32_t)s;
}

/* A table that writers fill at their offsets (fitsout_spread_*): its rows
 * written in pieces of every length and phase, in no order, each piece's
 * checksum joined in another, against the same table written whole by
 * CFITSIO: the same rows, the same DATASUM, right checksums in every HDU,
 * and a table after it. */
static void test_spread_table(void **state)
{
    (void)state;
    enum { N = 1000 };
    double d[N];
    int32_t j[N];
    char s[N][6];
    for (int r = 0; r < N; r++) {
        d[r] = r * 1.25 - 7;
        j[r] = r * 7919 - 1000000;
        snprintf(s[r], sizeof s[r], "%c%d", 'a' + r % 26, r % 997);
    }
    fitsout_col cols[3] = {{"D", TDOUBLE, 1, d, NULL, NULL}, {"S", TSTRING, 5, s, NULL, "a string"},
                           {"J", TINT, 1, j, NULL, NULL}};
    fitsout_col after[1] = {{"J", TINT, 1, j, NULL, NULL}};
    size_t rb = fitsout_row_bytes(cols, 3), len = 0;  /* 17: pieces start at every phase of a word */
    assert_int_equal(rb, 17);
    char *dir = tu_tmpdir(), *pa = tu_path(dir, "a.fits"), *pb = tu_path(dir, "b.fits"), *rows = NULL;
    fitsout w;
    ody_err e = {0};
    int status = 0;
    assert_ok(fitsout_open(&w, pa, 1, &e), e);
    fitsout_table(w.f, "T", cols, 3, N, &status);
    fitsout_table(w.f, "U", after, 1, 10, &status);
    assert_int_equal(status, 0);
    assert_ok(fitsout_commit(&w, &e), e);

    assert_int_equal(fitsout_rows_bytes(cols, NULL, 3, 0, N, &rows, &len, &status), 0);
    assert_int_equal(fitsout_sum(0, rows, len, 0), slow_sum((unsigned char *)rows, len));
    assert_int_equal(fitsout_sum(0, "\0\0\0\0\0", 5, 3), 0);  /* zeros: the checksum's zero, not all ones */
    uint64_t data = 0;
    assert_ok(fitsout_open(&w, pb, 1, &e), e);
    assert_int_equal(fitsout_spread_begin(&w, "T", cols, 3, N, &data, &status), 0);
    assert_null(w.f);
    assert_int_equal(data % 2880, 0);
    int fd = open(w.tmp, O_WRONLY);
    assert_true(fd >= 0);
    const size_t cut[] = {0, 1, 2, 3, 7, 300, 301, 640, 999, N};  /* pieces [cut[k], cut[k + 1]) */
    enum { NP = sizeof cut / sizeof *cut - 1 };
    uint32_t part[NP], sum = 0;
    for (int k = NP - 1; k >= 0; k--) {
        size_t off = cut[k] * rb, n = (cut[k + 1] - cut[k]) * rb;
        assert_int_equal(fitsout_write_at(fd, data + off, rows + off, n), 0);
        part[k] = fitsout_sum(0, rows + off, n, off);
    }
    for (int k = 0; k < NP; k++) sum = fitsout_sum_join(sum, part[(k * 4) % NP]);  /* every piece, another order */
    close(fd);
    free(rows);
    assert_int_equal(fitsout_spread_end(&w, N, sum, &status), 0);
    fitsout_table(w.f, "U", after, 1, 10, &status);
    assert_int_equal(status, 0);
    assert_ok(fitsout_commit(&w, &e), e);
    tu_same_table(pa, pb);  /* the rows, DATASUM, every HDU's checksums */
    fitsfile *f;
    int type;
    long n = 0;
    fits_open_file(&f, pb, READONLY, &status);
    fits_movabs_hdu(f, 3, &type, &status);
    fits_get_num_rows(f, &n, &status);
    fits_close_file(f, &status);
    assert_int_equal(status, 0);
    assert_int_equal(n, 10);
    free(pa);
    free(pb);
    tu_rmtree(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header_keywords_cfitsio_copies),
        cmocka_unit_test(test_not_a_regular_file),
        cmocka_unit_test(test_truncated_files),
        cmocka_unit_test(test_corrupt_rice_tiles),
        cmocka_unit_test(test_corrupt_cutout),
        cmocka_unit_test(test_rows_bytes_as_cfitsio),
        cmocka_unit_test(test_spread_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
