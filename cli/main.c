/* main.c — the oddsky command line: parse, run, free.  All work is in the
 * library; the cmd_*.c files turn argv into option structs and results into
 * text on stdout. */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "par.h"
#include "run.h"

/* ================================================================ shared */

int cli_fail(const ody_err *e)
{
    if (e->msg[0]) fprintf(stderr, "oddsky: error: %s\n", e->msg);  /* empty: another process of the run said it */
    return ody_exit_code(e->code);
}

void cli_print_top(const char *dir, int top, size_t n_objects)
{
    char *table = NULL;
    ody_err e = {0};
    if (top < 1 || run_top_table(dir, top, &table, &e)) return;  /* no FITS export: nothing to show */
    printf("Top %d of %zu objects (%s/anomalies.fits):\n%s", top, n_objects, dir, table);
    free(table);
}

int cli_usage_error(const char *cmd, const char *what)
{
    fprintf(stderr, "oddsky: error: %s: %s — run `oddsky %s --help`\n", cmd, what, cmd);
    return 2;
}

int cli_bad_option(const char *cmd, char *const *argv, const char *shortopts)
{
    /* getopt_long sets optopt to the option's value when its argument is
     * missing, and to 0 for an unknown long option; for a short option it is
     * the letter either way, known when shortopts lists it */
    const char *arg = optind > 0 ? argv[optind - 1] : "";
    /* inside a cluster ("-xy" at its x), getopt has not moved optind on:
     * argv[optind] is the cluster itself, argv[optind - 1] the argument
     * before it (which may be a long option, read wrongly as the culprit) */
    const char *cur = argv[optind];
    if (optopt && cur && cur[0] == '-' && cur[1] && cur[1] != '-' && strchr(cur + 1, optopt)) arg = cur;
    int is_long = !strncmp(arg, "--", 2);
    int missing = optopt && (is_long || (optopt < 128 && strchr(shortopts, optopt)));
    char what[320];
    if (missing && is_long) snprintf(what, sizeof what, "option '%.200s' needs a value", arg);
    else if (missing) snprintf(what, sizeof what, "option '-%c' needs a value", optopt);
    else if (is_long) snprintf(what, sizeof what, "unknown option '%.200s'", arg);
    else snprintf(what, sizeof what, "unknown option '-%c'", optopt ? optopt : '?');
    return cli_usage_error(cmd, what);
}

int cli_parse_int(const char *cmd, const char *opt, const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (end == s || *end || errno || v < lo || v > hi) {
        char what[256];
        snprintf(what, sizeof what, "%s expects a whole number from %ld to %ld, got '%.64s'", opt, lo, hi, s);
        return cli_usage_error(cmd, what);
    }
    *out = v;
    return 0;
}

int cli_parse_double(const char *cmd, const char *opt, const char *s, double lo, double hi, double *out)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end || !(v >= lo && v <= hi)) {  /* NaN and infinities fail the range */
        char what[200];
        snprintf(what, sizeof what, "%s expects a number from %g to %g, got '%.64s'", opt, lo, hi, s);
        return cli_usage_error(cmd, what);
    }
    *out = v;
    return 0;
}

int cli_parse_bands(const char *s, char band[][32], int max)
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

/* ================================================================ main */

static void print_help(void)
{
    printf("oddsky %s — find the weirdest objects in a survey catalog\n\n"
           "Usage: oddsky [-v|-q] COMMAND [options]\n\n"
           "Commands:\n"
           "  run CONFIG.yaml     run the pipeline (see `oddsky run --help`)\n"
           "  check CONFIG.yaml   validate a config and open its catalog (columns, types, ID)\n"
           "                      without running; --print-config shows every key\n"
           "  batch BATCH.yaml    run many configs / a grid, N at a time\n"
           "  lens train|score    train the lens classifier on simulations / score cutouts\n"
           "  inspect FILE        list HDUs, columns, types, units, null counts and ranges\n"
           "  compare RUN_A RUN_B how two runs' rankings differ: top-k overlap, rank correlation\n"
           "  next RUN_DIR|CONFIG the objects to look at next, re-ranked from your labels\n"
           "  label RUN_DIR|CONFIG ID 1|0   record a verdict (1 interesting, 0 not) in `labels:`\n"
           "  report RUN_DIR      the HTML report: RUN_DIR/report/index.html, open it from disk\n"
           "  serve RUN_DIR       a review page on 127.0.0.1: look, click interesting / not, re-rank\n"
           "  score RUN_DIR CAT   a finished run's models applied to new objects (a new release, a night)\n"
           "  simulate -o FILE    write a mock survey catalog with injected anomalies\n\n"
           "Options:\n"
           "  -v, --verbose       debug log lines on stderr\n"
           "  -q, --quiet         warnings and errors only (the run log in the output directory keeps all)\n"
           "  -h, --help          this help; `oddsky COMMAND --help` for a command\n"
           "  -V, --version       print the version\n\n"
           "Exit codes: 0 success, 2 bad input (file, column, config) or an output that cannot be written, 1 other failure.\n",
           ody_version());
}

/* The command's function (its exit code). */
static int dispatch(const char *cmd, int argc, char **argv, ody_log *log, const ody_comm *comm)
{
    if (!strcmp(cmd, "inspect")) return cli_inspect(argc, argv);
    if (!strcmp(cmd, "compare")) return cli_compare(argc, argv);
    if (!strcmp(cmd, "next")) return cli_next(argc, argv, log);
    if (!strcmp(cmd, "label")) return cli_label(argc, argv);
    if (!strcmp(cmd, "report")) return cli_report(argc, argv, log);
    if (!strcmp(cmd, "serve")) return cli_serve(argc, argv, log);
    if (!strcmp(cmd, "score")) return cli_score(argc, argv, log);
    if (!strcmp(cmd, "run")) return cli_run(argc, argv, log, 0, comm);
    if (!strcmp(cmd, "check")) return cli_run(argc, argv, log, 1, NULL);
    if (!strcmp(cmd, "batch")) return cli_batch_cmd(argc, argv, log);
    if (!strcmp(cmd, "lens")) return cli_lens(argc, argv, log);
    if (!strcmp(cmd, "simulate")) return cli_simulate(argc, argv, log);
    if (!strcmp(cmd, "help")) { print_help(); return 0; }
    fprintf(stderr, "oddsky: error: unknown command '%s' — run `oddsky --help`\n", cmd);
    return 2;
}

int main(int argc, char **argv)
{
    /* Blocks of 4 MB and more from the system, and back to it when freed.
     * glibc otherwise raises this bound to the largest block freed (up to
     * 32 MB), and the stages' large temporaries then come from the heap,
     * whose freed middle it keeps: a run's peak memory grew by tens of MB
     * with the order the stages happen to free in. */
    mallopt(M_MMAP_THRESHOLD, 4 << 20);
    opterr = 0;  /* the commands say what was wrong with an option, in one line */
    ody_log log = {ODY_LOG_INFO, stderr, NULL};
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { print_help(); return 0; }
        if (!strcmp(a, "-V") || !strcmp(a, "--version")) { printf("oddsky %s\n", ody_version()); return 0; }
        if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) { log.level = ODY_LOG_DEBUG; continue; }
        if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) { log.level = ODY_LOG_WARN; continue; }
        fprintf(stderr, "oddsky: error: unknown option '%s' — run `oddsky --help`\n", a);
        return 2;
    }
    if (i >= argc) {
        fprintf(stderr, "oddsky: error: no command given — run `oddsky --help`\n");
        return 2;
    }
    const char *cmd = argv[i];
    /* -q / -v after the command too (`oddsky run cfg.yaml -q`): no command
     * has options of those names, so they are taken out here */
    int sub_argc = 0;
    char **sub_argv = argv + i;
    for (int k = i, opts = 1; k < argc; k++) {
        const char *a = argv[k];
        if (!strcmp(a, "--")) opts = 0;
        if (opts && k > i && (!strcmp(a, "-q") || !strcmp(a, "--quiet"))) { log.level = ODY_LOG_WARN; continue; }
        if (opts && k > i && (!strcmp(a, "-v") || !strcmp(a, "--verbose"))) { log.level = ODY_LOG_DEBUG; continue; }
        sub_argv[sub_argc++] = argv[k];
    }
    ody_comm *comm = NULL;
    ody_err e = {0};
    if (par_init(&comm, &e)) return cli_fail(&e);
    if (ody_comm_size(comm) > 1 && strcmp(cmd, "run")) {
        if (comm->rank == 0)
            fprintf(stderr, "oddsky: error: `oddsky %s` runs as one process — only `oddsky run` is distributed over "
                    "mpirun; start it without mpirun\n", cmd);
        par_finish(comm);
        return 2;
    }
    int rc = dispatch(cmd, sub_argc, sub_argv, &log, comm);
    par_finish(comm);
    return rc;
}
