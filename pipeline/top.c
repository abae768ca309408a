/* top.c — the head of a run's ranked list as a text table, for the console. */
#define _GNU_SOURCE
#include <fitsio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "run.h"

/* Columns of the export that the console table leaves out: the secondary
 * scores, the feature values and the neighbour lists (all in the files). */
static int hidden(const char *name)
{
    static const char *const cols[] = {"N_GOOD", "NEIGHBOURS", "NEAREST", "ISOLATION", "KNN_DIST", "LOF",
                                       "FOREST_KNN", "P_SYNTH_FOREST", "CONTEXT", "HEAP"};
    for (size_t k = 0; k < sizeof cols / sizeof *cols; k++)
        if (!strcmp(name, cols[k])) return 1;
    return !strncmp(name, "F_", 2) || !strcmp(name, "FEATURES");  /* the feature values: WHY says which matter */
}

#define CELL 256  /* bytes of a cell; longer text is cut */

/* The cells: (n + 1) rows (the header first) of ns columns, CELL
 * bytes each, and each column's width. */
typedef struct grid {
    int n, ns, show[64], width[64];
    char (*cell)[CELL];
} grid;

/* One cell as text; `exact` (the ID column) prints a floating-point value
 * in full, since an ID rounded to five digits names another object. */
static void cell_text(fitsfile *f, int col, long row, int exact, char *buf, int *status)
{
    int anynul = 0, type = 0;
    long rep = 0, width = 0;
    char *bp = buf;
    buf[0] = 0;
    fits_get_coltype(f, col, &type, &rep, &width, status);
    if (type == TDOUBLE || type == TFLOAT) {
        double v = 0;
        fits_read_col(f, TDOUBLE, col, row, 1, 1, NULL, &v, &anynul, status);
        if (exact && v == (double)(long long)v) snprintf(buf, CELL, "%lld", (long long)v);
        else snprintf(buf, CELL, exact ? "%.17g" : "%.5g", v);
    } else {  /* CFITSIO writes the column's whole display width: read into room for it */
        char *tmp = malloc((size_t)(width > 80 ? width : 80) + 1);
        bp = tmp ? tmp : buf;
        if (tmp) fits_read_col(f, TSTRING, col, row, 1, 1, NULL, &bp, &anynul, status);
        if (tmp) snprintf(buf, CELL, "%s", tmp);
        free(tmp);
    }
    size_t k = strspn(buf, " ");
    memmove(buf, buf + k, strlen(buf + k) + 1);
}

static int read_grid(fitsfile *f, grid *g, int *status)
{
    int ncol = 0;
    fits_get_num_cols(f, &ncol, status);
    g->ns = 0;
    for (int k = 1; k <= ncol && g->ns < 64 && !*status; k++) {
        char key[FLEN_KEYWORD], name[FLEN_VALUE] = "";
        fits_make_keyn("TTYPE", k, key, status);
        fits_read_key(f, TSTRING, key, name, NULL, status);
        if (!hidden(name)) g->show[g->ns++] = k;
    }
    g->cell = calloc((size_t)(g->n + 1) * (size_t)(g->ns ? g->ns : 1), sizeof *g->cell);
    if (!g->cell) return ODY_ENOMEM;
    for (int c = 0; c < g->ns && !*status; c++) {
        char key[FLEN_KEYWORD];
        fits_make_keyn("TTYPE", g->show[c], key, status);
        fits_read_key(f, TSTRING, key, g->cell[c], NULL, status);
        g->width[c] = (int)strlen(g->cell[c]);
        for (long r = 1; r <= g->n && !*status; r++) {
            char *t = g->cell[(size_t)r * g->ns + (size_t)c];
            cell_text(f, g->show[c], r, g->show[c] == 2, t, status);  /* RANK, then the ID */
            if ((int)strlen(t) > g->width[c]) g->width[c] = (int)strlen(t);
        }
    }
    return 0;
}

/* Aligned text: numbers and IDs in full, the last column (WHY) unpadded. */
static char *print_grid(const grid *g)
{
    size_t cap = 64, at = 0;
    for (int c = 0; c < g->ns; c++) cap += (size_t)(g->width[c] + 2) * (size_t)(g->n + 1);
    char *out = malloc(cap);
    if (!out) return NULL;
    for (int r = 0; r <= g->n; r++) {
        for (int c = 0; c < g->ns; c++) {
            const char *t = g->cell[(size_t)r * g->ns + (size_t)c];
            if (c == g->ns - 1) at += (size_t)snprintf(out + at, cap - at, "%s%s", c ? "  " : "", t);
            else at += (size_t)snprintf(out + at, cap - at, "%s%*s", c ? "  " : "", g->width[c], t);
        }
        at += (size_t)snprintf(out + at, cap - at, "\n");
    }
    return out;
}

int run_top_table(const char *dir, int n, char **text, ody_err *err)
{
    char *path = NULL;
    if (asprintf(&path, "%s/anomalies.fits", dir) < 0) return ody_fail(err, ODY_ENOMEM, "out of memory");
    fitsfile *f = NULL;
    int status = 0, rc = 0;
    long nrows = 0;
    grid g;
    memset(&g, 0, sizeof g);
    ody_fits_open(&f, path, ODY_FITS_TABLE, READONLY, &status);
    fits_get_num_rows(f, &nrows, &status);
    g.n = n < nrows ? n : (int)nrows;
    if (!status && read_grid(f, &g, &status)) rc = ody_fail(err, ODY_ENOMEM, "out of memory");
    if (!rc && status) rc = ody_fits_fail(err, status, path, "cannot read the ranked list", "add fits to export.formats");
    if (!rc && !(*text = print_grid(&g))) rc = ody_fail(err, ODY_ENOMEM, "out of memory");
    free(g.cell);
    ody_fits_close(f);
    free(path);
    return rc;
}
