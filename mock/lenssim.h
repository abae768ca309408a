/* lenssim.h — strong-lens image simulation (prefix lens_).
 *
 * Lenses: a singular isothermal ellipsoid (Einstein radius, axis ratio,
 * position angle) with external shear deflects a Sersic source (with a few
 * star-forming clumps) placed near the caustics; the lens galaxy's own light
 * is a red Sersic profile.  Every pixel is ray-traced through the lens
 * equation beta = theta - alpha(theta) on a sub x sub grid.
 * Non-lenses: the same galaxies without a lensed source, and look-alikes
 * that make the task non-trivial: ring galaxies (a blue star-forming ring),
 * mergers / projected companions (an unlensed blue galaxy nearby) and
 * spirals (a disk with two logarithmic arms).
 * Then: PSF (Gaussian or Moffat) convolution, sky, Poisson and read noise,
 * sky subtraction.  All draws come from one GSL RNG seeded by the options;
 * the parameter ranges are listed in docs/SIMULATION.md.
 */
#ifndef LENSSIM_H
#define LENSSIM_H

#include <stddef.h>
#include <stdint.h>

#include "ody.h"

#define LENS_MAX_BANDS 8

typedef struct lens_sim_opt {
    size_t n;                 /* cutouts */
    double frac_lens;         /* default 0.5 */
    double frac_lookalike;    /* share of non-lenses that are look-alikes, default 0.5 */
    int size;                 /* pixels on a side, default 48 */
    double pix_scale;         /* arcsec per pixel, default 0.2 */
    int n_bands;              /* default 3 (g r i) */
    char band[LENS_MAX_BANDS][16];
    double psf_fwhm;          /* arcsec, default 0.8 */
    int moffat;               /* 0: Gaussian PSF, 1: Moffat */
    double moffat_beta;       /* default 3 */
    double sky;               /* counts per pixel, default 100 */
    double read_noise;        /* counts, default 5 */
    double zeropoint;         /* magnitude of 1 count, default 27 */
    int sub;                  /* sub-pixels per side, default 3 */
    uint64_t seed;
    int n_threads;            /* 0: every core; the images do not depend on it */
} lens_sim_opt;

void lens_sim_opt_init(lens_sim_opt *o);
int lens_sim_opt_check(const lens_sim_opt *o, ody_err *err);

/* Truth for one cutout. */
typedef struct lens_truth {
    int is_lens;
    int kind;                 /* 0 plain galaxy, 1 lens, 2 ring, 3 merger, 4 spiral */
    double theta_e, q, pa, gamma, src_x, src_y;  /* arcsec, radians */
    double lens_mag, src_mag; /* in the reddest / bluest band */
} lens_truth;

const char *lens_kind_name(int kind);

/* Fills pix (n x n_bands x size x size, row-major images, sky-subtracted
 * counts) and truth (n).  Deterministic for a seed, whatever the threads. */
int lens_simulate(const lens_sim_opt *o, float *pix, lens_truth *truth, ody_err *err);

/* ---------------------------------------------------------------- physics, exposed for tests */

/* SIE + external shear deflection at (x, y) arcsec: lens centred at the
 * origin, major axis along pa. */
void lens_sie_deflect(double theta_e, double q, double pa, double g1, double g2, double x, double y,
                      double *ax, double *ay);

/* Sersic surface brightness at elliptical radius r for effective radius re
 * and index n, normalised so that the total flux is `flux`. */
double lens_sersic(double r, double re, double n, double flux, double q);

/* Renders a point source at (bx, by) in the source plane: the number of
 * images formed (found on a fine grid), for tests of multiplicity. */
int lens_count_images(double theta_e, double q, double pa, double g1, double g2, double bx, double by);

#endif
