/* fitsout.c — atomic FITS output with checksums. */
#define _POSIX_C_SOURCE 200809L
#include "fitsout.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int fitsout_open(fitsout *w, const char *path, int overwrite, ody_err *err)
{
    memset(w, 0, sizeof *w);
    struct stat st;
    if (!overwrite && stat(path, &st) == 0)
        return ody_fail(err, ODY_EINPUT, "%s: file exists — remove it or pass --overwrite", path);
    size_t n = strlen(path) + 32;
    w->path = ody_strdup(path);
    w->tmp = malloc(n);
    if (!w->path || !w->tmp) {
        free(w->path); free(w->tmp);
        memset(w, 0, sizeof *w);
        return ody_fail(err, ODY_ENOMEM, "out of memory");
    }
    snprintf(w->tmp, n, "%s.tmp-%ld", path, (long)getpid());
    unlink(w->tmp);
    int status = 0;
    /* the name is fresh (no '!') and taken literally: a run folder may be
     * named with ( or [ */
    ody_fits_create(&w->f, w->tmp, &status);
    if (!status) fits_create_img(w->f, BYTE_IMG, 0, NULL, &status);
    if (status) {
        int rc = ody_fits_fail(err, status, path, "cannot create the output file", NULL);
        fitsout_abort(w);
        return rc;
    }
    return 0;
}

int fitsout_commit(fitsout *w, ody_err *err)
{
    int status = 0, nhdu = 0, type;
    fits_get_num_hdus(w->f, &nhdu, &status);
    for (int h = 1; h <= nhdu && !status; h++) {
        fits_movabs_hdu(w->f, h, &type, &status);
        if (h == w->given) fits_update_chksum(w->f, &status);  /* a spread table's: its rows are not read again */
        else fits_write_chksum(w->f, &status);
    }
    fits_close_file(w->f, &status);
    w->f = NULL;
    int rc = 0;
    if (status) rc = ody_fits_fail(err, status, w->path, "cannot finish writing", NULL);
    else if (rename(w->tmp, w->path) != 0)
        rc = ody_fail(err, ODY_EIO, "%s: cannot rename the finished file into place — check "
                      "permissions on its directory", w->path);
    if (rc) unlink(w->tmp);
    free(w->path);
    free(w->tmp);
    memset(w, 0, sizeof *w);
    return rc;
}

void fitsout_abort(fitsout *w)
{
    ody_fits_close(w->f);
    if (w->tmp) unlink(w->tmp);
    free(w->path);
    free(w->tmp);
    memset(w, 0, sizeof *w);
}

int fitsout_finish(fitsout *w, int rc, ody_err *err)
{
    if (rc) {
        fitsout_abort(w);
        return rc;
    }
    return fitsout_commit(w, err);
}

int fitsout_history(fitsfile *f, const char *text, int *status)
{
    const char *p = text;
    while (*p && !*status) {
        size_t n = strcspn(p, "\n");
        while (n > 0) {
            char line[72];
            size_t k = n > 70 ? 70 : n;
            memcpy(line, p, k);
            line[k] = 0;
            fits_write_history(f, line, status);
            p += k;
            n -= k;
        }
        if (*p == '\n') p++;
    }
    return *status;
}

/* ================================================================ tables */

static char tform_code(int type)
{
    return type == TDOUBLE ? 'D' : type == TFLOAT ? 'E' : type == TINT ? 'J' : type == TSHORT ? 'I' : type == TLONGLONG ? 'K' : 'A';
}

static size_t elem_size(int type)
{
    return type == TDOUBLE || type == TLONGLONG ? 8 : type == TSHORT ? 2 : 4;
}

size_t fitsout_row_bytes(const fitsout_col *cols, int ncol)
{
    size_t b = 0;
    for (int k = 0; k < ncol; k++) b += (size_t)cols[k].repeat * (cols[k].type == TSTRING ? 1 : elem_size(cols[k].type));
    return b;
}

/* n elements of `size` bytes from src to dst in big-endian order (the
 * FITS order), whatever this machine's. */
static void put_be(unsigned char *dst, const unsigned char *src, size_t n, size_t size)
{
    static const union { uint16_t u; unsigned char b[2]; } probe = {1};
    if (!probe.b[0] || size == 1) {
        memcpy(dst, src, n * size);
        return;
    }
    for (size_t e = 0; e < n; e++, dst += size, src += size)
        for (size_t q = 0; q < size; q++) dst[q] = src[size - 1 - q];
}

/* The bytes of table rows [r0, r0 + nr) into buf (nr rows' bytes): a column
 * through its row map, else from its data at row r0 - base.  By hand, not
 * through fits_write_col: CFITSIO's conversion of these types is a byte
 * swap (no scaling, no null values) and its strings are padded with blanks
 * (test_fitsin checks the bytes against CFITSIO's), and rows made so can be
 * made on any thread or process. */
static void make_rows(const fitsout_col *cols, const size_t *const *rows, int ncol, size_t r0, size_t nr, size_t base,
                      unsigned char *buf)
{
    unsigned char *dst = buf;
    for (size_t i = 0; i < nr; i++)
        for (int k = 0; k < ncol; k++) {
            const fitsout_col *c = &cols[k];
            size_t row = rows && rows[k] ? rows[k][r0 + i] : r0 - base + i, w = (size_t)c->repeat;
            if (c->type == TSTRING) {
                const char *src = (const char *)c->data + row * (w + 1);
                size_t n = strnlen(src, w);
                memcpy(dst, src, n);
                memset(dst + n, ' ', w - n);
                dst += w;
            } else {
                size_t es = elem_size(c->type);
                put_be(dst, (const unsigned char *)c->data + row * w * es, w, es);
                dst += w * es;
            }
        }
}

/* Every column, CFITSIO's optimal number of rows at a time, made into a
 * buffer and written as the table's bytes: a table is stored row after
 * row, so writing it a column at a time made CFITSIO read back and rewrite
 * every block of the file once per column. */
static void write_table(fitsfile *f, const fitsout_col *cols, const size_t *const *rows, int ncol, size_t nrows,
                        int *status)
{
    long chunk = 0;
    fits_get_rowsize(f, &chunk, status);
    if (chunk < 1) chunk = 1;
    size_t rb = fitsout_row_bytes(cols, ncol);
    unsigned char *buf = malloc((size_t)chunk * rb + 1);
    if (!buf) { *status = MEMORY_ALLOCATION; return; }
    for (size_t r0 = 0; r0 < nrows && !*status; r0 += (size_t)chunk) {
        size_t nr = nrows - r0 < (size_t)chunk ? nrows - r0 : (size_t)chunk;
        make_rows(cols, rows, ncol, r0, nr, 0, buf);
        if (rb) fits_write_tblbytes(f, (LONGLONG)r0 + 1, 1, (LONGLONG)(nr * rb), buf, status);
    }
    free(buf);
}

int fitsout_table(fitsfile *f, const char *extname, const fitsout_col *cols, int ncol, size_t nrows,
                  int *status)
{
    return fitsout_table_rows(f, extname, cols, NULL, ncol, nrows, status);
}

/* The HDU and its column keywords, no rows. */
static void create_table(fitsfile *f, const char *extname, const fitsout_col *cols, int ncol, int *status)
{
    char **ttype = calloc((size_t)ncol, sizeof *ttype), **tform = calloc((size_t)ncol, sizeof *tform);
    char **tunit = calloc((size_t)ncol, sizeof *tunit);
    char (*fbuf)[24] = calloc((size_t)ncol, sizeof *fbuf);
    if (!ttype || !tform || !tunit || !fbuf) {
        *status = MEMORY_ALLOCATION;
    } else {
        for (int k = 0; k < ncol; k++) {
            snprintf(fbuf[k], sizeof fbuf[k], "%d%c", cols[k].repeat, tform_code(cols[k].type));
            ttype[k] = (char *)cols[k].name;
            tform[k] = fbuf[k];
            tunit[k] = (char *)(cols[k].unit ? cols[k].unit : "");
        }
        fits_create_tbl(f, BINARY_TBL, 0, ncol, ttype, tform, tunit, extname, status);
        for (int k = 0; k < ncol && !*status; k++) {  /* TCOMMn: what TOPCAT shows as the description */
            char key[16];
            snprintf(key, sizeof key, "TCOMM%d", k + 1);
            if (!cols[k].desc) continue;
            if (strlen(cols[k].desc) > 68) fits_write_key_longwarn(f, status);  /* once: CFITSIO checks */
            fits_write_key_longstr(f, key, cols[k].desc, "", status);
        }
    }
    free(ttype); free(tform); free(tunit); free(fbuf);
}

int fitsout_table_rows(fitsfile *f, const char *extname, const fitsout_col *cols, const size_t *const *rows, int ncol,
                       size_t nrows, int *status)
{
    if (*status) return *status;
    create_table(f, extname, cols, ncol, status);
    if (!*status && nrows) write_table(f, cols, rows, ncol, nrows, status);
    return *status;
}

int fitsout_rows_bytes(const fitsout_col *cols, const size_t *const *rows, int ncol, size_t r0, size_t nr, char **out,
                       size_t *len, int *status)
{
    *out = NULL;
    *len = 0;
    if (*status) return *status;
    size_t bytes = nr * fitsout_row_bytes(cols, ncol);
    unsigned char *buf = malloc(bytes ? bytes : 1);
    if (!buf) return *status = MEMORY_ALLOCATION;
    make_rows(cols, rows, ncol, r0, nr, r0, buf);
    *out = (char *)buf;
    *len = bytes;
    return 0;
}

/* ================================================================ text */

int fitsout_text_open(fitsout_text *t, const char *path, ody_err *err)
{
    memset(t, 0, sizeof *t);
    if (!path) {
        t->f = fopen("/dev/null", "w");
        return t->f ? 0 : ody_fail(err, ODY_EIO, "cannot open /dev/null: %s", strerror(errno));
    }
    size_t n = strlen(path) + 32;
    t->path = ody_strdup(path);
    t->tmp = malloc(n);
    if (!t->path || !t->tmp) {
        fitsout_text_abort(t);
        return ody_fail(err, ODY_ENOMEM, "out of memory");
    }
    snprintf(t->tmp, n, "%s.tmp-%ld", path, (long)getpid());
    t->f = fopen(t->tmp, "w");
    if (!t->f) {
        int rc = ody_fail(err, ODY_EIO, "cannot write %s: %s", path, strerror(errno));
        fitsout_text_abort(t);
        return rc;
    }
    return 0;
}

int fitsout_text_commit(fitsout_text *t, ody_err *err)
{
    int bad = ferror(t->f);
    int e = bad ? errno : 0;
    if (fclose(t->f) && !bad) { bad = 1; e = errno; }
    t->f = NULL;
    if (!bad && t->path && rename(t->tmp, t->path)) { bad = 1; e = errno; }
    int rc = bad ? ody_fail(err, ODY_EIO, "cannot write %s: %s", t->path ? t->path : "/dev/null", e ? strerror(e) : "write error") : 0;
    if (!bad) {  /* renamed: nothing left to remove */
        free(t->tmp);
        t->tmp = NULL;
    }
    fitsout_text_abort(t);
    return rc;
}

void fitsout_text_abort(fitsout_text *t)
{
    if (t->f) fclose(t->f);
    if (t->tmp) unlink(t->tmp);
    free(t->path);
    free(t->tmp);
    memset(t, 0, sizeof *t);
}

/* ================================================================ a table several writers fill */

int fitsout_spread_begin(fitsout *w, const char *extname, const fitsout_col *cols, int ncol, size_t nrows,
                         uint64_t *data, int *status)
{
    LONGLONG head = 0, start = 0, end = 0;
    uint64_t bytes = (uint64_t)nrows * fitsout_row_bytes(cols, ncol);
    create_table(w->f, extname, cols, ncol, status);
    /* the checksums' cards now: added at the commit, they could need another
     * header block, and CFITSIO would move every row to make room */
    fits_write_key_str(w->f, "CHECKSUM", "0000000000000000", "HDU checksum", status);
    fits_write_key_str(w->f, "DATASUM", "0", "data unit checksum", status);
    fits_get_hduaddrll(w->f, &head, &start, &end, status);
    fits_close_file(w->f, status);  /* no rows yet: CFITSIO writes no data, not even zeros */
    w->f = NULL;
    if (*status) return *status;
    *data = (uint64_t)start;
    /* the rows' room, zeros: a hole, not a write, where the file system allows */
    if (truncate(w->tmp, (off_t)((uint64_t)start + (bytes + 2879) / 2880 * 2880))) *status = WRITE_ERROR;
    return *status;
}

int fitsout_spread_end(fitsout *w, size_t nrows, uint32_t datasum, int *status)
{
    char sum[16];
    int type;
    snprintf(sum, sizeof sum, "%lu", (unsigned long)datasum);
    if (*status) return *status;
    /* CFITSIO learns the file's length now, rows included: it fills no gap */
    fits_open_diskfile(&w->f, w->tmp, READWRITE, status);
    if (!*status) {
        int nhdu = 0;
        fits_get_num_hdus(w->f, &nhdu, status);
        fits_movabs_hdu(w->f, nhdu, &type, status);
    }
    fits_modify_key_lng(w->f, "NAXIS2", (LONGLONG)nrows, "&", status);
    fits_modify_key_str(w->f, "DATASUM", sum, "&", status);
    fits_set_hdustruc(w->f, status);
    if (!*status) fits_get_hdu_num(w->f, &w->given);
    return *status;
}

/* x mod 2^32 - 1, kept nonzero when x is (the FITS checksum's ones'-complement form). */
static uint32_t fold(uint64_t x)
{
    while (x >> 32) x = (x & 0xffffffffu) + (x >> 32);
    return (uint32_t)x;
}

uint32_t fitsout_sum_join(uint32_t a, uint32_t b) { return fold((uint64_t)a + b); }

uint32_t fitsout_sum(uint32_t sum, const void *bytes, size_t len, uint64_t off)
{
    const unsigned char *b = bytes;
    uint64_t lane[4] = {0};  /* bytes by their place in a 32-bit word (0: most significant) */
    size_t i = 0;
    for (; i < len && ((off + i) & 3); i++) lane[(off + i) & 3] += b[i];
    uint64_t words = 0;
    for (; i + 4 <= len; i += 4) {
        words += (uint64_t)b[i] << 24 | (uint64_t)b[i + 1] << 16 | (uint64_t)b[i + 2] << 8 | b[i + 3];
        if (words >> 62) words = fold(words);
    }
    for (; i < len; i++) lane[(off + i) & 3] += b[i];
    uint32_t s = fitsout_sum_join(sum, fold(words));
    for (int k = 0; k < 4; k++) {  /* times 2^(8 (3 - k)) mod 2^32 - 1: a rotation */
        uint32_t v = fold(lane[k]);
        int r = 8 * (3 - k);
        s = fitsout_sum_join(s, r ? v << r | v >> (32 - r) : v);
    }
    return s;
}

int fitsout_write_at(int fd, uint64_t off, const void *bytes, size_t len)
{
    const char *p = bytes;
    while (len) {
        ssize_t k = pwrite(fd, p, len, (off_t)off);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return k < 0 ? errno : EIO;
        p += k;
        off += (uint64_t)k;
        len -= (size_t)k;
    }
    return 0;
}
