/* cutout_img.c — cutout images as model inputs: normalisation, block
 * averaging, and scale-free morphology features. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cutout.h"

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

/* The ten features of one image, in steps that share the positive pixels'
 * list p (flux, squared distance from the centroid). */
typedef struct morph {
    const float *img;
    int S;
    double sf, cx, cy;    /* positive flux in the inscribed circle, centroid */
    pixr *p;
    size_t np;
} morph;

/* Flux-weighted centroid of the positive pixels within the inscribed circle;
 * 0 when there is no positive flux. */
static int centroid(morph *m)
{
    int S = m->S;
    double c = 0.5 * (S - 1), rmax2 = 0.25 * S * S, sx = 0, sy = 0;
    m->sf = 0;
    for (int i = 0; i < S; i++)
        for (int j = 0; j < S; j++) {
            double v = m->img[i * S + j], dx = j - c, dy = i - c;
            if (v <= 0 || dx * dx + dy * dy > rmax2) continue;
            m->sf += v;
            sx += v * j;
            sy += v * i;
        }
    if (!(m->sf > 0)) return 0;
    m->cx = sx / m->sf;
    m->cy = sy / m->sf;
    return 1;
}

/* 0 offset, 1 size, 2 ellipticity, 3 angle from the second moments; fills p. */
static void moments(morph *m, double *ft)
{
    int S = m->S;
    double c = 0.5 * (S - 1), rmax2 = 0.25 * S * S, ixx = 0, iyy = 0, ixy = 0;
    m->np = 0;
    for (int i = 0; i < S; i++)
        for (int j = 0; j < S; j++) {
            double v = m->img[i * S + j], dx = j - m->cx, dy = i - m->cy;
            if (v <= 0 || (j - c) * (j - c) + (i - c) * (i - c) > rmax2) continue;
            ixx += v * dx * dx;
            iyy += v * dy * dy;
            ixy += v * dx * dy;
            m->p[m->np++] = (pixr){v, dx * dx + dy * dy};
        }
    ixx /= m->sf;
    iyy /= m->sf;
    ixy /= m->sf;
    ft[0] = hypot(m->cx - c, m->cy - c);
    ft[1] = sqrt(ixx + iyy);
    ft[2] = ixx + iyy > 0 ? sqrt((ixx - iyy) * (ixx - iyy) + 4 * ixy * ixy) / (ixx + iyy) : 0;
    ft[3] = 0.5 * atan2(2 * ixy, ixx - iyy);
}

/* 4 concentration, from the curve of growth around the centroid. */
static double concentration(morph *m)
{
    qsort(m->p, m->np, sizeof *m->p, cmp_r2);
    double acc = 0, r20 = 0, r80 = 0;
    for (size_t k = 0; k < m->np; k++) {
        acc += m->p[k].f;
        if (!(r20 > 0) && acc >= 0.2 * m->sf) r20 = sqrt(m->p[k].r2) + 0.5;
        if (!(r80 > 0) && acc >= 0.8 * m->sf) { r80 = sqrt(m->p[k].r2) + 0.5; break; }
    }
    return r20 > 0 && r80 > 0 ? 5 * log10(r80 / r20) : 0;
}

/* 5 asymmetry under a 180-degree rotation about the image centre. */
static double asymmetry(const morph *m)
{
    size_t n = (size_t)m->S * m->S;
    double num = 0, den = 0;
    for (size_t k = 0; k < n; k++) {
        num += fabs((double)m->img[k] - m->img[n - 1 - k]);  /* in float, pixels near FLT_MAX gave inf */
        den += fabs(m->img[k]);
    }
    return den > 0 ? num / (2 * den) : 0;
}

/* 6 Gini and 7 M20 of the positive pixels, brightest first. */
static void gini_m20(morph *m, double *ft)
{
    size_t np = m->np;
    qsort(m->p, np, sizeof *m->p, cmp_pix_desc);
    double g = 0, mean = m->sf / (double)np;
    for (size_t k = 0; k < np; k++) g += (2.0 * (double)(np - k) - (double)np - 1) * m->p[k].f;
    ft[6] = np > 1 ? g / (mean * (double)np * (double)(np - 1)) : 0;
    double mtot = 0, m20 = 0, f20 = 0;
    for (size_t k = 0; k < np; k++) mtot += m->p[k].f * m->p[k].r2;
    for (size_t k = 0; k < np && f20 < 0.2 * m->sf; k++) {
        f20 += m->p[k].f;
        m20 += m->p[k].f * m->p[k].r2;
    }
    ft[7] = mtot > 0 && m20 > 0 ? log10(m20 / mtot) : 0;
}

/* 8 ring / arc: the smooth model is the mean flux in elliptical annuli
 * (shape from the moments), never rising outwards; the statistic is the
 * positive residual in an annulus around the galaxy over the total flux. */
static double ring_arc(const morph *m, const double *ft)
{
    int S = m->S;
    double e = ft[2], q = e < 0.95 ? sqrt((1 - e) / (1 + e)) : 0.16;
    enum { NB = 64 };
    double ssum[NB] = {0}, scnt[NB] = {0}, smooth[NB] = {0}, rmax = 0.5 * S, num = 0;
    double ca = cos(ft[3]), sa = sin(ft[3]);
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < S; i++)
            for (int j = 0; j < S; j++) {
                double dx = j - m->cx, dy = i - m->cy;
                double xr = ca * dx + sa * dy, yr = -sa * dx + ca * dy;
                double r = sqrt(q * xr * xr + yr * yr / q);
                int bin = (int)(r / rmax * NB);
                if (bin >= NB) continue;
                double v = m->img[i * S + j];
                if (pass == 0) { ssum[bin] += v; scnt[bin]++; continue; }
                double rr = r / (ft[1] > 0 ? ft[1] : 1);
                if (rr > 0.6 && rr < 3.0 && v > smooth[bin]) num += v - smooth[bin];
            }
        double prev = INFINITY;
        for (int b = 0; pass == 0 && b < NB; b++) {
            double mb = scnt[b] > 0 ? ssum[b] / scnt[b] : prev;
            smooth[b] = prev = mb < prev ? mb : prev;
        }
    }
    return num / m->sf;
}

void cut_features(const float *img, int S, double *ft)
{
    morph m = {img, S, 0, 0, 0, NULL, 0};
    for (int k = 0; k < CUT_NFEAT; k++) ft[k] = 0;
    if (!centroid(&m) || !(m.p = malloc((size_t)S * S * sizeof *m.p))) return;
    moments(&m, ft);
    ft[4] = concentration(&m);
    ft[5] = asymmetry(&m);
    gini_m20(&m, ft);
    ft[8] = ring_arc(&m, ft);
    double peak = 0;
    for (size_t k = 0; k < m.np; k++) peak = m.p[k].f > peak ? m.p[k].f : peak;
    ft[9] = peak > 0 ? log10(m.sf / peak) : 0;  /* effective area: free of the flux scale */
    free(m.p);
}
