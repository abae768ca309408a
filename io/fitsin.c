/* fitsin.c — checking a FITS file's headers as bytes before CFITSIO parses
 * them, and its compressed tiles before CFITSIO decodes them. */
#define _GNU_SOURCE
#include "fitsin.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

/* CFITSIO's byte-level reader (fitsio2.h): raw bytes of the (decompressed)
 * file at the position ffmbyt() moved to. */
int ffgbyt(fitsfile *fptr, LONGLONG nbytes, void *buffer, int *status);
#define REPORT_EOF 0

/* ================================================================ the file */

int fitsin_regular(const char *path, const char *what, ody_err *err)
{
    char base[4096];
    if (snprintf(base, sizeof base, "%.*s", (int)ody_fits_file_len(path), path) >= (int)sizeof base)
        return ody_fail(err, ODY_EINPUT, "%.200s...: the path is too long", path);
    struct stat sb;
    if (stat(base, &sb))
        return ody_fail(err, ODY_EINPUT, "%s: cannot open the %s (%s) — check the path", base, what, strerror(errno));
    if (S_ISDIR(sb.st_mode))
        return ody_fail(err, ODY_EINPUT, "%s: is a directory, not a %s — give the path of the %s itself", base, what,
                        what);
    if (!S_ISREG(sb.st_mode))
        return ody_fail(err, ODY_EINPUT, "%s: not a regular file (a pipe or a device) — give the %s as a FITS "
                        "file on disk", base, what);
    if (sb.st_size == 0) return ody_fail(err, ODY_EINPUT, "%s: the %s is empty (0 bytes) — re-download or regenerate it",
                                         base, what);
    return 0;
}

/* ================================================================ header cards */

/* One header being walked: what its cards say about the data that follow. */
typedef struct hdr {
    int hdu;                      /* 0-based */
    int is_ext, have_bitpix, naxis_seen;
    long long bitpix, naxis, pcount, gcount, tfields;
    long long naxes[999];
    int have_naxes[999];
    int zimage, rice;             /* a compressed image; with Rice tiles */
    long long zval1;              /* its first parameter (Rice: pixels a block) */
    int zval1_seen, zval1_bad;
} hdr;

typedef struct walk {
    fitsfile *f;
    const char *file;
    ody_err *err;
    int plain;                    /* the file is not compressed: bytes past
                                     CFITSIO's last whole block can be read
                                     from the file itself */
} walk;

static int card_fail(const walk *w, const hdr *h, int card, const char *key, const char *what, const char *todo)
{
    return ody_fail(w->err, ODY_EINPUT, "%s: HDU %d, header card %d%s%s: %s — %s", w->file, h->hdu, card,
                    key[0] ? ", keyword " : "", key, what, todo);
}

/* Keywords whose string values CFITSIO copies while it opens an HDU. */
static int copied_string(const char *key)
{
    static const char *exact[] = {"XTENSION", "EXTNAME", "ZCMPTYPE", "ZQUANTIZ", "ZTENSION"};
    static const char *indexed[] = {"TTYPE", "TFORM", "TUNIT", "TDISP", "TDIM", "ZNAME", "ZFORM", "ZCTYP"};
    for (size_t k = 0; k < sizeof exact / sizeof *exact; k++)
        if (!strcmp(key, exact[k])) return 1;
    for (size_t k = 0; k < sizeof indexed / sizeof *indexed; k++) {
        size_t n = strlen(indexed[k]);
        if (!strncmp(key, indexed[k], n) && key[n] && strspn(key + n, "0123456789") == strlen(key + n)) return 1;
    }
    return 0;
}

/* Keywords CFITSIO reads as numbers while it opens an HDU (a long string
 * there overruns its conversion buffer). */
static int read_as_number(const char *key)
{
    static const char *exact[] = {"BITPIX", "NAXIS", "PCOUNT", "GCOUNT", "TFIELDS", "THEAP", "BLANK", "BSCALE",
                                  "BZERO", "ZBITPIX", "ZNAXIS", "ZDITHER0", "ZBLANK", "ZSCALE", "ZZERO", "ZTHEAP",
                                  "ZPCOUNT", "ZGCOUNT"};
    static const char *indexed[] = {"NAXIS", "TBCOL", "TSCAL", "TZERO", "ZNAXIS", "ZTILE", "ZVAL"};
    for (size_t k = 0; k < sizeof exact / sizeof *exact; k++)
        if (!strcmp(key, exact[k])) return 1;
    for (size_t k = 0; k < sizeof indexed / sizeof *indexed; k++) {
        size_t n = strlen(indexed[k]);
        if (!strncmp(key, indexed[k], n) && key[n] && strspn(key + n, "0123456789") == strlen(key + n)) return 1;
    }
    return 0;
}

/* A plain number (integer or real, FITS allows D exponents), then only a
 * comment. */
static int numeric(const char *v)
{
    char buf[72], *end;
    snprintf(buf, sizeof buf, "%s", v);
    for (char *p = buf; *p && *p != '/'; p++)
        if (*p == 'D' || *p == 'd') *p = 'E';
    strtod(buf, &end);
    if (end == buf) return 0;
    while (*end == ' ') end++;
    return *end == 0 || *end == '/';
}

/* A value that is one quoted string, closed, with nothing but a comment after. */
static int quoted(const char *v)
{
    while (*v == ' ') v++;
    if (*v++ != '\'') return 0;
    for (; *v; v++) {
        if (*v != '\'') continue;
        if (v[1] == '\'') { v++; continue; }  /* '' is a quote inside the string */
        v++;
        while (*v == ' ') v++;
        return *v == 0 || *v == '/';
    }
    return 0;  /* no closing quote */
}

/* The structural keywords this walk needs; a wrong value is an error. */
static int structural(const walk *w, hdr *h, int n, const char *key, const char *v)
{
    long long x = 0;
    int bad = 0;
    if (!strcmp(key, "BITPIX")) {
        bad = ody_fits_int_text(v, &x) || (x != 8 && x != 16 && x != 32 && x != 64 && x != -32 && x != -64);
        h->bitpix = x;
        h->have_bitpix = 1;
    } else if (!strcmp(key, "NAXIS")) {
        bad = ody_fits_int_text(v, &x) || x < 0 || x > 999;
        h->naxis = x;
        h->naxis_seen = 1;
    } else if (!strncmp(key, "NAXIS", 5) && strspn(key + 5, "0123456789") == strlen(key + 5)) {
        long k = strtol(key + 5, NULL, 10);
        if (k < 1 || k > 999) return 0;  /* NAXIS0, NAXIS1000: not structural */
        bad = ody_fits_int_text(v, &x) || x < 0;
        h->naxes[k - 1] = x;
        h->have_naxes[k - 1] = 1;
    } else if (!strcmp(key, "PCOUNT")) {
        bad = ody_fits_int_text(v, &x) || x < 0;
        h->pcount = x;
    } else if (!strcmp(key, "GCOUNT")) {
        bad = ody_fits_int_text(v, &x) || x < 0;
        h->gcount = x;
    } else if (!strcmp(key, "TFIELDS")) {
        bad = ody_fits_int_text(v, &x) || x < 0 || x > 999;
        h->tfields = x;
    } else if (!strcmp(key, "ZIMAGE")) {
        h->zimage = strchr(v, 'T') != NULL;
    } else if (!strcmp(key, "ZCMPTYPE")) {
        h->rice = strstr(v, "'RICE_1") != NULL;
    } else if (!strcmp(key, "ZVAL1")) {
        h->zval1_seen = 1;
        h->zval1_bad = ody_fits_int_text(v, &h->zval1);
    } else if (!strcmp(key, "ZBITPIX")) {  /* a compressed image's own structure: CFITSIO divides by it */
        bad = ody_fits_int_text(v, &x) || (x != 8 && x != 16 && x != 32 && x != 64 && x != -32 && x != -64);
    } else if (!strcmp(key, "ZNAXIS")) {
        bad = ody_fits_int_text(v, &x) || x < 1 || x > 6;
    } else if ((!strncmp(key, "ZNAXIS", 6) && key[6]) || (!strncmp(key, "ZTILE", 5) && key[5])) {
        const char *d = key + (key[1] == 'N' ? 6 : 5);
        if (strspn(d, "0123456789") != strlen(d)) return 0;
        bad = ody_fits_int_text(v, &x) || x < 1 || x > (1LL << 31) - 1;
    }
    return bad ? card_fail(w, h, n, key, "the value is not valid for this keyword", "the header is damaged; check it "
                           "with fitsverify and repair or re-download the file") : 0;
}

/* Checks one 80-byte card; *end is set at END. */
static int check_card(const walk *w, hdr *h, int n, const char *card, int *end)
{
    for (int k = 0; k < 80; k++)
        if ((unsigned char)card[k] < 32 || (unsigned char)card[k] > 126) {
            char what[96];
            snprintf(what, sizeof what, "holds a byte that is not printable ASCII (0x%02x)", (unsigned char)card[k]);
            return card_fail(w, h, n, "", what, "the header is damaged; check it with fitsverify and repair or "
                             "re-download the file");
        }
    char key[9], val[72];
    /* the name up to its first space: CFITSIO finds "ZVAL2  0" when it
     * asks for ZVAL2, so this check must too */
    int kl = 0;  /* a card is not NUL-terminated: look at its first 8 bytes only */
    while (kl < 8 && card[kl] != ' ') kl++;
    snprintf(key, sizeof key, "%.*s", kl, card);
    if (!strcmp(key, "END")) { *end = 1; return 0; }
    /* CFITSIO takes a value after '=' in column 9 even without the space
     * that should follow, so this check does too */
    if (card[8] != '=' && (read_as_number(key) || copied_string(key)) && memchr(card + 8, '=', 72))
        /* CFITSIO may still find a value after a later '=' ("ZTILE1   NAXIS = 0"
         * gave it a tile size of 0: a fuzz finding) */
        return card_fail(w, h, n, key, "the value indicator '=' is not in column 9", "the header is damaged; check it "
                         "with fitsverify and repair or re-download the file");
    if (card[8] != '=' || !strcmp(key, "HIERARCH")) return 0;  /* commentary card */
    snprintf(val, sizeof val, "%.71s", card + 9);
    const char *v = val + strspn(val, " ");
    if ((copied_string(key) || *v == '\'') && !quoted(val))
        return card_fail(w, h, n, key, "the value is not a closed, quoted string",
                         "FITS strings must be in quotes; repair the header (e.g. with fitsverify's advice) or "
                         "regenerate the file");
    if (read_as_number(key) && !numeric(v))
        return card_fail(w, h, n, key, "the value is not a number",
                         "the header is damaged; check it with fitsverify and repair or re-download the file");
    return structural(w, h, n, key, val);
}

/* An extension must open with XTENSION= and a type CFITSIO knows: it reads
 * that first card whatever its form, and an odd one (a fuzzed
 * "XTENSION M='IAGE'") sent it into allocations of petabytes. */
static int check_xtension(const walk *w, hdr *h, const char *card)
{
    static const char *const types[] = {"'IMAGE   '", "'BINTABLE'", "'TABLE   '", "'A3DTABLE'", "'3DTABLE '"};
    int ok = !strncmp(card, "XTENSION= ", 10);
    size_t at = 10;  /* within the card: a block holds no NUL (a fuzzed card of blanks ran strspn off it) */
    while (at < 80 && card[at] == ' ') at++;
    ok = ok && at <= 80 - 10;  /* room for the longest type, quoted */
    const char *v = card + at;
    int known = 0;
    for (size_t k = 0; ok && k < sizeof types / sizeof *types; k++)
        known |= !strncmp(v, types[k], strlen(types[k])) ||
                 (!strncmp(v, types[k], strcspn(types[k], " ")) && v[strcspn(types[k], " ")] == '\'');
    if (ok && known) return 0;
    return ody_fail(w->err, ODY_EINPUT, "%s: HDU %d does not open with a valid XTENSION card (IMAGE, BINTABLE or "
                    "TABLE) — the file is damaged or not FITS; check it with fitsverify", w->file, h->hdu);
}

/* ================================================================ walking */

static int read_at(const walk *w, long long pos, char *buf, long n)
{
    int status = 0;
    if (pos + n <= w->f->Fptr->logfilesize / 2880 * 2880) {
        ffmbyt(w->f, pos, REPORT_EOF, &status);
        ffgbyt(w->f, n, buf, &status);
        fits_clear_errmsg();
        return status;
    }
    if (!w->plain) return -1;
    /* CFITSIO reads whole 2880-byte blocks: bytes in a last, partial block
     * are read from the file itself; -1 when it holds fewer than n */
    FILE *f = fopen(w->file, "rb");
    size_t got = f && !fseeko(f, (off_t)pos, SEEK_SET) ? fread(buf, 1, (size_t)n, f) : 0;
    if (f) fclose(f);
    return got == (size_t)n ? 0 : got ? -1 : END_OF_FILE;
}

/* Reads the header that starts at pos; *data is where its data begin. */
static int read_header(const walk *w, hdr *h, long long pos, long long *data)
{
    char block[2880];
    int end = 0, n = 0, rc = 0;
    for (long long b = pos; !end && !rc; b += 2880) {
        if (read_at(w, b, block, 2880))
            return ody_fail(w->err, ODY_EINPUT, "%s: HDU %d: the file ends inside its header, before the END card — "
                            "the file is truncated; re-download or regenerate it", w->file, h->hdu);
        for (int c = 0; c < 36 && !end && !rc; c++) {
            if (++n > FITSIN_MAX_CARDS)
                return ody_fail(w->err, ODY_EINPUT, "%s: HDU %d: no END card in the first %d header cards — the "
                                "file is damaged", w->file, h->hdu, FITSIN_MAX_CARDS);
            rc = n == 1 && h->is_ext ? check_xtension(w, h, block) : check_card(w, h, n, block + 80 * c, &end);
        }
        *data = b + 2880;
    }
    /* CFITSIO divides by a Rice block size while it opens the HDU */
    if (!rc && h->zimage && h->rice && h->zval1_seen && (h->zval1_bad || h->zval1 < 1 || h->zval1 > 1000000))
        rc = ody_fail(w->err, ODY_EINPUT, "%s: HDU %d, keyword ZVAL1: a Rice block size must be a whole number from 1 "
                      "— the header is damaged; check it with fitsverify", w->file, h->hdu);
    return rc;
}

/* Bytes of data the header describes (without the padding to 2880). */
static int data_size(const walk *w, const hdr *h, long long *size)
{
    if (!h->have_bitpix || !h->naxis_seen)
        return ody_fail(w->err, ODY_EINPUT, "%s: HDU %d: BITPIX or NAXIS is missing — the header is damaged; check "
                        "it with fitsverify", w->file, h->hdu);
    unsigned long long n = h->naxis > 0, t;
    for (long long k = 0; k < h->naxis; k++) {
        if (!h->have_naxes[k])
            return ody_fail(w->err, ODY_EINPUT, "%s: HDU %d: NAXIS%lld is missing — the header is damaged; check "
                            "it with fitsverify", w->file, h->hdu, k + 1);
        if (__builtin_mul_overflow(n, (unsigned long long)h->naxes[k], &n)) n = ULLONG_MAX;
    }
    unsigned long long per = (unsigned long long)(h->bitpix < 0 ? -h->bitpix : h->bitpix) / 8;
    if (h->is_ext || h->pcount) {  /* (PCOUNT + prod NAXISn) x GCOUNT: tables and random groups */
        if (__builtin_add_overflow(n, (unsigned long long)h->pcount, &n)) n = ULLONG_MAX;
        if (__builtin_mul_overflow(n, (unsigned long long)(h->gcount ? h->gcount : 1), &n)) n = ULLONG_MAX;
    }
    if (__builtin_mul_overflow(n, per, &t) || t > (1ULL << 62)) t = 1ULL << 62;
    *size = (long long)t;
    return 0;
}

/* Walks every HDU from the start of the file to its end. */
static int walk_file(const walk *w, fitsin_info *info)
{
    long long size = w->f->Fptr->logfilesize, pos = 0;
    int rc = 0, hdu = 0;
    hdr *h = malloc(sizeof *h);
    if (!h) return ody_fail(w->err, ODY_ENOMEM, "out of memory");
    info->junk_at = -1;
    while (!rc && pos < size) {
        char first[10];
        int got = hdu > 0 ? read_at(w, pos, first, 10) : 0;
        if (hdu > 0 && (got > 0 || (!got && strncmp(first, "XTENSION", 8)))) {
            info->junk_at = pos;  /* not an extension: trailing bytes, which CFITSIO stops at */
            break;
        }
        memset(h, 0, sizeof *h);
        h->hdu = hdu;
        h->is_ext = hdu > 0;
        h->gcount = 1;
        long long data = 0, bytes = 0;
        rc = read_header(w, h, pos, &data);
        if (!rc) rc = data_size(w, h, &bytes);
        if (!rc && data + bytes > size)
            rc = ody_fail(w->err, ODY_EINPUT, "%s: HDU %d is cut short: its header describes %lld bytes of data but "
                          "the file ends %lld bytes after the header — the file is truncated; re-download or "
                          "regenerate it", w->file, hdu, bytes, size - data);
        pos = data + (bytes + 2879) / 2880 * 2880;
        hdu++;
    }
    info->n_hdu = hdu;
    free(h);
    return rc;
}

/* ================================================================ checking */

/* Whether the file's first bytes are a compression format CFITSIO reads. */
static int compressed_file(const char *base)
{
    unsigned char m[3] = {0, 0, 0};
    FILE *f = fopen(base, "rb");
    size_t got = f ? fread(m, 1, 3, f) : 0;
    if (f) fclose(f);
    return got >= 2 && ((m[0] == 0x1f && (m[1] == 0x8b || m[1] == 0x9d || m[1] == 0xa0)) ||
                        (m[0] == 'B' && m[1] == 'Z' && m[2] == 'h') || (m[0] == 'P' && m[1] == 'K'));
}

/* The size field a gzip file ends with (ISIZE, little-endian): CFITSIO
 * allocates that many bytes before it decompresses. */
static int gzip_isize(const char *base, unsigned long *isize)
{
    unsigned char t[4];
    FILE *f = fopen(base, "rb");
    int ok = f && !fseek(f, -4L, SEEK_END) && fread(t, 1, 4, f) == 4;
    if (f) fclose(f);
    *isize = ok ? (unsigned long)t[0] | (unsigned long)t[1] << 8 | (unsigned long)t[2] << 16 | (unsigned long)t[3] << 24
                : 0;
    return ok ? 0 : -1;
}

/* A gzip file must decompress to its end (CFITSIO reads a truncated one
 * quietly, and the walk would only see junk where the rest should be), its
 * size field must match what it holds (bytes after the stream once made
 * CFITSIO ask for 3.5 GB), it must be smaller than what it holds (CFITSIO
 * takes a file larger than its size field for one that wrapped past 4 GB
 * and asks for 4 GB more: bytes after the stream that end in the right size
 * field, a fuzz finding), and the whole must fit in memory, where CFITSIO
 * decompresses it. */
static int gzip_whole(const char *base, ody_err *err)
{
    unsigned char magic[2] = {0, 0};
    FILE *f = fopen(base, "rb");
    size_t got = f ? fread(magic, 1, 2, f) : 0;
    if (f) fclose(f);
    if (got < 2 || magic[0] != 0x1f || magic[1] != 0x8b) return 0;
    gzFile g = gzopen(base, "rb");
    if (!g) return ody_fail(err, ODY_EINPUT, "%s: cannot open the gzip file (%s)", base, strerror(errno));
    static unsigned char buf[1 << 16];
    int n, code = Z_OK;
    unsigned long long total = 0;
    while ((n = gzread(g, buf, sizeof buf)) > 0) total += (unsigned long long)n;
    const char *msg = gzerror(g, &code);
    int rc = n < 0 || (code != Z_OK && code != Z_STREAM_END)
                 ? ody_fail(err, ODY_EINPUT, "%s: the gzip stream is truncated or corrupt (zlib: %s) — re-download it, "
                            "or check it with `gzip -t %s`", base, msg ? msg : "read error", base)
                 : 0;
    gzclose(g);
    unsigned long isize = 0;
    if (!rc && (gzip_isize(base, &isize) || isize != (unsigned long)(total & 0xffffffffULL)))
        rc = ody_fail(err, ODY_EINPUT, "%s: the gzip size field (%lu bytes) does not match the %llu bytes the stream "
                      "holds — there are bytes after the end of the stream; recompress it (gunzip, then gzip)", base,
                      isize, total);
    struct stat sb;
    if (!rc && !stat(base, &sb) && (unsigned long long)sb.st_size > total)
        rc = ody_fail(err, ODY_EINPUT, "%s: the gzip file (%lld bytes) is larger than the %llu bytes it holds — there "
                      "are bytes after the end of the stream; recompress it (gunzip, then gzip)", base,
                      (long long)sb.st_size, total);
    double mem = ody_phys_memory();
    if (!rc && mem > 0 && (double)total > 0.5 * mem)
        rc = ody_fail(err, ODY_EINPUT, "%s: decompresses to %.1f GB, which CFITSIO would hold in memory (this machine "
                      "has %.1f GB) — gunzip it first", base, (double)total / 1e9, mem / 1e9);
    return rc;
}

int fitsin_check(const char *path, fitsin_info *info, ody_err *err)
{
    int rc = fitsin_regular(path, "file", err), status = 0;
    if (rc) return rc;
    char base[4096];
    snprintf(base, sizeof base, "%.*s", (int)ody_fits_file_len(path), path);
    if ((rc = gzip_whole(base, err))) return rc;
    fitsfile *g = NULL;
    if (ody_fits_open(&g, base, ODY_FITS_FILE, READONLY, &status)) {
        rc = ody_fits_fail(err, status, base, "cannot open as FITS", NULL);
        ody_fits_close(g);
        return rc;
    }
    fitsin_info mine;
    walk w = {g, base, err, !compressed_file(base)};
    rc = walk_file(&w, info ? info : &mine);
    ody_fits_close(g);
    return rc;
}

/* ================================================================ Rice tiles */

/* Reads a Rice stream as CFITSIO's fits_rdecomp* do, but checks every byte
 * it takes against the end of the stream; decodes nothing.  0 when the
 * stream yields nx pixels within its clen bytes. */
static int rice_ok(const unsigned char *c, long clen, long nx, int nblock, int bytepix)
{
    int fsbits = bytepix == 1 ? 3 : bytepix == 2 ? 4 : 5, fsmax = bytepix == 1 ? 6 : bytepix == 2 ? 14 : 25;
    int bbits = 1 << fsbits, lead = bytepix == 1 ? 1 : bytepix == 2 ? 2 : 4;
    if (nblock <= 0 || clen < lead + 1) return -1;
    const unsigned char *end = c + clen;
    c += lead;
    unsigned long long b = *c++;
    int nbits = 8;
#define TAKE() do { if (c >= end) return -1; b = (b << 8) | *c++; } while (0)
    for (long i = 0; i < nx;) {
        nbits -= fsbits;
        while (nbits < 0) { TAKE(); nbits += 8; }
        int fs = (int)(b >> nbits) - 1;
        b &= (1ULL << nbits) - 1;
        long imax = i + nblock < nx ? i + nblock : nx;
        if (fs < 0) { i = imax; continue; }
        if (fs > fsmax) return -1;  /* no encoder writes these */
        for (; i < imax; i++) {
            if (fs == fsmax) {  /* bbits raw bits */
                nbits -= bbits;
                while (nbits < 0) { TAKE(); nbits += 8; }
                b &= (1ULL << nbits) - 1;
                continue;
            }
            while (b == 0) { TAKE(); nbits += 8; }  /* leading zeros, then a one */
            int top = 63 - __builtin_clzll(b);
            nbits = top;
            b ^= 1ULL << nbits;
            nbits -= fs;
            while (nbits < 0) { TAKE(); nbits += 8; }
            b &= (1ULL << nbits) - 1;
        }
    }
#undef TAKE
    return 0;
}

/* Pixels in tile t (0-based, first axis fastest) of a compressed image. */
static long tile_pixels(const FITSfile *F, long t)
{
    long n = 1;
    for (int d = 0; d < F->zndim && d < MAX_COMPRESS_DIM; d++) {
        long ts = F->tilesize[d] > 0 ? F->tilesize[d] : 1, ntiles = (F->znaxis[d] + ts - 1) / ts;
        if (ntiles < 1) return 0;
        long k = t % ntiles, first = k * ts, len = F->znaxis[d] - first < ts ? F->znaxis[d] - first : ts;
        t /= ntiles;
        n *= len;
    }
    return n;
}

static int tile_fail(const char *path, long row, const char *what, ody_err *err)
{
    return ody_fail(err, ODY_EINPUT, "%s: compressed tile %ld %s — the compressed data are corrupt; re-download or "
                    "regenerate the file (funpack can tell which tiles)", path, row, what);
}

int fitsin_check_tiles(fitsfile *f, const char *path, ody_err *err)
{
    int status = 0;
    if (!fits_is_compressed_image(f, &status)) return 0;
    FITSfile *F = f->Fptr;
    if (F->maxtilelen < 1 || F->maxtilelen > (1L << 28))
        return ody_fail(err, ODY_EINPUT, "%s: compressed tiles of %ld pixels — at most 2^28; the header is damaged "
                        "or the tiling is not one oddsky reads", path, F->maxtilelen);
    if (F->compress_type != RICE_1) return 0;  /* gzip tiles go through zlib, which checks its input */
    long long nrows = F->numrows, maxbytes = 16 * (long long)F->maxtilelen * 8 + 1024;
    unsigned char *buf = NULL;
    int rc = 0;
    for (long long r = 1; r <= nrows && !rc; r++) {
        LONGLONG nelem = 0, off = 0;
        int anynul = 0;
        fits_read_descriptll(f, F->cn_compressed, r, &nelem, &off, &status);
        if (status) return ody_fits_fail(err, status, path, "cannot read a tile descriptor", NULL);
        if (nelem == 0) continue;  /* the tile is stored another way (uncompressed or gzip) */
        if (nelem < 0 || nelem > maxbytes) { rc = tile_fail(path, (long)r, "claims an impossible size", err); break; }
        unsigned char *nb = realloc(buf, (size_t)nelem);
        if (!nb) { rc = ody_fail(err, ODY_ENOMEM, "out of memory"); break; }
        buf = nb;
        fits_read_col(f, TBYTE, F->cn_compressed, r, 1, nelem, NULL, buf, &anynul, &status);
        if (status) rc = ody_fits_fail(err, status, path, "cannot read a compressed tile", NULL);
        else if (rice_ok(buf, (long)nelem, tile_pixels(F, (long)(r - 1)), F->rice_blocksize, F->rice_bytepix))
            rc = tile_fail(path, (long)r, "does not decode within its bytes", err);
    }
    free(buf);
    return rc;
}

int fitsin_format(fitsfile *f, const char *path, int newest, ody_err *err)
{
    int status = 0, v = 1;
    if (ody_fits_read_int32(f, "FORMAT", INT_MIN, INT_MAX, &v, &status) == KEY_NO_EXIST) v = 1;
    else if (status) return ody_fits_fail(err, status, path, "cannot read its FORMAT keyword", NULL);
    if (v > newest)
        return ody_fail(err, ODY_EINPUT, "%s: model file format %d, newer than this oddsky reads (%d) — use the oddsky "
                        "that wrote it (ODYVERS in its header), or retrain", path, v, newest);
    return 0;
}
