/* st_rank.c — the export's ranking with several processes, held by parts:
 * no process holds every object's score or place in the ranking (16 bytes
 * an object was 16 GB a process at 10^9).  A sample sort of the objects'
 * keys (group, score, row — stage_rank_order's total order, so the places
 * are those one process finds): each process sorts its own keys, the
 * processes choose R - 1 splitters from an even sample of every process's
 * sorted keys, each key goes to the process whose range holds it, each
 * process sorts what it received (a contiguous stretch of the ranking),
 * and every key's place goes back to the process that sent it. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "stage.h"

/* ================================================================ keys */

/* An object's key, 16 bytes: its score, and its group (0 interesting, 1
 * unlabelled, 2 not, 3 a sample of a process with no object) above its
 * catalog row in one word. */
typedef struct rkey {
    double s;
    uint64_t gr;
} rkey;

#define ROW_BITS 62
#define ROW_MASK ((UINT64_C(1) << ROW_BITS) - 1)

static rkey key_of(double s, int32_t g, size_t row) { return (rkey){s, (uint64_t)g << ROW_BITS | (uint64_t)row}; }

/* < 0, 0, > 0 as a ranks before, with, after b: group, score descending,
 * row. */
static int key_cmp(const void *pa, const void *pb)
{
    const rkey *a = pa, *b = pb;
    uint64_t ga = a->gr >> ROW_BITS, gb = b->gr >> ROW_BITS;
    if (ga != gb) return ga < gb ? -1 : 1;
    if (a->s != b->s) return a->s < b->s ? 1 : -1;
    return (a->gr > b->gr) - (a->gr < b->gr);  /* same group: the rows' order */
}

/* Samples a process gives towards the splitters: with R processes each
 * receives within about n / (R S) of its share. */
enum { SAMPLES = 64 };

/* The R - 1 splitters into sp (process p's range starts at sp[p - 1]),
 * from SAMPLES evenly spaced keys of every process's n sorted keys. */
static int splitters(const ody_comm *c, const rkey *k, size_t n, rkey *sp, ody_err *err)
{
    int R = ody_comm_size(c);
    rkey mine[SAMPLES], *all = NULL;
    for (size_t j = 0; j < SAMPLES; j++) mine[j] = n ? k[j * n / SAMPLES] : key_of(0, 3, 0);
    int rc = ody_gather_rows(c, mine, (size_t)R * SAMPLES, sizeof *mine, (void **)&all, err);
    if (rc) return rc;
    qsort(all, (size_t)R * SAMPLES, sizeof *all, key_cmp);
    for (int p = 1; p < R; p++) sp[p - 1] = all[(size_t)p * SAMPLES];
    free(all);
    return 0;
}

/* ================================================================ the ranking */

void stage_ranked_free(stage_ranked *r)
{
    free(r->row);
    free(r->pos);
    memset(r, 0, sizeof *r);
}

/* The stretch of the ranking this process received (m keys at in, from
 * each process p rcnt[p] bytes, each process's in its rank order), sorted
 * in place, and each key's place (goff + its rank here) into *place, in
 * the order each process sent them: a process's keys keep their order in
 * the sorted stretch, so walking it hands each sender its places in turn. */
static int places(const run_state *st, rkey *in, size_t m, const size_t *rcnt, size_t goff, size_t **place,
                  ody_err *err)
{
    int R = ody_comm_size(st->comm);
    size_t *at = malloc((size_t)R * sizeof *at);
    *place = malloc((m ? m : 1) * sizeof **place);
    if (!at || !*place) {
        free(at);
        return ody_fail(err, ODY_ENOMEM, "out of memory ranking %zu objects", m);
    }
    at[0] = 0;
    for (int p = 1; p < R; p++) at[p] = at[p - 1] + rcnt[p - 1] / sizeof *in;
    qsort(in, m, sizeof *in, key_cmp);
    for (size_t q = 0; q < m; q++) (*place)[at[ody_part_of(st->n, R, (size_t)(in[q].gr & ROW_MASK))]++] = goff + q;
    free(at);
    return 0;
}

int stage_rank_parts(const run_state *st, const double *score, const int16_t *label, stage_ranked *out,
                     ody_err *err)
{
    const ody_comm *c = st->comm;
    int R = ody_comm_size(c), me = ody_comm_rank(c);
    size_t n = stage_rows(st), m = 0, goff = 0;
    memset(out, 0, sizeof *out);
    rkey *k = malloc((n ? n : 1) * sizeof *k), *sp = malloc((size_t)R * sizeof *sp), *in = NULL;
    size_t *cnt = calloc((size_t)R, sizeof *cnt), *rcnt = malloc((size_t)R * sizeof *rcnt), *place = NULL;
    int64_t *moff = NULL, mm;
    int rc = ody_comm_agree(c, k && sp && cnt && rcnt ? 0 : ody_fail(err, ODY_ENOMEM, "out of memory"), err);
    for (size_t i = 0; !rc && i < n; i++) k[i] = key_of(score[i], stage_rank_group(label, i), st->lo + i);
    if (!rc) qsort(k, n, sizeof *k, key_cmp);
    if (!rc) rc = splitters(c, k, n, sp, err);
    for (size_t i = 0, p = 0; !rc && i < n; i++) {  /* k sorted: the processes' ranges in turn */
        while (p + 1 < (size_t)R && key_cmp(&k[i], &sp[p]) >= 0) p++;
        cnt[p] += sizeof *k;
    }
    if (!rc) rc = ody_exchange(c, k, cnt, (void **)&in, rcnt, err);
    for (int p = 0; !rc && p < R; p++) m += rcnt[p] / sizeof *k;
    /* where this process's stretch of the ranking starts: the counts of the processes before it */
    mm = (int64_t)m;
    if (!rc) rc = ody_gather_rows(c, &mm, (size_t)R, sizeof mm, (void **)&moff, err);
    for (int p = 0; !rc && p < me; p++) goff += (size_t)moff[p];
    if (!rc) rc = ody_comm_agree(c, places(st, in, m, rcnt, goff, &place, err), err);
    free(in);
    /* the places back, each to the process that sent its key, in the order it sent them: its rank order */
    for (int p = 0; !rc && p < R; p++) {
        size_t t = rcnt[p];
        rcnt[p] = cnt[p] / sizeof *k * sizeof *place;
        cnt[p] = t / sizeof *k * sizeof *place;
    }
    if (!rc) rc = ody_exchange(c, place, cnt, (void **)&out->pos, rcnt, err);
    free(place);  /* (no more at once than the keys sent and received and the places: 40 bytes an object) */
    if (!rc) out->row = malloc((n ? n : 1) * sizeof *out->row);
    if (!rc) rc = ody_comm_agree(c, out->row ? 0 : ody_fail(err, ODY_ENOMEM, "out of memory"), err);
    for (size_t i = 0; !rc && i < n; i++) out->row[i] = (size_t)(k[i].gr & ROW_MASK);
    if (!rc) out->n = n;
    free(k); free(sp); free(cnt); free(rcnt); free(moff);
    if (rc) stage_ranked_free(out);
    return rc;
}
