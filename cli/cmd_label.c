/* cmd_label.c — the labelling loop: `oddsky next` and `oddsky label`. */
#define _GNU_SOURCE
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cfg.h"
#include "cli.h"
#include "run.h"

static void print_next_help(void)
{
    printf("Usage: oddsky next RUN_DIR|CONFIG.yaml [-n K] [--ids] [--set KEY=VALUE ...]\n\n"
           "The K objects to look at next (default 10): the unlabelled objects at the top of\n"
           "the ranking re-learned from your labels (the config's `labels:` file; given a\n"
           "run folder whose config sets none, its labels.csv, as `oddsky serve` keeps them).\n"
           "Brings the run up to date first; after a new label only the learn stage reruns.\n\n"
           "  -n K        how many [10]\n"
           "  --set KEY=VALUE  override a key, as for run (e.g. --set labels=my.csv)\n"
           "  --ids       print only their IDs, one per line\n"
           "  -h, --help  this help\n\n"
           "Then: oddsky label RUN_DIR|CONFIG.yaml ID 1|0 [--comment TEXT]\n");
}

static void print_label_help(void)
{
    printf("Usage: oddsky label RUN_DIR|CONFIG.yaml ID 1|0 [--comment TEXT] [--set KEY=VALUE ...]\n\n"
           "Records your verdict on object ID in the config's `labels:` file (a run\n"
           "folder's labels.csv when its config sets none; CSV:\n"
           "id,label,comment; created if missing, rewritten atomically): 1 interesting,\n"
           "0 not (an artefact, a known class).  A new label of the same object replaces\n"
           "the old one.  `oddsky next` and the next `oddsky run` re-rank from it.\n\n"
           "  --comment TEXT  a note kept beside the label\n"
           "  --set KEY=VALUE override a key, as for run\n"
           "  -h, --help      this help\n");
}

/* The config of a run folder or a config file (cli_load_target).  A run
 * folder whose config sets no labels file keeps its labels where `oddsky
 * serve` does, in the folder's labels.csv, so that the shell's loop and the
 * review page's are one; a config file without one is refused by the loop,
 * which says what to add.  0, or the exit code after printing. */
static int load_target(const char *cmd, const char *arg, char **sets, int nsets, cfg **conf)
{
    int rc = cli_load_target(cmd, arg, sets, nsets, conf);
    struct stat sb;
    if (rc || (*conf)->labels[0] || stat(arg, &sb) || !S_ISDIR(sb.st_mode) || !cli_labels_in_folder(*conf)) return rc;
    cfg_destroy(*conf);
    *conf = NULL;
    return cli_usage_error(cmd, "out of memory");
}

int cli_next(int argc, char **argv, const ody_log *log)
{
    static const struct option lo[] = {{"ids", no_argument, 0, 'i'}, {"set", required_argument, 0, 's'},
                                       {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    long k = 10;
    int ids = 0, c, nsets = 0;
    char **sets = calloc((size_t)argc + 1, sizeof *sets);
    if (!sets) return cli_usage_error("next", "out of memory");
    optind = 1;
    while ((c = getopt_long(argc, argv, "n:h", lo, NULL)) != -1) {
        if (c == 's') sets[nsets++] = optarg;
        else if (c == 'n') {
            if (cli_parse_int("next", "-n", optarg, 1, 100000000, &k)) { free(sets); return 2; }
        } else if (c == 'i') ids = 1;
        else if (c == 'h') {
            print_next_help();
            free(sets);
            return 0;
        } else { free(sets); return cli_bad_option("next", argv, "n:h"); }
    }
    if (argc - optind != 1) { free(sets); return cli_usage_error("next", "give one RUN_DIR or CONFIG.yaml"); }
    cfg *conf = NULL;
    ody_err e = {0};
    int bad = load_target("next", argv[optind], sets, nsets, &conf);
    free(sets);
    if (bad) return bad;
    ody_log quiet = *log;  /* the table is the output: stage lines only in the run log */
    if (quiet.level > ODY_LOG_WARN) quiet.level = ODY_LOG_WARN;
    char *text = NULL;
    int rc = run_next(conf, (int)k, ids, &quiet, &text, &e);
    cfg_destroy(conf);
    if (rc) return cli_fail(&e);
    fputs(text, stdout);
    free(text);
    return 0;
}

int cli_label(int argc, char **argv)
{
    static const struct option lo[] = {{"comment", required_argument, 0, 'c'}, {"set", required_argument, 0, 's'},
                                       {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    const char *comment = NULL;
    int c, nsets = 0;
    char **sets = calloc((size_t)argc + 1, sizeof *sets);
    if (!sets) return cli_usage_error("label", "out of memory");
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        if (c == 'c') comment = optarg;
        else if (c == 's') sets[nsets++] = optarg;
        else if (c == 'h') {
            print_label_help();
            free(sets);
            return 0;
        } else { free(sets); return cli_bad_option("label", argv, "h"); }
    }
    const char *v = argc - optind == 3 ? argv[optind + 2] : "";
    if (argc - optind != 3 || (strcmp(v, "0") && strcmp(v, "1"))) {
        free(sets);
        return cli_usage_error("label", argc - optind != 3 ? "give RUN_DIR or CONFIG.yaml, an ID and 1 or 0"
                                                           : "the label is 1 (interesting) or 0 (not)");
    }
    cfg *conf = NULL;
    ody_err e = {0};
    int bad = load_target("label", argv[optind], sets, nsets, &conf);
    free(sets);
    if (bad) return bad;
    int rc = run_label(conf, argv[optind + 1], v[0] == '1', comment, &e);
    if (!rc) fprintf(stderr, "oddsky: %s labelled %s in %s\n", argv[optind + 1], v, conf->labels);
    cfg_destroy(conf);
    return rc ? cli_fail(&e) : 0;
}
