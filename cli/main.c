/* main.c — the oddsky command line: parse, run, free.  All work is in the
 * library; this file only turns argv into option structs and results into
 * text on stdout. */
#define _GNU_SOURCE
#include <fitsio.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cat.h"
#include "cfg.h"
#include "cutout.h"
#include "lens.h"
#include "ody.h"
#include "cli.h"
#include "run.h"
#include "sim.h"

static int fail(const ody_err *e)
{
    fprintf(stderr, "oddsky: error: %s\n", e->msg);
    return ody_exit_code(e->code);
}

static int usage_error(const char *cmd, const char *what)
{
    fprintf(stderr, "oddsky: error: %s: %s — run `oddsky %s --help`\n", cmd, what, cmd);
    return 2;
}

/* ================================================================ inspect */

static void print_inspect_help(void)
{
    printf("Usage: oddsky inspect FILE\n\n"
           "Lists the HDUs of a FITS file; for tables, every column with its type,\n"
           "unit, vector size and number of null/NaN/Inf rows.  FILE may use CFITSIO's\n"
           "extended syntax, e.g. 'cat.fits[1][class==\"GALAXY\"]', to describe one HDU.\n");
}

static const char *hdu_type_name(int t)
{
    return t == IMAGE_HDU ? "image" : t == ASCII_TBL ? "ascii-table" : "bintable";
}

static int cmd_inspect(int argc, char **argv)
{
    static const struct option lo[] = {{"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        if (c == 'h') { print_inspect_help(); return 0; }
        return usage_error("inspect", "unknown option");
    }
    if (optind != argc - 1) return usage_error("inspect", "give exactly one FITS file");
    const char *path = argv[optind];
    cat_info *info = NULL;
    ody_err e = {0};
    if (cat_inspect(path, &info, &e)) return fail(&e);
    printf("%s: %d HDU%s\n", path, info->n_hdu, info->n_hdu == 1 ? "" : "s");
    for (int h = 0; h < info->n_hdu; h++) {
        const cat_hduinfo *hi = &info->hdu[h];
        printf("\nHDU %d  %-11s %s", hi->num, hdu_type_name(hi->hdutype),
               hi->extname[0] ? hi->extname : "(no EXTNAME)");
        if (hi->hdutype == IMAGE_HDU) {
            if (hi->naxis == 0) printf("  empty\n");
            else {
                printf("  BITPIX %d  ", hi->bitpix);
                for (int a = 0; a < hi->naxis; a++) printf("%s%ld", a ? " x " : "", hi->naxes[a]);
                printf("%s\n", hi->compressed ? "  (tile-compressed)" : "");
            }
            continue;
        }
        printf("  %ld rows x %d columns\n", hi->n_rows, hi->n_cols);
        if (hi->n_cols)
            printf("  %-4s %-24s %-10s %-7s %-10s %-12s %s\n", "col", "name", "type", "size",
                   "TFORM", "unit", "null rows");
        for (int k = 0; k < hi->n_cols; k++) {
            const cat_colinfo *ci = &hi->cols[k];
            char size[32], nul[32];
            if (ci->typecode == TSTRING) snprintf(size, sizeof size, "%ldch", ci->width);
            else if (ci->typecode < 0) snprintf(size, sizeof size, "var");
            else snprintf(size, sizeof size, "%ld", ci->repeat);
            if (ci->n_null < 0) snprintf(nul, sizeof nul, "-");
            else snprintf(nul, sizeof nul, "%ld", ci->n_null);
            printf("  %-4d %-24s %-10s %-7s %-10s %-12s %s\n", k + 1, ci->name,
                   cat_type_name(ci->typecode), size, ci->tform, ci->unit[0] ? ci->unit : "-", nul);
        }
    }
    cat_info_destroy(info);
    return 0;
}

/* ================================================================ simulate */

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
           "      --drop-every K   leave out every K-th cutout (missing-cutout tests)\n",
           d->n, (unsigned long long)d->seed, d->frac_star, d->frac_qso, d->frac_anomaly);
}

static int parse_double(const char *cmd, const char *opt, const char *s, double *out)
{
    char *end;
    *out = strtod(s, &end);
    if (end == s || *end) {
        char what[128];
        snprintf(what, sizeof what, "%s expects a number, got '%s'", opt, s);
        return usage_error(cmd, what);
    }
    return 0;
}

static int parse_bands(const char *s, char band[][32], int max);

static int cmd_simulate(int argc, char **argv, const ody_log *log)
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
        {"lens-fraction", required_argument, 0, 14},
        {"help", no_argument, 0, 'h'},        {0, 0, 0, 0}};
    sim_cat_opt o;
    sim_cat_opt_init(&o);
    sim_lens_opt lo2;
    memset(&lo2, 0, sizeof lo2);
    lens_sim_opt_init(&lo2.sim);
    cut_opt_init(&lo2.cut);
    int c, rc, lens = 0;
    double v;
    char bands[CUT_MAX_BANDS][32];
    optind = 1;
    while ((c = getopt_long(argc, argv, "o:n:s:h", lo, NULL)) != -1) {
        switch (c) {
        case 'o': o.out = optarg; break;
        case 'n':
            if ((rc = parse_double("simulate", "--n", optarg, &v))) return rc;
            if (v < 0) return usage_error("simulate", "--n must be positive");
            o.n = (size_t)v;
            break;
        case 's':
            if ((rc = parse_double("simulate", "--seed", optarg, &v))) return rc;
            o.seed = (uint64_t)v;
            break;
        case 1: if ((rc = parse_double("simulate", "--stars", optarg, &o.frac_star))) return rc; break;
        case 2: if ((rc = parse_double("simulate", "--quasars", optarg, &o.frac_qso))) return rc; break;
        case 3: if ((rc = parse_double("simulate", "--anomalies", optarg, &o.frac_anomaly))) return rc; break;
        case 4: o.overwrite = 1; break;
        case 5: lens = 1; break;
        case 6: lo2.cut.path = optarg; break;
        case 7:
            if ((int)(lo2.cut.layout = (cut_layout)cut_layout_parse(optarg)) < 0)
                return usage_error("simulate", "--layout is dir, cube or mef");
            break;
        case 8: lo2.sim.size = atoi(optarg); break;
        case 9: {
            int nb = parse_bands(optarg, bands, CUT_MAX_BANDS);
            if (nb < 1) return usage_error("simulate", "--bands expects names separated by commas");
            lo2.sim.n_bands = nb;
            for (int b = 0; b < nb; b++) snprintf(lo2.sim.band[b], sizeof lo2.sim.band[b], "%.15s", bands[b]);
            break;
        }
        case 10: lo2.sim.pix_scale = atof(optarg); break;
        case 11: lo2.sim.psf_fwhm = atof(optarg); break;
        case 12: lo2.compress = 1; break;
        case 13: lo2.drop_every = atoi(optarg); break;
        case 14: lo2.sim.frac_lens = atof(optarg); break;
        case 'h': {
            sim_cat_opt d;
            sim_cat_opt_init(&d);
            print_simulate_help(&d);
            return 0;
        }
        default: return usage_error("simulate", "unknown option");
        }
    }
    if (optind != argc) return usage_error("simulate", "unexpected argument");
    ody_err e = {0};
    if (lens) {
        if (!o.out || !lo2.cut.path) return usage_error("simulate", "--lens-survey needs -o CATALOG.fits and --cutouts PATH");
        lo2.out = o.out;
        lo2.sim.n = o.n;
        lo2.sim.seed = o.seed;
        if (sim_lens_survey(&lo2, log, &e)) return fail(&e);
        return 0;
    }
    if (sim_catalog(&o, log, &e)) return fail(&e);
    return 0;
}

/* ================================================================ run / check */

static void print_run_help(void)
{
    printf("Usage: oddsky run CONFIG.yaml [options]\n"
           "       oddsky check CONFIG.yaml [options]\n\n"
           "run: ingest -> synthesize -> forest -> weirdness -> similarity -> mlp -> export,\n"
           "into the config's output directory, skipping stages whose settings and inputs\n"
           "have not changed since they last completed there.  check: validate only.\n\n"
           "  --set KEY=VALUE   override a key, e.g. --set forest.n_trees=200 (repeatable)\n"
           "  --from STAGE      redo STAGE and every later one\n"
           "  --force           redo every stage\n"
           "  --print-config    print the effective configuration (defaults filled in) and exit\n"
           "  --top N           rows of the ranked list to print at the end [10]\n\n"
           "Every key, its default and meaning: configs/README.md, or `oddsky check --reference`.\n");
}

static int cmd_run(int argc, char **argv, const ody_log *log, int check_only)
{
    static const struct option lo[] = {
        {"set", required_argument, 0, 's'}, {"from", required_argument, 0, 'f'},
        {"force", no_argument, 0, 'F'},     {"print-config", no_argument, 0, 'p'},
        {"top", required_argument, 0, 't'}, {"reference", no_argument, 0, 'r'},
        {"help", no_argument, 0, 'h'},      {0, 0, 0, 0}};
    const char *cmd = check_only ? "check" : "run";
    char **sets = calloc((size_t)argc + 1, sizeof *sets);
    int nsets = 0, c, print = 0, top = 10, rc = 0;
    run_opt ro;
    run_opt_init(&ro);
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (c) {
        case 's': sets[nsets++] = optarg; break;
        case 'f': ro.from_stage = optarg; break;
        case 'F': ro.force = 1; break;
        case 'p': print = 1; break;
        case 't': top = atoi(optarg); break;
        case 'r': {
            char *md = cfg_reference_markdown();
            if (md) fputs(md, stdout);
            free(md);
            free(sets);
            return 0;
        }
        case 'h': print_run_help(); free(sets); return 0;
        default: free(sets); return usage_error(cmd, "unknown option");
        }
    }
    if (optind != argc - 1) { free(sets); return usage_error(cmd, "give exactly one CONFIG.yaml"); }
    cfg *conf = NULL;
    ody_err e = {0};
    if (cfg_load(argv[optind], sets, nsets, &conf, &e)) { free(sets); return fail(&e); }
    free(sets);
    if (print) {
        char *d = cfg_dump(conf);
        if (d) fputs(d, stdout);
        free(d);
        cfg_destroy(conf);
        return 0;
    }
    if (check_only) {
        printf("%s: ok (%d features, output %s)\n", argv[optind], conf->n_features, conf->output);
        cfg_destroy(conf);
        return 0;
    }
    run_summary sum;
    if (run_pipeline(conf, &ro, &sum, log, &e)) {
        cfg_destroy(conf);
        return fail(&e);
    }
    cfg_destroy(conf);
    if (top > 0) {
        char *table = NULL;
        if (run_top_table(sum.out_dir, top, &table, &e) == 0) {
            printf("Top %d of %zu objects (%s/anomalies.fits):\n%s", top, sum.n_objects, sum.out_dir, table);
            free(table);
        }
    }
    fflush(stdout);
    fprintf(stderr, "oddsky: %zu objects, %d stages run, %d up to date, %.1f s; results in %s/\n",
            sum.n_objects, sum.stages_run, sum.stages_skipped, sum.wall_s, sum.out_dir);
    return rc;
}

/* ================================================================ batch */

static int cmd_batch(int argc, char **argv, const ody_log *log)
{
    static const struct option lo[] = {{"jobs", required_argument, 0, 'j'}, {"help", no_argument, 0, 'h'},
                                       {0, 0, 0, 0}};
    cli_batch_opt o = {0, NULL, NULL};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "j:h", lo, NULL)) != -1) {
        if (c == 'j') o.jobs = atoi(optarg);
        else if (c == 'h') {
            printf("Usage: oddsky batch BATCH.yaml [--jobs N]\n\n"
                   "Runs every run of a batch file (explicit runs and/or a grid over keys), N at a\n"
                   "time [the file's jobs:, else 1].  A failing run does not stop the others; the\n"
                   "summary table is printed and written as batch_summary.csv beside the batch file.\n"
                   "Exit code 1 if any run failed.  Format: configs/README.md.\n");
            return 0;
        } else return usage_error("batch", "unknown option");
    }
    if (optind != argc - 1) return usage_error("batch", "give exactly one BATCH.yaml");
    char self[4096];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len <= 0) return usage_error("batch", "cannot find the oddsky executable");
    self[len] = 0;
    o.exe = self;
    int failed = 0;
    ody_err e = {0};
    if (cli_batch(argv[optind], &o, stdout, &failed, log, &e)) return fail(&e);
    return failed ? 1 : 0;
}

/* ================================================================ lens */

/* Parses "g,r,i" into the band table; returns the count or -1. */
static int parse_bands(const char *s, char band[][32], int max)
{
    int n = 0;
    while (*s && n < max) {
        size_t k = strcspn(s, ",");
        if (k == 0 || k >= 32) return -1;
        memcpy(band[n], s, k);
        band[n][k] = 0;
        n++;
        s += k;
        if (*s == ',') s++;
    }
    return *s ? -1 : n;
}

static void print_lens_help(void)
{
    lens_sim_opt d;
    lens_sim_opt_init(&d);
    printf("Usage: oddsky lens train -o MODEL.fits [options]\n"
           "       oddsky lens score --model MODEL.fits --cutouts PATH --ids ID[,ID...] [options]\n\n"
           "train: simulate strong lenses and look-alikes, train the MLP on them, and report\n"
           "AUROC, precision and recall on a held-out simulation drawn with another seed.\n"
           "  -n N              training cutouts [20000]\n"
           "  --test N          held-out cutouts [4000]\n"
           "  --size S          pixels [%d]       --pixel-scale A   arcsec/pixel [%.2f]\n"
           "  --bands B,B       bands, blue to red [g,r,i]\n"
           "  --psf-fwhm F      arcsec [%.2f]     --moffat          Moffat PSF (else Gaussian)\n"
           "  --sky C           counts/pixel [%.0f]   --zeropoint Z  [%.0f]\n"
           "  --down F          block-average inputs by F [2]\n"
           "  --hidden H,H      hidden layers [128,64]   --epochs E [60]   --seed S [1]\n\n"
           "score: P(lens) for cutouts read like the pipeline's (layout dir|cube|mef).\n"
           "  --layout L  --cutouts PATH (template with {id}, {band})  --bands B,B  --ids LIST\n",
           d.size, d.pix_scale, d.psf_fwhm, d.sky, d.zeropoint);
}

static int cmd_lens(int argc, char **argv, const ody_log *log)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) { print_lens_help(); return argc < 2 ? 2 : 0; }
    int train = !strcmp(argv[1], "train");
    if (!train && strcmp(argv[1], "score")) return usage_error("lens", "use `lens train` or `lens score`");
    static const struct option lo[] = {
        {"out", required_argument, 0, 'o'},      {"n", required_argument, 0, 'n'},
        {"test", required_argument, 0, 't'},     {"size", required_argument, 0, 's'},
        {"pixel-scale", required_argument, 0, 1}, {"bands", required_argument, 0, 2},
        {"psf-fwhm", required_argument, 0, 3},   {"moffat", no_argument, 0, 4},
        {"sky", required_argument, 0, 5},        {"zeropoint", required_argument, 0, 6},
        {"down", required_argument, 0, 7},       {"hidden", required_argument, 0, 8},
        {"epochs", required_argument, 0, 9},     {"seed", required_argument, 0, 10},
        {"model", required_argument, 0, 11},     {"cutouts", required_argument, 0, 12},
        {"ids", required_argument, 0, 13},       {"layout", required_argument, 0, 14},
        {"help", no_argument, 0, 'h'},           {0, 0, 0, 0}};
    lens_sim_opt so;
    lens_sim_opt_init(&so);
    so.n = 20000;
    lens_prep prep;
    lens_prep_init(&prep);
    nn_train_opt to;
    nn_train_opt_init(&to);
    to.max_epochs = 60;
    to.lr = 0.01;
    int hidden[8] = {128, 64}, nh = 2, c;
    size_t n_test = 4000;
    const char *out = NULL, *model = NULL, *cutouts = NULL, *idlist = NULL;
    char bands[CUT_MAX_BANDS][32];
    int nb = -1, layout = CUT_DIR;
    optind = 2;
    while ((c = getopt_long(argc, argv, "o:n:t:s:h", lo, NULL)) != -1) {
        switch (c) {
        case 'o': out = optarg; break;
        case 'n': so.n = (size_t)atol(optarg); break;
        case 't': n_test = (size_t)atol(optarg); break;
        case 's': so.size = atoi(optarg); break;
        case 1: so.pix_scale = atof(optarg); break;
        case 2:
            nb = parse_bands(optarg, bands, CUT_MAX_BANDS);
            if (nb < 1) return usage_error("lens", "--bands expects names separated by commas");
            break;
        case 3: so.psf_fwhm = atof(optarg); break;
        case 4: so.moffat = 1; break;
        case 5: so.sky = atof(optarg); break;
        case 6: so.zeropoint = atof(optarg); break;
        case 7: prep.down = atoi(optarg); break;
        case 8: {
            char *e, *p = optarg;
            nh = 0;
            while (*p && nh < 8) { hidden[nh++] = (int)strtol(p, &e, 10); p = *e == ',' ? e + 1 : e; if (e == p && *p) break; }
            break;
        }
        case 9: to.max_epochs = atoi(optarg); break;
        case 10: so.seed = (uint64_t)atoll(optarg); to.seed = so.seed; break;
        case 11: model = optarg; break;
        case 12: cutouts = optarg; break;
        case 13: idlist = optarg; break;
        case 14:
            layout = cut_layout_parse(optarg);
            if (layout < 0) return usage_error("lens", "--layout is dir, cube or mef");
            break;
        case 'h': print_lens_help(); return 0;
        default: return usage_error("lens", "unknown option");
        }
    }
    ody_err e = {0};
    if (train) {
        if (!out) return usage_error("lens", "train needs -o MODEL.fits");
        if (nb > 0) {
            so.n_bands = nb;
            for (int b = 0; b < nb; b++) snprintf(so.band[b], sizeof so.band[b], "%.15s", bands[b]);
        }
        prep.size = so.size;
        prep.n_bands = so.n_bands;
        nn_model *m = NULL;
        lens_eval ev;
        if (lens_train(&so, &prep, &to, hidden, nh, n_test, &m, &ev, log, &e)) return fail(&e);
        int rc = lens_model_save(out, m, &to, &prep, &so, &ev, &e);
        nn_destroy(m);
        if (rc) return fail(&e);
        printf("held-out simulation (%zu cutouts, seed %llu): AUROC %.4f, precision %.3f, recall %.3f at P > 0.5\n"
               "model: %s\n", ev.n_test, (unsigned long long)(so.seed + 7919), ev.auroc, ev.precision, ev.recall, out);
        return 0;
    }
    if (!model || !cutouts || !idlist) return usage_error("lens", "score needs --model, --cutouts and --ids");
    nn_model *m = NULL;
    if (lens_model_load(model, &m, &prep, &e)) return fail(&e);
    cut_opt co;
    cut_opt_init(&co);
    co.layout = (cut_layout)layout;
    co.path = cutouts;
    co.size = prep.size;
    co.n_bands = nb > 0 ? nb : prep.n_bands;
    for (int b = 0; b < co.n_bands && nb > 0; b++) snprintf(co.band[b], sizeof co.band[b], "%s", bands[b]);
    if (co.n_bands != prep.n_bands) { nn_destroy(m); return usage_error("lens", "--bands must list as many bands as the model was trained on"); }
    /* IDs: a comma-separated list as a string column */
    size_t nid = 1;
    for (const char *p = idlist; *p; p++) nid += *p == ',';
    cat_col ids = {0};
    ids.type = CAT_COL_STRING;
    ids.width = 63;
    ids.s = calloc(nid, 64);
    size_t k = 0;
    for (const char *p = idlist; *p && k < nid; k++) {
        size_t l = strcspn(p, ",");
        snprintf(ids.s + k * 64, 64, "%.*s", (int)(l < 63 ? l : 63), p);
        p += l;
        if (*p == ',') p++;
    }
    cut_set *cs = NULL;
    int rc = 0;
    if (cut_read(&co, &ids, k, &cs, log, &e)) rc = fail(&e);
    double *p = rc ? NULL : malloc(k * sizeof *p);
    if (!rc && lens_score(m, &prep, cs->pix, k, p, &e)) rc = fail(&e);
    for (size_t q = 0; !rc && q < k; q++)
        printf("%s %s %.4f\n", ids.s + q * 64, cs->have[q] ? "found" : "missing", cs->have[q] ? p[q] : NAN);
    free(p);
    free(ids.s);
    cut_destroy(cs);
    nn_destroy(m);
    return rc;
}

/* ================================================================ main */

static void print_help(void)
{
    printf("oddsky %s — find the weirdest objects in a survey catalog\n\n"
           "Usage: oddsky [-v|-q] COMMAND [options]\n\n"
           "Commands:\n"
           "  run CONFIG.yaml     run the pipeline (see `oddsky run --help`)\n"
           "  check CONFIG.yaml   validate a config; --print-config shows every key\n"
           "  batch BATCH.yaml    run many configs / a grid, N at a time\n"
           "  lens train|score    train the lens classifier on simulations / score cutouts\n"
           "  inspect FILE        list HDUs, columns, types, units and null counts\n"
           "  simulate -o FILE    write a mock survey catalog with injected anomalies\n\n"
           "Options:\n"
           "  -v, --verbose       debug log lines on stderr\n"
           "  -q, --quiet         errors only (the run log in the output directory keeps all)\n"
           "  -h, --help          this help; `oddsky COMMAND --help` for a command\n"
           "  -V, --version       print the version\n\n"
           "Exit codes: 0 success, 2 bad input (file, column, config), 1 other failure.\n",
           ody_version());
}

int main(int argc, char **argv)
{
    ody_log log = {ODY_LOG_INFO, stderr, NULL};
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { print_help(); return 0; }
        if (!strcmp(a, "-V") || !strcmp(a, "--version")) { printf("oddsky %s\n", ody_version()); return 0; }
        if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) { log.level = ODY_LOG_DEBUG; continue; }
        if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) { log.level = ODY_LOG_ERROR; continue; }
        fprintf(stderr, "oddsky: error: unknown option '%s' — run `oddsky --help`\n", a);
        return 2;
    }
    if (i >= argc) {
        fprintf(stderr, "oddsky: error: no command given — run `oddsky --help`\n");
        return 2;
    }
    const char *cmd = argv[i];
    int sub_argc = argc - i;
    char **sub_argv = argv + i;
    if (!strcmp(cmd, "inspect")) return cmd_inspect(sub_argc, sub_argv);
    if (!strcmp(cmd, "run")) return cmd_run(sub_argc, sub_argv, &log, 0);
    if (!strcmp(cmd, "check")) return cmd_run(sub_argc, sub_argv, &log, 1);
    if (!strcmp(cmd, "batch")) return cmd_batch(sub_argc, sub_argv, &log);
    if (!strcmp(cmd, "lens")) return cmd_lens(sub_argc, sub_argv, &log);
    if (!strcmp(cmd, "simulate")) return cmd_simulate(sub_argc, sub_argv, &log);
    if (!strcmp(cmd, "help")) { print_help(); return 0; }
    fprintf(stderr, "oddsky: error: unknown command '%s' — run `oddsky --help`\n", cmd);
    return 2;
}
