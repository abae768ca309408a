/* specsim.h — mock galaxy spectra with planted oddities (prefix sps_).
 *
 * Each object is a galaxy at redshift z observed on one wavelength grid (the
 * FLUX column's vector WCS): a continuum mixing an old population (4000 A
 * break, absorption lines: Ca H+K, G band, Mg b, Na D, Balmer) and a young
 * one (blue, with narrow emission lines: [OII], Hb, [OIII], Ha, [NII],
 * [SII]), Gaussian noise at a signal-to-noise drawn per object, sky-line
 * residuals at fixed observed wavelengths, and a few bad pixels flagged in
 * MASK.  A fraction are planted oddities, flagged in IS_ODD and named in
 * ODDITY:
 *   wrongz     emission lines of a second galaxy at another redshift
 *   broadline  broad Balmer lines (FWHM ~5000 km/s) in a narrow-line galaxy
 *   continuum  a continuum unlike any population (very red, rising)
 *   badpix     an unflagged artefact: a run of pixels far off, MASK clear
 * Columns: ID, RA, DEC, Z, KIND (passive / starforming), ODDITY, IS_ODD,
 * SNR, FLUX (int16 scaled by TSCAL: 2 bytes a pixel), MASK (uint8).
 * Everything is drawn from one seeded GSL RNG: a seed gives the same data.
 */
#ifndef SPECSIM_H
#define SPECSIM_H

#include <stddef.h>
#include <stdint.h>

#include "ody.h"

typedef struct sps_opt {
    size_t n;               /* spectra, default 800 */
    uint64_t seed;          /* default 1 */
    double frac_odd;        /* default 0.02 */
    double lam0, dlam;      /* observed grid: first pixel, step (A); default 3800, 4.5 */
    int n_pix;              /* default 1200 */
    const char *out;        /* FITS path (required), written atomically */
} sps_opt;

void sps_opt_init(sps_opt *o);

/* Writes the spectra.  Nothing is left at o->out on error. */
int sps_write(const sps_opt *o, const ody_log *log, ody_err *err);

/* One spectrum (n_pix fluxes on the observed grid) of a galaxy with young
 * fraction t at redshift z, noise-free, with oddity k (0 none, 1 wrongz,
 * 2 broadline, 3 continuum; badpix is added with the noise). */
void sps_model(const sps_opt *o, double t, double z, double sigma_v, int k, double z2, float *flux);

#endif
