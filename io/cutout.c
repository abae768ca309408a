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
 * size), centre-cropping or zero-padding; NaNs become 0 and are counted. */
static int read_plane(fitsfile *f, int plane, int S, float *out, size_t *n_nan, int *resized, int *status)
{
    int naxis = 0, bitpix = 0;
    long ax[3] = {1, 1, 1};
    fits_get_img_param(f, 3, &bitpix, &naxis, ax, status);
    if (*status) return *status;
    if (naxis < 2 || plane > (naxis >= 3 ? ax[2] : 1)) return *status = BAD_NAXIS;
    long W = ax[0], H = ax[1];
    float *buf = malloc((size_t)W * H * sizeof *buf), nan = NAN;
    if (!buf) return *status = MEMORY_ALLOCATION;
    long fp[3] = {1, 1, plane};
    int anynul = 0;
    fits_read_pix(f, TFLOAT, fp, W * H, &nan, buf, &anynul, status);
    long ox = (W - S) / 2, oy = (H - S) / 2;
    *resized = W != S || H != S;
    for (int i = 0; i < S; i++)
        for (int j = 0; j < S; j++) {
            long y = i + oy, x = j + ox;
            float v = x >= 0 && x < W && y >= 0 && y < H ? buf[y * W + x] : 0.0f;
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

int cut_read(const cut_opt *o, const cat_col *ids, size_t n, cut_set **out, const ody_log *log, ody_err *err)
{
    int B = o->n_bands, S = o->size, rc = 0, status = 0;
    if (B < 1 || B > CUT_MAX_BANDS) return ody_fail(err, ODY_EINPUT, "cutouts.bands: %d bands — use 1 to %d", B, CUT_MAX_BANDS);
    if (S < 4 || S > 4096) return ody_fail(err, ODY_EINPUT, "cutouts.size = %d must be 4 to 4096 pixels", S);
    if (!o->path || !o->path[0]) return ody_fail(err, ODY_EINPUT, "cutouts.path is empty — give a template or a file");
    cut_set *s = calloc(1, sizeof *s);
    size_t per = (size_t)B * S * S;
    if (s) {
        s->pix = calloc(n * per, sizeof *s->pix);
        s->have = calloc(n ? n : 1, 1);
    }
    if (!s || !s->pix || !s->have) { cut_destroy(s); return ody_fail(err, ODY_ENOMEM, "out of memory for %zu cutouts", n); }
    s->n = n;
    s->n_bands = B;
    s->size = S;
    char idb[256];
    fitsfile *f = NULL;
    idx_entry *index = NULL;
    long nidx = 0;
    if (o->layout != CUT_DIR) {
        if (fits_open_file(&f, o->path, READONLY, &status)) {
            rc = ody_fits_fail(err, status, o->path, "cannot open the cutout file", NULL);
            goto done;
        }
    }
    if (o->layout == CUT_CUBE) {
        int colnum = 0;
        fits_movnam_hdu(f, ANY_HDU, "IDS", 0, &status);
        fits_get_colnum(f, CASEINSEN, "ID", &colnum, &status);
        fits_get_num_rows(f, &nidx, &status);
        if (status) { rc = ody_fits_fail(err, status, o->path, "no IDS table with an ID column", "a cube needs a table HDU IDS (column ID) naming each plane's object"); goto done; }
        index = calloc((size_t)(nidx ? nidx : 1), sizeof *index);
        if (!index) { rc = ody_fail(err, ODY_ENOMEM, "out of memory"); goto done; }
        for (long k = 0; k < nidx && !status; k++) {
            char buf[256], *bp = buf;
            int anynul;
            fits_read_col(f, TSTRING, colnum, k + 1, 1, 1, NULL, &bp, &anynul, &status);
            trim(buf);
            index[k].id = strdup(buf);
            index[k].plane = k + 1;
        }
        if (status) { rc = ody_fits_fail(err, status, o->path, "cannot read the IDS table", NULL); goto done; }
        qsort(index, (size_t)nidx, sizeof *index, cmp_idx);
    }
    for (size_t r = 0; r < n && !rc; r++) {
        cat_col_format(ids, r, idb, sizeof idb);
        float *dst = s->pix + r * per;
        int found = 1, resized = 0;
        status = 0;
        if (o->layout == CUT_DIR) {
            int per_band = strstr(o->path, "{band}") != NULL;
            for (int b = 0; b < B && found && !rc; b++) {
                if (b > 0 && !per_band) break;
                char *p = subst(o->path, idb, per_band ? o->band[b] : NULL);
                fitsfile *g = NULL;
                status = 0;
                if (!p) { rc = ody_fail(err, ODY_ENOMEM, "out of memory"); break; }
                struct stat st;
                char base[4096];
                snprintf(base, sizeof base, "%.*s", (int)strcspn(p, "["), p);
                if (stat(base, &st) != 0) { found = 0; free(p); break; }
                fits_open_image(&g, p, READONLY, &status);
                int planes = per_band ? 1 : B;
                for (int q = 0; q < planes && !status; q++)
                    read_plane(g, q + 1, S, dst + (size_t)(per_band ? b : q) * S * S, &s->n_nan, &resized, &status);
                if (status) rc = ody_fits_fail(err, status, p, "unreadable cutout",
                                               per_band || B == 1 ? NULL : "a file without {band} in the template must hold every band as planes of a cube");
                ody_fits_close(g);
                free(p);
            }
        } else if (o->layout == CUT_CUBE) {
            idx_entry key = {idb, 0}, *hit = bsearch(&key, index, (size_t)nidx, sizeof *index, cmp_idx);
            if (!hit) found = 0;
            for (int b = 0; b < B && found && !status; b++) {
                if (B == 1) {
                    int type;
                    fits_movabs_hdu(f, 1, &type, &status);
                    int naxis = 0;
                    fits_get_img_dim(f, &naxis, &status);
                    if (!status && naxis == 0) fits_movabs_hdu(f, 2, &type, &status);
                } else {
                    fits_movnam_hdu(f, IMAGE_HDU, (char *)o->band[b], 0, &status);
                }
                read_plane(f, (int)hit->plane, S, dst + (size_t)b * S * S, &s->n_nan, &resized, &status);
            }
            if (status) rc = ody_fits_fail(err, status, o->path, "cannot read a cube plane", "each band is an image HDU named by the band, of size x size x objects");
        } else {
            fits_movnam_hdu(f, IMAGE_HDU, idb, 0, &status);
            if (status == BAD_HDU_NUM) { found = 0; status = 0; fits_clear_errmsg(); }
            for (int b = 0; b < B && found && !status; b++)
                read_plane(f, b + 1, S, dst + (size_t)b * S * S, &s->n_nan, &resized, &status);
            if (status) rc = ody_fits_fail(err, status, o->path, "cannot read an object's HDU", NULL);
        }
        if (rc) break;
        s->have[r] = (uint8_t)found;
        s->n_resized += resized && found;
        if (!found) {
            s->n_missing++;
            if (o->fail_missing) {
                rc = ody_fail(err, ODY_EINPUT, "%s: no cutout for ID %s (row %zu) — check cutouts.path and the IDs, "
                              "or set cutouts.missing: drop", o->path, idb, r + 1);
            }
        }
    }
    if (!rc) {
        ody_logf(log, ODY_LOG_INFO, "cutouts: %zu of %zu found, %zu missing, %zu resized, %zu NaN pixels masked",
                 n - s->n_missing, n, s->n_missing, s->n_resized, s->n_nan);
        *out = s;
        s = NULL;
    }
done:
    ody_fits_close(f);
    for (long k = 0; index && k < nidx; k++) free(index[k].id);
    free(index);
    cut_destroy(s);
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
        char *tt[] = {"ID"}, *tf[] = {"32A"}, *tu[] = {""};
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

/* ================================================================ preprocessing */

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

void cut_normalize(float *img, int bands, int size, cut_norm norm, double p_lo, double p_hi)
{
    size_t n = (size_t)bands * size * size;
    if (norm == CUT_NORM_NONE || n == 0) return;
    if (norm == CUT_NORM_ZSCORE) {
        double m = 0, v = 0;
        for (size_t k = 0; k < n; k++) m += img[k];
        m /= (double)n;
        for (size_t k = 0; k < n; k++) v += (img[k] - m) * (img[k] - m);
        double sd = sqrt(v / (double)n);
        if (!(sd > 0)) sd = 1;
        for (size_t k = 0; k < n; k++) img[k] = (float)((img[k] - m) / sd);
        return;
    }
    float *tmp = malloc(n * sizeof *tmp);
    if (!tmp) return;
    memcpy(tmp, img, n * sizeof *tmp);
    qsort(tmp, n, sizeof *tmp, cmp_float);
    double lo = tmp[(size_t)(p_lo / 100 * (double)(n - 1))], hi = tmp[(size_t)(p_hi / 100 * (double)(n - 1))];
    free(tmp);
    double span = hi - lo > 0 ? hi - lo : 1, soft = 10;
    for (size_t k = 0; k < n; k++) {
        double x = (img[k] - lo) / span;
        if (x > 1) x = 1;
        img[k] = (float)(asinh(soft * x) / asinh(soft));
    }
}

void cut_downsample(const float *in, int bands, int size, int f, float *out)
{
    int so = size / f;
    for (int b = 0; b < bands; b++)
        for (int i = 0; i < so; i++)
            for (int j = 0; j < so; j++) {
                double s = 0;
                for (int a = 0; a < f; a++)
                    for (int c = 0; c < f; c++) s += in[((size_t)b * size + i * f + a) * size + j * f + c];
                out[((size_t)b * so + i) * so + j] = (float)(s / (f * f));
            }
}

/* ================================================================ morphology */

const char *cut_feature_name(int k)
{
    static const char *n[CUT_NFEAT] = {"CENTROID_OFFSET", "SIZE", "ELLIPTICITY", "ANGLE", "CONCENTRATION",
                                       "ASYMMETRY", "GINI", "M20", "RING", "LOG_AREA"};
    return k >= 0 && k < CUT_NFEAT ? n[k] : "?";
}

typedef struct pixr { double f, r2; } pixr;

static int cmp_pix_desc(const void *a, const void *b)
{
    double x = ((const pixr *)a)->f, y = ((const pixr *)b)->f;
    return (x < y) - (x > y);
}

static int cmp_r2(const void *a, const void *b)
{
    double x = ((const pixr *)a)->r2, y = ((const pixr *)b)->r2;
    return (x > y) - (x < y);
}

void cut_features(const float *img, int S, double *ft)
{
    size_t n = (size_t)S * S;
    double c = 0.5 * (S - 1), rmax2 = 0.25 * S * S;
    /* flux-weighted centroid and second moments of the positive pixels
     * within the inscribed circle */
    double sf = 0, sx = 0, sy = 0;
    for (int i = 0; i < S; i++)
        for (int j = 0; j < S; j++) {
            double v = img[i * S + j], dx = j - c, dy = i - c;
            if (v <= 0 || dx * dx + dy * dy > rmax2) continue;
            sf += v;
            sx += v * j;
            sy += v * i;
        }
    for (int k = 0; k < CUT_NFEAT; k++) ft[k] = 0;
    if (!(sf > 0)) return;
    double cx = sx / sf, cy = sy / sf, ixx = 0, iyy = 0, ixy = 0;
    pixr *p = malloc(n * sizeof *p);
    if (!p) return;
    size_t np = 0;
    for (int i = 0; i < S; i++)
        for (int j = 0; j < S; j++) {
            double v = img[i * S + j], dx = j - cx, dy = i - cy;
            if (v <= 0 || (j - c) * (j - c) + (i - c) * (i - c) > rmax2) continue;
            ixx += v * dx * dx;
            iyy += v * dy * dy;
            ixy += v * dx * dy;
            p[np++] = (pixr){v, dx * dx + dy * dy};
        }
    ixx /= sf;
    iyy /= sf;
    ixy /= sf;
    ft[0] = hypot(cx - c, cy - c);
    ft[1] = sqrt(ixx + iyy);
    ft[2] = ixx + iyy > 0 ? sqrt((ixx - iyy) * (ixx - iyy) + 4 * ixy * ixy) / (ixx + iyy) : 0;
    ft[3] = 0.5 * atan2(2 * ixy, ixx - iyy);
    /* concentration from the curve of growth around the centroid */
    qsort(p, np, sizeof *p, cmp_r2);
    double acc = 0, r20 = 0, r80 = 0;
    for (size_t k = 0; k < np; k++) {
        acc += p[k].f;
        if (!(r20 > 0) && acc >= 0.2 * sf) r20 = sqrt(p[k].r2) + 0.5;
        if (!(r80 > 0) && acc >= 0.8 * sf) { r80 = sqrt(p[k].r2) + 0.5; break; }
    }
    ft[4] = r20 > 0 && r80 > 0 ? 5 * log10(r80 / r20) : 0;
    /* asymmetry under a 180-degree rotation about the image centre */
    double num = 0, den = 0;
    for (size_t k = 0; k < n; k++) {
        num += fabs(img[k] - img[n - 1 - k]);
        den += fabs(img[k]);
    }
    ft[5] = den > 0 ? num / (2 * den) : 0;
    /* Gini and M20 of the positive pixels, brightest first */
    qsort(p, np, sizeof *p, cmp_pix_desc);
    double g = 0, mean = sf / (double)np;
    for (size_t k = 0; k < np; k++) g += (2.0 * (double)(np - k) - (double)np - 1) * p[k].f;
    ft[6] = np > 1 ? g / (mean * (double)np * (double)(np - 1)) : 0;
    double mtot = 0, m20 = 0, f20 = 0;
    for (size_t k = 0; k < np; k++) mtot += p[k].f * p[k].r2;
    for (size_t k = 0; k < np && f20 < 0.2 * sf; k++) {
        f20 += p[k].f;
        m20 += p[k].f * p[k].r2;
    }
    ft[7] = mtot > 0 && m20 > 0 ? log10(m20 / mtot) : 0;
    /* ring / arc: the smooth model is the mean flux in elliptical annuli
     * (shape from the moments); the statistic is the positive residual in
     * an annulus around the galaxy over the total positive flux */
    double e = ft[2], ang = ft[3], q = e < 0.95 ? sqrt((1 - e) / (1 + e)) : 0.16;
    enum { NB = 64 };
    double ssum[NB] = {0}, scnt[NB] = {0}, smooth[NB] = {0}, rmax = 0.5 * S;
    double ca = cos(ang), sa = sin(ang);
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < S; i++)
            for (int j = 0; j < S; j++) {
                double dx = j - cx, dy = i - cy;
                double xr = ca * dx + sa * dy, yr = -sa * dx + ca * dy;
                double r = sqrt(q * xr * xr + yr * yr / q);
                int bin = (int)(r / rmax * NB);
                if (bin >= NB) continue;
                double v = img[i * S + j];
                if (pass == 0) { ssum[bin] += v; scnt[bin]++; continue; }
                double model = smooth[bin];
                double rr = r / (ft[1] > 0 ? ft[1] : 1);
                if (rr > 0.6 && rr < 3.0 && v > model) num += v - model;
            }
        if (pass == 0) {
            /* the smooth model never rises outwards: a ring is a bump above it */
            num = 0;
            double prev = INFINITY;
            for (int b = 0; b < NB; b++) {
                double m = scnt[b] > 0 ? ssum[b] / scnt[b] : prev;
                smooth[b] = prev = m < prev ? m : prev;
            }
        }
    }
    ft[8] = num / sf;
    double peak = 0;
    for (size_t k = 0; k < np; k++) peak = p[k].f > peak ? p[k].f : peak;
    ft[9] = peak > 0 ? log10(sf / peak) : 0;  /* effective area: free of the flux scale */
    free(p);
}
