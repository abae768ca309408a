/* fuzz_catalog.c — the catalog reader (FITS, CSV, ECSV, VOTable) and `oddsky inspect` on any
 * bytes: every HDU described, a table read with the columns the seeds have
 * (the mock survey's), every policy for missing values (drop with
 * catalog.nulls), the warnings about values (sentinels, float32 levels)
 * worked out as for a run; and the spectra
 * recipe with the columns of the bundled mock spectra (a block, a slice,
 * the WCS grid, the mask, the redshift); and FLUX as a feature block, a
 * vector column or an image HDU of a row per object; and the bytes as an
 * astronomer's labels file (id, label, comment), matched to string IDs and
 * to integer ones. */
#include "fuzz_util.h"  /* first: it defines _GNU_SOURCE */

#include <string.h>

#include "cat.h"
#include "learn.h"

/* One read of path; what comes back does not matter, only that it comes back. */
static void read_as(const char *path, const char *const *feats, int nf, const char *id, cat_missing m, long chunk,
                    const cat_spec *spec)
{
    const char *pass[] = {"CLASS", "RA"};
    cat_opt o;
    cat_opt_init(&o);
    o.path = path;
    o.features = feats;
    o.n_features = nf;
    o.id_col = id;
    o.passthru = spec ? NULL : pass;
    o.n_passthru = spec ? 0 : 2;
    o.missing = m;
    static const double nulls[] = {-9999, 99, 0};  /* catalog.nulls, under drop */
    o.nulls = m == CAT_MISSING_DROP ? nulls : NULL;
    o.n_nulls = m == CAT_MISSING_DROP ? 3 : 0;
    o.chunk_rows = chunk;
    o.spec = spec;
    ody_err e;
    cat *c = NULL;
    if (cat_read(&o, &c, NULL, &e) == 0) cat_destroy(c);
}

/* The bytes as a labels file, against a catalog of IDs 1-40 held as
 * integers and as strings. */
static void read_labels(const char *path)
{
    enum { N = 40 };
    int64_t iv[N];
    char sv[N * 4];
    for (int r = 0; r < N; r++) {
        iv[r] = r + 1;
        snprintf(sv + r * 4, 4, "%d", r + 1);
    }
    cat_col ids[2] = {{.type = CAT_COL_INT, .i = iv}, {.type = CAT_COL_STRING, .width = 3, .s = sv}};
    for (int k = 0; k < 2; k++) {
        lrn_labels l;
        ody_err e;
        if (lrn_labels_read(path, &ids[k], N, &l, &e) == 0) lrn_labels_free(&l);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[64];
    int fd = fuzz_file(data, size, path, sizeof path);
    if (fd < 0) return 0;
    ody_err e;
    cat_info *info = NULL;
    if (cat_inspect(path, &info, &e) == 0) cat_info_destroy(info);
    if (cat_inspect_upto(path, 100, &info, &e) == 0) cat_info_destroy(info);  /* inspect's bound: a row or two */
    const char *feats[] = {"U", "G", "REDSHIFT"};
    for (int m = 0; m < 3; m++) read_as(path, feats, 3, m == 1 ? NULL : "ID", (cat_missing)m, m == 2 ? 7 : 0, NULL);
    const char *blocks[] = {"FLUX[10:40]", "Z"};
    cat_spec sp = {.flux = "FLUX", .mask = "MASK", .redshift = "Z", .grid_start = 3740, .grid_stop = 7340,
                   .grid_step = 5, .norm_lo = 5400, .norm_hi = 5600, .downsample = 2};
    read_as(path, blocks, 2, "ID", CAT_MISSING_IMPUTE, 0, NULL);
    const char *image[] = {"FLUX", "U"};
    read_as(path, image, 2, "ID", CAT_MISSING_DROP, 5, NULL);
    read_as(path, blocks, 2, "ID", CAT_MISSING_DROP, 0, &sp);
    /* wavelengths a row (red to blue, padded with NaN or 0 at the ends) and ivar: no scalar feature at all */
    cat_spec sw = {.flux = "FLUX", .wave = "WAVE", .ivar = "IVAR", .grid_start = 1010, .grid_stop = 1190,
                   .grid_step = 4, .norm_lo = 1100, .norm_hi = 1120, .downsample = 1};
    read_as(path, NULL, 0, "ID", CAT_MISSING_DROP, 0, &sw);
    read_as(path, NULL, 0, "ID", CAT_MISSING_FAIL, 0, &sw);
    read_labels(path);
    close(fd);
    return 0;
}
