/* cmd_simulate.c — `oddsky simulate`: a mock survey catalog, or a mock lens survey. */
#define _GNU_SOURCE
#include <errno.h>
#include <fitsio.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "cutout.h"
#include "lenssim.h"
#include "sim.h"
#include "specsim.h"

static void print_simulate_help(const sim_cat_opt *d)
{
    printf("Usage: oddsky simulate -o OUT.fits [options]\n\n"
           "Writes a mock photometric survey catalog (galaxies, stars, quasars and\n"
           "flagged injected anomalies).\n\n"
           "  -o, --out FILE       output FITS catalog (required)\n"
           "  -n, --n N            number of objects [%zu]\n"
           "  -s, --seed S         RNG seed [%llu]\n"
           "      --stars F        fraction of stars [%.2f]\n"
           "      --quasars F      fraction of quasars [%.2f]\n"
           "      --anomalies F    fraction of injected anomalies [%.3f]\n"
           "      --overwrite      replace OUT if it exists\n\n"
           "  --lens-survey        instead: a mock lens survey, catalog + cutouts:\n"
           "      --cutouts PATH   template with {id} (layout dir) or file (cube, mef)\n"
           "      --layout L       dir | cube | mef [dir]\n"
           "      --compress       Rice tile compression\n"
           "      --size S --bands g,r,i --pixel-scale A --psf-fwhm F --lens-fraction F\n"
           "      --drop-every K   leave out every K-th cutout (missing-cutout tests)\n\n"
           "  --spectra            instead: mock galaxy spectra with planted oddities (-n default 800,\n"
           "                       --anomalies: the oddity fraction, default 0.02)\n",
           d->n, (unsigned long long)d->seed, d->frac_star, d->frac_qso, d->frac_anomaly);
}

/* What the command line asks for. */
typedef struct sim_args {
    sim_cat_opt o;
    sim_lens_opt lens_o;
    int lens, spectra, set_n, set_frac;
} sim_args;

/* A number option in [lo, hi], whole when `whole` (-n 1e6 is a million). */
static int number(const char *opt, const char *v, double lo, double hi, int whole, double *out)
{
    int rc = cli_parse_double("simulate", opt, v, lo, hi, out);
    if (!rc && whole && *out != floor(*out)) {
        char what[160];
        snprintf(what, sizeof what, "%s expects a whole number, got '%.64s'", opt, v);
        rc = cli_usage_error("simulate", what);
    }
    return rc;
}

/* One option c with value v into a; 0 or the exit code after saying why. */
static int sim_option(sim_args *a, int c, const char *v)
{
    double x = 0;
    int rc = 0;
    lens_sim_opt *ls = &a->lens_o.sim;
    switch (c) {
    case 'o': a->o.out = v; break;
    case 'n': if (!(rc = number("-n", v, 1, 1e9, 1, &x))) a->o.n = (size_t)x, a->set_n = 1; break;
    case 's': if (!(rc = number("--seed", v, 0, 9007199254740992.0, 1, &x))) a->o.seed = (uint64_t)x; break;
    case 1: rc = number("--stars", v, 0, 1, 0, &a->o.frac_star); break;
    case 2: rc = number("--quasars", v, 0, 1, 0, &a->o.frac_qso); break;
    case 3: if (!(rc = number("--anomalies", v, 0, 1, 0, &a->o.frac_anomaly))) a->set_frac = 1; break;
    case 4: a->o.overwrite = 1; break;
    case 5: a->lens = 1; break;
    case 6: a->lens_o.cut.path = v; break;
    case 7:
        if ((int)(a->lens_o.cut.layout = (cut_layout)cut_layout_parse(v)) < 0)
            rc = cli_usage_error("simulate", "--layout is dir, cube or mef");
        break;
    case 8: if (!(rc = number("--size", v, 8, 1024, 1, &x))) ls->size = (int)x; break;
    case 9: {
        char bands[CUT_MAX_BANDS][32];
        int nb = cli_parse_bands(v, bands, CUT_MAX_BANDS);
        if (nb < 1) return cli_usage_error("simulate", "--bands expects names separated by commas");
        ls->n_bands = nb;
        for (int b = 0; b < nb; b++) snprintf(ls->band[b], sizeof ls->band[b], "%.15s", bands[b]);
        break;
    }
    case 10: rc = number("--pixel-scale", v, 1e-4, 100, 0, &ls->pix_scale); break;
    case 11: rc = number("--psf-fwhm", v, 1e-4, 100, 0, &ls->psf_fwhm); break;
    case 12: a->lens_o.compress = 1; break;
    case 13: if (!(rc = number("--drop-every", v, 0, 1e9, 1, &x))) a->lens_o.drop_every = (int)x; break;
    case 14: rc = number("--lens-fraction", v, 0, 1, 0, &ls->frac_lens); break;
    case 15: a->spectra = 1; break;
    default: rc = cli_usage_error("simulate", "unknown option");
    }
    return rc;
}

int cli_simulate(int argc, char **argv, const ody_log *log)
{
    static const struct option lo[] = {
        {"out", required_argument, 0, 'o'},   {"n", required_argument, 0, 'n'},
        {"seed", required_argument, 0, 's'},  {"stars", required_argument, 0, 1},
        {"quasars", required_argument, 0, 2}, {"anomalies", required_argument, 0, 3},
        {"overwrite", no_argument, 0, 4},     {"lens-survey", no_argument, 0, 5},
        {"cutouts", required_argument, 0, 6}, {"layout", required_argument, 0, 7},
        {"size", required_argument, 0, 8},    {"bands", required_argument, 0, 9},
        {"pixel-scale", required_argument, 0, 10}, {"psf-fwhm", required_argument, 0, 11},
        {"compress", no_argument, 0, 12},     {"drop-every", required_argument, 0, 13},
        {"lens-fraction", required_argument, 0, 14}, {"spectra", no_argument, 0, 15},
        {"help", no_argument, 0, 'h'},        {0, 0, 0, 0}};
    sim_args a;
    memset(&a, 0, sizeof a);
    sim_cat_opt_init(&a.o);
    lens_sim_opt_init(&a.lens_o.sim);
    cut_opt_init(&a.lens_o.cut);
    int c, rc;
    optind = 1;
    while ((c = getopt_long(argc, argv, "o:n:s:h", lo, NULL)) != -1) {
        if (c == 'h') {
            sim_cat_opt d;
            sim_cat_opt_init(&d);
            print_simulate_help(&d);
            return 0;
        }
        if (c == '?' || c == ':') return cli_bad_option("simulate", argv, "o:n:s:h");
        if ((rc = sim_option(&a, c, optarg))) return rc;
    }
    if (optind != argc) return cli_usage_error("simulate", "unexpected argument");
    ody_err e = {0};
    if (a.spectra) {
        sps_opt so;
        sps_opt_init(&so);
        so.out = a.o.out;
        so.seed = a.o.seed;
        if (a.set_n) so.n = a.o.n;
        if (a.set_frac) so.frac_odd = a.o.frac_anomaly;
        if (!a.o.overwrite && a.o.out && access(a.o.out, F_OK) == 0)
            return cli_usage_error("simulate", "the output exists — add --overwrite to replace it");
        if (sps_write(&so, log, &e)) return cli_fail(&e);
        return 0;
    }
    if (a.lens) {
        if (!a.o.out || !a.lens_o.cut.path) return cli_usage_error("simulate", "--lens-survey needs -o CATALOG.fits and --cutouts PATH");
        a.lens_o.out = a.o.out;
        a.lens_o.sim.n = a.o.n;
        a.lens_o.sim.seed = a.o.seed;
        if (sim_lens_survey(&a.lens_o, log, &e)) return cli_fail(&e);
        return 0;
    }
    if (sim_catalog(&a.o, log, &e)) return cli_fail(&e);
    return 0;
}

