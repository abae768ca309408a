/* plot.c — figures with cairo: axes, marks, profiles, cutout pictures. */
#define _GNU_SOURCE
#include "plot.h"

#include <cairo.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct plt {
    cairo_surface_t *s;
    cairo_t *cr;
    int w, h;
};

static const plt_rgba INK = {0.15, 0.15, 0.15, 1};

/* ================================================================ figures */

plt *plt_create(int w, int h)
{
    plt *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->w = w < 1 ? 1 : w;
    p->h = h < 1 ? 1 : h;
    p->s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, p->w, p->h);
    p->cr = cairo_create(p->s);
    if (cairo_surface_status(p->s) != CAIRO_STATUS_SUCCESS || cairo_status(p->cr) != CAIRO_STATUS_SUCCESS) {
        plt_destroy(p);
        return NULL;
    }
    cairo_set_source_rgb(p->cr, 1, 1, 1);
    cairo_paint(p->cr);
    cairo_select_font_face(p->cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
    return p;
}

void plt_destroy(plt *p)
{
    if (!p) return;
    if (p->cr) cairo_destroy(p->cr);
    if (p->s) cairo_surface_destroy(p->s);
    free(p);
}

int plt_save_png(plt *p, const char *path, ody_err *err)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp-%ld", path, (long)getpid());
    cairo_surface_flush(p->s);
    cairo_status_t s = cairo_surface_write_to_png(p->s, tmp);
    if (s != CAIRO_STATUS_SUCCESS) {
        unlink(tmp);
        return ody_fail(err, ODY_EIO, "%s: cannot write the image (%s) — check the folder is writable and the disk "
                        "not full", path, cairo_status_to_string(s));
    }
    if (rename(tmp, path)) {
        int e = errno;
        unlink(tmp);
        return ody_fail(err, ODY_EIO, "%s: cannot write the image (%s)", path, strerror(e));
    }
    return 0;
}

typedef struct membuf { unsigned char *b; size_t n, cap; int oom; } membuf;

static cairo_status_t mem_write(void *ctx, const unsigned char *data, unsigned int len)
{
    membuf *m = ctx;
    if (m->n + len > m->cap) {
        size_t cap = m->cap ? m->cap : 4096;
        while (cap < m->n + len) cap *= 2;
        unsigned char *b = realloc(m->b, cap);
        if (!b) { m->oom = 1; return CAIRO_STATUS_NO_MEMORY; }
        m->b = b, m->cap = cap;
    }
    memcpy(m->b + m->n, data, len);
    m->n += len;
    return CAIRO_STATUS_SUCCESS;
}

int plt_png(plt *p, unsigned char **buf, size_t *len, ody_err *err)
{
    membuf m = {0};
    *buf = NULL, *len = 0;
    cairo_surface_flush(p->s);
    cairo_status_t s = cairo_surface_write_to_png_stream(p->s, mem_write, &m);
    if (s != CAIRO_STATUS_SUCCESS) {
        free(m.b);
        return ody_fail(err, m.oom ? ODY_ENOMEM : ODY_EINTERNAL, "encoding a PNG: %s", cairo_status_to_string(s));
    }
    *buf = m.b, *len = m.n;
    return 0;
}

/* ================================================================ axes */

plt_axes plt_axes_in(int w, int h)
{
    plt_axes a = {62, 26, w - 62 - 14, h - 26 - 44, 0, 1, 0, 1, 0, 0};
    return a;
}

void plt_pad_range(double *lo, double *hi, double pad)
{
    if (!isfinite(*lo) || !isfinite(*hi)) { *lo = 0, *hi = 1; return; }
    double d = *hi - *lo;
    if (d <= 0) d = fabs(*lo) > 0 ? fabs(*lo) * 0.1 : 1;
    *lo -= d * pad, *hi += d * pad;
}

static double px(const plt_axes *a, double x)
{
    double f = (x - a->xmin) / (a->xmax - a->xmin);
    return a->flipx ? a->x0 + a->w * (1 - f) : a->x0 + a->w * f;
}

static double py(const plt_axes *a, double y)
{
    double f = a->logy ? (log10(y > 0 ? y : a->ymin) - log10(a->ymin)) / (log10(a->ymax) - log10(a->ymin))
                       : (y - a->ymin) / (a->ymax - a->ymin);
    return a->y0 + a->h * (1 - f);
}

static void color(plt *p, plt_rgba c) { cairo_set_source_rgba(p->cr, c.r, c.g, c.b, c.a); }

void plt_text(plt *p, double x, double y, double size, plt_rgba c, const char *s)
{
    color(p, c);
    cairo_set_font_size(p->cr, size);
    cairo_move_to(p->cr, x, y);
    cairo_show_text(p->cr, s);
}

static double text_width(plt *p, double size, const char *s)
{
    cairo_text_extents_t e;
    cairo_set_font_size(p->cr, size);
    cairo_text_extents(p->cr, s, &e);
    return e.x_advance;
}

/* A tick step of 1, 2 or 5 times a power of ten giving about n ticks. */
static double nice_step(double range, int n)
{
    double raw = range / n, mag = pow(10, floor(log10(raw))), f = raw / mag;
    return mag * (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10);
}

static void tick_label(double v, double step, char *buf, size_t len)
{
    if (fabs(v) < step * 1e-6) v = 0;
    if (fabs(v) >= 1e5 || (v != 0 && fabs(v) < 1e-3)) snprintf(buf, len, "%.2g", v);
    else snprintf(buf, len, "%.*f", step >= 1 ? 0 : (int)ceil(-log10(step) - 1e-9), v);
}

static void x_ticks(plt *p, const plt_axes *a)
{
    double step = nice_step(a->xmax - a->xmin, a->w > 270 ? 5 : a->w > 160 ? 3 : 2);
    char buf[32];
    for (double v = ceil(a->xmin / step) * step; v <= a->xmax + step * 1e-9; v += step) {
        double x = px(a, v);
        cairo_move_to(p->cr, x, a->y0 + a->h);
        cairo_line_to(p->cr, x, a->y0 + a->h + 4);
        cairo_stroke(p->cr);
        tick_label(v, step, buf, sizeof buf);
        plt_text(p, x - text_width(p, 11, buf) / 2, a->y0 + a->h + 16, 11, INK, buf);
    }
}

static void y_ticks(plt *p, const plt_axes *a)
{
    char buf[32];
    double lo = a->logy ? ceil(log10(a->ymin)) : 0, hi = a->logy ? log10(a->ymax) : 0;
    double step = a->logy ? (hi - lo > 6 ? 2 : 1) : nice_step(a->ymax - a->ymin, 5);
    double v0 = a->logy ? lo : ceil(a->ymin / step) * step, v1 = a->logy ? hi : a->ymax;
    for (double v = v0; v <= v1 + step * 1e-9; v += step) {
        double val = a->logy ? pow(10, v) : v, y = py(a, val);
        cairo_move_to(p->cr, a->x0 - 4, y);
        cairo_line_to(p->cr, a->x0, y);
        cairo_stroke(p->cr);
        if (a->logy) snprintf(buf, sizeof buf, "%g", val);
        else tick_label(v, step, buf, sizeof buf);
        plt_text(p, a->x0 - 7 - text_width(p, 11, buf), y + 4, 11, INK, buf);
    }
}

void plt_frame(plt *p, const plt_axes *a, const char *xlabel, const char *ylabel, const char *title)
{
    if (!p) return;
    cairo_set_line_width(p->cr, 1);
    color(p, INK);
    cairo_rectangle(p->cr, a->x0 + 0.5, a->y0 + 0.5, a->w, a->h);
    cairo_stroke(p->cr);
    x_ticks(p, a);
    y_ticks(p, a);
    if (xlabel) plt_text(p, a->x0 + a->w / 2 - text_width(p, 12, xlabel) / 2, a->y0 + a->h + 34, 12, INK, xlabel);
    if (ylabel) {
        cairo_save(p->cr);
        cairo_translate(p->cr, 14, a->y0 + a->h / 2 + text_width(p, 12, ylabel) / 2);
        cairo_rotate(p->cr, -M_PI / 2);
        plt_text(p, 0, 0, 12, INK, ylabel);
        cairo_restore(p->cr);
    }
    if (title) plt_text(p, a->x0, a->y0 - 9, 13, INK, title);
}

/* ================================================================ marks */

static void clip_box(plt *p, const plt_axes *a)
{
    cairo_save(p->cr);
    cairo_rectangle(p->cr, a->x0, a->y0, a->w + 1, a->h + 1);
    cairo_clip(p->cr);
}

void plt_points(plt *p, const plt_axes *a, const double *x, const double *y, size_t n, double r, plt_rgba c,
                int ring)
{
    if (!p) return;
    clip_box(p, a);
    color(p, c);
    cairo_set_line_width(p->cr, 1.5);
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(x[i]) || !isfinite(y[i])) continue;
        cairo_new_sub_path(p->cr);
        cairo_arc(p->cr, px(a, x[i]), py(a, y[i]), r, 0, 2 * M_PI);
        if (ring) cairo_stroke(p->cr);
        else if (i % 256 == 255) cairo_fill(p->cr);  /* bounded path length */
    }
    if (!ring) cairo_fill(p->cr);
    cairo_restore(p->cr);
}

void plt_line(plt *p, const plt_axes *a, const double *x, const double *y, size_t n, double width, plt_rgba c)
{
    if (!p) return;
    clip_box(p, a);
    color(p, c);
    cairo_set_line_width(p->cr, width);
    int pen = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(x[i]) || !isfinite(y[i])) { pen = 0; continue; }
        if (pen) cairo_line_to(p->cr, px(a, x[i]), py(a, y[i]));
        else cairo_move_to(p->cr, px(a, x[i]), py(a, y[i]));
        pen = 1;
    }
    cairo_stroke(p->cr);
    cairo_restore(p->cr);
}

void plt_vline(plt *p, const plt_axes *a, double x, plt_rgba c, int dash, const char *label)
{
    if (!p || !isfinite(x)) return;
    double d[] = {5, 3}, X = px(a, x);
    color(p, c);
    cairo_set_line_width(p->cr, 1.5);
    cairo_set_dash(p->cr, d, dash ? 2 : 0, 0);
    cairo_move_to(p->cr, X, a->y0);
    cairo_line_to(p->cr, X, a->y0 + a->h);
    cairo_stroke(p->cr);
    cairo_set_dash(p->cr, d, 0, 0);
    if (label) {
        double tw = text_width(p, 11, label);
        plt_text(p, X + 4 + tw > a->x0 + a->w ? X - 4 - tw : X + 4, a->y0 + 14, 11, c, label);
    }
}

void plt_bars(plt *p, const plt_axes *a, const double *count, int nb, plt_rgba c)
{
    if (!p) return;
    clip_box(p, a);
    color(p, c);
    double bw = (a->xmax - a->xmin) / nb;
    for (int b = 0; b < nb; b++) {
        if (!(count[b] > 0)) continue;
        double x0 = px(a, a->xmin + b * bw), x1 = px(a, a->xmin + (b + 1) * bw), y = py(a, count[b]);
        cairo_rectangle(p->cr, fmin(x0, x1), y, fabs(x1 - x0), a->y0 + a->h - y);
    }
    cairo_fill(p->cr);
    cairo_restore(p->cr);
}

void plt_note(plt *p, const char *s)
{
    if (!p) return;
    plt_text(p, p->w / 2.0 - text_width(p, 13, s) / 2, p->h / 2.0, 13, (plt_rgba){0.4, 0.4, 0.4, 1}, s);
}

/* ================================================================ profiles */

static const plt_rgba RANGE = {0.85, 0.87, 0.92, 1}, IQR = {0.62, 0.68, 0.8, 1}, OBJ = {0.85, 0.1, 0.1, 1},
                      REASON = {1, 0.8, 0.3, 0.45};

/* Position of v on a feature's axis: (v - median) / spread, spread from the
 * 25-75 % range (IQR / 1.349, a standard deviation for a Gaussian), or the
 * 1-99 % range when the IQR is zero. */
static double spread_units(const float *q, double v)
{
    double s = (q[3] - q[1]) / 1.349;
    if (!(s > 0)) s = (q[4] - q[0]) / 4.65;
    if (!(s > 0)) s = 1;
    return (v - q[2]) / s;
}

/* Whether feature f lies in one of pr's spans (a WHY reason). */
static int in_span(const plt_profile *pr, int f)
{
    for (int s = 0; pr->span && s < pr->n_span; s++)
        if (pr->span[2 * s] >= 0 && f >= pr->span[2 * s] && f <= pr->span[2 * s + 1]) return 1;
    return 0;
}

static void profile_rows(plt *p, const plt_profile *pr, int w)
{
    const double L = 96, R = w - 10, lim = 6, rowh = 16;
    double mid = (L + R) / 2, sc = (R - L) / (2 * lim);
    cairo_set_line_width(p->cr, 1);
    for (int f = 0; f < pr->F; f++) {
        const float *q = pr->q + 5 * (size_t)f;
        double y = 8 + f * rowh, u[5];
        for (int k = 0; k < 5; k++) u[k] = fmax(-lim, fmin(lim, spread_units(q, q[k])));
        if (in_span(pr, f)) {  /* a feature WHY names: its row shaded as a spectrum's stretch is */
            color(p, REASON);
            cairo_rectangle(p->cr, 0, y, w, rowh);
            cairo_fill(p->cr);
        }
        color(p, RANGE);
        cairo_rectangle(p->cr, mid + u[0] * sc, y + 3, (u[4] - u[0]) * sc, rowh - 6);
        cairo_fill(p->cr);
        color(p, IQR);
        cairo_rectangle(p->cr, mid + u[1] * sc, y + 3, (u[3] - u[1]) * sc, rowh - 6);
        cairo_fill(p->cr);
        color(p, INK);
        cairo_move_to(p->cr, mid + u[2] * sc, y + 2);
        cairo_line_to(p->cr, mid + u[2] * sc, y + rowh - 2);
        cairo_stroke(p->cr);
        char name[24];
        snprintf(name, sizeof name, "%.14s", pr->names[f]);
        plt_text(p, 4, y + rowh - 4, 11, INK, name);
        double z = spread_units(q, pr->x[f]);
        color(p, OBJ);
        if (!isfinite(z)) continue;
        if (fabs(z) <= lim) {
            cairo_arc(p->cr, mid + z * sc, y + rowh / 2, 4, 0, 2 * M_PI);
        } else {  /* off the axis: an arrow at its edge */
            double e = z > 0 ? R : L, d = z > 0 ? -7 : 7;
            cairo_move_to(p->cr, e, y + rowh / 2);
            cairo_line_to(p->cr, e + d, y + 3);
            cairo_line_to(p->cr, e + d, y + rowh - 3);
        }
        cairo_fill(p->cr);
    }
    char buf[48];
    double yb = 8 + pr->F * rowh + 12;
    for (int t = -6; t <= 6; t += 3) {
        snprintf(buf, sizeof buf, "%+d", t);
        plt_text(p, mid + t * sc - text_width(p, 10, buf) / 2, yb, 10, INK, t ? buf : "0");
    }
    plt_text(p, L, yb + 13, 10, INK, "robust SD from the catalog median");
}

static void profile_curve(plt *p, const plt_profile *pr, int w, int h)
{
    size_t F = (size_t)pr->F;
    double *x = malloc(F * sizeof *x), *y = malloc(3 * F * sizeof *y);
    if (!x || !y) { free(x); free(y); return; }
    double lo = INFINITY, hi = -INFINITY;
    for (size_t f = 0; f < F; f++) {
        x[f] = pr->at ? pr->at[f] : (double)f;
        y[f] = pr->q[5 * f], y[F + f] = pr->q[5 * f + 2], y[2 * F + f] = pr->x[f];
        lo = fmin(lo, fmin(y[f], y[2 * F + f]));
        hi = fmax(hi, fmax(pr->q[5 * f + 4], y[2 * F + f]));
    }
    plt_axes a = plt_axes_in(w, h);
    a.xmin = x[0], a.xmax = x[F - 1], a.ymin = lo, a.ymax = hi;
    if (!(a.xmax > a.xmin)) a.xmin = 0, a.xmax = (double)(F - 1);
    plt_pad_range(&a.ymin, &a.ymax, 0.05);
    clip_box(p, &a);
    color(p, REASON);  /* where WHY's reasons lie, half a bin beyond their first and last */
    for (int s = 0; pr->span && s < pr->n_span; s++) {
        int f0 = pr->span[2 * s], f1 = pr->span[2 * s + 1];
        if (f0 < 0 || f1 < f0 || f1 >= pr->F) continue;
        double x0 = px(&a, x[f0]), x1 = px(&a, x[f1]), half = F > 1 ? 0.5 * fabs(px(&a, x[1]) - px(&a, x[0])) : 0;
        half = fmax(half, 1.5 - 0.5 * fabs(x1 - x0));  /* at least 3 pixels: a spike stays visible */
        cairo_rectangle(p->cr, fmin(x0, x1) - half, a.y0, fabs(x1 - x0) + 2 * half, a.h);
        cairo_fill(p->cr);
    }
    color(p, RANGE);  /* the 1-99 % band */
    for (size_t f = 0; f < F; f++) cairo_line_to(p->cr, px(&a, x[f]), py(&a, pr->q[5 * f]));
    for (size_t f = F; f-- > 0;) cairo_line_to(p->cr, px(&a, x[f]), py(&a, pr->q[5 * f + 4]));
    cairo_close_path(p->cr);
    cairo_fill(p->cr);
    cairo_restore(p->cr);
    plt_line(p, &a, x, y + F, F, 1, (plt_rgba){0.3, 0.35, 0.5, 1});
    plt_line(p, &a, x, y + 2 * F, F, 1, OBJ);
    plt_frame(p, &a, pr->at_label ? pr->at_label : "element", NULL, NULL);
    free(x);
    free(y);
}

plt *plt_profile_draw(const plt_profile *pr, int w, int h_max)
{
    int rows = pr->F <= 24;
    int h = rows ? 8 + pr->F * 16 + 32 : h_max;
    plt *p = plt_create(w, h < h_max || !rows ? h : h_max);
    if (!p || pr->F < 1) return p;
    if (rows) profile_rows(p, pr, w);
    else profile_curve(p, pr, w, h);
    return p;
}

/* ================================================================ pictures */

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* The 99.5 % level of v[0..n) (positive), for the stretch's scale. */
static double level(const float *v, size_t n)
{
    float *s = malloc(n * sizeof *s);
    if (!s) return 1;
    memcpy(s, v, n * sizeof *s);
    qsort(s, n, sizeof *s, cmp_float);
    double l = s[(size_t)(0.995 * (double)(n - 1))];
    free(s);
    return l > 0 ? l : 1;
}

static uint8_t byte(double v) { return (uint8_t)lrint(255 * fmax(0, fmin(1, v))); }

void plt_stretch(const float *img, int bands, int size, uint8_t *rgb)
{
    size_t np = (size_t)size * size;
    const double Q = 8;
    float *I = malloc(np * sizeof *I);
    if (!I) { memset(rgb, 0, np * 3); return; }
    int b0 = bands >= 3 ? bands - 3 : 0, nb = bands >= 3 ? 3 : bands;
    for (size_t k = 0; k < np; k++) {
        double s = 0;
        for (int b = b0; b < b0 + nb; b++) s += img[(size_t)b * np + k];
        I[k] = (float)(s / nb);
    }
    /* asinh(Q I / m) / asinh(Q) reaches 1 at the image's bright level m */
    double m = level(I, np), norm = asinh(Q);
    for (size_t k = 0; k < np; k++) {
        double i = I[k], f = i > 0 ? asinh(Q * i / m) / norm : 0;
        size_t r = k / (size_t)size, col = k % (size_t)size;  /* FITS row 1 is the bottom */
        uint8_t *o = rgb + 3 * (((size_t)size - 1 - r) * (size_t)size + col);
        if (nb < 3) { o[0] = o[1] = o[2] = byte(f); continue; }
        double c[3], mx = 0;
        for (int j = 0; j < 3; j++) {  /* R = the reddest band: the last */
            c[j] = i > 0 ? fmax(0, img[(size_t)(b0 + 2 - j) * np + k]) * f / i : 0;
            mx = fmax(mx, c[j]);
        }
        for (int j = 0; j < 3; j++) o[j] = byte(mx > 1 ? c[j] / mx : c[j]);  /* saturate keeping the hue */
    }
    free(I);
}

void plt_image(plt *p, const uint8_t *rgb, int size, double x, double y, double side)
{
    if (!p || size < 1) return;
    cairo_surface_t *s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, size, size);
    if (cairo_surface_status(s) != CAIRO_STATUS_SUCCESS) { cairo_surface_destroy(s); return; }
    cairo_surface_flush(s);
    unsigned char *d = cairo_image_surface_get_data(s);
    int stride = cairo_image_surface_get_stride(s);
    for (int r = 0; r < size; r++)
        for (int c = 0; c < size; c++) {
            const uint8_t *v = rgb + 3 * ((size_t)r * size + c);
            uint32_t px32 = (uint32_t)v[0] << 16 | (uint32_t)v[1] << 8 | v[2];
            memcpy(d + (size_t)r * stride + 4 * (size_t)c, &px32, 4);
        }
    cairo_surface_mark_dirty(s);
    cairo_save(p->cr);
    cairo_translate(p->cr, x, y);
    cairo_scale(p->cr, side / size, side / size);
    cairo_set_source_surface(p->cr, s, 0, 0);
    cairo_pattern_set_filter(cairo_get_source(p->cr), CAIRO_FILTER_NEAREST);
    cairo_rectangle(p->cr, 0, 0, size, size);
    cairo_fill(p->cr);
    cairo_restore(p->cr);
    cairo_surface_destroy(s);
}
