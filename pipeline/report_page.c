/* report_page.c — index.html and top.csv of the report: cards, plots, a
 * sortable table, the config and provenance.  The page is static HTML with
 * a few lines of inline JavaScript (sorting, filtering): no network. */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "repview.h"
#include "run.h"

/* ================================================================ text */

static void esc(FILE *f, const char *s)
{
    for (; *s; s++) switch (*s) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&#39;", f); break;
        default: fputc(*s, f);
        }
}

static void esc_file(FILE *f, const char *path)
{
    FILE *in = fopen(path, "r");
    if (!in) return;
    char buf[4096];
    while (fgets(buf, sizeof buf, in)) esc(f, buf);
    fclose(in);
}

static const char STYLE[] =
    "body{font:14px/1.4 system-ui,sans-serif;margin:0 auto;max-width:1400px;padding:0 16px;color:#222}\n"
    "h1{font-size:22px;margin:16px 0 4px}h2{font-size:18px;border-bottom:1px solid #ccc;margin-top:28px}\n"
    "nav a{margin-right:14px}.muted{color:#666}\n"
    ".plots img{margin:4px;border:1px solid #ddd;max-width:100%}\n"
    ".cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(300px,1fr));gap:12px}\n"
    ".card{border:1px solid #ccd;border-radius:6px;padding:8px;background:#fafbff}\n"
    ".card .pic{display:block;max-width:100%;image-rendering:pixelated;margin:0 auto}\n"
    ".card .head{font-size:16px;margin:6px 0}.rank{color:#b00;font-weight:bold;margin-right:6px}\n"
    ".id{font-family:monospace;font-weight:bold;word-break:break-all}\n"
    "dl{display:grid;grid-template-columns:auto 1fr;gap:0 8px;margin:4px 0;font-size:12px}dt{color:#555}"
    "dd{margin:0;font-family:monospace}\n"
    ".why{font-size:13px;margin:4px 0}.nbs{display:flex;flex-wrap:wrap;gap:4px;font-size:11px}\n"
    ".nbs figure{margin:0;width:64px;text-align:center;word-break:break-all}"
    ".nbs img{width:64px;height:64px;object-fit:contain;border:1px solid #ddd;image-rendering:pixelated}\n"
    "table{border-collapse:collapse;font-size:12px}th,td{border:1px solid #ddd;padding:2px 6px}\n"
    "th{background:#eef;cursor:pointer;position:sticky;top:0}th.asc:after{content:' \\25B2'}"
    "th.desc:after{content:' \\25BC'}\n"
    "td.num{text-align:right;font-family:monospace}#filter{margin:6px 0;padding:4px;width:320px}\n"
    "pre{background:#f4f4f4;padding:8px;overflow:auto;font-size:12px}\n"
    ".warn{background:#fff8e1;border:1px solid #e0c060;border-radius:6px;padding:0 12px 4px}"
    ".warn h2{border:0;margin-top:12px}\n";

/* Click a header to sort by it (again to reverse); type to filter rows. */
static const char SCRIPT[] =
    "(function(){\n"
    "var t=document.getElementById('top'),b=t.tBodies[0],hs=t.tHead.rows[0].cells;\n"
    "for(var k=0;k<hs.length;k++)(function(k){hs[k].addEventListener('click',function(){\n"
    " var asc=!this.classList.contains('asc'),num=this.dataset.type==='num';\n"
    " for(var j=0;j<hs.length;j++)hs[j].classList.remove('asc','desc');\n"
    " this.classList.add(asc?'asc':'desc');\n"
    " var rows=Array.prototype.slice.call(b.rows);\n"
    " rows.sort(function(x,y){var a=x.cells[k].textContent,c=y.cells[k].textContent;\n"
    "  var r=num?(parseFloat(a)||0)-(parseFloat(c)||0):a.localeCompare(c);return asc?r:-r;});\n"
    " rows.forEach(function(r){b.appendChild(r);});});})(k);\n"
    "document.getElementById('filter').addEventListener('input',function(){\n"
    " var q=this.value.toLowerCase(),shown=0;\n"
    " Array.prototype.forEach.call(b.rows,function(r){var ok=r.textContent.toLowerCase().indexOf(q)>=0;\n"
    "  r.style.display=ok?'':'none';shown+=ok;});\n"
    " document.getElementById('shown').textContent=shown;});\n"
    "})();\n";

/* ================================================================ the run's warnings */

enum { MAX_STAGES = 64 };

/* Appends line to *buf (joined with '\n'); leaves *buf as it is when out of
 * memory: a warning left out of the page, never a failed report. */
static void append_line(char **buf, const char *line)
{
    size_t have = *buf ? strlen(*buf) : 0, add = strlen(line);
    char *grown = realloc(*buf, have + add + 2);
    if (!grown) return;
    if (have) grown[have++] = '\n';
    memcpy(grown + have, line, add + 1);
    *buf = grown;
}

/* The warnings each stage logged the last time it ran, from the run log
 * at path (a run folder's oddsky.log): what deserves a look before the ranking is trusted — a
 * sentinel value, a forest that cannot tell the catalog from its shuffled
 * copy.  warn[s] is stage s's, malloc'd, or NULL. */
static void stage_warnings(const char *path, char *warn[MAX_STAGES])
{
    memset(warn, 0, MAX_STAGES * sizeof *warn);
    char *line = NULL, name[64];
    FILE *in = fopen(path, "r");
    size_t cap = 0;
    int cur = -1;
    while (in && getline(&line, &cap, in) > 0) {
        line[strcspn(line, "\n")] = 0;
        /* "TIME LEVEL   MESSAGE": the level padded to 7; a stage's lines are info lines opening with "stage " */
        const char *msg = strchr(line, ' ');
        const char *stage = msg && strlen(msg) > 9 && !strncmp(msg + 1, "info ", 5) ? msg + 9 : NULL;
        int s;  /* the numbers skipped, not converted: a damaged log's 10^20 fits no int */
        if (stage && sscanf(stage, "stage %*[0-9]/%*[0-9] %63[a-z]", name) == 1 && (s = run_stage_index(name)) >= 0 &&
            s < MAX_STAGES) {
            const char *what = stage + strcspn(stage, ":");
            if (!strncmp(what, ": running", 9)) {
                free(warn[s]);
                warn[s] = NULL;
                cur = s;
            } else if (!strncmp(what, ": done", 6)) {
                cur = -1;
            }
            continue;
        }
        if (cur >= 0 && msg && !strncmp(msg + 1, "warning ", 8)) append_line(&warn[cur], msg + 9);
    }
    free(line);
    if (in) fclose(in);
}

char *rep_warnings(const rep_view *v)
{
    char path[4300];
    snprintf(path, sizeof path, "%s/oddsky.log", v->dir);
    return rep_log_warnings(path);
}

char *rep_log_warnings(const char *log_path)
{
    char *warn[MAX_STAGES], *all = NULL;
    stage_warnings(log_path, warn);
    for (int s = 0; s < MAX_STAGES; s++) {
        if (warn[s]) append_line(&all, warn[s]);
        free(warn[s]);
    }
    return all;
}

/* ================================================================ parts */

typedef struct page {
    const rep_view *v;
    FILE *f;
    size_t top;
    int sky;
} page;

static void num(FILE *f, double x)
{
    if (isfinite(x)) fprintf(f, "%.5g", x);
    else fputs("", f);
}

static void head(const page *p)
{
    const rep_view *v = p->v;
    const cfg *c = v->c;
    FILE *f = p->f;
    const char *name = strrchr(v->dir, '/') ? strrchr(v->dir, '/') + 1 : v->dir;
    char when[64];
    time_t now = time(NULL);
    strftime(when, sizeof when, "%Y-%m-%d %H:%M UTC", gmtime(&now));
    fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>oddsky: ", f);
    esc(f, name);
    fprintf(f, "</title>\n<style>\n%s</style></head>\n<body>\n<header><h1>oddsky report: ", STYLE);
    esc(f, name);
    fprintf(f, "</h1>\n<p>%zu objects from <code>", v->n);
    esc(f, c->cat_path);
    fprintf(f, "</code>, ranked by <b>%s</b>%s. The top %zu are shown. <span class=\"muted\">oddsky %s, %s.</span></p>\n",
            v->learned && rep_rank_score(v) == v->learned ? "LEARNED_SCORE" : stage_score_column(c->rank_by, NULL),
            v->learned ? " (your labels re-rank it)" : "", p->top, ody_version(), when);
    fputs("<p>Exports:", f);
    static const struct { int bit; const char *file; } ex[] = {
        {CFG_FMT_FITS, "anomalies.fits"}, {CFG_FMT_CSV, "anomalies.csv"}, {CFG_FMT_ECSV, "anomalies.ecsv"},
        {CFG_FMT_VOTABLE, "anomalies.vot"}};
    for (size_t k = 0; k < sizeof ex / sizeof *ex; k++)
        if (c->formats & ex[k].bit) fprintf(f, " <a href=\"../%s\">%s</a> ·", ex[k].file, ex[k].file);
    fputs(" <a href=\"top.csv\">top.csv</a> (the rows of this page; the others are in the run folder)</p>\n", f);
    char *warn = rep_warnings(v);
    fprintf(f, "<nav>%s<a href=\"#cards\">Top objects</a><a href=\"#plots\">Plots</a><a href=\"#table\">Table</a>"
            "<a href=\"#provenance\">Config and provenance</a></nav></header>\n",
            warn ? "<a href=\"#warnings\">Warnings</a>" : "");
    if (warn) {
        fputs("<section id=\"warnings\" class=\"warn\"><h2>Before trusting the ranking</h2>\n<p>What the run "
              "warned of, stage by stage (the run log, <code>oddsky.log</code>, has every line):</p>\n<ul>\n", f);
        char *save = NULL;
        for (char *l = strtok_r(warn, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
            fputs("<li>", f);
            esc(f, l);
            fputs("</li>\n", f);
        }
        free(warn);
        fputs("</ul></section>\n", f);
    }
}

static void picture(FILE *f, size_t row, const char *id, const char *cls)
{
    fprintf(f, "<img class=\"%s\" src=\"img/r%zu.png\" alt=\"", cls, row);
    esc(f, id);
    fputs("\" loading=\"lazy\">", f);
}

static void card_scores(const page *p, size_t i, const rep_obj *o)
{
    const rep_view *v = p->v;
    FILE *f = p->f;
    fputs("<dl>", f);
    if (v->learned) {
        fputs("<dt>LEARNED_SCORE</dt><dd>", f);
        num(f, v->learned[i]);
        fprintf(f, "</dd><dt>LABEL</dt><dd>%s</dd>", v->label[i] < 0 ? "none" : v->label[i] ? "1 (interesting)"
                                                                                             : "0 (not)");
    }
    for (int s = 0; s < CFG_N_SCORES; s++) {
        if (!v->score[s]) continue;
        fprintf(f, "<dt>%s</dt><dd>", stage_score_column((cfg_score)s, NULL));
        num(f, v->score[s][i]);
        fputs("</dd>", f);
    }
    for (int q = 0; q < o->n_pass; q++) {
        fputs("<dt>", f);
        esc(f, o->pass_name[q]);
        fputs("</dt><dd>", f);
        esc(f, o->pass_val[q]);
        fputs("</dd>", f);
    }
    fputs("</dl>\n", f);
}

static void card(const page *p, size_t r)
{
    const rep_view *v = p->v;
    FILE *f = p->f;
    size_t i = v->order[r];
    rep_obj o;
    rep_describe(v, i, &o);
    fprintf(f, "<article class=\"card\" id=\"obj-%zu\">", r + 1);
    picture(f, i, o.id, "pic");
    fprintf(f, "\n<div class=\"head\"><span class=\"rank\">#%zu</span><span class=\"id\">", r + 1);
    esc(f, o.id);
    fputs("</span></div>\n", f);
    card_scores(p, i, &o);
    if (o.why[0]) {
        fputs("<p class=\"why\"><b>Why:</b> ", f);
        esc(f, o.why);
        fprintf(f, " <span class=\"muted\">(robust SD from its nearest normal neighbours; score driven by %s)</span>"
                "</p>\n", o.driver);
    }
    if (o.n_nb) {
        fprintf(f, "<p class=\"why\"><b>%s:</b></p><div class=\"nbs\">", v->nb && v->c->sim_on ? "Most similar (forest)"
                                                                                      : "Nearest (features)");
        for (int q = 0; q < o.n_nb; q++) {
            size_t j = o.nb_row[q], rk = v->rank[j];
            fputs("<figure>", f);
            if (rk < p->top) fprintf(f, "<a href=\"#obj-%zu\">", rk + 1);
            picture(f, j, o.nb[q], "nb");
            if (rk < p->top) fputs("</a>", f);
            fputs("<figcaption>", f);
            esc(f, o.nb[q]);
            fputs("</figcaption></figure>", f);
        }
        fputs("</div>\n", f);
    }
    fputs("</article>\n", f);
}

static void plots_section(const page *p)
{
    FILE *f = p->f;
    fputs("<section id=\"plots\"><h2>Plots</h2><div class=\"plots\">\n"
          "<img src=\"score.png\" alt=\"score distribution\">\n<img src=\"map.png\" alt=\"map of the catalog\">\n", f);
    if (p->sky) fputs("<img src=\"sky.png\" alt=\"sky positions\">\n", f);
    if (p->v->label) fputs("<img src=\"discovery.png\" alt=\"discovery curve\">\n", f);
    fputs("</div></section>\n", f);
}

static void table(const page *p)
{
    const rep_view *v = p->v;
    FILE *f = p->f;
    fprintf(f, "<section id=\"table\"><h2>Table</h2>\n<input id=\"filter\" placeholder=\"filter rows (any text)\"> "
            "<span class=\"muted\"><span id=\"shown\">%zu</span> rows shown; click a header to sort</span>\n"
            "<div style=\"overflow-x:auto\"><table id=\"top\"><thead><tr><th data-type=\"num\">RANK</th><th>ID</th>", p->top);
    if (v->learned) fputs("<th data-type=\"num\">LEARNED_SCORE</th><th data-type=\"num\">LABEL</th>", f);
    for (int s = 0; s < CFG_N_SCORES; s++)
        if (v->score[s]) fprintf(f, "<th data-type=\"num\">%s</th>", stage_score_column((cfg_score)s, NULL));
    fputs("<th>DRIVEN_BY</th><th>WHY</th>", f);
    for (int q = 0; q < v->k->n_pass; q++) {
        fprintf(f, "<th%s>", v->k->pass[q].type == CAT_COL_STRING ? "" : " data-type=\"num\"");
        esc(f, v->k->pass[q].name);
        fputs("</th>", f);
    }
    fputs("</tr></thead>\n<tbody>\n", f);
    char buf[256];
    for (size_t r = 0; r < p->top; r++) {
        size_t i = v->order[r];
        rep_obj o;
        rep_describe(v, i, &o);
        fprintf(f, "<tr><td class=\"num\"><a href=\"#obj-%zu\">%zu</a></td><td>", r + 1, r + 1);
        esc(f, o.id);
        fputs("</td>", f);
        if (v->learned) {
            fputs("<td class=\"num\">", f);
            num(f, v->learned[i]);
            fprintf(f, "</td><td class=\"num\">%s</td>", v->label[i] < 0 ? "" : v->label[i] ? "1" : "0");
        }
        for (int s = 0; s < CFG_N_SCORES; s++)
            if (v->score[s]) {
                fputs("<td class=\"num\">", f);
                num(f, v->score[s][i]);
                fputs("</td>", f);
            }
        fprintf(f, "<td>%s</td><td>", o.driver);
        esc(f, o.why);
        fputs("</td>", f);
        for (int q = 0; q < v->k->n_pass; q++) {
            rep_format_pass(v, q, i, buf, sizeof buf);
            fprintf(f, "<td%s>", v->k->pass[q].type == CAT_COL_STRING ? "" : " class=\"num\"");
            esc(f, buf);
            fputs("</td>", f);
        }
        fputs("</tr>\n", f);
    }
    fputs("</tbody></table></div></section>\n", f);
}

static void provenance(const page *p)
{
    FILE *f = p->f;
    fputs("<section id=\"provenance\"><h2>Config and provenance</h2>\n<p>The effective configuration of the run "
          "(every key, defaults included; also in the FITS headers and <code>config.yaml</code> of the run folder):"
          "</p>\n<pre>", f);
    esc(f, p->v->history ? p->v->history : "");
    fputs("</pre>\n", f);
    double taken = cfg_local_weight_taken(p->v->c, p->v->n);
    if (taken >= 0)
        fprintf(f, "<p><code>score.local_weight: auto</code> weighed the local detectors by %.3g for these %zu "
                "objects (1 up to 1,000 objects, sqrt(1000 / N) above, 0.5 from 4,000 on: docs/SCORES.md).</p>\n",
                taken, p->v->n);
    if (p->v->c->iso_trees == CFG_AUTO_INT)
        fprintf(f, "<p><code>isolation.n_trees: auto</code> grew %d isolation trees for these %zu objects (2,000 up "
                "to 100,000 objects, 2 x 10^8 / N above, 500 from 400,000 on: docs/SCORES.md).</p>\n",
                cfg_iso_trees(p->v->c, p->v->n), p->v->n);
    fputs("<p>Stages (<code>manifest.txt</code>: name, hash of settings and inputs, seconds):</p>\n<pre>", f);
    char path[4200];
    snprintf(path, sizeof path, "%s/manifest.txt", p->v->dir);
    esc_file(f, path);
    fputs("</pre></section>\n", f);
}

/* ================================================================ files */

static int top_csv(const rep_view *v, const char *dir, size_t top, ody_err *err)
{
    char path[4300];
    snprintf(path, sizeof path, "%s/top.csv", dir);
    fitsout_text t;
    int rc = fitsout_text_open(&t, path, err);
    if (rc) return rc;
    fputs("RANK,ID,SCORE,ANOMALY_SCORE,LABEL,DRIVEN_BY,WHY", t.f);
    for (int q = 0; q < v->k->n_pass; q++) {
        fputc(',', t.f);
        stage_csv_field(t.f, v->k->pass[q].name);
    }
    fputc('\n', t.f);
    char buf[256];
    for (size_t r = 0; r < top; r++) {
        rep_obj o;
        size_t i = v->order[r];
        rep_describe(v, i, &o);
        fprintf(t.f, "%zu,", r + 1);
        stage_csv_field(t.f, o.id);
        fprintf(t.f, ",%.10g,%.10g,%d,%s,", o.score, o.anomaly, o.label, o.driver);
        stage_csv_field(t.f, o.why);
        for (int q = 0; q < v->k->n_pass; q++) {
            cat_col_format(&v->k->pass[q], i, buf, sizeof buf);
            fputc(',', t.f);
            stage_csv_field(t.f, buf);
        }
        fputc('\n', t.f);
    }
    return fitsout_text_commit(&t, err);
}

int rep_html(const rep_view *v, const char *dir, size_t top, int sky, ody_err *err)
{
    char path[4300];
    snprintf(path, sizeof path, "%s/index.html", dir);
    fitsout_text t;
    int rc = fitsout_text_open(&t, path, err);
    if (rc) return rc;
    page p = {v, t.f, top, sky};
    head(&p);
    fprintf(t.f, "<section id=\"cards\"><h2>Top %zu</h2>\n<div class=\"cards\">\n", top);
    for (size_t r = 0; r < top; r++) card(&p, r);
    fputs("</div></section>\n", t.f);
    plots_section(&p);
    table(&p);
    provenance(&p);
    fprintf(t.f, "<script>\n%s</script>\n</body></html>\n", SCRIPT);
    rc = fitsout_text_commit(&t, err);
    if (!rc) rc = top_csv(v, dir, top, err);
    return rc;
}
