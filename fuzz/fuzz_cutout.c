/* fuzz_cutout.c — the cutout reader on any bytes, in its three layouts:
 * one file per object (dir), a cube with an IDS table, an HDU per object
 * (mef), with one or three bands; then the morphology features of what it
 * read. */
#include "fuzz_util.h"  /* first: it defines _GNU_SOURCE */

#include <string.h>

#include "cutout.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[64];
    int fd = fuzz_file(data, size, path, sizeof path);
    if (fd < 0) return 0;
    /* one read an input, the layout and band count chosen by its size, so
     * that every seed meets every reader as the corpus grows */
    int layout = (int)(size % 3), bands = (size / 3) % 2 ? 3 : 1;
    char idtext[8] = "1";
    cat_col ids = {0};
    ids.type = CAT_COL_STRING;
    ids.width = 7;
    ids.s = idtext;
    cut_opt o;
    cut_opt_init(&o);
    o.layout = (cut_layout)layout;
    o.path = path;  /* a dir template without {id}: the object reads this file */
    o.size = 16;
    o.n_bands = bands;
    const char *names[3] = {"g", "r", "i"};
    for (int b = 0; b < bands; b++) snprintf(o.band[b], sizeof o.band[b], "%s", names[b]);
    cut_set *s = NULL;
    ody_err e;
    if (cut_read(&o, &ids, 1, &s, NULL, &e) == 0) {
        double f[CUT_NFEAT];
        for (int b = 0; b < bands; b++) cut_features(s->pix + (size_t)b * 256, 16, f);
        cut_destroy(s);
    }
    close(fd);
    return 0;
}
