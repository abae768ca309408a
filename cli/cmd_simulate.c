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
           "      --layout L       dir | cube | mef [dir]      --compress  Rice tile compression\n"
           "      --size S --bands g,r,i --pixel-scale A --psf-fwhm F --lens-fraction F\n"
           "      --drop-every K   leave out every K-th cutout (missing-cutout tests)\n\n"
           "  --spectra            instead: mock galaxy spectra with planted oddities (-n default 800,\n"
           "                       --anomalies: the oddity fraction, default 0.02)\n",
           d->n, (unsigned long long)d->seed, d->frac_star, d->frac_qso, d->frac_anomaly);
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
    sim_cat_opt o;
    sim_cat_opt_init(&o);
    sim_lens_opt lo2;
    memset(&lo2, 0, sizeof lo2);
    lens_sim_opt_init(&lo2.sim);
    cut_opt_init(&lo2.cut);
    int c, rc, lens = 0, spectra = 0, set_n = 0, set_frac = 0;
    double v;
    char bands[CUT_MAX_BANDS][32];
    optind = 1;
    while ((c = getopt_long(argc, argv, "o:n:s:h", lo, NULL)) != -1) {
        switch (c) {
        case 'o': o.out = optarg; break;
        case 'n':
            if ((rc = cli_parse_double("simulate", "--n", optarg, &v))) return rc;
            if (v < 0) return cli_usage_error("simulate", "--n must be positive");
            o.n = (size_t)v;
            set_n = 1;
            break;
        case 's':
            if ((rc = cli_parse_double("simulate", "--seed", optarg, &v))) return rc;
            o.seed = (uint64_t)v;
            break;
        case 1: if ((rc = cli_parse_double("simulate", "--stars", optarg, &o.frac_star))) return rc; break;
        case 2: if ((rc = cli_parse_double("simulate", "--quasars", optarg, &o.frac_qso))) return rc; break;
        case 3:
            if ((rc = cli_parse_double("simulate", "--anomalies", optarg, &o.frac_anomaly))) return rc;
            set_frac = 1;
            break;
        case 4: o.overwrite = 1; break;
        case 5: lens = 1; break;
        case 6: lo2.cut.path = optarg; break;
        case 7:
            if ((int)(lo2.cut.layout = (cut_layout)cut_layout_parse(optarg)) < 0)
                return cli_usage_error("simulate", "--layout is dir, cube or mef");
            break;
        case 8: lo2.sim.size = atoi(optarg); break;
        case 9: {
            int nb = cli_parse_bands(optarg, bands, CUT_MAX_BANDS);
            if (nb < 1) return cli_usage_error("simulate", "--bands expects names separated by commas");
            lo2.sim.n_bands = nb;
            for (int b = 0; b < nb; b++) snprintf(lo2.sim.band[b], sizeof lo2.sim.band[b], "%.15s", bands[b]);
            break;
        }
        case 10: lo2.sim.pix_scale = atof(optarg); break;
        case 11: lo2.sim.psf_fwhm = atof(optarg); break;
        case 12: lo2.compress = 1; break;
        case 13: lo2.drop_every = atoi(optarg); break;
        case 14: lo2.sim.frac_lens = atof(optarg); break;
        case 15: spectra = 1; break;
        case 'h': {
            sim_cat_opt d;
            sim_cat_opt_init(&d);
            print_simulate_help(&d);
            return 0;
        }
        default: return cli_bad_option("simulate", argv, "o:n:s:h");
        }
    }
    if (optind != argc) return cli_usage_error("simulate", "unexpected argument");
    ody_err e = {0};
    if (spectra) {
        sps_opt so;
        sps_opt_init(&so);
        so.out = o.out;
        so.seed = o.seed;
        if (set_n) so.n = o.n;
        if (set_frac) so.frac_odd = o.frac_anomaly;
        if (!o.overwrite && o.out && access(o.out, F_OK) == 0)
            return cli_usage_error("simulate", "the output exists — add --overwrite to replace it");
        if (sps_write(&so, log, &e)) return cli_fail(&e);
        return 0;
    }
    if (lens) {
        if (!o.out || !lo2.cut.path) return cli_usage_error("simulate", "--lens-survey needs -o CATALOG.fits and --cutouts PATH");
        lo2.out = o.out;
        lo2.sim.n = o.n;
        lo2.sim.seed = o.seed;
        if (sim_lens_survey(&lo2, log, &e)) return cli_fail(&e);
        return 0;
    }
    if (sim_catalog(&o, log, &e)) return cli_fail(&e);
    return 0;
}

