/* fuzz_config.c — the config loader, the batch-file loader and the run-log
 * reader (the warnings a report shows) on any bytes: each must load or fail
 * with a message, never crash, hang or run away. */
#include "fuzz_util.h"  /* first: it defines _GNU_SOURCE */

#include <string.h>

#include "cfg.h"
#include "report.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[64];
    int fd = fuzz_file(data, size, path, sizeof path);
    if (fd < 0) return 0;
    cfg *c = NULL;
    ody_err e;
    char *const sets[] = {"forest.n_trees=7", "catalog.features=[a, b]"};
    if (cfg_load(path, NULL, 0, &c, &e) == 0) {
        char *d = cfg_dump(c);
        free(d);
        cfg_destroy(c);
    }
    c = NULL;
    if (cfg_load(path, sets, 2, &c, &e) == 0) cfg_destroy(c);
    cfg_batch *b = NULL;
    if (cfg_batch_load(path, &b, &e) == 0) cfg_batch_destroy(b);
    free(rep_log_warnings(path));  /* the bytes as a run log, whose warnings the report and review page show */
    close(fd);
    return 0;
}
