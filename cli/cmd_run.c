/* cmd_run.c — `oddsky run`, `check` and `batch`. */
#define _GNU_SOURCE
#include <errno.h>
#include <fitsio.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cfg.h"
#include "cli.h"
#include "run.h"

static void print_run_help(void)
{
    printf("Usage: oddsky run CONFIG.yaml [options]\n"
           "       oddsky check CONFIG.yaml [options]\n\n"
           "run: ");
    for (int k = 0; k < run_n_stages(); k++) printf("%s%s", k ? " -> " : "", run_stage_name(k));
    printf(",\n"
           "into the config's output directory, skipping stages whose settings and inputs\n"
           "have not changed since they last completed there.  check: validate the config\nand open its catalog (columns, types, ID) without running.\n\n"
           "  --values          check: also read every value as a run's ingest does, with\n"
           "                    its refusals and warnings (sentinels, float32 range, rows\n"
           "                    dropped, constant features); nothing is written\n"
           "  --set KEY=VALUE   override a key, e.g. --set forest.n_trees=200 (repeatable)\n"
           "  --from STAGE      redo STAGE and every later one\n"
           "  --force           redo every stage\n"
           "  --print-config    print the effective configuration (defaults filled in) and exit\n"
           "  --top N           rows of the ranked list to print at the end [10]\n\n"
           "Every key, its default and meaning: configs/README.md, or `oddsky check --reference`.\n");
}

/* `oddsky check`: the catalog opened (values: read, as ingest reads it);
 * frees conf. */
static int check_config(cfg *conf, const char *path, int values, const ody_log *log)
{
    ody_err e = {0};
    int rc = 0;
    if (values) {
        run_check_info in = {0};
        if (!(rc = run_check_values(conf, log, &in, &e)))
            printf("%s: ok (catalog %s: %zu of %zu rows to rank, %d features; %zu rows dropped and %zu values "
                   "imputed where missing; output %s)\n", path, conf->cat_path, in.n_rows, in.n_table_rows,
                   in.n_features, in.n_dropped, in.n_imputed, conf->output);
    } else {
        long long nr = 0;
        int nf = 0;
        if (!(rc = run_check_catalog(conf, &nr, &nf, &e)))
            printf("%s: ok (catalog %s: %lld rows, %d features found%s; output %s)\n", path, conf->cat_path, nr, nf,
                   conf->spec_flux[0] ? ", the spectra's grid bins among them" : "", conf->output);
    }
    cfg_destroy(conf);
    return rc ? cli_fail(&e) : 0;
}

int cli_run(int argc, char **argv, const ody_log *log_in, int check_only, const ody_comm *comm)
{
    /* under mpirun only the first process speaks */
    ody_log quiet = {-1, NULL, NULL};
    const ody_log *log = ody_comm_rank(comm) ? &quiet : log_in;
    static const struct option lo[] = {
        {"set", required_argument, 0, 's'}, {"from", required_argument, 0, 'f'},
        {"force", no_argument, 0, 'F'},     {"print-config", no_argument, 0, 'p'},
        {"top", required_argument, 0, 't'}, {"reference", no_argument, 0, 'r'},
        {"values", no_argument, 0, 'v'},    {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    const char *cmd = check_only ? "check" : "run";
    char **sets = calloc((size_t)argc + 1, sizeof *sets);
    int nsets = 0, c, print = 0, top = 10, rc = 0, values = 0;
    run_opt ro;
    run_opt_init(&ro);
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (c) {
        case 's': sets[nsets++] = optarg; break;
        case 'f': ro.from_stage = optarg; break;
        case 'F': ro.force = 1; break;
        case 'p': print = 1; break;
        case 'v':
            if (!check_only) { free(sets); return cli_usage_error(cmd, "--values is an option of `oddsky check`"); }
            values = 1;
            break;
        case 't': {
            long v = 0;
            if ((rc = cli_parse_int(cmd, "--top", optarg, 0, 1000000, &v))) { free(sets); return rc; }
            top = (int)v;
            break;
        }
        case 'r': {
            char *md = cfg_reference_markdown();
            if (md) fputs(md, stdout);
            free(md);
            free(sets);
            return 0;
        }
        case 'h': print_run_help(); free(sets); return 0;
        default: free(sets); return cli_bad_option(cmd, argv, "h");
        }
    }
    if (optind != argc - 1) { free(sets); return cli_usage_error(cmd, "give exactly one CONFIG.yaml"); }
    cfg *conf = NULL;
    ody_err e = {0};
    if (cfg_load(argv[optind], sets, nsets, &conf, &e)) {
        free(sets);
        if (ody_comm_rank(comm)) e.msg[0] = 0;  /* every process read the same config: one says so */
        return cli_fail(&e);
    }
    free(sets);
    if (print) {
        char *d = ody_comm_rank(comm) ? NULL : cfg_dump(conf);
        if (d) fputs(d, stdout);
        free(d);
        cfg_destroy(conf);
        return 0;
    }
    if (check_only) return check_config(conf, argv[optind], values, log);
    run_summary sum;
    ro.comm = comm;
    if (run_pipeline(conf, &ro, &sum, log, &e)) {
        cfg_destroy(conf);
        return cli_fail(&e);  /* the processes agreed on it: one keeps the message (run.h) */
    }
    int html = conf->formats & CFG_FMT_HTML;
    cfg_destroy(conf);
    if (ody_comm_rank(comm)) return 0;
    cli_print_top(sum.out_dir, top, sum.n_objects);
    fflush(stdout);
    fprintf(stderr, "oddsky: %zu objects, %d stage%s run, %d up to date, %d off, %.1f s; results in %s/\n",
            sum.n_objects, sum.stages_run, sum.stages_run == 1 ? "" : "s", sum.stages_skipped, sum.stages_off,
            sum.wall_s, sum.out_dir);
    if (html)
        fprintf(stderr, "oddsky: report in %s/report/index.html (open it in a browser); `oddsky serve %s` to label\n",
                sum.out_dir, sum.out_dir);
    return 0;
}

int cli_batch_cmd(int argc, char **argv, const ody_log *log)
{
    static const struct option lo[] = {{"jobs", required_argument, 0, 'j'}, {"set", required_argument, 0, 's'},
                                       {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    char **sets = calloc((size_t)argc + 1, sizeof *sets);
    cli_batch_opt o = {0, NULL, NULL, sets, 0};
    int c;
    optind = 1;
    if (!sets) return cli_usage_error("batch", "out of memory");
    while ((c = getopt_long(argc, argv, "j:h", lo, NULL)) != -1) {
        if (c == 'j') {
            long v = 0;
            int rc = cli_parse_int("batch", "--jobs", optarg, 1, 256, &v);
            if (rc) { free(sets); return rc; }
            o.jobs = (int)v;
        } else if (c == 's') {
            sets[o.n_set++] = optarg;
        } else if (c == 'h') {
            printf("Usage: oddsky batch BATCH.yaml [--jobs N] [--set KEY=VALUE ...]\n\n"
                   "Runs every run of a batch file (explicit runs and/or a grid over keys), N at a\n"
                   "time [the file's jobs:, else 1].  --set overrides a key in every run (after the\n"
                   "run's own settings).  A failing run does not stop the others; the summary table\n"
                   "is printed and written as batch_summary.csv beside the batch file.\n"
                   "Exit code 1 if any run failed.  Format: configs/README.md.\n");
            free(sets);
            return 0;
        } else { free(sets); return cli_bad_option("batch", argv, "j:h"); }
    }
    if (optind != argc - 1) { free(sets); return cli_usage_error("batch", "give exactly one BATCH.yaml"); }
    char self[4096];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len <= 0) { free(sets); return cli_usage_error("batch", "cannot find the oddsky executable"); }
    self[len] = 0;
    o.exe = self;
    int failed = 0, rc = 0;
    ody_err e = {0};
    if (cli_batch(argv[optind], &o, stdout, &failed, log, &e)) rc = cli_fail(&e);
    free(sets);
    return rc ? rc : failed ? 1 : 0;
}

