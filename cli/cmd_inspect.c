/* cmd_inspect.c — `oddsky inspect FILE`: the HDUs and columns of a FITS file. */
#define _GNU_SOURCE
#include <errno.h>
#include <fitsio.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cat.h"
#include "cli.h"

static void print_inspect_help(void)
{
    printf("Usage: oddsky inspect [--all] FILE\n\n"
           "Lists the HDUs of a FITS file; for tables, every column with its type,\n"
           "unit, vector size and number of null/NaN/Inf rows.  FILE may use CFITSIO's\n"
           "extended syntax, e.g. 'cat.fits[1][class==\"GALAXY\"]', to describe one HDU.\n"
           "A CSV, ECSV or VOTable file (gzipped or not) is shown as the one table\n"
           "oddsky reads from it: the types found by scanning or declared, the units.\n\n"
           "  --all    null rows, min and max over every row; by default over the first\n"
           "           %lld MB of each table (all of it up to that size)\n", CAT_INSPECT_BYTES >> 20);
}

static const char *hdu_type_name(int t)
{
    return t == IMAGE_HDU ? "image" : t == ASCII_TBL ? "ascii-table" : "bintable";
}

int cli_inspect(int argc, char **argv)
{
    static const struct option lo[] = {{"help", no_argument, 0, 'h'}, {"all", no_argument, 0, 'a'}, {0, 0, 0, 0}};
    int c, all = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        if (c == 'h') { print_inspect_help(); return 0; }
        if (c == 'a') { all = 1; continue; }
        return cli_bad_option("inspect", argv, "h");
    }
    if (optind != argc - 1) return cli_usage_error("inspect", "give exactly one catalog or image file (FITS, CSV, ECSV or VOTable)");
    const char *path = argv[optind];
    cat_info *info = NULL;
    ody_err e = {0};
    if (cat_inspect_upto(path, all ? 0 : CAT_INSPECT_BYTES, &info, &e)) return cli_fail(&e);
    if (info->n_hdu == 1 && info->hdu[0].format[0]) printf("%s: %s, read as one table\n", path, info->hdu[0].format);
    else printf("%s: %d HDU%s\n", path, info->n_hdu, info->n_hdu == 1 ? "" : "s");
    for (int h = 0; h < info->n_hdu; h++) {
        const cat_hduinfo *hi = &info->hdu[h];
        if (hi->format[0]) printf("\n%s", hi->format);
        else printf("\nHDU %d  %-11s %s", hi->num, hdu_type_name(hi->hdutype),
                    hi->extname[0] ? hi->extname : "(no EXTNAME)");
        if (hi->hdutype == IMAGE_HDU) {
            if (hi->naxis == 0) printf("  empty\n");
            else {
                printf("  BITPIX %d  ", hi->bitpix);
                for (int a = 0; a < hi->naxis; a++) printf("%s%ld", a ? " x " : "", hi->naxes[a]);
                printf("%s\n", hi->compressed ? "  (tile-compressed)" : "");
            }
            continue;
        }
        printf("  %ld rows x %d columns\n", hi->n_rows, hi->n_cols);
        if (hi->n_scanned < hi->n_rows && hi->n_cols)
            printf("  (null rows, min and max over the first %ld rows; `oddsky inspect --all` reads all %ld)\n",
                   hi->n_scanned, hi->n_rows);
        if (hi->n_cols)
            printf("  %-4s %-24s %-10s %-7s %-10s %-12s %-10s %-12s %s\n", "col", "name", "type", "size",
                   "TFORM", "unit", "null rows", "min", "max");
        for (int k = 0; k < hi->n_cols; k++) {
            const cat_colinfo *ci = &hi->cols[k];
            char size[32], nul[32];
            if (ci->typecode == TSTRING) snprintf(size, sizeof size, "%ldch", ci->width);
            else if (ci->typecode < 0) snprintf(size, sizeof size, "var");
            else snprintf(size, sizeof size, "%ld", ci->repeat);
            if (ci->n_null < 0) snprintf(nul, sizeof nul, "-");
            else snprintf(nul, sizeof nul, "%ld", ci->n_null);
            char vmin[32] = "-", vmax[32] = "-";  /* the range shows a survey's -9999 at a glance */
            if (ci->n_null >= 0 && ci->lo <= ci->hi) {
                snprintf(vmin, sizeof vmin, "%.6g", ci->lo);
                snprintf(vmax, sizeof vmax, "%.6g", ci->hi);
            }
            printf("  %-4d %-24s %-10s %-7s %-10s %-12s %-10s %-12s %s\n", k + 1, ci->name,
                   cat_type_name(ci->typecode), size, ci->tform, ci->unit[0] ? ci->unit : "-", nul, vmin, vmax);
        }
        for (int k = 0; k < hi->n_cols; k++) {  /* spectra of different lengths: read only as spectra */
            const cat_colinfo *ci = &hi->cols[k];
            if (ci->len_max < 0) continue;
            int last = k;  /* columns of the same row lengths (a flux, its wavelengths, ivar, mask) share a line */
            while (last + 1 < hi->n_cols && hi->cols[last + 1].len_min == ci->len_min &&
                   hi->cols[last + 1].len_max == ci->len_max)
                last++;
            printf("  ");
            for (int j = k; j <= last; j++) printf("%s%s", j > k ? ", " : "", hi->cols[j].name);
            printf(": variable-length rows of %ld to %ld elements (read as spectra: spectra.flux, wave, ivar or "
                   "mask)\n", ci->len_min, ci->len_max);
            k = last;
        }
        for (int k = 0; k < hi->n_cols; k++)  /* where a spectrum's pixels lie: what spectra.grid_* must be within */
            if (hi->cols[k].has_wcs)
                printf("  %s: element coordinates %.10g to %.10g, step %.6g (its vector WCS, 1CRVL%d/1CDLT%d)\n",
                       hi->cols[k].name, hi->cols[k].wcs_first, hi->cols[k].wcs_last, hi->cols[k].wcs_step, k + 1,
                       k + 1);
    }
    cat_info_destroy(info);
    return 0;
}

