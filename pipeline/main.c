/* main.c — the oddsky command line: parse, run, free.  All work is in the
 * library; this file only turns argv into option structs and results into
 * text on stdout. */
#define _GNU_SOURCE
#include <fitsio.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cat.h"
#include "cfg.h"
#include "ody.h"
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
           "      --overwrite      replace OUT if it exists\n",
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

static int cmd_simulate(int argc, char **argv, const ody_log *log)
{
    static const struct option lo[] = {
        {"out", required_argument, 0, 'o'},   {"n", required_argument, 0, 'n'},
        {"seed", required_argument, 0, 's'},  {"stars", required_argument, 0, 1},
        {"quasars", required_argument, 0, 2}, {"anomalies", required_argument, 0, 3},
        {"overwrite", no_argument, 0, 4},     {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    sim_cat_opt o;
    sim_cat_opt_init(&o);
    int c, rc;
    double v;
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
        case 'h': { sim_cat_opt d; sim_cat_opt_init(&d); print_simulate_help(&d); return 0; }
        default: return usage_error("simulate", "unknown option");
        }
    }
    if (optind != argc) return usage_error("simulate", "unexpected argument");
    ody_err e = {0};
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
    run_batch_opt o = {0, NULL, NULL};
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
    if (run_batch(argv[optind], &o, stdout, &failed, log, &e)) return fail(&e);
    return failed ? 1 : 0;
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
    if (!strcmp(cmd, "simulate")) return cmd_simulate(sub_argc, sub_argv, &log);
    if (!strcmp(cmd, "help")) { print_help(); return 0; }
    fprintf(stderr, "oddsky: error: unknown command '%s' — run `oddsky --help`\n", cmd);
    return 2;
}
