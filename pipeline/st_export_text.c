/* st_export_text.c — the export stage's text formats (CSV, ECSV,
 * VOTable): formatted a block of rows at a time, in parallel, and with
 * several processes shared among them, process 0 writing in order. */
#define _GNU_SOURCE
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "export.h"

/* ================================================================ blocks and windows */

/* Row r of a text body, of a chunk starting at row r0. */
typedef void (*text_row)(FILE *f, const xcol *x, int n, size_t r, size_t r0);

/* Rows a text block (a task's grain); blocks a process formats a window
 * at most (what it holds in memory at once). */
enum { TEXT_BLOCK = 4096, TEXT_WINDOW = 16 };

/* One window of text blocks of every process to process 0, which writes
 * them in process order (adding the seconds it takes to *wr); fail is this
 * process's state, and the result is every process's (they agree). */
static int gather_window(const ody_comm *c, FILE *out, char **mem, const size_t *len, size_t nw, size_t mine, int fail,
                         double *wr)
{
    ody_err e;
    int64_t total = (int64_t)mine;
    if (ody_comm_agree(c, fail ? ODY_ENOMEM : 0, &e) || ody_allreduce(c, &total, 1, ODY_SUM_I64, &e)) return 1;
    char *buf = malloc(mine ? mine : 1), *all = c->rank == 0 ? malloc(total ? (size_t)total : 1) : NULL;
    size_t *sizes = c->rank == 0 ? malloc((size_t)c->size * sizeof *sizes) : NULL;
    fail = !buf || (c->rank == 0 && (!all || !sizes));
    for (size_t b = 0, at = 0; !fail && b < nw; at += len[b], b++) memcpy(buf + at, mem[b], len[b]);
    fail = ody_comm_agree(c, fail ? ODY_ENOMEM : 0, &e) != 0 || c->gather(c, buf, mine, all, sizes, 0) != 0;
    double t0 = omp_get_wtime();
    if (!fail && c->rank == 0) fwrite(all, 1, (size_t)total, out);
    *wr += omp_get_wtime() - t0;
    free(buf);
    free(all);
    free(sizes);
    return fail;
}

/* Process 0's blocks in the next window when it writes the FITS file too:
 * what balances its FITS rows and file writes (phi a block of the window)
 * against a full share of the others' formatting (c a block), from the
 * microseconds measured so far, us[] = {FITS + writing, formatting, blocks
 * formatted, blocks in windows}, the same on every process (reduced).  Only
 * work moves: every block's bytes are the same whoever formats it. */
static size_t share0(const int64_t *us, size_t R)
{
    if (!us[2] || !us[3]) return 0;  /* nothing measured yet */
    double c = (double)us[1] / (double)us[2], phi = (double)us[0] / (double)us[3];
    double a = (c - phi * (double)(R - 1)) * TEXT_WINDOW / (phi + c);
    return !(a > 0) ? 0 : a >= TEXT_WINDOW ? TEXT_WINDOW : (size_t)a;
}

/* Rows [b * TEXT_BLOCK, ...) formatted by fn into *mem (NULL on
 * failure), the columns the export makes made for them alone. */
static void text_block(const ranked *R, size_t b, text_row fn, char **mem, size_t *len)
{
    size_t r0 = b * TEXT_BLOCK, r1 = r0 + TEXT_BLOCK < R->m ? r0 + TEXT_BLOCK : R->m;
    int cap = xp_schema_cap(R->st->cat);
    xcol *x = malloc((size_t)cap * sizeof *x), *xt = malloc((size_t)cap * sizeof *xt);
    chunk c;
    FILE *f = NULL;
    *mem = NULL;
    *len = 0;
    if (x && xt && !xp_chunk_alloc(R, r1 - r0, &c)) {
        xp_chunk_fill(R, r0, r1 - r0, &c);
        int nt = xp_text_cols(x, xp_schema(R, &c, x), xt);
        if ((f = open_memstream(mem, len)))
            for (size_t r = r0; r < r1; r++) fn(f, xt, nt, r, r0);
        if (f && fclose(f)) {
            free(*mem);
            *mem = NULL;
        }
        xp_chunk_free(&c);
    }
    free(x);
    free(xt);
}

/* Rows [0, m) formatted by fn a block of TEXT_BLOCK rows at a time, as
 * tasks of the enclosing parallel region (a window of blocks at once, each
 * into memory), and written to out in order: the same bytes for any thread
 * count, a coarse grain, and the threads free to work on the FITS file
 * meanwhile.  With several processes a window is shared among them, a run
 * of at most TEXT_WINDOW blocks each, and process 0 writes what they send
 * it in order; when it also writes the FITS file (fits_too) it writes the
 * FITS rows of each window (fits, on process 0 only) and formats only the
 * share that balances the two (share0).  0, or -1 when out of memory or a
 * transfer fails (on every process alike). */
static int text_rows(const ody_comm *c, int fits_too, fits_out *fits, FILE *out, const ranked *rk, text_row fn)
{
    size_t nb = (rk->m + TEXT_BLOCK - 1) / TEXT_BLOCK, R = (size_t)ody_comm_size(c), me = (size_t)ody_comm_rank(c);
    int fail = 0, bal = R > 1 && fits_too;
    int64_t us[4] = {0, 0, 0, 0};  /* share0's measurements, reduced */
    char *mem[TEXT_WINDOW];
    size_t len[TEXT_WINDOW];
    for (size_t w0 = 0, nwin; w0 < nb; w0 += nwin) {
        size_t a0 = bal ? share0(us, R) : TEXT_WINDOW, lo = 0, hi = 0;
        nwin = nb - w0 < a0 + TEXT_WINDOW * (R - 1) ? nb - w0 : a0 + TEXT_WINDOW * (R - 1);
        a0 = a0 < nwin ? a0 : nwin;
        if (me > 0)  /* this process's blocks of the window: at most TEXT_WINDOW */
            ody_part(nwin - a0, (int)R - 1, (int)me - 1, &lo, &hi), lo += a0, hi += a0;
        else hi = a0;
        size_t b0 = w0 + lo, nw = hi - lo;
        double t0 = omp_get_wtime(), wr = 0;
#pragma omp taskgroup
        {
            for (size_t b = 0; b < nw; b++) {
#pragma omp task firstprivate(b) shared(mem, len)
                text_block(rk, b0 + b, fn, &mem[b], &len[b]);
            }
        }
        double t1 = omp_get_wtime();
        size_t mine = 0;
        for (size_t b = 0; b < nw; b++) {
            if (!mem[b]) fail = 1;
            mine += mem[b] ? len[b] : 0;
        }
        if (fits) xp_fits_step(fits, (w0 + nwin) * TEXT_BLOCK);
        double t2 = omp_get_wtime();
        if (R > 1) fail = gather_window(c, out, mem, len, nw, mine, fail, &wr);
        for (size_t b = 0; b < nw; b++) {
            if (R == 1 && !fail) fwrite(mem[b], 1, len[b], out);
            free(mem[b]);
        }
        int64_t w[4] = {me ? 0 : (int64_t)(1e6 * (t2 - t1 + wr)), (int64_t)(1e6 * (t1 - t0)), (int64_t)nw,
                        me ? 0 : (int64_t)nwin};
        ody_err e;
        if (bal && !fail) fail = ody_allreduce(c, w, 4, ODY_SUM_I64, &e) != 0;
        for (int q = 0; q < 4; q++) us[q] += w[q];
    }
    return fail ? -1 : 0;
}

static void csv_row(FILE *f, const xcol *x, int n, size_t r, size_t r0)
{
    char buf[64];
    for (int q = 0; q < n; q++) {
        if (q) fputc(',', f);
        stage_csv_field(f, xp_cell(&x[q], r, r0, buf, sizeof buf));
    }
    fputc('\n', f);
}

/* The header from x (the text columns' names), then the rows. */
static int csv_body(const ranked *R, fits_out *fits, FILE *f, const xcol *x, int n)
{
    const run_state *st = R->st;
    for (int q = 0; q < n; q++) {
        if (q) fputc(',', f);
        stage_csv_field(f, x[q].c.name);
    }
    fputc('\n', f);
    return text_rows(st->comm, (st->c->formats & CFG_FMT_FITS) != 0, fits, f, R, csv_row);
}

/* A YAML single-quoted scalar. */
static void yq(FILE *f, const char *s)
{
    fputc('\'', f);
    for (; *s; s++) {
        if (*s == '\'') fputc('\'', f);
        fputc(*s, f);
    }
    fputc('\'', f);
}

static const char *ecsv_type(int t)
{
    return t == TSHORT ? "int16" : t == TINT ? "int32" : t == TLONGLONG ? "int64" : t == TFLOAT ? "float32" : t == TDOUBLE ? "float64" : "string";
}

/* ECSV (astropy's text format): the CSV under a YAML header with each
 * column's type, unit and description, and the run's provenance. */
static void ecsv_header(FILE *f, const run_state *st, const xcol *x, int n)
{
    fputs("# %ECSV 1.0\n# ---\n# delimiter: ','\n# datatype:\n", f);
    for (int q = 0; q < n; q++) {
        const fitsout_col *c = &x[q].c;
        fputs("# - {name: ", f);
        yq(f, c->name);
        if (c->unit && c->unit[0]) { fputs(", unit: ", f); yq(f, c->unit); }
        fprintf(f, ", datatype: %s", ecsv_type(c->type));
        if (c->desc) { fputs(", description: ", f); yq(f, c->desc); }
        fputs("}\n", f);
    }
    fputs("# meta:\n#   creator: oddsky\n#   version: ", f);
    yq(f, ody_version());
    fputs("\n#   input: ", f);
    yq(f, st->c->cat_path);
    fputs("\n#   config: ", f);
    yq(f, st->c->file);
    fprintf(f, "\n#   seed: %llu\n#   rank_by: %s\n# schema: astropy-2.0\n", (unsigned long long)st->c->seed,
            cfg_score_name(st->c->rank_by));
}

/* x: the text columns (names, types, units), n of them; fits: as for
 * text_rows. */
int xp_write_text(const ranked *R, fits_out *fits, const char *name, const xcol *x, int n, int ecsv, ody_err *err)
{
    const run_state *st = R->st;
    fitsout_text t;
    int rc = store_text_open(st, name, &t, err);
    if (rc) return rc;
    if (ecsv) ecsv_header(t.f, st, x, n);
    if (csv_body(R, fits, t.f, x, n)) {
        fitsout_text_abort(&t);
        return ody_fail(err, ODY_ENOMEM, "out of memory writing %s", name);
    }
    return fitsout_text_commit(&t, err);
}

/* ================================================================ VOTable */

static void xml(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (*s == '&') fputs("&amp;", f);
        else if (*s == '<') fputs("&lt;", f);
        else if (*s == '>') fputs("&gt;", f);
        else if (*s == '"') fputs("&quot;", f);
        else fputc(*s, f);
    }
}

static void vot_info(FILE *f, const char *name, const char *value)
{
    fprintf(f, "  <INFO name=\"%s\" value=\"", name);
    xml(f, value);
    fputs("\"/>\n", f);
}

static void vot_row(FILE *f, const xcol *x, int n, size_t r, size_t r0)
{
    char buf[64];
    fputs("<TR>", f);
    for (int q = 0; q < n; q++) {
        fputs("<TD>", f);
        xml(f, xp_cell(&x[q], r, r0, buf, sizeof buf));
        fputs("</TD>", f);
    }
    fputs("</TR>\n", f);
}

/* VOTable 1.4, TABLEDATA: what every VO tool and TOPCAT opens. */
int xp_write_vot(const ranked *R, fits_out *fits, const xcol *x, int n, ody_err *err)
{
    const run_state *st = R->st;
    fitsout_text t;
    int rc = store_text_open(st, "anomalies.vot", &t, err);
    if (rc) return rc;
    FILE *f = t.f;
    char buf[64];
    fputs("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<VOTABLE version=\"1.4\" "
          "xmlns=\"http://www.ivoa.net/xml/VOTable/v1.3\">\n<RESOURCE name=\"oddsky\">\n", f);
    vot_info(f, "creator", "oddsky");
    vot_info(f, "version", ody_version());
    vot_info(f, "input", st->c->cat_path);
    vot_info(f, "config", st->c->file);
    snprintf(buf, sizeof buf, "%llu", (unsigned long long)st->c->seed);
    vot_info(f, "seed", buf);
    fputs("<TABLE name=\"ANOMALIES\">\n", f);
    for (int q = 0; q < n; q++) {
        const fitsout_col *c = &x[q].c;
        int ty = c->type;
        fputs("  <FIELD name=\"", f);
        xml(f, c->name);
        fprintf(f, "\" datatype=\"%s\"%s", ty == TSHORT ? "short" : ty == TINT ? "int" : ty == TLONGLONG ? "long" : ty == TFLOAT ? "float"
                                           : ty == TDOUBLE ? "double" : "char", ty == TSTRING ? " arraysize=\"*\"" : "");
        if (c->unit && c->unit[0]) { fputs(" unit=\"", f); xml(f, c->unit); fputc('"', f); }
        fputs(">", f);
        if (c->desc) { fputs("<DESCRIPTION>", f); xml(f, c->desc); fputs("</DESCRIPTION>", f); }
        fputs("</FIELD>\n", f);
    }
    fputs("<DATA><TABLEDATA>\n", f);
    if (text_rows(st->comm, (st->c->formats & CFG_FMT_FITS) != 0, fits, f, R, vot_row)) {
        fitsout_text_abort(&t);
        return ody_fail(err, ODY_ENOMEM, "out of memory writing anomalies.vot");
    }
    fputs("</TABLEDATA></DATA>\n</TABLE>\n</RESOURCE>\n</VOTABLE>\n", f);
    return fitsout_text_commit(&t, err);
}

