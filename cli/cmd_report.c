/* cmd_report.c — looking at a run: `oddsky report` (the HTML folder) and
 * `oddsky serve` (the review page). */
#define _GNU_SOURCE
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cfg.h"
#include "cli.h"
#include "report.h"
#include "serve.h"

/* p with "." and "x/.." segments and repeated or trailing slashes taken out,
 * in place: lexically, since the folder p names may be gone. */
static void path_lexical(char *p)
{
    char *w = p, *r = p;
    while (*r) {
        while (*r == '/') r++;
        char *seg = r;
        while (*r && *r != '/') r++;
        size_t len = (size_t)(r - seg);
        if (len == 0 || (len == 1 && seg[0] == '.')) continue;
        if (len == 2 && seg[0] == '.' && seg[1] == '.' && w > p && !(w - p >= 3 && !memcmp(w - 3, "/..", 3))) {
            while (w > p && *--w != '/') {}
            continue;
        }
        if (w > p || *p == '/') *w++ = '/';
        memmove(w, seg, len);
        w += len;
    }
    if (w == p && *p == '/') w++;
    *w = 0;
}

/* *path, when it lies inside the folder from, moved to the same place in to
 * (both absolute); left as it is otherwise, or when out of memory. */
static void rebase_inside(char **path, const char *from, const char *to)
{
    char *a = strdup(*path), *f = strdup(from), *moved = NULL;
    if (a && f) {
        path_lexical(a);
        path_lexical(f);
        size_t n = strlen(f);
        if (!strncmp(a, f, n) && a[n] == '/' && asprintf(&moved, "%s%s", to, a + n) >= 0) {
            free(*path);
            *path = moved;
        }
    }
    free(a);
    free(f);
}

int cli_load_target(const char *cmd, const char *arg, char **sets, int nsets, cfg **out)
{
    struct stat sb;
    char path[4200];
    snprintf(path, sizeof path, "%s", arg);
    int is_dir = !stat(arg, &sb) && S_ISDIR(sb.st_mode);
    if (is_dir) {
        snprintf(path, sizeof path, "%s/config.yaml", arg);
        if (stat(path, &sb)) {
            fprintf(stderr, "oddsky: error: %s: %s has no config.yaml (a run of an older oddsky?) — give the run's "
                    "CONFIG.yaml instead, or run it again\n", cmd, arg);
            return 2;
        }
    }
    ody_err e = {0};
    if (cfg_load(path, sets, nsets, out, &e)) return cli_fail(&e);
    /* A run folder is the run, wherever it is now: its config.yaml names the
     * folder it was written in, which a renamed, moved or copied folder is
     * not (report once read, and wrote into, the original).  A labels file
     * kept inside the folder moves with it: read from the original, the
     * folder's own labels went unread, and serve wrote beside the original. */
    char *here = is_dir ? realpath(arg, NULL) : NULL;
    if (here) {
        if ((*out)->labels[0]) rebase_inside(&(*out)->labels, (*out)->output, here);
        free((*out)->output);
        (*out)->output = here;
    }
    return 0;
}

int cli_labels_in_folder(cfg *conf)
{
    char *p = NULL;
    if (asprintf(&p, "%s/labels.csv", conf->output) < 0) return -1;
    free(conf->labels);
    conf->labels = p;
    return 0;
}

/* The options both commands share: --set KEY=VALUE, -h; the rest per command. */
typedef struct target_args {
    char **sets;
    int nsets;
    const char *target;
    long top, port;
    const char *token;
} target_args;

static void print_report_help(void)
{
    printf("Usage: oddsky report RUN_DIR|CONFIG.yaml [--top N] [--set KEY=VALUE ...]\n\n"
           "Writes RUN_DIR/report/: index.html with what the run warned of (a sentinel\n"
           "value, a forest that cannot tell the catalog from its shuffled copy), the top\n"
           "N objects as cards (picture: the cutout, or the object's features against the\n"
           "catalog's; scores; why; most similar objects), plots (score distribution, a\n"
           "map of the catalog, the sky, the discovery curve when there are labels), a\n"
           "sortable table, the config and provenance.  Open it from disk; no server or\n"
           "network needed.  The run is brought up to date first (stages up to date are\n"
           "read back, not rerun).\n"
           "`export.formats: [fits, csv, html]` writes it at the end of every run.\n\n"
           "  --top N          objects shown [report.top, 100]\n"
           "  --set KEY=VALUE  override a key, as for run\n"
           "  -h, --help       this help\n");
}

static void print_serve_help(void)
{
    printf("Usage: oddsky serve RUN_DIR|CONFIG.yaml [--port P] [--set KEY=VALUE ...]\n\n"
           "A review page on this machine only (127.0.0.1).  Prints its address, with a\n"
           "random token every request needs, as the first line: open it in a browser.\n"
           "The page shows the objects to look at next; \"interesting\" / \"not\n"
           "interesting\" write the config's `labels:` file (RUN_DIR/labels.csv when it\n"
           "sets none) and re-rank.  Ctrl-C stops it; the labels file is always whole.\n"
           "The JSON API is described in docs/REVIEW.md.\n\n"
           "  --port P         TCP port [8765; the next free one up to 8784]; 0: any free port\n"
           "  --set KEY=VALUE  override a key, as for run\n"
           "  -h, --help       this help\n");
}

/* Returns -1 to go on, else the exit code. */
static int parse(const char *cmd, int argc, char **argv, target_args *a)
{
    static const struct option lo[] = {{"top", required_argument, 0, 't'}, {"port", required_argument, 0, 'p'},
                                       {"token", required_argument, 0, 'k'}, {"set", required_argument, 0, 's'},
                                       {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    int serve = !strcmp(cmd, "serve"), c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        if (c == 's') a->sets[a->nsets++] = optarg;
        else if (c == 't' && !serve) {
            if (cli_parse_int(cmd, "--top", optarg, 1, 100000, &a->top)) return 2;
        } else if (c == 'p' && serve) {
            if (cli_parse_int(cmd, "--port", optarg, 0, 65535, &a->port)) return 2;
        } else if (c == 'k' && serve) a->token = optarg;  /* for tests: a known token */
        else if (c == 'h') {
            if (serve) print_serve_help();
            else print_report_help();
            return 0;
        } else return cli_bad_option(cmd, argv, "h");
    }
    if (argc - optind != 1) return cli_usage_error(cmd, "give one RUN_DIR or CONFIG.yaml");
    a->target = argv[optind];
    return -1;
}

int cli_report(int argc, char **argv, const ody_log *log)
{
    target_args a = {.sets = calloc((size_t)argc + 1, sizeof(char *)), .top = 0};
    if (!a.sets) return cli_usage_error("report", "out of memory");
    int rc = parse("report", argc, argv, &a);
    cfg *conf = NULL;
    if (rc < 0) rc = cli_load_target("report", a.target, a.sets, a.nsets, &conf);
    free(a.sets);
    if (rc || !conf) return rc;  /* an error, or --help printed (0) */
    if (a.top) conf->rep_top = (int)a.top;
    ody_log quiet = *log;  /* the path is the output: stage lines only in the run log */
    if (quiet.level > ODY_LOG_WARN) quiet.level = ODY_LOG_WARN;
    char path[4300];
    ody_err e = {0};
    rc = run_report(conf, &quiet, path, sizeof path, &e);
    cfg_destroy(conf);
    if (rc) return cli_fail(&e);
    printf("%s\n", path);
    return 0;
}

/* ================================================================ serve */

static int start(rep_view *v, const target_args *a, srv **s, ody_err *e)
{
    srv_opt o;
    srv_opt_init(&o);
    o.token = a->token;
    int last = a->port < 0 ? 8784 : (int)a->port;
    o.port = a->port < 0 ? 8765 : (int)a->port;
    int rc;
    while ((rc = srv_start(v, &o, s, e)) && o.port && o.port < last) o.port++;
    return rc;
}

int cli_serve(int argc, char **argv, const ody_log *log)
{
    target_args a = {.sets = calloc((size_t)argc + 2, sizeof(char *)), .port = -1};
    if (!a.sets) return cli_usage_error("serve", "out of memory");
    int rc = parse("serve", argc, argv, &a);
    cfg *conf = NULL;
    if (rc < 0) rc = cli_load_target("serve", a.target, a.sets, a.nsets, &conf);
    free(a.sets);
    if (rc || !conf) return rc;  /* an error, or --help printed (0) */
    if (!conf->labels[0]) {  /* labels need a home: the run folder */
        if (cli_labels_in_folder(conf)) { cfg_destroy(conf); return cli_usage_error("serve", "out of memory"); }
        fprintf(stderr, "oddsky: labels go to %s (add `labels: %s` to the config so that run and next use them)\n",
                conf->labels, conf->labels);
    }
    /* Ctrl-C is waited for here, not delivered to the server's thread:
     * blocked before that thread starts, so it inherits the mask */
    sigset_t sig;
    sigemptyset(&sig);
    sigaddset(&sig, SIGINT);
    sigaddset(&sig, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sig, NULL);
    ody_log quiet = *log;
    if (quiet.level > ODY_LOG_WARN) quiet.level = ODY_LOG_WARN;
    rep_view *v = NULL;
    srv *s = NULL;
    ody_err e = {0};
    rc = rep_open(conf, &quiet, &v, &e);
    if (!rc) rc = start(v, &a, &s, &e);
    if (rc) {
        rep_close(v);
        cfg_destroy(conf);
        return cli_fail(&e);
    }
    printf("%s\n", srv_url(s));
    fflush(stdout);
    fprintf(stderr, "oddsky: serving %zu objects of %s on 127.0.0.1:%d — open the address above; Ctrl-C stops\n",
            rep_size(v), conf->output, srv_port(s));
    int got = 0;
    sigwait(&sig, &got);
    srv_stop(s);
    fprintf(stderr, "oddsky: stopped; labels are in %s\n", rep_labels_path(v));
    rep_close(v);
    cfg_destroy(conf);
    return 0;
}
