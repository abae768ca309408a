/* st_export_text.c — how the export's files are made a block of rows at a
 * time, in parallel, and with several processes shared among them, each
 * writing its own windows of the ranking (xp_rows); the text formats (CSV,
 * ECSV, VOTable). */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "export.h"

/* ================================================================ blocks and windows */

/* Blocks one process makes a window at most (what it holds in memory at
 * once, twice: one window put while the next is made): twice its threads,
 * at least MIN_WINDOW.  With several processes, a round's windows hold
 * twice the most threads of any process's blocks between them (they must
 * agree on every window): at 10^6 objects on 2 processes, windows of 16
 * blocks a process peaked 50 MB higher than of 2. */
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
    size_t *o = malloc(3 * (k ? k : 1) * sizeof *o);
    if (!o) return -1;
    size_t *lo = o + k, *pos = lo + k;
    *v = *rk;
    v->order = o, v->lorder = lo, v->pos = pos, v->m = k;
    for (size_t q = 0; q < k; q++) {
        o[q] = sr->row[a + q];
        lo[q] = o[q] - rk->st->lo;
        pos[q] = sr->pos[a + q];
    }
    return 0;
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

/* ================================================================ several processes: windows dealt out */

/* With several processes the ranking is cut into windows of W places,
 * dealt out in turn (window k to process k mod P), and each process puts
 * its own: a round of P windows at a time.  Every process makes the rows
 * it holds of every window of the round and sends them to the window's
 * process with each row's place and length (two personal exchanges); the
 * processes then learn the round's windows' sizes (a reduction of P
 * numbers), so each knows where its window goes in a file of rows of any
 * length (p->at), and puts it there.  No process receives, merges or
 * writes more than its own windows, and each row travels once. */

/* The rows this process holds of places [a, b): bytes, each row's end,
 * and its place from base. */
typedef struct piece {
    char *mem;
    size_t len, cnt;
    uint32_t *ends, *at;
} piece;

static void piece_free(piece *pc)
{
    free(pc->mem);
    free(pc->ends);
    free(pc->at);
    memset(pc, 0, sizeof *pc);
}

/* 0, or -1 when out of memory. */
static int make_piece(xp_pass *p, size_t a, size_t b, size_t base, piece *pc)
{
    ranked v;
    memset(pc, 0, sizeof *pc);
    if (a >= b) return 0;
    if (view_of(p->R, a, b, &v)) return -1;
    pc->cnt = v.m;
    pc->ends = malloc((v.m + 1) * sizeof *pc->ends);
    pc->at = malloc((v.m + 1) * sizeof *pc->at);
    int ok = pc->ends && pc->at;
    for (size_t q = 0; ok && q < v.m; q++) pc->at[q] = (uint32_t)(v.pos[q] - base);
    if (ok) p->make(p, &v, 0, v.m, &pc->mem, &pc->len, pc->ends);
    free((void *)v.order);
    return ok && pc->mem ? 0 : -1;
}

/* The pieces, nbw a process, as one message a process: the bytes at *send
 * (cnt[q] for q), each row's place and length at *meta (mcnt[q]). */
static int pack(const piece *pcs, int P, size_t nbw, char **send, size_t *cnt, uint32_t **meta, size_t *mcnt)
{
    size_t bytes = 0, rows = 0;
    for (int q = 0; q < P; q++) {
        cnt[q] = mcnt[q] = 0;
        for (size_t b = 0; b < nbw; b++) {
            cnt[q] += pcs[(size_t)q * nbw + b].len;
            mcnt[q] += 2 * sizeof **meta * pcs[(size_t)q * nbw + b].cnt;
            rows += pcs[(size_t)q * nbw + b].cnt;
        }
        bytes += cnt[q];
    }
    *send = malloc(bytes + 1);
    *meta = malloc(2 * (rows + 1) * sizeof **meta);
    if (!*send || !*meta) return -1;
    char *s = *send;
    uint32_t *m = *meta;
    for (size_t k = 0; k < (size_t)P * nbw; k++) {
        const piece *pc = &pcs[k];
        if (pc->len) memcpy(s, pc->mem, pc->len);
        s += pc->len;
        for (size_t r = 0; r < pc->cnt; r++) {
            *m++ = pc->at[r];
            *m++ = pc->ends[r] - (r ? pc->ends[r - 1] : 0);
        }
    }
    return 0;
}

/* The rows received for this process's window of wn places (their bytes
 * at in, each row's place and length at meta) in order into *out (*len
 * bytes; malloc'd); 0, or -1 when out of memory or when they do not fill
 * the window exactly. */
static int assemble(size_t wn, const char *in, const uint32_t *meta, size_t rows, char **out, size_t *len)
{
    size_t *off = calloc(wn + 1, sizeof *off), total = 0;
    *out = NULL;
    if (!off) return -1;
    int bad = rows != wn;
    for (size_t r = 0; r < rows && !bad; r++) {
        bad = meta[2 * r] >= wn || off[meta[2 * r]];
        if (!bad) off[meta[2 * r]] = (size_t)meta[2 * r + 1] + 1;  /* a length + 1: seen */
    }
    for (size_t t = 0; t < wn && !bad; t++) {
        size_t l = off[t] - 1;
        off[t] = total;
        total += l;
    }
    if (!bad) *out = malloc(total + 1);
    for (size_t r = 0, at = 0; *out && r < rows; at += meta[2 * r + 1], r++)
        memcpy(*out + off[meta[2 * r]], in + at, meta[2 * r + 1]);
    *len = total;
    free(off);
    return *out ? 0 : -1;
}

/* The places of window k: [*a, *b). */
static void window(size_t k, size_t W, size_t m, size_t *a, size_t *b)
{
    *a = k * W < m ? k * W : m;
    *b = *a + W < m ? *a + W : m;
}

/* Round j of rows_spread: windows [j P, j P + P), of W places (nbw
 * blocks) each; cnt has room for 4 P counts, sz for P sizes; *base: the
 * bytes of every row before the round, moved past it.  The result is
 * every process's. */
static int spread_round(const ody_comm *c, xp_pass *p, size_t j, size_t nbw, piece *pcs, size_t *cnt, int64_t *sz,
                        uint64_t *base)
{
    int P = c->size, me = c->rank, fail = 0;
    size_t m = p->R->m, B = p->block, W = B * nbw, *rcnt = cnt + P, *mcnt = cnt + 2 * P, *rmcnt = cnt + 3 * P;
#pragma omp taskgroup
    {
        for (int q = 0; q < P; q++)
            for (size_t b = 0; b < nbw; b++) {
#pragma omp task firstprivate(q, b) shared(fail)
                {
                    size_t w0, w1;
                    window(j * (size_t)P + (size_t)q, W, m, &w0, &w1);
                    size_t a = w0 + b * B < w1 ? w0 + b * B : w1, z = a + B < w1 ? a + B : w1;
                    if (make_piece(p, a, z, w0, &pcs[(size_t)q * nbw + b])) {
#pragma omp atomic write
                        fail = 1;
                    }
                }
            }
    }
    char *send = NULL, *in = NULL, *out = NULL;
    uint32_t *meta = NULL, *rmeta = NULL;
    size_t rows = 0, len = 0, t0, t1;
    ody_err e;
    if (!fail) fail = pack(pcs, P, nbw, &send, cnt, &meta, mcnt);
    for (size_t k = 0; k < (size_t)P * nbw; k++) piece_free(&pcs[k]);
    fail = ody_comm_agree(c, fail ? ODY_ENOMEM : 0, &e) || ody_exchange(c, send, cnt, (void **)&in, rcnt, &e) ||
           ody_exchange(c, meta, mcnt, (void **)&rmeta, rmcnt, &e);
    free(send);
    free(meta);
    for (int q = 0; !fail && q < P; q++) rows += rmcnt[q] / (2 * sizeof *rmeta);
    window(j * (size_t)P + (size_t)me, W, m, &t0, &t1);
    if (!fail) fail = assemble(t1 - t0, in, rmeta, rows, &out, &len);
    free(in);
    free(rmeta);
    memset(sz, 0, (size_t)P * sizeof *sz);
    sz[me] = (int64_t)len;
    fail = ody_comm_agree(c, fail ? ODY_ENOMEM : 0, &e) || ody_allreduce(c, sz, (size_t)P, ODY_SUM_I64, &e);
    p->at = *base;
    for (int q = 0; !fail && q < P; q++) {
        if (q < me) p->at += (uint64_t)sz[q];
        *base += (uint64_t)sz[q];
    }
    if (!fail && t1 > t0) p->put(p, t0, out, len);
    free(out);
    return fail ? -1 : 0;
}

/* Several processes: every process's windows put by it, a round of P
 * windows of nbw blocks at a time (nbw x P tasks a round: every thread
 * busy).  p->at is then the bytes of every row. */
static int rows_spread(const ody_comm *c, xp_pass *p, size_t nbw)
{
    size_t P = (size_t)c->size, W = p->block * nbw;
    piece *pcs = calloc(P * nbw, sizeof *pcs);
    size_t *cnt = malloc(4 * P * sizeof *cnt);
    int64_t *sz = malloc(P * sizeof *sz);
    uint64_t base = 0;
    ody_err e;
    int fail = ody_comm_agree(c, pcs && cnt && sz ? 0 : ODY_ENOMEM, &e) != 0;
    for (size_t j = 0; !fail && j * P * W < p->R->m; j++) fail = spread_round(c, p, j, nbw, pcs, cnt, sz, &base);
    p->at = base;
    free(pcs);
    free(cnt);
    free(sz);
    return fail ? -1 : 0;
}

/* Rows [0, m) made by p->make a block of p->block rows at a time, as tasks
 * of the enclosing parallel region (a window of blocks at once, each into
 * memory), and put in order: the same bytes for any thread count and a
 * coarse grain.  One process puts a window while it makes the next.  With
 * several processes each puts its own windows of the ranking, made by the
 * processes that hold their rows (rows_spread). */
int xp_rows(const ody_comm *c, xp_pass *p)
{
    const ranked *rk = p->R;
    size_t B = p->block, nb = (rk->m + B - 1) / B;
    int cur = 0, team = omp_get_num_threads();
    int wmax = 2 * team > MIN_WINDOW ? 2 * team : MIN_WINDOW, wproc = 2 * team;
    ody_err e;
    if (ody_comm_size(c) > 1)  /* windows of at least 2 x the most threads of any process, between them */
        return ody_allreduce(c, &wproc, 1, ODY_MAX_INT, &e)
                   ? -1 : rows_spread(c, p, ((size_t)wproc + (size_t)c->size - 1) / (size_t)c->size);
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
    FILE *out;           /* one process: where the rows go, in order */
    void (*row)(FILE *f, const xcol *x, int n, size_t r, size_t r0);
    store_shared *sh;    /* several: the file each writes its windows into */
    uint64_t head;       /* several: the bytes before the rows */
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
    text_pass *tp = (text_pass *)p;
    (void)t0;
    if (tp->sh) store_shared_write(tp->sh, tp->head + p->at, bytes, len);
    else fwrite(bytes, 1, len, tp->out);
}

/* The text rows of R into t (a write error shows at its commit or its
 * close).  With several processes each writes its own windows where they
 * go (store_shared), after the text process 0 wrote so far; process 0's
 * file then stands after the last row.  0, or an error on every process. */
static int text_rows(const ranked *R, fitsout_text *t, const char *name,
                     void (*row)(FILE *f, const xcol *x, int n, size_t r, size_t r0), ody_err *err)
{
    const run_state *st = R->st;
    const ody_comm *c = st->comm;
    text_pass tp = {{.R = R, .block = TEXT_BLOCK, .make = text_make, .put = text_put}, t->f, row, NULL, 0};
    if (ody_comm_size(c) < 2)
        return xp_rows(c, &tp.p) ? ody_fail(err, ODY_ENOMEM, "out of memory writing %s", name) : 0;
    store_shared sh;
    char *path = store_path(st, name);
    int rc = ody_comm_agree(c, path ? 0 : ody_fail(err, ODY_ENOMEM, "out of memory"), err);
    if (!rc && ody_comm_rank(c) == 0 && (fflush(t->f) || (tp.head = (uint64_t)ftello(t->f)) == (uint64_t)-1))
        rc = ody_fail(err, ODY_EIO, "cannot write %s: %s", path, strerror(errno));
    rc = ody_comm_agree(c, rc, err);
    if (!rc) rc = ody_bcast(c, &tp.head, sizeof tp.head, 0, err);
    if (!rc) rc = store_shared_open(st, t->tmp, path, &sh, err);
    if (!rc) {
        tp.sh = &sh;
        int fail = xp_rows(c, &tp.p) ? ody_fail(err, ODY_ENOMEM, "out of memory writing %s", name) : 0;
        rc = store_shared_close(st, &sh, path, err);
        if (!rc) rc = fail;
    }
    if (!rc && ody_comm_rank(c) == 0 && fseeko(t->f, (off_t)(tp.head + tp.p.at), SEEK_SET))
        rc = ody_fail(err, ODY_EIO, "cannot write %s: %s", path, strerror(errno));
    free(path);
    return ody_comm_agree(c, rc, err);
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
static int csv_body(const ranked *R, fitsout_text *t, const char *name, const xcol *x, int n, ody_err *err)
{
    for (int q = 0; q < n; q++) {
        if (q) fputc(',', t->f);
        stage_csv_field(t->f, x[q].c.name);
    }
    fputc('\n', t->f);
    return text_rows(R, t, name, csv_row, err);
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
    if ((rc = csv_body(R, &t, name, x, n, err))) {
        fitsout_text_abort(&t);
        return rc;
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
    if ((rc = text_rows(R, &t, "anomalies.vot", vot_row, err))) {
        fitsout_text_abort(&t);
        return rc;
    }
    fputs("</TABLEDATA></DATA>\n</TABLE>\n</RESOURCE>\n</VOTABLE>\n", f);
    return fitsout_text_commit(&t, err);
}

