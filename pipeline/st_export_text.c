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
 * twice its threads, at least MIN_WINDOW for one process; with several,
 * twice the most threads of any (they must agree on every window's
 * blocks), since their blocks wait for process 0's merge, not for a
 * write.  At 16 a process, 10^6 objects at 2 processes peaked 50 MB
 * higher; at 8 rather than 2 (one thread each), 8 MB higher. */
enum { MIN_WINDOW = 8 };

/* The first of this process's ranked objects at place r or later. */
static size_t first_at(const stage_ranked *sr, size_t r)
{
    size_t a = 0, b = sr->n;
    while (a < b) {
        size_t mid = a + (b - a) / 2;
        if (sr->pos[mid] < r) a = mid + 1;
        else b = mid;
    }
    return a;
}

/* The rows of block [r0, r1) of the ranking that this process holds, as a
 * ranking of their own (xp_pass.make makes them through it): their catalog
 * rows, their indices in this process's arrays, their places in the whole
 * ranking, in one allocation at v->order.  -1 when out of memory. */
static int view_of(const ranked *rk, size_t r0, size_t r1, ranked *v)
{
    const stage_ranked *sr = rk->parts;
    size_t a = first_at(sr, r0), k = first_at(sr, r1) - a;
    size_t *o = malloc(3 * (k ? k : 1) * sizeof *o), *lo = o + k, *pos = lo + k;
    if (!o) return -1;
    *v = *rk;
    v->order = o, v->lorder = lo, v->pos = pos, v->m = k;
    for (size_t q = 0; q < k; q++) {
        o[q] = sr->row[a + q];
        lo[q] = o[q] - rk->st->lo;
        pos[q] = sr->pos[a + q];
    }
    return 0;
}

/* What a process made of a window: its rows of each block, in rank order
 * (bytes, and each row's end). */
typedef struct made {
    char **mem;          /* per block, the rows' bytes */
    size_t *len;
    uint32_t **ends;     /* per block, each row's end in mem */
    size_t *cnt;         /* per block, rows */
    uint32_t **at;       /* per block, each row's place in the block */
} made;

/* Process 0's merge of block b of the window (ranking rows from r0):
 * every process's rows of it gathered (bytes, and each row's length and
 * place in the block), then put in rank order.  One block at a time, so
 * that process 0 never holds more than a block of every process's rows.
 * This process's block is freed as it is sent.  fail is this process's
 * state; the result is every process's (they agree). */
static int merge_block(const ody_comm *c, xp_pass *p, size_t r0, made *md, size_t b, int fail)
{
    const ranked *rk = p->R;
    size_t P = (size_t)c->size, rows = md->cnt[b], bytes = md->len[b], z = c->rank == 0;
    size_t nr = (r0 + p->block < rk->m ? r0 + p->block : rk->m) - r0;
    ody_err e;
    int64_t tot = (int64_t)bytes;
    if (ody_comm_agree(c, fail ? ODY_ENOMEM : 0, &e) || ody_allreduce(c, &tot, 1, ODY_SUM_I64, &e)) return 1;
    char *all = z ? malloc((size_t)tot + 1) : NULL, *blk = z ? malloc((size_t)tot + 1) : NULL;
    uint32_t *lens = malloc((rows + 1) * sizeof *lens), *alll = z ? malloc((nr + 1) * sizeof *alll) : NULL;
    uint32_t *allat = z ? malloc((nr + 1) * sizeof *allat) : NULL;
    size_t *sb = z ? calloc(P, sizeof *sb) : NULL, *sl = z ? calloc(P, sizeof *sl) : NULL;
    size_t *from = z ? malloc((nr + 1) * sizeof *from) : NULL, *sz = z ? calloc(nr + 1, sizeof *sz) : NULL;
    fail = !lens || (z && (!all || !blk || !alll || !allat || !sb || !sl || !from || !sz));
    for (size_t t = 0; !fail && t < rows; t++) lens[t] = md->ends[b][t] - (t ? md->ends[b][t - 1] : 0);
    fail = ody_comm_agree(c, fail ? ODY_ENOMEM : 0, &e) != 0 || c->gather(c, md->mem[b], bytes, all, sb, 0) != 0 ||
           c->gather(c, lens, rows * sizeof *lens, alll, sl, 0) != 0 ||
           c->gather(c, md->at[b], rows * sizeof *md->at[b], allat, sl, 0) != 0;
    free(md->mem[b]);
    md->mem[b] = NULL;
    if (!fail && z) {
        size_t got = 0, off = 0, at = 0;  /* the processes' rows in process order: where each row's bytes are */
        for (size_t q = 0; q < P; q++) got += sl[q] / sizeof *lens;
        for (size_t t = 0; t < got && got == nr; t++) {
            from[allat[t]] = off;
            sz[allat[t]] = alll[t];
            off += alll[t];
        }
        for (size_t r = 0; r < nr && got == nr; r++) {
            memcpy(blk + at, all + from[r], sz[r]);
            at += sz[r];
        }
        if (got == nr) p->put(p, r0, blk, at);
        fail = got != nr;  /* cannot happen: every place of the block is one process's */
    }
    free(all); free(blk); free(lens); free(alll); free(allat); free(sb); free(sl); free(from); free(sz);
    return fail;
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

/* Several processes: each window of win blocks made by every process as
 * tasks, each block's rows it holds (win tasks a process: every thread
 * busy), and merged a block at a time by process 0 (merge_block). */
static int rows_shared(const ody_comm *c, xp_pass *p, size_t win)
{
    const ranked *rk = p->R;
    size_t B = p->block, nb = (rk->m + B - 1) / B, wb = win;
    made md = {calloc(wb, sizeof(char *)), calloc(wb, sizeof(size_t)), calloc(wb, sizeof(uint32_t *)),
               calloc(wb, sizeof(size_t)), calloc(wb, sizeof(uint32_t *))};
    int fail = !md.mem || !md.len || !md.ends || !md.cnt || !md.at;
    ody_err e;
    if (ody_comm_agree(c, fail ? ODY_ENOMEM : 0, &e)) fail = 1;
    for (size_t w0 = 0; w0 < nb && !fail; w0 += wb) {
        size_t nw = nb - w0 < wb ? nb - w0 : wb;
#pragma omp taskgroup
        {
            for (size_t b = 0; b < nw; b++) {
#pragma omp task firstprivate(b)
                {
                    size_t r0 = (w0 + b) * B, r1 = r0 + B < rk->m ? r0 + B : rk->m;
                    ranked v;
                    md.mem[b] = NULL;
                    md.cnt[b] = 0;
                    if (!view_of(rk, r0, r1, &v)) {
                        md.cnt[b] = v.m;
                        md.ends[b] = malloc((v.m + 1) * sizeof **md.ends);
                        md.at[b] = malloc((v.m + 1) * sizeof **md.at);
                        for (size_t q = 0; md.at[b] && q < v.m; q++) md.at[b][q] = (uint32_t)(v.pos[q] - r0);
                        if (md.ends[b] && md.at[b]) p->make(p, &v, 0, v.m, &md.mem[b], &md.len[b], md.ends[b]);
                        free((void *)v.order);
                    }
                }
            }
        }
        for (size_t b = 0; b < nw; b++) fail |= !md.mem[b] || !md.ends[b] || !md.at[b];
        for (size_t b = 0; b < nw; b++) fail = merge_block(c, p, (w0 + b) * B, &md, b, fail);
        for (size_t b = 0; b < nw; b++) {
            free(md.mem[b]);
            free(md.ends[b]);
            free(md.at[b]);
            md.mem[b] = NULL;
            md.ends[b] = NULL;
            md.at[b] = NULL;
        }
    }
    free(md.mem); free(md.len); free(md.ends); free(md.cnt); free(md.at);
    return fail ? -1 : 0;
}

/* Rows [0, m) made by p->make a block of p->block rows at a time, as tasks
 * of the enclosing parallel region (a window of blocks at once, each into
 * memory), and put in order: the same bytes for any thread count and a
 * coarse grain.  One process puts a window while it makes the next.  With
 * several processes each makes the rows it holds of every block of a
 * window, and process 0 merges and puts them in order (rows_shared). */
int xp_rows(const ody_comm *c, xp_pass *p)
{
    const ranked *rk = p->R;
    size_t B = p->block, nb = (rk->m + B - 1) / B;
    int cur = 0, team = omp_get_num_threads();
    int wmax = 2 * team > MIN_WINDOW ? 2 * team : MIN_WINDOW, wproc = 2 * team;
    ody_err e;
    if (ody_comm_size(c) > 1)
        return ody_allreduce(c, &wproc, 1, ODY_MAX_INT, &e) ? -1 : rows_shared(c, p, (size_t)wproc);
    size_t win = (size_t)wmax;
    /* the blocks of the window being made and of the one being put */
    char **mem[2] = {calloc(win, sizeof(char *)), calloc(win, sizeof(char *))};
    size_t *len[2] = {calloc(win, sizeof(size_t)), calloc(win, sizeof(size_t))}, pend = 0, pend_b0 = 0;
    int fail = !mem[0] || !mem[1] || !len[0] || !len[1];
    for (size_t b0 = 0, nw; b0 < nb && !fail; b0 += nw) {
        nw = nb - b0 < win ? nb - b0 : win;
        char **mc = mem[cur], **mp = mem[1 - cur];
        size_t *lc = len[cur], *lp = len[1 - cur];
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
                    p->make(p, rk, r0, r1, &mc[b], &lc[b], NULL);
                }
            }
        }
        for (size_t b = 0; b < nw; b++) fail |= !mc[b];
        pend = nw;
        pend_b0 = b0;
        cur = 1 - cur;
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

/* Rows [r0, r1) of R as text into *mem (NULL on failure), the columns the
 * export makes made for them alone. */
static void text_make(xp_pass *p, const ranked *R, size_t r0, size_t r1, char **mem, size_t *len, uint32_t *ends)
{
    const text_pass *tp = (const text_pass *)p;
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
            for (size_t r = r0; r < r1; r++) {
                tp->row(f, xt, nt, r, r0);
                if (ends) ends[r - r0] = (uint32_t)ftell(f);
            }
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

