/* cmd_compare.c — `oddsky compare RUN_A RUN_B`: how two runs' rankings differ. */
#define _GNU_SOURCE
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"
#include "run.h"

static void print_compare_help(void)
{
    printf("Usage: oddsky compare RUN_A RUN_B [--top K]\n\n"
           "Compares the ranked lists (anomalies.fits) of two finished runs, given as their\n"
           "output folders — e.g. a run and the same config with --set output=runs/b and\n"
           "another setting.  Objects are matched by ID.  Prints the overlap of the top 10,\n"
           "50, 100 and K, Spearman's rank correlation over the objects in both lists, and\n"
           "the objects of either top K that moved most; then the settings that differ\n"
           "between the two runs' config.yaml (output aside), and their oddsky versions\n"
           "when those differ.\n\n"
           "  --top K     the list to compare closely (default 100)\n"
           "  -h, --help  this help\n");
}

int cli_compare(int argc, char **argv)
{
    static const struct option lo[] = {{"top", required_argument, 0, 't'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    long top = 100;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "t:h", lo, NULL)) != -1) {
        if (c == 't') {
            if (cli_parse_int("compare", "--top", optarg, 1, 100000000, &top)) return 2;
        } else if (c == 'h') {
            print_compare_help();
            return 0;
        } else return cli_bad_option("compare", argv, "t:h");
    }
    if (argc - optind != 2) return cli_usage_error("compare", "give two run folders: oddsky compare RUN_A RUN_B");
    char *text = NULL;
    ody_err e = {0};
    if (run_compare(argv[optind], argv[optind + 1], (int)top, &text, &e)) return cli_fail(&e);
    fputs(text, stdout);
    free(text);
    return 0;
}
