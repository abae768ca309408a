/* main.c — the oddsky command line: parse, run, free.  All work is in the
 * library; this file only turns argv into option structs and results into
 * text on stdout. */
#define _GNU_SOURCE
#include <fitsio.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cat.h"
#include "ody.h"
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

/* ================================================================ main */

static void print_help(void)
{
    printf("oddsky %s — find the weirdest objects in a survey catalog\n\n"
           "Usage: oddsky [-v|-q] COMMAND [options]\n\n"
           "Commands:\n"
           "  inspect FILE        list HDUs, columns, types, units and null counts\n"
           "  simulate -o FILE    write a mock survey catalog with injected anomalies\n\n"
           "Options:\n"
           "  -v, --verbose       more log lines on stderr (repeat for debug)\n"
           "  -q, --quiet         errors only\n"
           "  -h, --help          this help; `oddsky COMMAND --help` for a command\n"
           "  -V, --version       print the version\n\n"
           "Exit codes: 0 success, 2 bad input (file, column, config), 1 other failure.\n",
           ody_version());
}

int main(int argc, char **argv)
{
    ody_log log = {ODY_LOG_WARN, stderr, NULL};
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { print_help(); return 0; }
        if (!strcmp(a, "-V") || !strcmp(a, "--version")) { printf("oddsky %s\n", ody_version()); return 0; }
        if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) { log.level = log.level < ODY_LOG_INFO ? ODY_LOG_INFO : ODY_LOG_DEBUG; continue; }
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
    if (!strcmp(cmd, "simulate")) return cmd_simulate(sub_argc, sub_argv, &log);
    if (!strcmp(cmd, "help")) { print_help(); return 0; }
    fprintf(stderr, "oddsky: error: unknown command '%s' — run `oddsky --help`\n", cmd);
    return 2;
}
