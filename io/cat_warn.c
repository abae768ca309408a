/* cat_warn.c — warnings about a catalog's values as read: what an
 * astronomer should fix before reading the ranking; and the error when
 * no row is left to rank. */
#include <math.h>
#include <stdlib.h>

#include "catcol.h"

/* Values of a feature's rest that estimate its spread (at most), and the
 * features looked at in one pass over the rows: the passes read the rows in
 * order, so a catalog of many features costs a few reads of it, not one per
 * feature. */
enum { SPREAD_SAMPLE = 4000, BLOCK = 64 };

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* One feature's ends and what lies between them. */
typedef struct ends {
    float lo, hi;               /* the smallest and largest value */
    size_t nlo, nhi;            /* objects at each */
    float near_lo, near_hi;     /* the rest's (values strictly between) smallest and largest */
    size_t inside, m;           /* the rest's count, and how many of them sampled */
} ends;

int cat_warned_level(cat_warned *w, const char *name)
{
    if (w->named < CAT_WARN_NAMED) return w->named++, ODY_LOG_WARN;
    if (!w->more++) snprintf(w->first_more, sizeof w->first_more, "%s", name);
    return ODY_LOG_INFO;
}

void cat_warned_close(const cat_warned *w, const char *what, const char *file, const ody_log *log)
{
    if (w->more)
        ody_logf(log, ODY_LOG_WARN, "%s: %zu more feature%s %s, from %s on — the run log names each", file, w->more,
                 w->more == 1 ? "" : "s", what, w->first_more);
}

/* ================================================================ spectra */

static const char *spec_why[CAT_SPEC_WHY] = {"with no usable redshift", "with wavelengths not finite or not in order",
                                             "with under half the grid's bins covered by good pixels",
                                             "with no positive flux to normalise by",
                                             "with no good pixel (flux missing or flagged in every pixel)"};

const char *cat_spec_why(int why) { return why >= 0 && why < CAT_SPEC_WHY ? spec_why[why] : ""; }

int cat_spec_main_why(const cat *c)
{
    int why = 0;
    for (int k = 1; k < CAT_SPEC_WHY; k++)
        if (c->spec_bad_why[k] > c->spec_bad_why[why]) why = k;
    return why;
}

int cat_none_left(const cat *c, size_t kept, long long n_read)
{
    return kept == 0 || (c->spec_grid && (long long)c->spec_bad == n_read);
}

void cat_log_spectra(const cat *c, const ody_log *log)
{
    if (!c->spec_grid) return;
    char bad[400] = "";
    size_t at = 0;
    for (int k = 0; k < CAT_SPEC_WHY; k++)
        if (c->spec_bad_why[k] && at < sizeof bad)
            at += (size_t)snprintf(bad + at, sizeof bad - at, "%s%zu %s", at ? ", " : ": ", c->spec_bad_why[k], spec_why[k]);
    ody_logf(log, ODY_LOG_INFO, "%s: spectra: %d grid bins, %d features; %zu bins interpolated over masked or "
             "uncovered pixels; %zu spectr%s unusable%s", c->path, c->spec_grid, c->spec_out, c->spec_masked,
             c->spec_bad, c->spec_bad == 1 ? "um" : "a", bad);
}

/* Every spectrum unusable: the reason most of them share, and what to set
 * for it.  The wavelengths named are the first spectrum's, which a read by
 * parts sees on its first process as a whole read does. */
static int spec_none_usable(const cat *c, const cat_opt *o, long long n_read, ody_err *err)
{
    const cat_spec *s = o->spec;
    int why = cat_spec_main_why(c);
    char hint[700];
    double lo = c->spec_first_lo, hi = c->spec_first_hi;
    if (why == CAT_SPEC_NO_Z)
        snprintf(hint, sizeof hint, "spectra.redshift '%s' needs a finite value above -1 in each row", s->redshift);
    else if (why == CAT_SPEC_WAVE)
        snprintf(hint, sizeof hint, "%s%s%s must give finite wavelengths, increasing or decreasing throughout a row",
                 s->wave && s->wave[0] ? "spectra.wave '" : "the flux column's WCS", s->wave && s->wave[0] ? s->wave : "",
                 s->wave && s->wave[0] ? "'" : "");
    else if (why == CAT_SPEC_NORM && (s->norm_hi < c->spec_lo || s->norm_lo > c->spec_hi))
        snprintf(hint, sizeof hint, "the normalisation window %g-%g (spectra.norm_from, norm_to) lies outside the "
                 "grid %g-%g — choose one inside it", s->norm_lo, s->norm_hi, c->spec_lo, c->spec_hi);
    else if (why == CAT_SPEC_NORM)
        snprintf(hint, sizeof hint, "choose spectra.norm_from and norm_to (now %g-%g) where the spectra have positive "
                 "flux", s->norm_lo, s->norm_hi);
    else if (why == CAT_SPEC_EMPTY || !isfinite(lo))
        snprintf(hint, sizeof hint, "a pixel is bad where its flux is NaN or absent%s%s — check those columns",
                 s->ivar && s->ivar[0] ? ", its ivar <= 0" : "",
                 s->mask && s->mask[0] ? ", its mask nonzero" : "");
    else if (fmin(hi, c->spec_hi) - fmax(lo, c->spec_lo) < 0.5 * (c->spec_hi - c->spec_lo)) {
        int has_z = s->redshift && s->redshift[0];
        char fix[200];  /* under 1 A at rest: divided by a velocity (km/s) or garbage; 1-10: log10 wavelengths */
        if (has_z && hi < 1)
            snprintf(fix, sizeof fix, ", under 1 A — is spectra.redshift '%s' a redshift z, not a velocity (km/s)?",
                     s->redshift);
        else if (!s->loglam && hi < 10)
            snprintf(fix, sizeof fix, ", which look like log10 wavelengths — set spectra.loglam: true");
        else
            snprintf(fix, sizeof fix, " — set spectra.grid_start and grid_stop inside it");
        snprintf(hint, sizeof hint, "the grid %g-%g A must lie within the spectra's wavelengths%s, and the first "
                 "spectrum spans %.6g-%.6g%s", c->spec_lo, c->spec_hi, has_z ? " at rest" : "", lo, hi, fix);
    }
    else
        snprintf(hint, sizeof hint, "most of their pixels are bad (flux NaN%s%s) — check those columns",
                 s->ivar && s->ivar[0] ? ", ivar <= 0" : "", s->mask && s->mask[0] ? ", mask nonzero" : "");
    return ody_fail(err, ODY_EINPUT, "%s: no spectrum is usable: %zu of %lld %s — %s", o->path, c->spec_bad_why[why],
                    n_read, spec_why[why], hint);
}

int cat_none_left_fail(const cat *c, const cat_opt *o, long long n_read, ody_err *err)
{
    if (c->spec_grid && o->spec && c->spec_bad == (size_t)n_read) return spec_none_usable(c, o, n_read, err);
    size_t worst = 0;
    for (size_t j = 1; j < c->n_feat; j++)
        if (c->n_missing[j] > c->n_missing[worst]) worst = j;
    const char *name = c->n_feat ? c->feat_names[worst] : "";
    long long miss = c->n_feat ? (long long)c->n_missing[worst] : 0;
    if (o->run_features)  /* oddsky score: the run's models need every feature */
        return ody_fail(err, ODY_EINPUT, "%s: no rows left after dropping %lld rows with missing feature values "
                        "(feature '%s' misses %lld of them) — the run's models need every one of its features: give "
                        "the new objects their values", o->path, n_read, name, miss);
    if (miss == n_read)
        return ody_fail(err, ODY_EINPUT, "%s: no rows left after dropping %lld rows with missing feature values: "
                        "feature '%s' has no value in any row — drop it from catalog.features", o->path, n_read, name);
    return ody_fail(err, ODY_EINPUT, "%s: no rows left after dropping %lld rows with missing feature values (feature "
                    "'%s' misses %lld of them) — set `missing: impute` or choose other features", o->path, n_read,
                    name, miss);
}

/* The warning for one end of feature j, when several objects share it far
 * beyond the rest: more than ten times the spread of the rest's middle 98%. */
static void warn_end(const cat *c, size_t j, const ends *e, float *sample, const char *file, const ody_log *log,
                     cat_warned *w)
{
    if (e->m < 10) return;
    qsort(sample, e->m, sizeof *sample, cmp_float);
    double p1 = sample[(size_t)(0.01 * (double)(e->m - 1))], p99 = sample[(size_t)(0.99 * (double)(e->m - 1))];
    double spread = p99 - p1;
    for (int side = 0; side < 2 && spread > 0; side++) {
        size_t cnt = side ? e->nhi : e->nlo;
        double at = side ? e->hi : e->lo, gap = side ? at - e->near_hi : e->near_lo - at;
        if (cnt < 3 || gap <= 10 * spread) continue;
        ody_logf(log, cat_warned_level(w, c->feat_names[j]), "%s: feature %s: %zu objects at %.10g, far %s the rest "
                 "(%.4g to %.4g) — a "
                 "missing-value sentinel? add it to catalog.nulls (nulls: [%.10g]) to make it missing; left as it "
                 "is, those objects lead the ranking", file, c->feat_names[j], cnt, at, side ? "above" : "below", p1,
                 p99, at);
    }
}

/* Features [j0, j1): their ends in one pass, then, for those with an end
 * several objects share, the rest in a second. */
static void warn_block(const cat *c, size_t j0, size_t j1, ends *e, float *sample, const char *file,
                       const ody_log *log, cat_warned *w)
{
    size_t n = c->n_rows, F = c->n_feat, nb = j1 - j0, stride = n > SPREAD_SAMPLE ? n / SPREAD_SAMPLE + 1 : 1;
    for (size_t q = 0; q < nb; q++) e[q] = (ends){INFINITY, -INFINITY, 0, 0, INFINITY, -INFINITY, 0, 0};
    for (size_t r = 0; r < n; r++) {
        const float *x = c->X + r * F + j0;
        for (size_t q = 0; q < nb; q++) {
            float v = x[q];  /* NaN: in no comparison */
            if (v < e[q].lo) e[q].lo = v, e[q].nlo = 0;
            if (v > e[q].hi) e[q].hi = v, e[q].nhi = 0;
            e[q].nlo += v == e[q].lo;
            e[q].nhi += v == e[q].hi;
        }
    }
    int any = 0;
    for (size_t q = 0; q < nb; q++) any |= e[q].nlo >= 3 || e[q].nhi >= 3;
    if (!any) return;
    for (size_t r = 0; r < n; r++) {
        const float *x = c->X + r * F + j0;
        for (size_t q = 0; q < nb; q++) {
            ends *t = &e[q];
            float v = x[q];
            if ((t->nlo < 3 && t->nhi < 3) || !(v > t->lo && v < t->hi)) continue;
            if (v < t->near_lo) t->near_lo = v;
            if (v > t->near_hi) t->near_hi = v;
            if (t->inside++ % stride == 0 && t->m < SPREAD_SAMPLE) sample[q * SPREAD_SAMPLE + t->m++] = v;
        }
    }
    for (size_t q = 0; q < nb; q++)
        if (e[q].nlo >= 3 || e[q].nhi >= 3) warn_end(c, j0 + q, &e[q], sample + q * SPREAD_SAMPLE, file, log, w);
}

void catwarn_sentinels(const cat *c, size_t n_cols, const char *file, const ody_log *log)
{
    size_t nf = n_cols < c->n_feat ? n_cols : c->n_feat;
    ends *e = malloc(BLOCK * sizeof *e);
    float *sample = malloc((size_t)BLOCK * SPREAD_SAMPLE * sizeof *sample);
    cat_warned w = {0};
    for (size_t j0 = 0; e && sample && j0 < nf; j0 += BLOCK)
        warn_block(c, j0, j0 + BLOCK < nf ? j0 + BLOCK : nf, e, sample, file, log, &w);
    cat_warned_close(&w, CAT_WARNED_SENTINEL, file, log);
    free(e);
    free(sample);
}

/* ================================================================ by parts */

/* A part's summary of one feature: its ends, the objects at each, the next
 * value inward from each, and a sample of its values (S_M of them, from
 * S_HEAD on).  The parts' summaries give the ends and their counts exactly
 * and the spread from the union of the samples. */
enum { S_LO, S_NLO, S_LO2, S_HI, S_NHI, S_HI2, S_M, S_HEAD };

static size_t part_share(int n_parts) { return SPREAD_SAMPLE / (size_t)(n_parts > 0 ? n_parts : 1) + 1; }

size_t cat_sentinel_len(int n_parts) { return S_HEAD + part_share(n_parts); }

void cat_sentinel_part(const float *X, size_t n, size_t F, size_t j0, size_t j1, int n_parts, double *out)
{
    size_t w = cat_sentinel_len(n_parts), share = part_share(n_parts), stride = n > share ? n / share + 1 : 1;
    for (size_t j = j0; j < j1; j++) {
        double *s = out + (j - j0) * w;
        s[S_LO] = s[S_LO2] = INFINITY;
        s[S_HI] = s[S_HI2] = -INFINITY;
        s[S_NLO] = s[S_NHI] = s[S_M] = 0;
    }
    for (size_t r = 0; r < n; r++)
        for (size_t j = j0; j < j1; j++) {
            double v = X[r * F + j], *s = out + (j - j0) * w;
            if (v != v) continue;
            if (v < s[S_LO]) s[S_LO2] = s[S_LO], s[S_LO] = v, s[S_NLO] = 1;
            else if (v == s[S_LO]) s[S_NLO]++;
            else if (v < s[S_LO2]) s[S_LO2] = v;
            if (v > s[S_HI]) s[S_HI2] = s[S_HI], s[S_HI] = v, s[S_NHI] = 1;
            else if (v == s[S_HI]) s[S_NHI]++;
            else if (v > s[S_HI2]) s[S_HI2] = v;
            if (r % stride == 0 && s[S_M] < (double)share) s[S_HEAD + (size_t)s[S_M]++] = v;
        }
}

void cat_sentinel_warn(const cat *c, size_t j0, size_t j1, const double *parts, int n_parts, const char *file,
                       const ody_log *log, cat_warned *named)
{
    size_t w = cat_sentinel_len(n_parts), nb = j1 - j0;
    float *sample = malloc((size_t)n_parts * part_share(n_parts) * sizeof *sample);
    for (size_t j = j0; sample && j < j1; j++) {
        ends e = {INFINITY, -INFINITY, 0, 0, INFINITY, -INFINITY, 0, 0};
        for (int p = 0; p < n_parts; p++) {
            const double *s = parts + ((size_t)p * nb + (j - j0)) * w;
            if (s[S_LO] < e.lo) e.lo = (float)s[S_LO];
            if (s[S_HI] > e.hi) e.hi = (float)s[S_HI];
        }
        for (int p = 0; p < n_parts; p++) {  /* each part's next value inward: its second if it holds the end */
            const double *s = parts + ((size_t)p * nb + (j - j0)) * w;
            double in_lo = s[S_LO] == e.lo ? s[S_LO2] : s[S_LO], in_hi = s[S_HI] == e.hi ? s[S_HI2] : s[S_HI];
            e.nlo += s[S_LO] == e.lo ? (size_t)s[S_NLO] : 0;
            e.nhi += s[S_HI] == e.hi ? (size_t)s[S_NHI] : 0;
            if (in_lo < e.near_lo) e.near_lo = (float)in_lo;
            if (in_hi > e.near_hi) e.near_hi = (float)in_hi;
            for (size_t k = 0; k < (size_t)s[S_M]; k++)
                if (s[S_HEAD + k] > e.lo && s[S_HEAD + k] < e.hi) sample[e.m++] = (float)s[S_HEAD + k];
        }
        if (e.nlo >= 3 || e.nhi >= 3) warn_end(c, j, &e, sample, file, log, named);
    }
    free(sample);
}

/* ================================================================ missing values */

void cat_log_missing(const cat *c, const char *file, cat_missing how, const ody_log *log)
{
    cat_warned w = {0};
    size_t run_end = 0;  /* features before it are in a line already */
    for (size_t j = 0; j < c->n_feat; j++) {
        size_t miss = c->n_missing[j], n = c->n_rows;
        if (!miss) continue;
        if (j >= run_end) {  /* a run of features missing alike (a spectrum's bins) in one line */
            for (run_end = j + 1; run_end < c->n_feat && c->n_missing[run_end] == miss; run_end++) {}
            if (run_end - j >= 3)
                ody_logf(log, ODY_LOG_INFO, "%s: features %s to %s (%zu): %zu missing values each (%s)", file,
                         c->feat_names[j], c->feat_names[run_end - 1], run_end - j, miss, cat_missing_name(how));
            else ody_logf(log, ODY_LOG_INFO, "%s: feature %s: %zu missing values (%s)", file, c->feat_names[j], miss,
                          cat_missing_name(how));
            if (run_end - j < 3) run_end = j + 1;
        }
        if (how == CAT_MISSING_IMPUTE && miss * 2 > n && miss < n)
            ody_logf(log, cat_warned_level(&w, c->feat_names[j]), "%s: feature %s: %zu of %zu values missing, imputed "
                     "with the median of the "
                     "other %zu — an object with a value stands out for having one; drop %s from catalog.features, "
                     "or keep the rows that have it: FILE[!ISNULL(%s)]", file, c->feat_names[j], miss, n, n - miss,
                     c->feat_names[j], c->feat_names[j]);
    }
    cat_warned_close(&w, "are missing in most objects and imputed", file, log);
}
