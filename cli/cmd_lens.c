/* cmd_lens.c — `oddsky lens train|score`: the lens classifier on its own.
 * Its defaults are the config's (lens.*, cutouts.size), so a model trained
 * here matches one a run trains with the same settings. */
#define _GNU_SOURCE
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cfg.h"
#include "cli.h"
#include "cutout.h"
#include "lens.h"

/* Everything `lens train` and `lens score` take. */
typedef struct lens_args {
    lens_sim_opt so;
    lens_prep prep;
    nn_train_opt to;
    int hidden[8], n_hidden;
    size_t n_test;
    const char *out, *model, *cutouts, *ids;
    char bands[CUT_MAX_BANDS][32];
    int n_bands;             /* -1: not given */
    int layout;
    int overwrite;           /* --overwrite: replace -o whatever it holds */
} lens_args;

/* Defaults from the config schema: one source for both. */
static int lens_args_init(lens_args *a)
{
    cfg *d = cfg_defaults();
    if (!d) return -1;
    memset(a, 0, sizeof *a);
    lens_sim_opt_init(&a->so);
    a->so.n = (size_t)d->lens_train_n;
    a->so.size = d->cut_size;
    a->so.pix_scale = d->lens_pix;
    a->so.psf_fwhm = d->lens_psf;
    a->so.seed = (uint64_t)d->seed;
    lens_prep_init(&a->prep);
    a->prep.down = d->lens_down;
    nn_train_opt_init(&a->to);
    a->to.max_epochs = d->lens_epochs;
    a->to.seed = a->so.seed;
    a->to.n_threads = a->so.n_threads = a->prep.n_threads = d->threads;
    int hidden[] = LENS_HIDDEN_DEFAULT;
    a->n_hidden = (int)(sizeof hidden / sizeof *hidden);
    memcpy(a->hidden, hidden, sizeof hidden);
    a->n_test = (size_t)d->lens_test_n;
    a->n_bands = -1;
    a->layout = CUT_DIR;
    cfg_destroy(d);
    return 0;
}

static void print_lens_help(void)
{
    lens_args d;
    if (lens_args_init(&d)) return;
    printf("Usage: oddsky lens train -o MODEL.fits [options]\n"
           "       oddsky lens score --model MODEL.fits --cutouts PATH --ids ID[,ID...] [options]\n\n"
           "train: simulate strong lenses and look-alikes, train the MLP on them, and report\n"
           "AUROC, precision and recall on a held-out simulation drawn with another seed.\n"
           "Defaults are the config's (lens.*, cutouts.size).\n"
           "  -n N              training cutouts [%zu]\n"
           "  --test N          held-out cutouts [%zu]\n"
           "  --size S          pixels [%d]       --pixel-scale A   arcsec/pixel [%.2f]\n"
           "  --bands B,B       bands, blue to red [g,r,i]\n"
           "  --psf-fwhm F      arcsec [%.2f]     --moffat          Moffat PSF (else Gaussian)\n"
           "  --sky C           counts/pixel [%.0f]   --zeropoint Z  [%.0f]\n"
           "  --down F          block-average inputs by F [%d]\n"
           "  --hidden H,H      hidden layers [%d,%d]   --epochs E [%d]   --seed S [%llu]\n"
           "  --overwrite       replace -o even when it is not a lens model (a lens model is\n"
           "                    replaced anyway: retraining)\n\n"
           "score: P(lens) for cutouts read like the pipeline's (layout dir|cube|mef).\n"
           "  --layout L  --cutouts PATH (template with {id}, {band})  --bands B,B  --ids LIST\n",
           d.so.n, d.n_test, d.so.size, d.so.pix_scale, d.so.psf_fwhm, d.so.sky, d.so.zeropoint, d.prep.down,
           d.hidden[0], d.hidden[1], d.to.max_epochs, (unsigned long long)d.so.seed);
}

/* "128,64" into a->hidden. */
static int parse_hidden(lens_args *a, const char *s)
{
    a->n_hidden = 0;
    while (*s) {
        char *e;
        long v = strtol(s, &e, 10);
        if (e == s || v < 1 || v > 1 << 20 || a->n_hidden >= 8 || (*e && *e != ',')) return -1;
        a->hidden[a->n_hidden++] = (int)v;
        s = *e == ',' ? e + 1 : e;
    }
    return a->n_hidden ? 0 : -1;
}

/* One option; returns 0 or an exit code. */
static int lens_option(lens_args *a, int c, const char *v)
{
    long x = 0;
    double f = 0;
    int rc = 0;
    switch (c) {
    case 'o': a->out = v; break;
    case 'n': if (!(rc = cli_parse_int("lens", "-n", v, 1, 10000000, &x))) a->so.n = (size_t)x; break;
    case 't': if (!(rc = cli_parse_int("lens", "--test", v, 1, 10000000, &x))) a->n_test = (size_t)x; break;
    case 's': if (!(rc = cli_parse_int("lens", "--size", v, 8, 1024, &x))) a->so.size = (int)x; break;
    case 1: if (!(rc = cli_parse_double("lens", "--pixel-scale", v, 1e-4, 100, &f))) a->so.pix_scale = f; break;
    case 2:
        a->n_bands = cli_parse_bands(v, a->bands, CUT_MAX_BANDS);
        if (a->n_bands < 1) rc = cli_usage_error("lens", "--bands expects names separated by commas");
        break;
    case 3: if (!(rc = cli_parse_double("lens", "--psf-fwhm", v, 1e-4, 100, &f))) a->so.psf_fwhm = f; break;
    case 4: a->so.moffat = 1; break;
    case 5: if (!(rc = cli_parse_double("lens", "--sky", v, 0, 1e12, &f))) a->so.sky = f; break;
    case 6: if (!(rc = cli_parse_double("lens", "--zeropoint", v, 0, 100, &f))) a->so.zeropoint = f; break;
    case 7: if (!(rc = cli_parse_int("lens", "--down", v, 1, 64, &x))) a->prep.down = (int)x; break;
    case 8: if (parse_hidden(a, v)) rc = cli_usage_error("lens", "--hidden expects sizes separated by commas, e.g. 128,64"); break;
    case 9: if (!(rc = cli_parse_int("lens", "--epochs", v, 1, 100000, &x))) a->to.max_epochs = (int)x; break;
    case 10:
        if (!(rc = cli_parse_int("lens", "--seed", v, 0, 0x7fffffffffffffffL, &x))) a->so.seed = a->to.seed = (uint64_t)x;
        break;
    case 11: a->model = v; break;
    case 12: a->cutouts = v; break;
    case 13: a->ids = v; break;
    case 14:
        a->layout = cut_layout_parse(v);
        if (a->layout < 0) rc = cli_usage_error("lens", "--layout is dir, cube or mef");
        break;
    case 15: a->overwrite = 1; break;
    default: rc = cli_usage_error("lens", "unknown option");
    }
    return rc;
}

static int lens_parse(lens_args *a, int argc, char **argv)
{
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
        {"overwrite", no_argument, 0, 15},       {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    int c, rc = 0;
    optind = 2;
    while (!rc && (c = getopt_long(argc, argv, "o:n:t:s:h", lo, NULL)) != -1) {
        if (c == 'h') { print_lens_help(); return -1; }
        if (c == '?') return cli_bad_option("lens", argv, "o:n:t:s:h");
        rc = lens_option(a, c, optarg);
    }
    if (!rc && optind != argc) rc = cli_usage_error("lens", "unexpected argument");
    return rc;
}

/* ================================================================ train */

/* Whether path holds a lens model (which retraining may replace). */
static int is_lens_model(const char *path)
{
    nn_model *m = NULL;
    lens_prep p;
    ody_err e = {0};
    int yes = lens_model_load(path, &m, &p, &e) == 0;
    nn_destroy(m);
    return yes;
}

static int lens_train_cmd(lens_args *a, const ody_log *log)
{
    if (!a->out) return cli_usage_error("lens", "train needs -o MODEL.fits");
    /* checked before training: -o naming a catalog once replaced it with the model, after minutes of work */
    if (!a->overwrite && access(a->out, F_OK) == 0 && !is_lens_model(a->out)) {
        fprintf(stderr, "oddsky: error: %s: exists and is not a lens model — choose another -o, or pass --overwrite "
                "to replace it\n", a->out);
        return 2;
    }
    if (a->n_bands > 0) {
        a->so.n_bands = a->n_bands;
        for (int b = 0; b < a->n_bands; b++) snprintf(a->so.band[b], sizeof a->so.band[b], "%.15s", a->bands[b]);
    }
    a->prep.size = a->so.size;
    a->prep.n_bands = a->so.n_bands;
    nn_model *m = NULL;
    lens_eval ev;
    ody_err e = {0};
    if (lens_train(&a->so, &a->prep, &a->to, a->hidden, a->n_hidden, a->n_test, &m, &ev, log, &e)) return cli_fail(&e);
    int rc = lens_model_save(a->out, m, &a->to, &a->prep, &a->so, &ev, &e);
    nn_destroy(m);
    if (rc) return cli_fail(&e);
    char line[LENS_EVAL_STR];
    printf("held-out simulation (%zu cutouts, seed %llu): %s\nmodel: %s\n", ev.n_test,
           (unsigned long long)(a->so.seed + 7919), lens_eval_str(&ev, line, sizeof line), a->out);
    return 0;
}

/* ================================================================ score */

/* The comma-separated IDs as a string column of 63-character values. */
/* "a,b,c" into a string column; 0, or an exit code when an ID is empty (",,", a trailing comma, an empty
 * list: they were scored as "missing") or longer than 63 characters (it was cut, and then not found). */
static int id_column(const char *list, cat_col *ids, size_t *n)
{
    size_t nid = 1, k = 0;
    for (const char *p = list; *p; p++) nid += *p == ',';
    memset(ids, 0, sizeof *ids);
    ids->type = CAT_COL_STRING;
    ids->width = 63;
    ids->s = calloc(nid, 64);
    if (!ids->s) return cli_usage_error("lens", "out of memory for --ids");
    for (const char *p = list; k < nid; k++) {
        size_t l = strcspn(p, ",");
        if (!l || l > 63) {
            free(ids->s);
            ids->s = NULL;
            return cli_usage_error("lens", !l ? "--ids has an empty ID (an empty list, two commas, or one at an "
                                               "end): give IDs separated by single commas"
                                              : "--ids holds an ID of more than 63 characters: check the list");
        }
        snprintf(ids->s + k * 64, 64, "%.*s", (int)l, p);
        p += l;
        if (*p == ',') p++;
    }
    *n = k;
    return 0;
}

static int score_cutouts(const lens_args *a, const cat_col *ids, size_t k, const nn_model *m, const lens_prep *prep,
                         const ody_log *log)
{
    cut_opt co;
    cut_opt_init(&co);
    co.layout = (cut_layout)a->layout;
    co.path = a->cutouts;
    co.size = prep->size;
    co.n_bands = a->n_bands > 0 ? a->n_bands : prep->n_bands;
    for (int b = 0; b < co.n_bands && a->n_bands > 0; b++) snprintf(co.band[b], sizeof co.band[b], "%s", a->bands[b]);
    if (co.n_bands != prep->n_bands)
        return cli_usage_error("lens", "--bands must list as many bands as the model was trained on");
    cut_set *cs = NULL;
    ody_err e = {0};
    int rc = cut_read(&co, ids, k, &cs, log, &e) ? cli_fail(&e) : 0;
    double *p = rc ? NULL : malloc(k * sizeof *p);
    if (!rc && !p) rc = cli_usage_error("lens", "out of memory");
    if (!rc && lens_score(m, prep, cs->pix, k, p, &e)) rc = cli_fail(&e);
    for (size_t q = 0; !rc && q < k; q++)
        printf("%s %s %.4f\n", ids->s + q * 64, cs->have[q] ? "found" : "missing", cs->have[q] ? p[q] : NAN);
    free(p);
    cut_destroy(cs);
    return rc;
}

static int lens_score_cmd(const lens_args *a, const ody_log *log)
{
    if (!a->model || !a->cutouts || !a->ids) return cli_usage_error("lens", "score needs --model, --cutouts and --ids");
    cat_col ids;
    size_t k = 0;
    int rc = id_column(a->ids, &ids, &k);  /* the list checked before the model is read */
    if (rc) return rc;
    nn_model *m = NULL;
    lens_prep prep;
    ody_err e = {0};
    rc = lens_model_load(a->model, &m, &prep, &e) ? cli_fail(&e) : score_cutouts(a, &ids, k, m, &prep, log);
    nn_destroy(m);
    free(ids.s);
    return rc;
}

int cli_lens(int argc, char **argv, const ody_log *log)
{
    if (argc < 2) return cli_usage_error("lens", "give `lens train` or `lens score`");
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        print_lens_help();
        return 0;
    }
    int train = !strcmp(argv[1], "train");
    if (!train && strcmp(argv[1], "score")) return cli_usage_error("lens", "use `lens train` or `lens score`");
    lens_args a;
    if (lens_args_init(&a)) return cli_usage_error("lens", "out of memory");
    int rc = lens_parse(&a, argc, argv);
    if (rc) return rc < 0 ? 0 : rc;
    return train ? lens_train_cmd(&a, log) : lens_score_cmd(&a, log);
}
