/* sim.h — mock survey data (prefix sim_).
 *
 * A photometric catalog with galaxies (red sequence + blue cloud whose
 * colours move with redshift), stars on the stellar locus, quasars, and a
 * known fraction of injected anomalies flagged in IS_ANOMALY / ANOMALY.
 * Everything is drawn from one GSL RNG seeded by the options, so a seed
 * gives the same file byte for byte.
 *
 * Columns: ID (int64), RA, DEC (deg, float64), U G R I Z (mag, float32),
 * U_ERR..Z_ERR, REDSHIFT (float32), CLASS (GALAXY/STAR/QSO), IS_ANOMALY
 * (logical), ANOMALY (string: none, colour, zmismatch, bandspike, stelz).
 */
#ifndef SIM_H
#define SIM_H

#include <stddef.h>
#include <stdint.h>

#include "cutout.h"
#include "lenssim.h"
#include "ody.h"

typedef struct sim_cat_opt {
    size_t n;              /* objects, default 2000 */
    uint64_t seed;         /* default 1 */
    double frac_star;      /* default 0.30 */
    double frac_qso;       /* default 0.08 */
    double frac_anomaly;   /* default 0.01 */
    const char *out;       /* output FITS path (required); written via tmp + rename */
    int overwrite;         /* replace an existing file */
} sim_cat_opt;

void sim_cat_opt_init(sim_cat_opt *o);
int sim_cat_opt_check(const sim_cat_opt *o, ody_err *err);

/* Writes the catalog.  Nothing is left at o->out on error. */
int sim_catalog(const sim_cat_opt *o, const ody_log *log, ody_err *err);

/* A mock lens survey: a catalog (ID, RA, DEC, IS_LENS, KIND, THETA_E,
 * LENS_MAG, SRC_MAG) and its cutouts under a layout (cutout.h), written with
 * Rice tile compression when compress is set.  Rows are lenses and
 * non-lenses from lens_simulate(); `drop_every` > 0 leaves out the cutout of
 * every drop_every-th object, so a survey can exercise missing cutouts. */
typedef struct sim_lens_opt {
    lens_sim_opt sim;
    const char *out;         /* catalog */
    cut_opt cut;             /* layout, path template / file, bands, size */
    int compress;
    int drop_every;
} sim_lens_opt;

int sim_lens_survey(const sim_lens_opt *o, const ody_log *log, ody_err *err);

#endif
