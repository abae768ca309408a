/* cmd_score.c — `oddsky score`: train once, score many. */
#define _GNU_SOURCE
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "cli.h"
#include "run.h"

static void print_help(void)
{
    printf("Usage: oddsky score RUN_DIR|CONFIG.yaml CATALOG [-o OUT] [--top N] [--set KEY=VALUE ...]\n\n"
           "Applies a finished run's models to the objects of CATALOG (a new data release,\n"
           "a night of alerts), read as the run read its own catalog, and writes the run's\n"
           "export formats with the same columns into OUT (a pass-through column CATALOG\n"
           "lacks is left out, and the run's log says so).  The run's catalog stays the\n"
           "reference: new objects get weirdness and the forest vote from its forests,\n"
           "isolation, their nearest objects among its objects (kNN distance, LOF, WHY),\n"
           "the MLP, and the default score from the run's medians and spreads.  An object\n"
           "whose ID and features are those of a run object gets that object's values\n"
           "exactly.  The run is not changed; it must be finished (`oddsky run` first).\n\n"
           "  -o, --output OUT  folder for the exports [RUN_DIR/scored_<catalog name>]\n"
           "  --top N           print the top N [10]; 0: none\n"
           "  --set KEY=VALUE   override a key of the run's config that does not change\n"
           "                    its results (threads, export.formats, export.top)\n"
           "  -h, --help        this help\n");
}

/* RUN/scored_<file name without directory, extension or filter>. */
static void default_out(const cfg *c, const char *catalog, char *out, size_t len)
{
    const char *b = strrchr(catalog, '/');
    b = b ? b + 1 : catalog;
    size_t k = strcspn(b, ".[");
    snprintf(out, len, "%s/scored_%.*s", c->output, (int)k, b);
}

int cli_score(int argc, char **argv, const ody_log *log)
{
    static const struct option lo[] = {{"output", required_argument, 0, 'o'}, {"top", required_argument, 0, 't'},
                                       {"set", required_argument, 0, 's'}, {"help", no_argument, 0, 'h'},
                                       {0, 0, 0, 0}};
    char **sets = calloc((size_t)argc + 1, sizeof *sets), out[4300] = "";
    if (!sets) return cli_usage_error("score", "out of memory");
    int nsets = 0, c, rc = -1;
    long top = 10;
    const char *out_arg = NULL;
    optind = 1;
    while (rc < 0 && (c = getopt_long(argc, argv, "o:h", lo, NULL)) != -1) {
        if (c == 'o') out_arg = optarg;
        else if (c == 's') sets[nsets++] = optarg;
        else if (c == 't') { if (cli_parse_int("score", "--top", optarg, 0, 100000, &top)) rc = 2; }
        else if (c == 'h') { print_help(); rc = 0; }
        else rc = cli_bad_option("score", argv, "o:h");
    }
    if (rc < 0 && argc - optind != 2) rc = cli_usage_error("score", "give a RUN_DIR (or its CONFIG.yaml) and a CATALOG");
    cfg *conf = NULL;
    if (rc < 0) rc = cli_load_target("score", argv[optind], sets, nsets, &conf);
    free(sets);
    if (rc > 0 || (rc == 0 && !conf)) return rc;
    const char *catalog = argv[optind + 1];
    if (out_arg) snprintf(out, sizeof out, "%s", out_arg);
    else default_out(conf, catalog, out, sizeof out);
    run_summary sum;
    ody_err e = {0};
    ody_log quiet = *log;  /* the run is read back: its stage lines only in its log */
    if (quiet.level > ODY_LOG_WARN) quiet.level = ODY_LOG_WARN;
    rc = run_score(conf, catalog, out, &sum, &quiet, &e);
    char run_dir[4200];
    snprintf(run_dir, sizeof run_dir, "%s", conf->output);
    cfg_destroy(conf);
    if (rc) return cli_fail(&e);
    cli_print_top(out, (int)top, sum.n_objects);
    fflush(stdout);
    fprintf(stderr, "oddsky: %zu objects scored with the run in %s/, %.1f s; results in %s/\n", sum.n_objects, run_dir,
            sum.wall_s, out);
    return 0;
}
