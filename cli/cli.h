/* cli.h — what the command line's files share (prefix cli_ / cli_batch).
 * Not a library header: nothing outside cli/ includes it. */
#ifndef CLI_H
#define CLI_H

#include <stdio.h>

#include "ody.h"

typedef struct cli_batch_opt {
    int jobs;                /* runs at once, default 1 */
    const char *summary_csv; /* NULL: <batch dir>/batch_summary.csv */
    const char *exe;         /* the oddsky executable that runs each job */
} cli_batch_opt;

/* Runs every entry of a batch file (see configs/README.md): each as a child
 * `oddsky run` process, jobs at a time.  A failing run does not stop the
 * others.  Prints the summary table to `out` and writes it as CSV.
 * *n_failed receives how many runs failed. */
int cli_batch(const char *batch_file, const cli_batch_opt *o, FILE *out, int *n_failed,
              const ody_log *log, ody_err *err);

#endif
