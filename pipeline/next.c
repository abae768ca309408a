/* next.c — the labelling loop: `oddsky next` and `oddsky label`. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fitsout.h"
#include "learn.h"
#include "tabin.h"
#include "run.h"
#include "stage.h"

/* ================================================================ next */

typedef struct next_ctx {
    int k, ids_only;
    char **text;
} next_ctx;

static void print_next(FILE *o, const run_state *st, const size_t *rows, size_t m, int ids_only)
{
    char buf[256], why[512];
    const cat *k = st->cat;
    if (!ids_only) {
        fprintf(o, "%4s  %-20s  %13s  %13s  %-9s", "NEXT", k->id.name, "LEARNED_SCORE", "ANOMALY_SCORE", "DRIVEN_BY");
        for (int p = 0; p < k->n_pass; p++) fprintf(o, "  %12.12s", k->pass[p].name);
        fputs("  WHY\n", o);
    }
    for (size_t r = 0; r < m; r++) {
        size_t i = rows[r];
        cat_col_format(&k->id, i, buf, sizeof buf);
        if (ids_only) {
            fprintf(o, "%s\n", buf);
            continue;
        }
        fprintf(o, "%4zu  %-20s  %13.5g  %13.5g  %-9s", r + 1, buf, st->learned[i], st->score[CFG_SCORE_ANOMALY][i],
                st->driver[i] < 0 ? "none" : cfg_score_name((cfg_score)st->driver[i]));
        for (int p = 0; p < k->n_pass; p++) {
            cat_col_format(&k->pass[p], i, buf, sizeof buf);
            fprintf(o, "  %12.12s", buf);
        }
        stage_format_why(st, i, why, sizeof why);
        fprintf(o, "  %s\n", why);
    }
}

static int list_next(run_state *st, void *ctx_, ody_err *err)
{
    next_ctx *ctx = ctx_;
    size_t n = st->n, m = 0;
    size_t *c = malloc((n ? n : 1) * sizeof *c);
    if (!c) return ody_fail(err, ODY_ENOMEM, "out of memory");
    int rc = stage_rank_order(st->learned, st->label, n, c, err);  /* the unlabelled are one run of it */
    if (rc) {
        free(c);
        return rc;
    }
    for (size_t r = 0; r < n && m < (size_t)ctx->k; r++)
        if (st->label[c[r]] < 0) c[m++] = c[r];
    size_t len = 0;
    FILE *o = open_memstream(ctx->text, &len);
    if (!o) {
        free(c);
        return ody_fail(err, ODY_ENOMEM, "out of memory");
    }
    print_next(o, st, c, m, ctx->ids_only);
    fclose(o);
    free(c);
    return 0;
}

int run_next(const cfg *c, int k, int ids_only, const ody_log *log, char **text, ody_err *err)
{
    *text = NULL;
    if (!c->labels[0])
        return ody_fail(err, ODY_EINPUT, "%s: no `labels:` file set — add e.g. `labels: labels.csv` to the config "
                        "(it need not exist yet)", c->file);
    if (k < 1) return ody_fail(err, ODY_EINPUT, "next: -n must be at least 1");
    run_opt o;
    run_opt_init(&o);
    o.until_stage = "learn";
    static const char *const uses[] = {"ingest", "score", NULL};  /* print_next: IDs, scores, WHY */
    o.also_load = uses;
    run_summary sum;
    next_ctx ctx = {k, ids_only, text};
    int rc = run_with(c, &o, &sum, log, err, list_next, &ctx);
    if (rc) {
        free(*text);
        *text = NULL;
    }
    return rc;
}

/* ================================================================ label */

/* The run's catalog IDs (catalog.fits), to check an ID against. */
static int run_ids(const cfg *c, cat **k, ody_err *err)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/catalog.fits", c->output);
    const char *feat[] = {"ROW"};
    cat_opt o;
    cat_opt_init(&o);
    o.path = path;
    o.features = feat;
    o.n_features = 1;
    o.id_col = c->cat_id[0] ? c->cat_id : "ROW";
    if (cat_read(&o, k, NULL, err))
        return ody_fail(err, ODY_EINPUT, "%s: no ingested catalog to check IDs against — run `oddsky run %s` first",
                        c->output, c->file);
    return 0;
}

static int has_id(const cat *k, const char *id)
{
    char buf[256];
    for (size_t i = 0; i < k->n_rows; i++) {
        cat_col_format(&k->id, i, buf, sizeof buf);
        if (!strcmp(buf, id)) return 1;
    }
    return 0;
}

/* One label as written: the object's ID as text, 0 or 1, a comment. */
typedef struct label_row {
    char id[256];
    int8_t y;
    const char *comment;
} label_row;

/* The format the labels file keeps: its own when it holds any (a FITS labels
 * file once came back as CSV under its .fits name, which no reader took),
 * else its name's (tab_format_by_name: .fits is FITS).  ECSV, VOTable and a
 * compressed file, which a rewrite would not keep, are refused. */
static int labels_format(const char *path, tab_format *fmt, ody_err *err)
{
    size_t n = strlen(path);
    int gz = n > 3 && !strcmp(path + n - 3, ".gz");
    struct stat sb;
    if (stat(path, &sb) == 0 && sb.st_size > 0) {  /* an empty file, like a missing one, holds no labels yet */
        int rc = tab_detect(path, fmt, err);
        if (rc) return rc;
    } else {
        *fmt = tab_format_by_name(path);
    }
    if (gz || *fmt == TAB_ECSV || *fmt == TAB_VOTABLE)
        return ody_fail(err, ODY_EINPUT, "%s: oddsky reads labels from %s but does not write one — point `labels:` "
                        "at a .csv or .fits file (a copy of this one) to add labels", path,
                        gz ? "a compressed file" : *fmt == TAB_ECSV ? "an ECSV file" : "a VOTable");
    return 0;
}

static int write_labels_csv(const char *path, const label_row *r, size_t n, ody_err *err)
{
    fitsout_text t;
    int rc = fitsout_text_open(&t, path, err);
    if (rc) return rc;
    fputs("id,label,comment\n", t.f);
    for (size_t q = 0; q < n; q++) {
        stage_csv_field(t.f, r[q].id);
        fprintf(t.f, ",%d,", r[q].y);
        stage_csv_field(t.f, r[q].comment);
        fputc('\n', t.f);
    }
    return fitsout_text_commit(&t, err);
}

/* A FITS table LABELS: id and comment as text, label as a 16-bit integer. */
static int write_labels_fits(const char *path, const label_row *r, size_t n, ody_err *err)
{
    size_t wid = 1, wcom = 1;
    for (size_t q = 0; q < n; q++) {
        if (strlen(r[q].id) > wid) wid = strlen(r[q].id);
        if (strlen(r[q].comment) > wcom) wcom = strlen(r[q].comment);
    }
    char *ids = calloc(n ? n : 1, wid + 1), *com = calloc(n ? n : 1, wcom + 1);
    int16_t *y = calloc(n ? n : 1, sizeof *y);
    int rc = ids && com && y ? 0 : ody_fail(err, ODY_ENOMEM, "out of memory");
    for (size_t q = 0; !rc && q < n; q++) {
        memcpy(ids + q * (wid + 1), r[q].id, strlen(r[q].id));
        memcpy(com + q * (wcom + 1), r[q].comment, strlen(r[q].comment));
        y[q] = r[q].y;
    }
    fitsout w;
    if (!rc) rc = fitsout_open(&w, path, 1, err);
    if (!rc) {
        int status = 0;
        fitsout_col cols[] = {{"id", TSTRING, (int)wid, ids, NULL, "the object's catalog ID"},
                              {"label", TSHORT, 1, y, NULL, "1 interesting, 0 not"},
                              {"comment", TSTRING, (int)wcom, com, NULL, NULL}};
        fitsout_table(w.f, "LABELS", cols, 3, n, &status);
        rc = fitsout_finish(&w, status ? ody_fits_fail(err, status, path, "cannot write the labels", NULL) : 0, err);
    }
    free(ids);
    free(com);
    free(y);
    return rc;
}

int run_label(const cfg *c, const char *id, int y, const char *comment, ody_err *err)
{
    if (!c->labels[0])
        return ody_fail(err, ODY_EINPUT, "%s: no `labels:` file set — add e.g. `labels: labels.csv` to the config",
                        c->file);
    if (y != 0 && y != 1) return ody_fail(err, ODY_EINPUT, "label: %d — a label is 1 (interesting) or 0 (not)", y);
    cat *k = NULL;
    int rc = run_ids(c, &k, err);
    if (rc) return rc;
    if (!has_id(k, id)) {
        rc = ody_fail(err, ODY_EINPUT, "label: ID '%s' is not in the catalog of %s — check the ID (`catalog.id` "
                      "column, or the row number when that is empty)", id, c->output);
        cat_destroy(k);
        return rc;
    }
    /* every existing label but this object's, then this one */
    tab_format fmt = TAB_CSV;
    lrn_labels old;
    rc = labels_format(c->labels, &fmt, err);
    if (!rc) rc = lrn_labels_read(c->labels, &k->id, k->n_rows, &old, err);
    int have_old = !rc;
    size_t n = 0;
    label_row *rows = have_old ? calloc(old.n + 1, sizeof *rows) : NULL;
    if (have_old && !rows) rc = ody_fail(err, ODY_ENOMEM, "out of memory");
    for (size_t q = 0; !rc && q < old.n; q++) {
        cat_col_format(&k->id, old.row[q], rows[n].id, sizeof rows[n].id);
        if (!strcmp(rows[n].id, id)) continue;  /* replaced by the new label */
        rows[n].y = old.y[q];
        rows[n++].comment = old.comment[q];
    }
    if (!rc) {
        snprintf(rows[n].id, sizeof rows[n].id, "%s", id);
        rows[n].y = (int8_t)y;
        rows[n++].comment = comment ? comment : "";
        rc = fmt == TAB_FITS ? write_labels_fits(c->labels, rows, n, err) : write_labels_csv(c->labels, rows, n, err);
    }
    free(rows);
    if (have_old) lrn_labels_free(&old);
    cat_destroy(k);
    return rc;
}
