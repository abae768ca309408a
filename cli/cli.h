/* cli.h — what the command line's files share (prefix cli_).
 * Not a library header: nothing outside cli/ includes it.  Every command
 * parses its arguments into the library's option structs, calls the
 * library, prints the result to stdout and returns the exit code. */
#ifndef CLI_H
#define CLI_H

#include <stdio.h>

#include "ody.h"

/* Prints "oddsky: error: MSG" to stderr; returns the exit code for it. */
int cli_fail(const ody_err *e);

/* Prints the top rows of dir/anomalies.fits (none when top < 1 or there is
 * no FITS export). */
void cli_print_top(const char *dir, int top, size_t n_objects);

/* Prints "oddsky: error: CMD: WHAT — run `oddsky CMD --help`"; returns 2. */
int cli_usage_error(const char *cmd, const char *what);

/* After getopt_long returned '?' (main sets opterr = 0, so getopt itself
 * prints nothing): says which option of cmd was unknown or lacked its value,
 * in one line; returns 2.  shortopts is the string given to getopt_long. */
int cli_bad_option(const char *cmd, char *const *argv, const char *shortopts);

/* Parses a whole number / a number in [lo, hi] (finite) for option opt of
 * cmd into *out; returns 0, or the exit code after printing the problem. */
int cli_parse_int(const char *cmd, const char *opt, const char *s, long lo, long hi, long *out);
int cli_parse_double(const char *cmd, const char *opt, const char *s, double lo, double hi, double *out);

/* Parses "g,r,i" into band (max entries of 32 bytes); the count, or -1. */
int cli_parse_bands(const char *s, char band[][32], int max);

/* The config of a run folder (its config.yaml, written by every run) or a
 * config file, with --set overrides; 0 or the exit code after printing. */
struct cfg;
int cli_load_target(const char *cmd, const char *arg, char **sets, int nsets, struct cfg **out);

/* Sets conf's labels file to the run folder's labels.csv, where serve, next
 * and label keep labels when the config names none; -1 (conf unchanged)
 * when out of memory. */
int cli_labels_in_folder(struct cfg *conf);

/* The commands: argv[0] is the command's name. */
int cli_inspect(int argc, char **argv);
int cli_compare(int argc, char **argv);
int cli_next(int argc, char **argv, const ody_log *log);
int cli_label(int argc, char **argv);
int cli_report(int argc, char **argv, const ody_log *log);
int cli_serve(int argc, char **argv, const ody_log *log);
int cli_score(int argc, char **argv, const ody_log *log);
int cli_simulate(int argc, char **argv, const ody_log *log);
int cli_run(int argc, char **argv, const ody_log *log, int check_only, const ody_comm *comm);
int cli_batch_cmd(int argc, char **argv, const ody_log *log);
int cli_lens(int argc, char **argv, const ody_log *log);

/* ---------------------------------------------------------------- batch */

typedef struct cli_batch_opt {
    int jobs;                /* runs at once, default 1 */
    const char *summary_csv; /* NULL: <batch dir>/batch_summary.csv */
    const char *exe;         /* the oddsky executable that runs each job */
    char *const *set;        /* KEY=VALUE for every run, after each run's own */
    int n_set;
} cli_batch_opt;

/* Runs every entry of a batch file (see configs/README.md): each as a child
 * `oddsky run` process, jobs at a time.  A failing run does not stop the
 * others.  Prints the summary table to `out` and writes it as CSV.
 * *n_failed receives how many runs failed. */
int cli_batch(const char *batch_file, const cli_batch_opt *o, FILE *out, int *n_failed,
              const ody_log *log, ody_err *err);

#endif
