/* st_export_text.c — how the export's files are made a block of rows at a
 * time, in parallel, and with several processes shared among them, process
 * 0 writing in order (xp_rows); the text formats (CSV, ECSV, VOTable). */
#define _GNU_SOURCE
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "export.h"

/* ================================================================ blocks and windows */

/* Blocks a process makes a window at most (what it holds in memory at
 * once, twice for one process: one window put while the next is made):
 * twice its threads, at least MIN_WINDOW, the largest of the processes'
 * (they must agree on every window's blocks).  At 16 a process, 10^6
 * objects at 2 processes peaked 50 MB higher. */
enum { MIN_WINDOW = 8 };

/* One window of blocks of every process to process 0, which puts them in
 * process order, the window's first row being t0 (adding the seconds it
 * takes to *wr); fail is this process's state, and the result is every
 * process's (they agree).  The blocks are freed as they are copied to be
 * sent (mem[b] set to NULL): never two copies of a window. */
static int gather_window(const ody_comm *c, xp_pass *p, size_t t0, char **mem, const size_t *len, size_t nw,
                         size_t mine, int fail, double *wr)
{
    ody_err e;
    int64_t total = (int64_t)mine;
    if (ody_comm_agree(c, fail ? ODY_ENOMEM : 0, &e) || ody_allreduce(c, &total, 1, ODY_SUM_I64, &e)) return 1;
    char *buf = malloc(mine ? mine : 1), *all = c->rank == 0 ? malloc(total ? (size_t)total : 1) : NULL;
    size_t *sizes = c->rank == 0 ? malloc((size_t)c->size * sizeof *sizes) : NULL;
    fail = !buf || (c->rank == 0 && (!all || !sizes));
    for (size_t b = 0, at = 0; !fail && b < nw; at += len[b], b++) {
        memcpy(buf + at, mem[b], len[b]);
        free(mem[b]);
        mem[b] = NULL;
    }
    fail = ody_comm_agree(c, fail ? ODY_ENOMEM : 0, &e) != 0 || c->gather(c, buf, mine, all, sizes, 0) != 0;
    double t1 = omp_get_wtime();
    if (!fail && c->rank == 0) p->put(p, t0, all, (size_t)total);
    *wr += omp_get_wtime() - t1;
    free(buf);
    free(all);
    free(sizes);
    return fail;
}

/* Process 0's blocks in the next window: what balances its writing (phi
 * a block of the window) against a full share of the others' making (c a
 * block), from the microseconds measured so far, us[] = {writing, making,
 * blocks made, blocks in windows}, the same on every process (reduced).
 * Only work moves: every block's bytes are the same whoever makes them. */
static size_t share0(const int64_t *us, size_t R, size_t win)
{
    if (!us[2] || !us[3]) return 0;  /* nothing measured yet */
    double c = (double)us[1] / (double)us[2], phi = (double)us[0] / (double)us[3];
    double a = (c - phi * (double)(R - 1)) * (double)win / (phi + c);
    return !(a > 0) ? 0 : a >= (double)win ? win : (size_t)a;
}

/* Blocks [b0, b0 + nw) of mem put in order (none after a failure), and
 * freed. */
static void put_blocks(xp_pass *p, char **mem, const size_t *len, size_t b0, size_t nw, int fail)
{
    for (size_t b = 0; b < nw; b++) {
        if (!fail) p->put(p, (b0 + b) * p->block, mem[b], len[b]);
        free(mem[b]);
    }
}

/* Rows [0, m) made by p->make a block of p->block rows at a time, as tasks
 * of the enclosing parallel region (a window of blocks at once, each into
 * memory), and put in order: the same bytes for any thread count and a
 * coarse grain.  One process puts a window while it makes the next.  With
 * several processes a window is shared among them, process 0 making only
 * the share that balances its writing (share0), and it puts what they send
 * it in order. */
int xp_rows(const ody_comm *c, xp_pass *p)
{
    const ranked *rk = p->R;
    size_t B = p->block, nb = (rk->m + B - 1) / B, R = (size_t)ody_comm_size(c), me = (size_t)ody_comm_rank(c);
    int cur = 0, team = omp_get_num_threads();
    int64_t us[4] = {0, 0, 0, 0};  /* share0's measurements, reduced */
    int wmax = 2 * team > MIN_WINDOW ? 2 * team : MIN_WINDOW;
    ody_err e;
    int fail = R > 1 && ody_allreduce(c, &wmax, 1, ODY_MAX_INT, &e) != 0;
    size_t win = (size_t)wmax;
    /* the blocks of the window being made and (one process) of the one being put */
    char **mem[2] = {calloc(win, sizeof(char *)), calloc(win, sizeof(char *))};
    size_t *len[2] = {calloc(win, sizeof(size_t)), calloc(win, sizeof(size_t))}, pend = 0, pend_b0 = 0;
    if (!mem[0] || !mem[1] || !len[0] || !len[1]) fail = 1;
    if (R > 1 && ody_comm_agree(c, fail ? ODY_ENOMEM : 0, &e)) fail = 1;
    for (size_t w0 = 0, nwin; w0 < nb && !fail; w0 += nwin) {
        size_t a0 = R > 1 ? share0(us, R, win) : win, lo = 0, hi = 0;
        nwin = nb - w0 < a0 + win * (R - 1) ? nb - w0 : a0 + win * (R - 1);
        a0 = a0 < nwin ? a0 : nwin;
        if (me > 0)  /* this process's blocks of the window: at most win */
            ody_part(nwin - a0, (int)R - 1, (int)me - 1, &lo, &hi), lo += a0, hi += a0;
        else hi = a0;
        size_t b0 = w0 + lo, nw = hi - lo;
        char **mc = mem[cur], **mp = mem[1 - cur];
        size_t *lc = len[cur], *lp = len[1 - cur];
        double t0 = omp_get_wtime(), wr = 0;
#pragma omp taskgroup
        {
            if (pend) {
#pragma omp task firstprivate(pend, pend_b0, fail)
                put_blocks(p, mp, lp, pend_b0, pend, fail);
            }
            for (size_t b = 0; b < nw; b++) {
#pragma omp task firstprivate(b)
                {
                    size_t r0 = (b0 + b) * B, r1 = r0 + B < rk->m ? r0 + B : rk->m;
                    p->make(p, r0, r1, &mc[b], &lc[b]);
                }
            }
        }
        double t1 = omp_get_wtime();
        size_t mine = 0;
        for (size_t b = 0; b < nw; b++) {
            if (!mc[b]) fail = 1;
            mine += mc[b] ? lc[b] : 0;
        }
        if (R > 1) {
            fail = gather_window(c, p, w0 * B, mc, lc, nw, mine, fail, &wr);
            put_blocks(p, mc, lc, b0, nw, 1);  /* only freed, what a failure left */
        } else {
            pend = nw;
            pend_b0 = b0;
            cur = 1 - cur;
        }
        int64_t w[4] = {me ? 0 : (int64_t)(1e6 * wr), (int64_t)(1e6 * (t1 - t0)), (int64_t)nw, me ? 0 : (int64_t)nwin};
        if (R > 1 && !fail) fail = ody_allreduce(c, w, 4, ODY_SUM_I64, &e) != 0;
        for (int q = 0; q < 4; q++) us[q] += w[q];
    }
    if (pend) put_blocks(p, mem[1 - cur], len[1 - cur], pend_b0, pend, fail);
    for (int q = 0; q < 2; q++) {
        free(mem[q]);
        free(len[q]);
    }
    return fail ? -1 : 0;
}

/* ================================================================ CSV and ECSV */

/* Rows a text block. */
enum { TEXT_BLOCK = 4096 };

/* A text pass: rows formatted by row from the text columns. */
typedef struct text_pass {
    xp_pass p;
    FILE *out;
    void (*row)(FILE *f, const xcol *x, int n, size_t r, size_t r0);
} text_pass;

/* Rows [r0, r1) as text into *mem (NULL on failure), the columns the
 * export makes made for them alone. */
static void text_make(xp_pass *p, size_t r0, size_t r1, char **mem, size_t *len)
{
    const text_pass *tp = (const text_pass *)p;
    const ranked *R = p->R;
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
            for (size_t r = r0; r < r1; r++) tp->row(f, xt, nt, r, r0);
        if (f && fclose(f)) {
            free(*mem);
            *mem = NULL;
        }
        char *fit = *mem ? realloc(*mem, *len + 1) : NULL;  /* a memstream holds up to twice its text */
        if (fit) *mem = fit;
        xp_chunk_free(&c);
    }
    free(x);
    free(xt);
}

static void text_put(xp_pass *p, size_t t0, const char *bytes, size_t len)
{
    (void)t0;
    fwrite(bytes, 1, len, ((text_pass *)p)->out);
}

/* The text rows of R into out (a write error shows at its commit); 0, or
 * -1 when out of memory or a transfer failed. */
static int text_rows(const ranked *R, FILE *out, void (*row)(FILE *f, const xcol *x, int n, size_t r, size_t r0))
{
    text_pass tp = {{.R = R, .block = TEXT_BLOCK, .make = text_make, .put = text_put}, out, row};
    return xp_rows(R->st->comm, &tp.p);
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
static int csv_body(const ranked *R, FILE *f, const xcol *x, int n)
{
    for (int q = 0; q < n; q++) {
        if (q) fputc(',', f);
        stage_csv_field(f, x[q].c.name);
    }
    fputc('\n', f);
    return text_rows(R, f, csv_row);
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

/* x: the text columns (names, types, units), n of them. */
int xp_write_text(const ranked *R, const char *name, const xcol *x, int n, int ecsv, ody_err *err)
{
    const run_state *st = R->st;
    fitsout_text t;
    int rc = store_text_open(st, name, &t, err);
    if (rc) return rc;
    if (ecsv) ecsv_header(t.f, st, x, n);
    if (csv_body(R, t.f, x, n)) {
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
int xp_write_vot(const ranked *R, const xcol *x, int n, ody_err *err)
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
    if (text_rows(R, f, vot_row)) {
        fitsout_text_abort(&t);
        return ody_fail(err, ODY_ENOMEM, "out of memory writing anomalies.vot");
    }
    fputs("</TABLEDATA></DATA>\n</TABLE>\n</RESOURCE>\n</VOTABLE>\n", f);
    return fitsout_text_commit(&t, err);
}

