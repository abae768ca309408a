/* plot.h — figures drawn with cairo and written as PNG (prefix plt_).
 *
 * What the HTML report and the review page show: axes with ticks, points,
 * lines, histograms, an object's features against the catalog's spread, and
 * cutouts as pictures (an asinh stretch for one band, the colour-preserving
 * RGB of Lupton et al. 2004 for three).  Cairo does the drawing and the PNG
 * encoding; this module only decides what goes where.
 *
 * A figure (plt) is created white, drawn on, then saved to a file or to
 * memory; plt_destroy frees it.  Drawing calls never fail: a figure whose
 * surface could not be created draws nothing, and the save reports it.
 * Text uses cairo's "sans-serif" face (fontconfig picks the font).
 */
#ifndef PLOT_H
#define PLOT_H

#include <stddef.h>
#include <stdint.h>

#include "ody.h"

typedef struct plt plt;

/* A w x h pixel figure, white.  NULL when out of memory. */
plt *plt_create(int w, int h);
void plt_destroy(plt *p);

/* Writes the figure as PNG to path, atomically (a temporary renamed into
 * place): on error nothing is left under path. */
int plt_save_png(plt *p, const char *path, ody_err *err);

/* The figure as PNG bytes in *buf (malloc'd, the caller frees), *len bytes;
 * on error *buf is NULL. */
int plt_png(plt *p, unsigned char **buf, size_t *len, ody_err *err);

/* ---------------------------------------------------------------- axes */

/* A plotting box in pixels and the data range it shows. */
typedef struct plt_axes {
    double x0, y0, w, h;            /* box: left, top, width, height */
    double xmin, xmax, ymin, ymax;  /* data range; with logy, ymin > 0 */
    int logy, flipx;                /* log10 y axis; x increasing leftwards (RA) */
} plt_axes;

/* A box of a w x h figure leaving margins for tick labels and titles. */
plt_axes plt_axes_in(int w, int h);

/* Widens [*lo, *hi] by a fraction pad of its width (a point range when equal). */
void plt_pad_range(double *lo, double *hi, double pad);

/* Frame, ticks with labels, axis titles (NULL: none) and a title above. */
void plt_frame(plt *p, const plt_axes *a, const char *xlabel, const char *ylabel, const char *title);

/* RGB colours, 0..1 each; alpha 0..1. */
typedef struct plt_rgba { double r, g, b, a; } plt_rgba;

/* n points as filled discs of radius r pixels (NaN coordinates skipped);
 * ring: draw circles instead of discs. */
void plt_points(plt *p, const plt_axes *a, const double *x, const double *y, size_t n, double r, plt_rgba c,
                int ring);

/* A polyline through n points (NaN breaks it). */
void plt_line(plt *p, const plt_axes *a, const double *x, const double *y, size_t n, double width, plt_rgba c);

/* A vertical line at x across the box, dashed when dash is set, with a label
 * (NULL: none) at its top. */
void plt_vline(plt *p, const plt_axes *a, double x, plt_rgba c, int dash, const char *label);

/* Bars of a histogram: nb bins of equal width over [a->xmin, a->xmax],
 * heights count[]. */
void plt_bars(plt *p, const plt_axes *a, const double *count, int nb, plt_rgba c);

/* Text with its left edge at (x, y) pixels, baseline at y; size in pixels. */
void plt_text(plt *p, double x, double y, double size, plt_rgba c, const char *s);

/* A message in the middle of the figure ("no RA/Dec"), for a plot that has
 * nothing to show. */
void plt_note(plt *p, const char *s);

/* ---------------------------------------------------------------- pictures */

/* One object's features against the catalog's distribution: a row per
 * feature with the catalog's 1-99 % range (light), 25-75 % (dark), the
 * median, and the object's value (a red dot; an arrow at the edge when
 * outside the axis), all in units of the feature's robust spread.  q is F x 5
 * quantiles (1, 25, 50, 75, 99 %) row-major; names the F labels.  Above 24
 * features (a spectrum, a light curve) the rows become a curve against the
 * element index: the catalog's 1-99 % band and median, and the object. */
typedef struct plt_profile {
    int F;
    const char *const *names;
    const float *q;        /* F x 5 */
    const float *x;        /* the object's F values */
    const double *at;      /* the curve's abscissa a feature (e.g. wavelengths); NULL: the index */
    const char *at_label;  /* its axis title; NULL: "element" */
    const int32_t *span;   /* n_span pairs of features, first and last, shaded (WHY's reasons: a curve's stretches, a
                              feature's row); -1 pads; NULL: none */
    int n_span;
} plt_profile;

plt *plt_profile_draw(const plt_profile *pr, int w, int h_max);

/* Stretches a cutout (bands x size x size, row-major; sky-subtracted) to
 * 8-bit RGB (size x size x 3, row 0 at the top).  Three or more bands: the
 * last three as R, G, B through the Lupton et al. (2004) asinh stretch of
 * their mean, which keeps colours; one or two: an asinh stretch of their
 * sum, grey.  Deterministic, scaled by the image's own 99.5 % level. */
void plt_stretch(const float *img, int bands, int size, uint8_t *rgb);

/* Draws an 8-bit RGB image (size x size x 3) into the square (x, y, side)
 * with nearest-neighbour scaling, so pixels stay visible. */
void plt_image(plt *p, const uint8_t *rgb, int size, double x, double y, double side);

#endif
