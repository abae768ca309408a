/* cutout.h — image cutouts matched to catalog rows (prefix cut_).
 *
 * Three layouts, matched by ID (the text of the catalog's ID column):
 *   CUT_DIR   one file per object from a template: "cutouts/{id}.fits", or
 *             one file per band with "{band}" in the template too
 *             ("cutouts/{id}_{band}.fits", "Band{band}-{id}.fits").  Without
 *             {band}, a file holds every band as planes of a cube.
 *   CUT_CUBE  one file: per band an image HDU (EXTNAME = band; the primary or
 *             first image when there is one band) of shape size x size x N,
 *             and a table HDU IDS whose column ID gives each plane's object.
 *   CUT_MEF   one file with an image HDU per object, EXTNAME = ID (size x size,
 *             or size x size x bands).
 * CFITSIO reads any BITPIX with BSCALE/BZERO, tile-compressed images and
 * gzip files.  Images of another size are centre-cropped or zero-padded;
 * NaN / blank pixels are set to 0 (the sky level after subtraction) and
 * counted.
 */
#ifndef CUTOUT_H
#define CUTOUT_H

#include <stddef.h>
#include <stdint.h>

#include "cat.h"
#include "ody.h"

#define CUT_MAX_BANDS 8

typedef enum { CUT_DIR = 0, CUT_CUBE = 1, CUT_MEF = 2 } cut_layout;
typedef enum { CUT_NORM_ASINH = 0, CUT_NORM_ZSCORE = 1, CUT_NORM_NONE = 2 } cut_norm;

int cut_layout_parse(const char *s);   /* "dir" | "cube" | "mef"; -1 otherwise */
int cut_norm_parse(const char *s);     /* "asinh" | "zscore" | "none" */

typedef struct cut_opt {
    cut_layout layout;
    const char *path;           /* template (dir) or file (cube, mef) */
    int n_bands;
    char band[CUT_MAX_BANDS][32];
    int size;                   /* pixels on a side after crop / pad */
    int fail_missing;           /* 1: a missing cutout is an error; 0: flagged */
} cut_opt;

void cut_opt_init(cut_opt *o);

typedef struct cut_set {
    size_t n;
    int n_bands, size;
    float *pix;                 /* n x bands x size x size */
    uint8_t *have;              /* 1 where the cutout was found */
    size_t n_missing, n_nan, n_resized;
} cut_set;

/* Reads the cutouts of ids (n rows).  *out owned by the caller
 * (cut_destroy); unchanged on error. */
int cut_read(const cut_opt *o, const cat_col *ids, size_t n, cut_set **out, const ody_log *log, ody_err *err);
void cut_destroy(cut_set *s);

/* Writes n cutouts (n x bands x size x size) under a layout; compress: tile
 * compression (Rice) for the images.  IDs as text: id[k] (NUL-terminated). */
int cut_write(const cut_opt *o, char *const *id, size_t n, const float *pix, int compress, ody_err *err);

/* ---------------------------------------------------------------- preprocessing */

/* Normalises one cutout in place (bands x size x size): asinh stretch of
 * (x - p_lo) / (p_hi - p_lo) with percentiles taken over all bands, or a
 * z-score, or nothing. */
void cut_normalize(float *img, int bands, int size, cut_norm norm, double p_lo, double p_hi);

/* Block-averages by an integer factor: size -> size / f. */
void cut_downsample(const float *in, int bands, int size, int f, float *out);

/* ---------------------------------------------------------------- morphology */

#define CUT_NFEAT 10

/* Morphology of one band image (sky-subtracted, not normalised):
 *  0 centroid offset (pixels)   1 size sqrt(Ixx+Iyy)   2 ellipticity
 *  3 angle (rad)                4 concentration 5 log10(r80/r20)
 *  5 asymmetry                  6 Gini                 7 M20
 *  8 ring/arc statistic: positive residual flux in an annulus after
 *    subtracting a smooth elliptical model, over the total flux
 *  9 log10(total flux / peak pixel), an effective area
 * Every feature is free of the flux scale, so a model trained on
 * simulations in counts applies to images in any unit. */
void cut_features(const float *img, int size, double *feat);
const char *cut_feature_name(int k);

#endif
