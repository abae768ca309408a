/* fuzz_cutout.c — the cutout reader on any bytes, in its three layouts:
 * one file per object (dir), a cube with an IDS table, an HDU per object
 * (mef); with the morphology features of whatever it read. */
#include "fuzz_util.h"  /* first: it defines _GNU_SOURCE */

#include <string.h>

#include "cutout.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[64];
    int fd = fuzz_file(data, size, path, sizeof path);
    if (fd < 0) return 0;
    char idtext[2][8] = {"1", "2"};
    cat_col ids = {0};
    ids.type = CAT_COL_STRING;
    ids.width = 7;
    ids.s = &idtext[0][0];
    for (int layout = CUT_DIR; layout <= CUT_MEF; layout++)
        for (int bands = 1; bands <= 3; bands += 2) {
            cut_opt o;
            cut_opt_init(&o);
            o.layout = (cut_layout)layout;
            o.path = path;  /* a dir template without {id}: every object reads this file */
            o.size = 16;
            o.n_bands = bands;
            const char *names[3] = {"g", "r", "i"};
            for (int b = 0; b < bands; b++) snprintf(o.band[b], sizeof o.band[b], "%s", names[b]);
            cut_set *s = NULL;
            ody_err e;
            if (cut_read(&o, &ids, 2, &s, NULL, &e) == 0) {
                double f[CUT_NFEAT];
                for (size_t k = 0; k < s->n; k++) cut_features(s->pix + k * (size_t)bands * 256, 16, f);
                cut_destroy(s);
            }
        }
    close(fd);
    return 0;
}
