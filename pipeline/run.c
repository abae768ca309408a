/* run.c — the driver: walks the stage table, deciding for each stage from
 * its hash and its artifacts whether to run it or read it back, and keeps
 * the manifest, the log and the summary. */
#define _GNU_SOURCE
#include "run.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "repview.h"
#include "stage.h"

/* ================================================================ the table, by name */

int run_n_stages(void) { return run_stage_count; }

const char *run_stage_name(int k) { return k >= 0 && k < run_stage_count ? run_stage_table[k]->name : "?"; }

int run_stage_index(const char *name)
{
    for (int k = 0; name && k < run_stage_count; k++)
        if (!strcmp(name, run_stage_table[k]->name)) return k;
    return -1;
}

void run_opt_init(run_opt *o) { memset(o, 0, sizeof *o); }

/* ================================================================ state */

static void state_free(run_state *st)
{
    cat_destroy(st->cat);
    for (int r = 0; r < st->n_forests; r++) rf_destroy(st->forests[r]);
    free(st->forests);
    for (int s = 0; s < CFG_N_SCORES; s++) free(st->score[s]);
    cut_destroy(st->cut);
    free(st->n_good);
    free(st->nb);
    free(st->near);
    free(st->near_dist);
    free(st->heap_feat);
    free(st->why_feat);
    free(st->why_span);
    free(st->why_dev);
    free(st->driver);
    free(st->det_z);
    free(st->learned);
    free(st->label);
    if (st->have_ctx0) rf_sim_ctx_free(&st->ctx0);
    free(st->X_own);
    stage_keep_free(&st->keep);
    free(st->dir);
    free(st->history);
}

/* The run directory (created, then made absolute) and the effective config. */
static int state_init(run_state *st, const cfg *c, run_summary *sum, const ody_comm *comm, ody_err *err)
{
    memset(st, 0, sizeof *st);
    st->c = c;
    st->comm = comm;
    st->sum = sum;
    st->dir = strdup(c->output);
    st->history = cfg_dump(c);
    int rc = !st->dir || !st->history ? ody_fail(err, ODY_ENOMEM, "out of memory")
           : store_writes(st) ? store_mkdir(st->dir, err) : 0;
    if ((rc = ody_comm_agree(comm, rc, err))) return rc;
    char *real = realpath(st->dir, NULL);
    if (real) {
        free(st->dir);
        st->dir = real;
    }
    if ((rc = ody_comm_agree(comm, stage_inputs_spared(c, st->dir, err), err))) return rc;
    snprintf(sum->out_dir, sizeof sum->out_dir, "%s", st->dir);
    return 0;
}

/* The run log, appended to in the run directory; NULL (with a warning) when
 * it cannot be opened: the run itself does not need it. */
static FILE *open_log(const run_state *st, const ody_log *console)
{
    if (!store_writes(st)) return NULL;
    char *p = store_path(st, "oddsky.log");
    FILE *f = p ? fopen(p, "a") : NULL;
    if (!f) ody_logf(console, ODY_LOG_WARN, "%s: cannot open the run log (%s); going on without it",
                     p ? p : "oddsky.log", strerror(errno));
    free(p);
    return f;
}

/* ================================================================ deciding */

/* A stage's hash: its keys' values, its position, the hashes of the stages
 * it reads, and for the first the input's bytes.  Changing any of them
 * changes the hashes of every stage downstream. */
static uint64_t stage_hash(const cfg *c, const stage_def *d, int s, const uint64_t *hash, uint64_t input_sum)
{
    int np = 0;
    while (d->keys[np]) np++;
    uint64_t h = cfg_hash(c, d->keys, np) ^ (0x9E3779B97F4A7C15ULL * (uint64_t)(s + 1));
    if (d->hashes_input) h ^= input_sum * 0xBF58476D1CE4E5B9ULL;
    if (d->version) h = (h ^ (uint64_t)d->version) * 0xD6E8FEB86659FD93ULL;
    if (d->depends_on && d->depends_on(c)[0]) h ^= (store_checksum(d->depends_on(c)) + 1) * 0x94D049BB133111EBULL;
    for (int r = 0; d->reads[r]; r++) {
        int dep = run_stage_index(d->reads[r]);
        if (dep >= 0 && dep < s) h = (h ^ hash[dep]) * 1099511628211ULL;
    }
    return h;
}

/* ================================================================ running */

typedef struct walk {
    uint64_t hash[64], done[64];
    double secs[64];
    char *files[64];         /* each stage's artifacts as the manifest records them (owned) */
    int from;                /* stages from this index on run whatever their hash */
    uint64_t input_sum;      /* the input catalog's bytes */
    int on[64], run[64];     /* enabled; to run (else up to date) */
    int need[64];            /* up to date, but its artifacts must be read back */
    int damaged[64];         /* to run for its artifacts alone: missing, cut short or changed since */
} walk;

/* Decides every stage up to `last` before any runs: its hash, whether it
 * runs, and whether an up-to-date one must read its artifacts back — the
 * last one, and those a running stage (or a read-back that uses them)
 * reads, and ingest always.  The others cost nothing: an unchanged forest
 * is not loaded when only the labels changed. */
static void plan(run_state *st, walk *w, int last, const char *const *also)
{
    for (int s = 0; s <= last; s++) {
        const stage_def *d = run_stage_table[s];
        uint64_t h = stage_hash(st->c, d, s, w->hash, w->input_sum);
        w->hash[s] = h;
        w->on[s] = !d->enabled || d->enabled(st->c);
        w->run[s] = w->on[s] && (s >= w->from || w->done[s] != h);
        char why[256];
        if (w->on[s] && !w->run[s] && !store_files_intact(st, d, w->files[s], why, sizeof why)) {
            w->run[s] = w->damaged[s] = 1;  /* deleted, cut short or replaced since: made again, not read back */
            ody_logf(st->log, ODY_LOG_INFO, "stage %s: %s is missing or not as this run wrote it (cut short or "
                     "changed since): the stage runs again", d->name, why);
        }
        w->need[s] = s == last || s == 0;
    }
    for (int k = 0; also && also[k]; k++) {
        int s = run_stage_index(also[k]);
        if (s >= 0 && s <= last) w->need[s] = 1;
    }
    for (int t = last; t >= 0; t--) {
        const stage_def *d = run_stage_table[t];
        if (w->on[t] && w->run[t] && d->needs_trees) st->want_trees = 1;
        if (!w->on[t] || !(w->run[t] || (w->need[t] && d->load_needs_reads))) continue;
        for (int r = 0; d->reads[r]; r++) {
            int dep = run_stage_index(d->reads[r]);
            if (dep >= 0 && dep < t) w->need[dep] = 1;
        }
    }
}

/* The time the stages from `first` on should take: their last times here;
 * stages never timed here are counted by their cost models once ingest has
 * told the data's size (st->n).  Before ingest (first 0) it says what it
 * knows; after, it speaks only when a model stood in. */
static void estimate(const run_state *st, const walk *w, int first, int last)
{
    int n = 0, untimed = 0;
    double t = 0;
    for (int s = first; s <= last; s++) {
        if (!w->on[s] || !w->run[s]) continue;
        n++;
        if (w->secs[s] > 0) t += w->secs[s];
        else untimed++, t += st->n ? stage_guess(st, run_stage_table[s]->name) : 0;
    }
    if (first > 0) {
        if (untimed)
            ody_logf(st->log, ODY_LOG_INFO, "run: about %.0f s to go for %zu objects x %d features (a first estimate: "
                     "later runs use this machine's own times)", t < 1 ? 1 : t, st->n, st->F);
    } else if (!n) ody_logf(st->log, ODY_LOG_INFO, "run: every stage up to date");
    else if (!untimed) ody_logf(st->log, ODY_LOG_INFO, "run: %d stage%s to run, about %.0f s by their last times here",
                                n, n == 1 ? "" : "s", t);
    else ody_logf(st->log, ODY_LOG_INFO, "run: %d stage%s to run%s", n, n == 1 ? "" : "s",
                  untimed == n ? "" : " (some never timed here)");
}

static int run_stage(run_state *st, walk *w, int s, ody_err *err)
{
    const stage_def *d = run_stage_table[s];
    uint64_t h = w->hash[s];
    if (!w->on[s]) {
        ody_logf(st->log, ODY_LOG_INFO, "stage %d/%d %s: off", s + 1, run_stage_count, d->name);
        w->done[s] = h;
        st->sum->stages_off++;
        return 0;
    }
    int run = w->run[s];
    if (!run && !w->need[s]) {
        ody_logf(st->log, ODY_LOG_INFO, "stage %d/%d %s: up to date, not needed now", s + 1, run_stage_count, d->name);
        st->sum->stages_skipped++;
        return 0;
    }
    ody_logf(st->log, ODY_LOG_INFO, "stage %d/%d %s: %s", s + 1, run_stage_count, d->name,
             run ? "running" : "up to date, reading its artifacts");
    double t0 = ody_now(), b0 = ody_comm_size(st->comm) > 1 ? st->comm->bytes(st->comm) : 0;
    if (run) w->done[s] = 0;
    st->stamp = h;
    int rc = ody_comm_agree(st->comm, d->fn(st, run, err), err);
    st->stamp = 0;
    if (rc == ODY_EINPUT && cfg_names_key(err->msg))  /* the forest's, the MLP's refusal of a setting: from where */
        ody_prefix(err, "%s: ", st->c->file);
    if (rc) return rc;
    if (!run) {
        st->sum->stages_skipped++;
        return 0;
    }
    w->secs[s] = ody_now() - t0;
    w->done[s] = h;
    free(w->files[s]);
    w->files[s] = store_writes(st) ? store_files_record(st, d) : NULL;
    st->sum->stages_run++;
    ody_logf(st->log, ODY_LOG_INFO, "stage %d/%d %s: done in %.2f s", s + 1, run_stage_count, d->name, w->secs[s]);
    if (ody_comm_size(st->comm) > 1)
        ody_logf(st->log, ODY_LOG_INFO, "stage %s: %.0f bytes through MPI collectives on process 0 of %d", d->name,
                 st->comm->bytes(st->comm) - b0, st->comm->size);
    return ody_comm_agree(st->comm, store_writes(st) ? store_manifest_write(st, w->done, w->secs, w->files, w->input_sum, err) : 0, err);
}

/* The forests' trees, once no stage left walks them and the caller did
 * not ask for them: tens of MB at 10^6 objects that the later stages and
 * the export would otherwise hold to the end. */
static void drop_trees(run_state *st)
{
    for (int r = 0; r < st->n_forests; r++) {
        rf_destroy(st->forests[r]);
        st->forests[r] = NULL;
    }
    if (st->have_ctx0) {  /* forest 0's leaf statistics, kept for a similarity stage that is off */
        rf_sim_ctx_free(&st->ctx0);
        st->have_ctx0 = 0;
    }
}

/* config.yaml: the effective config, so `oddsky report` and `serve` can be
 * pointed at the run folder alone.  Written once the catalog is read under
 * it: a run refused at its config or catalog leaves the folder's previous
 * config.yaml, which its results still answer to. */
static int save_config(const run_state *st, ody_err *err)
{
    if (!store_writes(st)) return 0;
    fitsout_text t;
    int rc = store_text_open(st, "config.yaml", &t, err);
    if (rc) return rc;
    fputs(st->history, t.f);
    return fitsout_text_commit(&t, err);
}

static int walk_stages(run_state *st, const run_opt *o, walk *w, ody_err *err)
{
    if (run_stage_count > 64) return ody_fail(err, ODY_EINTERNAL, "more than 64 stages");
    w->from = o->force ? 0 : o->from_stage ? run_stage_index(o->from_stage) : run_stage_count;
    if (o->from_stage && w->from < 0) {
        char names[512] = "";
        for (int k = 0; k < run_stage_count; k++)
            snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", k ? ", " : "", run_stage_table[k]->name);
        return ody_fail(err, ODY_EINPUT, "--from %s: no such stage — use one of %s", o->from_stage, names);
    }
    uint64_t recorded = 0;
    store_manifest_read(st, w->done, w->secs, w->files, &recorded);
    w->input_sum = store_checksum(st->c->cat_path);
    /* A run folder moved away from its catalog (to a laptop, an archive):
     * the stages after ingest read the folder's copy (catalog.fits), so the
     * manifest's word for the input stands while ingest is up to date.  A
     * catalog that is there but changed still makes the run out of date. */
    int stand_in = !w->input_sum && recorded && !ody_fits_file_there(st->c->cat_path);
    if (stand_in) w->input_sum = recorded;
    /* every process has read the manifest before process 0 rewrites it */
    int rc = ody_comm_agree(st->comm, 0, err);
    if (rc) return rc;
    int last = o->until_stage ? run_stage_index(o->until_stage) : run_stage_count - 1;
    plan(st, w, last, o->also_load);
    /* and has looked at the artifacts before process 0 writes any: a stage's files are judged intact by
     * their sizes and digests, which a rewrite under way would change for some processes only */
    if ((rc = ody_comm_agree(st->comm, 0, err))) return rc;
    /* the copy stands in only for the catalog as the run read it: when ingest must run again (the path, the
     * columns or the rows asked for changed), the read that follows fails, and this says why */
    if (stand_in && !(w->on[0] && w->run[0]))
        ody_logf(st->log, ODY_LOG_WARN, "%s is not there: the run folder's copy of it (catalog.fits) stands in",
                 st->c->cat_path);
    else if (stand_in)
        ody_logf(st->log, ODY_LOG_WARN, "%s is not there, and the run folder's copy of it (catalog.fits) cannot "
                 "stand in: this config reads the catalog otherwise than the run did (its path, columns, filters "
                 "or missing values) — point catalog.path at the catalog, or use the run's own config.yaml",
                 st->c->cat_path);
    memcpy(st->stage_hash, w->hash, sizeof st->stage_hash);
    if (o->want_trees) st->want_trees = 1;
    for (int s = 0; s <= last && o->load_only; s++)
        if (w->on[s] && w->run[s])
            return ody_fail(err, ODY_EINPUT, "%s: stage %s is not up to date with the run's config%s — finish the run "
                            "first: oddsky run %s/config.yaml", st->dir, run_stage_table[s]->name,
                            w->damaged[s] ? " (an artifact of it is missing, cut short or changed since)" : "", st->dir);
    estimate(st, w, 0, last);
    int trees_until = -1;  /* the last stage that walks the trees */
    for (int s = 0; s <= last; s++)
        if (w->on[s] && w->run[s] && run_stage_table[s]->needs_trees) trees_until = s;
    for (int s = 0; s <= last && !rc; s++) {
        rc = run_stage(st, w, s, err);
        if (!rc && s == 0 && !o->load_only) rc = ody_comm_agree(st->comm, save_config(st, err), err);
        if (!rc && s == 0) estimate(st, w, 1, last);
        if (!rc && s == trees_until && !o->want_trees) drop_trees(st);
        /* the forests' and isolation's training read every row; no later stage needs them all */
        if (!rc && !strcmp(run_stage_table[s]->name, "weirdness")) rc = stage_drop_rows(st, err);
    }
    return rc;
}

static int run_stages(run_state *st, const run_opt *o, ody_err *err)
{
    walk w;
    memset(&w, 0, sizeof w);
    int rc = walk_stages(st, o, &w, err);
    for (int s = 0; s < run_stage_count; s++) free(w.files[s]);
    return rc;
}

static void write_summary(const run_state *st, const run_summary *sum)
{
    if (!store_writes(st)) return;
    char *p = store_path(st, "summary.txt");
    fitsout_text t;
    ody_err e;
    if (!p || fitsout_text_open(&t, p, &e)) { free(p); return; }
    free(p);
    fprintf(t.f, "n_objects=%zu\ntop_id=%s\ntop_score=%.10g\nstages_run=%d\nstages_skipped=%d\nwall_s=%.3f\n",
            sum->n_objects, sum->top_id, sum->top_score, sum->stages_run, sum->stages_skipped, sum->wall_s);
    if (fitsout_text_commit(&t, &e)) ody_logf(st->log, ODY_LOG_WARN, "%s", e.msg);
}

int run_with(const cfg *c, const run_opt *o, run_summary *sum, const ody_log *log_in, ody_err *err,
             int (*then)(run_state *st, void *ctx, ody_err *err), void *ctx)
{
    double t0 = ody_now();
    memset(sum, 0, sizeof *sum);
    run_state st;
    int rc = state_init(&st, c, sum, o->comm, err), lock = -1;
    if (!rc && store_writes(&st)) rc = store_lock(&st, o->load_only, &lock, err);
    rc = ody_comm_agree(o->comm, rc, err);
    if (rc) { store_unlock(lock); state_free(&st); return rc; }
    FILE *lf = open_log(&st, log_in);
    ody_log log = {log_in ? log_in->level : ODY_LOG_ERROR, log_in ? log_in->err : NULL, lf};
    st.log = &log;
    ody_logf(&log, ODY_LOG_INFO, "run: oddsky %s, config %s, output %s", ody_version(), c->file, st.dir);
    if (!o->load_only && store_writes(&st)) store_sweep_stale(&st);
    rc = run_stages(&st, o, err);
    if (!rc && then && store_writes(&st)) rc = then(&st, ctx, err);  /* the report: files only */
    sum->n_objects = st.n;
    sum->wall_s = ody_now() - t0;
    if (!rc) {
        ody_logf(&log, ODY_LOG_INFO, "run: %zu objects, %d stage%s run, %d up to date, %d off, %.2f s", st.n,
                 sum->stages_run, sum->stages_run == 1 ? "" : "s", sum->stages_skipped, sum->stages_off, sum->wall_s);
        if (!o->load_only) write_summary(&st, sum);
    } else {
        ody_log file_only = {ODY_LOG_ERROR, NULL, lf};  /* the caller shows the error */
        ody_logf(&file_only, ODY_LOG_ERROR, "%s", err->msg);
    }
    if (lf) fclose(lf);
    store_unlock(lock);
    state_free(&st);
    return rc;
}

int run_pipeline(const cfg *c, const run_opt *o, run_summary *sum, const ody_log *log_in, ody_err *err)
{
    if (!(c->formats & CFG_FMT_HTML) || (o->until_stage && strcmp(o->until_stage, "export")))
        return run_with(c, o, sum, log_in, err, NULL, NULL);
    run_opt with_report = *o;  /* the report reads every score */
    if (!with_report.also_load) with_report.also_load = report_uses;
    if (ody_comm_size(o->comm) < 2) return run_with(c, &with_report, sum, log_in, err, report_after_run, NULL);
    /* Several processes each hold their rows' results: the report, which
     * shows every object, is made by process 0 from the run folder once the
     * run is done, as `oddsky report` would (with one process's memory). */
    int rc = run_with(c, o, sum, log_in, err, NULL, NULL), r0 = 0;
    if (!rc && ody_comm_rank(o->comm) == 0) {
        run_opt rep = with_report;
        rep.comm = NULL;
        rep.load_only = 1;
        rep.force = 0;
        rep.from_stage = NULL;
        run_summary s2;
        ody_log quiet = {ODY_LOG_WARN, log_in ? log_in->err : NULL, NULL};
        r0 = run_with(c, &rep, &s2, &quiet, err, report_after_run, NULL);
    }
    return rc ? rc : ody_comm_agree(o->comm, r0, err);
}
