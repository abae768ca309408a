/* fuzz_catalog.c — the catalog reader (FITS, CSV, ECSV, VOTable) and `oddsky inspect` on any
 * bytes: every HDU described, a table read with the columns the seeds have
 * (the mock survey's), every policy for missing values. */
#include "fuzz_util.h"  /* first: it defines _GNU_SOURCE */

#include <string.h>

#include "cat.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[64];
    int fd = fuzz_file(data, size, path, sizeof path);
    if (fd < 0) return 0;
    ody_err e;
    cat_info *info = NULL;
    if (cat_inspect(path, &info, &e) == 0) cat_info_destroy(info);
    const char *feats[] = {"U", "G", "REDSHIFT"}, *pass[] = {"CLASS", "RA"};
    for (int m = 0; m < 3; m++) {
        cat_opt o;
        cat_opt_init(&o);
        o.path = path;
        o.features = feats;
        o.n_features = 3;
        o.id_col = m == 1 ? NULL : "ID";
        o.passthru = pass;
        o.n_passthru = 2;
        o.missing = (cat_missing)m;
        o.chunk_rows = m == 2 ? 7 : 0;
        cat *c = NULL;
        if (cat_read(&o, &c, NULL, &e) == 0) cat_destroy(c);
    }
    close(fd);
    return 0;
}
