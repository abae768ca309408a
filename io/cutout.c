/* cutout.c — reading and writing cutouts, preprocessing, morphology. */
#define _GNU_SOURCE
#include "cutout.h"

#include <errno.h>
#include <fitsio.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fitsin.h"
#include "fitsout.h"

int cut_layout_parse(const char *s)
{
    if (!s) return -1;
    if (!strcmp(s, "dir")) return CUT_DIR;
    if (!strcmp(s, "cube")) return CUT_CUBE;
    if (!strcmp(s, "mef")) return CUT_MEF;
    return -1;
}

int cut_norm_parse(const char *s)
{
    if (!s) return -1;
    if (!strcmp(s, "asinh")) return CUT_NORM_ASINH;
    if (!strcmp(s, "zscore")) return CUT_NORM_ZSCORE;
    if (!strcmp(s, "none")) return CUT_NORM_NONE;
    return -1;
}

void cut_opt_init(cut_opt *o)
{
    memset(o, 0, sizeof *o);
    o->layout = CUT_DIR;
    o->n_bands = 1;
    o->size = 48;
}

void cut_destroy(cut_set *s)
{
    if (!s) return;
    free(s->pix);
    free(s->have);
    free(s);
}

/* ================================================================ helpers */

/* The template with {id} and {band} replaced; malloc'd. */
static char *subst(const char *tpl, const char *id, const char *band)
{
    size_t cap = strlen(tpl) + 1 + 8 * (strlen(id) + (band ? strlen(band) : 0));
    char *out = malloc(cap), *w = out;
    if (!out) return NULL;
    for (const char *p = tpl; *p;) {
        if (!strncmp(p, "{id}", 4)) { w += sprintf(w, "%s", id); p += 4; }
        else if (band && !strncmp(p, "{band}", 6)) { w += sprintf(w, "%s", band); p += 6; }
        else *w++ = *p++;
    }
    *w = 0;
    return out;
}

/* Reads plane `plane` (1-based) of the current image HDU into out (size x
 * size), centre-cropping or zero-padding; NaNs become 0 and are counted.
 * Only the central window is read, so a large image costs what a cutout
 * costs. */
static int read_plane(fitsfile *f, int plane, int S, float *out, size_t *n_nan, int *resized, int *status)
{
    int naxis = 0, bitpix = 0;
    long ax[3] = {1, 1, 1};
    fits_get_img_param(f, 3, &bitpix, &naxis, ax, status);
    if (*status) return *status;
    if (naxis < 2 || naxis > 3 || plane > (naxis == 3 ? ax[2] : 1) || ax[0] < 1 || ax[1] < 1)
        return *status = BAD_NAXIS;
    long W = ax[0], H = ax[1], ox = (W - S) / 2, oy = (H - S) / 2;
    /* the window of the image that lands in the cutout, 0-based */
    long x0 = ox > 0 ? ox : 0, y0 = oy > 0 ? oy : 0;
    long x1 = ox + S < W ? ox + S : W, y1 = oy + S < H ? oy + S : H;
    long ww = x1 - x0, wh = y1 - y0;
    float *buf = malloc((size_t)(ww * wh) * sizeof *buf), nan = NAN;
    if (!buf) return *status = MEMORY_ALLOCATION;
    long fp[3] = {x0 + 1, y0 + 1, plane}, lp[3] = {x1, y1, plane}, inc[3] = {1, 1, 1};
    int anynul = 0;
    fits_read_subset(f, TFLOAT, fp, lp, inc, &nan, buf, &anynul, status);
    *resized = W != S || H != S;
    for (int i = 0; i < S; i++)
        for (int j = 0; j < S; j++) {
            long y = i + oy, x = j + ox;
            float v = x >= x0 && x < x1 && y >= y0 && y < y1 ? buf[(y - y0) * ww + (x - x0)] : 0.0f;
            if (!isfinite(v)) { v = 0; (*n_nan)++; }
            out[i * S + j] = v;
        }
    free(buf);
    return *status;
}

/* Sorted (id, index) pairs for the cube layout's ID lookup. */
typedef struct idx_entry { char *id; long plane; } idx_entry;

static int cmp_idx(const void *a, const void *b)
{
    return strcmp(((const idx_entry *)a)->id, ((const idx_entry *)b)->id);
}

static void trim(char *s)
{
    size_t n = strlen(s), k = 0;
    while (s[k] == ' ') k++;
    memmove(s, s + k, n - k + 1);
    n = strlen(s);
    while (n && s[n - 1] == ' ') s[--n] = 0;
}

/* ================================================================ reading */

/* One read of cutouts: the options, the open file (cube, mef) and the cube's
 * sorted ID index. */
typedef struct cutrd {
    const cut_opt *o;
    cut_set *s;
    fitsfile *f;
    idx_entry *index;
    long nidx;
    ody_err *err;
    uint8_t tiles_ok[CUT_MAX_BANDS];  /* cube: band HDU's tiles checked */
} cutrd;

/* The cube layout's IDS table, sorted for lookups. */
static int read_index(cutrd *c)
{
    int colnum = 0, status = 0;
    fits_movnam_hdu(c->f, ANY_HDU, "IDS", 0, &status);
    fits_get_colnum(c->f, CASEINSEN, "ID", &colnum, &status);
    fits_get_num_rows(c->f, &c->nidx, &status);
    if (status)
        return ody_fits_fail(c->err, status, c->o->path, "no IDS table with an ID column",
                             "a cube needs a table HDU IDS (column ID) naming each plane's object");
    c->index = calloc((size_t)(c->nidx ? c->nidx : 1), sizeof *c->index);
    if (!c->index) return ody_fail(c->err, ODY_ENOMEM, "out of memory");
    size_t w = ody_fits_strbuf(c->f, colnum, &status);
    char *buf = status ? NULL : malloc(w);
    if (!status && !buf) return ody_fail(c->err, ODY_ENOMEM, "out of memory");
    for (long k = 0; k < c->nidx && !status; k++) {
        char *bp = buf;
        int anynul;
        if (fits_read_col(c->f, TSTRING, colnum, k + 1, 1, 1, NULL, &bp, &anynul, &status)) break;
        trim(buf);
        c->index[k].plane = k + 1;
        if (!(c->index[k].id = strdup(buf))) { free(buf); return ody_fail(c->err, ODY_ENOMEM, "out of memory"); }
    }
    free(buf);
    if (status) return ody_fits_fail(c->err, status, c->o->path, "cannot read the IDS table", NULL);
    qsort(c->index, (size_t)c->nidx, sizeof *c->index, cmp_idx);
    return 0;
}

/* Layout dir: one file per object, or per object and band. */
static int read_dir(cutrd *c, const char *id, float *dst, int *found, int *resized)
{
    const cut_opt *o = c->o;
    int B = o->n_bands, S = o->size, per_band = strstr(o->path, "{band}") != NULL;
    for (int b = 0; b < (per_band ? B : 1); b++) {
        char *p = subst(o->path, id, per_band ? o->band[b] : NULL);
        if (!p) return ody_fail(c->err, ODY_ENOMEM, "out of memory");
        struct stat st;
        char base[4096];
        snprintf(base, sizeof base, "%.*s", (int)ody_fits_file_len(p), p);
        if (stat(base, &st) != 0) { *found = 0; free(p); return 0; }
        fitsfile *g = NULL;
        int status = 0, rc = fitsin_check(p, NULL, c->err);
        if (!rc) ody_fits_open(&g, p, ODY_FITS_IMAGE, READONLY, &status);
        if (!rc && !status) rc = fitsin_check_tiles(g, p, c->err);
        for (int q = 0; !rc && q < (per_band ? 1 : B) && !status; q++)
            read_plane(g, q + 1, S, dst + (size_t)(per_band ? b : q) * S * S, &c->s->n_nan, resized, &status);
        int naxis = -1, s2 = 0;
        if (status == BAD_NAXIS && !rc && g && !fits_get_img_dim(g, &naxis, &s2))  /* a valid file, not an image */
            rc = ody_fail(c->err, ODY_EINPUT, "%s: holds no 2-D image (its first image HDU has NAXIS = %d) — a cutout "
                          "is a 2-D image, or a cube of its bands; see what the file holds with `oddsky inspect %s`",
                          p, naxis, p);
        if (status && !rc)
            rc = ody_fits_fail(c->err, status, p, "unreadable cutout",
                               per_band || B == 1 ? NULL : "a file without {band} in the template must hold every "
                                                           "band as planes of a cube");
        ody_fits_close(g);
        free(p);
        if (rc) return rc;
    }
    return 0;
}

/* Layout cube: the object's plane in each band's image HDU. */
static int read_cube(cutrd *c, const char *id, float *dst, int *found, int *resized)
{
    const cut_opt *o = c->o;
    int B = o->n_bands, S = o->size, status = 0;
    idx_entry key = {(char *)id, 0}, *hit = bsearch(&key, c->index, (size_t)c->nidx, sizeof *c->index, cmp_idx);
    if (!hit) { *found = 0; return 0; }
    for (int b = 0; b < B && !status; b++) {
        if (B == 1) {
            int type, naxis = 0;
            fits_movabs_hdu(c->f, 1, &type, &status);
            fits_get_img_dim(c->f, &naxis, &status);
            if (!status && naxis == 0) fits_movabs_hdu(c->f, 2, &type, &status);
        } else {
            fits_movnam_hdu(c->f, IMAGE_HDU, (char *)o->band[b], 0, &status);
        }
        if (!status && !c->tiles_ok[b]) {
            int rc = fitsin_check_tiles(c->f, o->path, c->err);
            if (rc) return rc;
            c->tiles_ok[b] = 1;
        }
        read_plane(c->f, (int)hit->plane, S, dst + (size_t)b * S * S, &c->s->n_nan, resized, &status);
    }
    if (status)
        return ody_fits_fail(c->err, status, o->path, "cannot read a cube plane",
                             "each band is an image HDU named by the band, of size x size x objects");
    return 0;
}

/* Layout mef: an image HDU per object, named by its ID. */
static int read_mef(cutrd *c, const char *id, float *dst, int *found, int *resized)
{
    int B = c->o->n_bands, S = c->o->size, status = 0;
    fits_movnam_hdu(c->f, IMAGE_HDU, (char *)id, 0, &status);
    if (status == BAD_HDU_NUM) {
        *found = 0;
        fits_clear_errmsg();
        return 0;
    }
    int rc = status ? 0 : fitsin_check_tiles(c->f, c->o->path, c->err);
    if (rc) return rc;
    for (int b = 0; b < B && !status; b++) read_plane(c->f, b + 1, S, dst + (size_t)b * S * S, &c->s->n_nan, resized, &status);
    return status ? ody_fits_fail(c->err, status, c->o->path, "cannot read an object's HDU", NULL) : 0;
}

static int read_all(cutrd *c, const cat_col *ids)
{
    const cut_opt *o = c->o;
    cut_set *s = c->s;
    size_t per = (size_t)o->n_bands * o->size * o->size;
    for (size_t r = 0; r < s->n; r++) {
        char idb[CAT_ID_MAX + 1];
        cat_col_format(ids, r, idb, sizeof idb);
        int found = 1, resized = 0, rc;
        float *dst = s->pix + r * per;
        if (o->layout == CUT_DIR) rc = read_dir(c, idb, dst, &found, &resized);
        else if (o->layout == CUT_CUBE) rc = read_cube(c, idb, dst, &found, &resized);
        else rc = read_mef(c, idb, dst, &found, &resized);
        if (rc) return rc;
        s->have[r] = (uint8_t)found;
        s->n_resized += resized && found;
        if (found) continue;
        s->n_missing++;
        if (o->fail_missing)
            return ody_fail(c->err, ODY_EINPUT, "%s: no cutout for ID %s (row %zu) — check cutouts.path and the IDs, "
                            "or set cutouts.missing: drop", o->path, idb, r + 1);
    }
    return 0;
}

/* A band with no signal (every pixel NaN, masked to 0, or 0) in a found
 * cutout gives its morphology and the lens classifier nothing: in every
 * cutout it is a wrong HDU or file for the band, refused; in some, a
 * survey's edge, warned of with their count. */
static int check_blank(const cut_opt *o, const cut_set *s, const ody_log *log, ody_err *err)
{
    size_t plane = (size_t)s->size * s->size, found = s->n - s->n_missing;
    for (int b = 0; b < s->n_bands && found; b++) {
        const char *name = o->band[b][0] ? o->band[b] : "1";
        size_t blank = 0;
        for (size_t r = 0; r < s->n; r++) {
            if (!s->have[r]) continue;
            const float *p = s->pix + (r * (size_t)s->n_bands + (size_t)b) * plane;
            size_t q = 0;
            while (q < plane && p[q] == 0) q++;
            blank += q == plane;
        }
        if (blank == found)
            return ody_fail(err, ODY_EINPUT, "%s: band %s has no signal (every pixel NaN or 0) in any of the %zu "
                            "cutouts found — check cutouts.path and cutouts.bands (the band's %s), or leave the band "
                            "out", o->path, name, found, o->layout == CUT_DIR ? "files" : "HDU");
        if (blank)
            ody_logf(log, ODY_LOG_WARN, "%s: band %s has no signal (every pixel NaN or 0) in %zu of %zu cutouts — "
                     "their morphology and P(lens) see nothing in it", o->path, name, blank, found);
    }
    return 0;
}

static cut_set *cut_alloc(size_t n, int B, int S)
{
    cut_set *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->pix = calloc(n * (size_t)B * S * S + 1, sizeof *s->pix);
    s->have = calloc(n ? n : 1, 1);
    if (!s->pix || !s->have) { cut_destroy(s); return NULL; }
    s->n = n;
    s->n_bands = B;
    s->size = S;
    return s;
}

int cut_read(const cut_opt *o, const cat_col *ids, size_t n, cut_set **out, const ody_log *log, ody_err *err)
{
    int B = o->n_bands, S = o->size, rc = 0, status = 0;
    if (B < 1 || B > CUT_MAX_BANDS) return ody_fail(err, ODY_EINPUT, "cutouts.bands: %d bands — use 1 to %d", B, CUT_MAX_BANDS);
    if (S < 4 || S > 4096) return ody_fail(err, ODY_EINPUT, "cutouts.size = %d must be 4 to 4096 pixels", S);
    if (!o->path || !o->path[0]) return ody_fail(err, ODY_EINPUT, "cutouts.path is empty — give a template or a file");
    cutrd c = {o, cut_alloc(n, B, S), NULL, NULL, 0, err, {0}};
    if (!c.s) return ody_fail(err, ODY_ENOMEM, "out of memory for %zu cutouts", n);
    if (o->layout != CUT_DIR && !(rc = fitsin_check(o->path, NULL, err)) &&
        ody_fits_open(&c.f, o->path, ODY_FITS_FILE, READONLY, &status))
        rc = ody_fits_fail(err, status, o->path, "cannot open the cutout file", NULL);
    if (!rc && o->layout == CUT_CUBE) rc = read_index(&c);
    if (!rc) rc = read_all(&c, ids);
    if (!rc) rc = check_blank(o, c.s, log, err);
    if (!rc) {
        cut_set *s = c.s;
        ody_logf(log, ODY_LOG_INFO, "cutouts: %zu of %zu found, %zu missing, %zu resized, %zu NaN pixels masked",
                 n - s->n_missing, n, s->n_missing, s->n_resized, s->n_nan);
        *out = s;
        c.s = NULL;
    }
    ody_fits_close(c.f);
    for (long k = 0; c.index && k < c.nidx; k++) free(c.index[k].id);
    free(c.index);
    cut_destroy(c.s);
    return rc;
}

/* ================================================================ writing */

static int mkdirs_for(const char *path)
{
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(buf, 0777) && errno != EEXIST) return -1;
        *p = '/';
    }
    return 0;
}

static void create_img(fitsfile *f, int compress, int naxis, long *ax, int *status)
{
    if (compress) fits_set_compression_type(f, RICE_1, status);
    fits_create_img(f, FLOAT_IMG, naxis, ax, status);
}

int cut_write(const cut_opt *o, char *const *id, size_t n, const float *pix, int compress, ody_err *err)
{
    int B = o->n_bands, S = o->size, rc = 0, status = 0;
    size_t per = (size_t)B * S * S;
    fitsout w;
    if (o->layout == CUT_DIR) {
        int per_band = strstr(o->path, "{band}") != NULL;
        for (size_t k = 0; k < n && !rc; k++) {
            for (int b = 0; b < (per_band ? B : 1) && !rc; b++) {
                char *p = subst(o->path, id[k], per_band ? o->band[b] : NULL);
                if (!p || mkdirs_for(p)) { free(p); return ody_fail(err, ODY_EIO, "cannot create the cutout directory for %s", id[k]); }
                rc = fitsout_open(&w, p, 1, err);
                if (!rc) {
                    status = 0;
                    long ax[3] = {S, S, B};
                    int naxis = per_band || B == 1 ? 2 : 3;
                    create_img(w.f, compress, naxis, ax, &status);
                    fits_write_key(w.f, TSTRING, "OBJECT", id[k], "catalog ID", &status);
                    if (per_band || B == 1) fits_write_key(w.f, TSTRING, "BAND", (void *)o->band[b], "band", &status);
                    fits_write_img(w.f, TFLOAT, 1, (LONGLONG)(naxis == 2 ? (size_t)S * S : per),
                                   (void *)(pix + k * per + (size_t)(per_band ? b : 0) * S * S), &status);
                    rc = fitsout_finish(&w, status ? ody_fits_fail(err, status, p, "cannot write a cutout", NULL) : 0, err);
                }
                free(p);
            }
        }
        return rc;
    }
    if (mkdirs_for(o->path)) return ody_fail(err, ODY_EIO, "%s: cannot create its directory", o->path);
    if ((rc = fitsout_open(&w, o->path, 1, err))) return rc;
    if (o->layout == CUT_CUBE) {
        float *plane = malloc((size_t)S * S * n * sizeof *plane);
        if (!plane) { fitsout_abort(&w); return ody_fail(err, ODY_ENOMEM, "out of memory"); }
        for (int b = 0; b < B && !status; b++) {
            for (size_t k = 0; k < n; k++)
                memcpy(plane + k * S * S, pix + k * per + (size_t)b * S * S, (size_t)S * S * sizeof *plane);
            long ax[3] = {S, S, (long)n};
            create_img(w.f, compress, 3, ax, &status);
            fits_write_key(w.f, TSTRING, "EXTNAME", (void *)o->band[b], "band", &status);
            fits_write_img(w.f, TFLOAT, 1, (LONGLONG)S * S * n, plane, &status);
        }
        free(plane);
        size_t wid = 1;  /* as wide as the longest ID: none cut short */
        for (size_t k = 0; k < n; k++) if (strlen(id[k]) > wid) wid = strlen(id[k]);
        char form[32];
        snprintf(form, sizeof form, "%zuA", wid);
        char *tt[] = {"ID"}, *tf[] = {form}, *tu[] = {""};
        fits_create_tbl(w.f, BINARY_TBL, 0, 1, tt, tf, tu, "IDS", &status);
        fits_write_col(w.f, TSTRING, 1, 1, 1, (LONGLONG)n, (void *)id, &status);
    } else {
        for (size_t k = 0; k < n && !status; k++) {
            long ax[3] = {S, S, B};
            create_img(w.f, compress, B == 1 ? 2 : 3, ax, &status);
            fits_write_key(w.f, TSTRING, "EXTNAME", id[k], "catalog ID", &status);
            fits_write_img(w.f, TFLOAT, 1, (LONGLONG)per, (void *)(pix + k * per), &status);
        }
    }
    return fitsout_finish(&w, status ? ody_fits_fail(err, status, o->path, "cannot write the cutouts", NULL) : 0, err);
}

