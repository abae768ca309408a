/* fuzz_catalog.c — the catalog reader (FITS, CSV, ECSV, VOTable) and `oddsky inspect` on any
 * bytes: every HDU described, a table read with the columns the seeds have
 * (the mock survey's), every policy for missing values; and the spectra
 * recipe with the columns of the bundled mock spectra (a block, a slice,
 * the WCS grid, the mask, the redshift). */
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
    const char *blocks[] = {"FLUX[10:40]", "Z"};
    cat_spec sp = {.flux = "FLUX", .mask = "MASK", .redshift = "Z", .grid_start = 3740, .grid_stop = 7340,
                   .grid_step = 5, .norm_lo = 5400, .norm_hi = 5600, .downsample = 2};
    for (int m = 0; m < 2; m++) {
        cat_opt o;
        cat_opt_init(&o);
        o.path = path;
        o.features = blocks;
        o.n_features = 2;
        o.id_col = "ID";
        o.spec = m ? &sp : NULL;
        o.missing = m ? CAT_MISSING_DROP : CAT_MISSING_IMPUTE;
        cat *c = NULL;
        if (cat_read(&o, &c, NULL, &e) == 0) cat_destroy(c);
    }
    close(fd);
    return 0;
}
