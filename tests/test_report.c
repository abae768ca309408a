/* test_report.c — plot/ (figures, stretches), the HTML report, the review
 * view and its HTTP server (serve/), driven by a plain socket client. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cfg.h"
#include "plot.h"
#include "report.h"
#include "run.h"
#include "serve.h"
#include "testutil.h"

/* ================================================================ plot */

static void test_png_and_atomic_save(void **state)
{
    (void)state;
    plt *p = plt_create(200, 120);
    assert_non_null(p);
    plt_axes a = plt_axes_in(200, 120);
    a.xmin = 0, a.xmax = 10, a.ymin = 0, a.ymax = 5;
    double x[] = {1, 2, 3}, y[] = {1, 4, 2};
    plt_points(p, &a, x, y, 3, 3, (plt_rgba){1, 0, 0, 1}, 0);
    plt_frame(p, &a, "x", "y", "title");
    unsigned char *png;
    size_t len;
    ody_err e;
    assert_ok(plt_png(p, &png, &len, &e), e);
    assert_true(len > 100);
    assert_memory_equal(png, "\x89PNG\r\n\x1a\n", 8);
    free(png);
    char *dir = tu_tmpdir(), *path = tu_path(dir, "f.png"), *bad = tu_path(dir, "no/such/f.png");
    assert_ok(plt_save_png(p, path, &e), e);
    assert_true(tu_file_exists(path));
    assert_int_equal(plt_save_png(p, bad, &e), ODY_EIO);  /* nothing left behind */
    assert_non_null(strstr(e.msg, "no/such/f.png"));
    plt_destroy(p);
    tu_rmtree(dir);
    free(dir), free(path), free(bad);
}

/* Three bands: the reddest band is drawn red; a flat source stays grey;
 * the picture is the same every time; FITS row 1 is at the bottom. */
static void test_lupton_stretch(void **state)
{
    (void)state;
    enum { S = 8 };
    float img[3 * S * S] = {0};
    img[2 * S * S + 0] = 10;                        /* i band (the last), row 1 col 1 */
    for (int b = 0; b < 3; b++) img[b * S * S + S * S - 1] = 5;  /* flat in g, r, i at the top right */
    uint8_t rgb[S * S * 3], again[S * S * 3];
    plt_stretch(img, 3, S, rgb);
    plt_stretch(img, 3, S, again);
    assert_memory_equal(rgb, again, sizeof rgb);
    const uint8_t *bl = rgb + 3 * ((S - 1) * S + 0), *tr = rgb + 3 * (S - 1);
    assert_true(bl[0] > 200 && bl[1] == 0 && bl[2] == 0);   /* bottom left: red */
    assert_true(tr[0] == tr[1] && tr[1] == tr[2] && tr[0] > 100);  /* top right: grey */
    float one[S * S] = {0};
    one[3] = 7;
    plt_stretch(one, 1, S, rgb);
    const uint8_t *q = rgb + 3 * ((S - 1) * S + 3);
    assert_true(q[0] == q[1] && q[1] == q[2] && q[0] > 200);
}

static void test_profile_rows_and_curve(void **state)
{
    (void)state;
    float q[5 * 30], x[30];
    const char *names[30];
    for (int f = 0; f < 30; f++) {
        for (int k = 0; k < 5; k++) q[5 * f + k] = (float)(k - 2);
        x[f] = f == 3 ? 100.0f : 0.0f;  /* off the axis: drawn as an arrow, no crash */
        names[f] = "feature_with_a_long_name";
    }
    /* WHY's reasons shaded: rows 2-5 of the six; on the curve also 7, and a pad and one past the end skipped */
    const int32_t span[] = {2, 5, -1, -1, 28, 30, 7, 7};
    plt_profile pr = {.F = 6, .names = names, .q = q, .x = x, .span = span, .n_span = 4};
    plt *p = plt_profile_draw(&pr, 280, 400);
    assert_non_null(p);
    plt_destroy(p);
    pr.F = 30;  /* a spectrum-like block: a curve */
    p = plt_profile_draw(&pr, 280, 220);
    assert_non_null(p);
    plt_destroy(p);
}

/* ================================================================ report */

static char *write_config(const char *dir, const char *extra)
{
    const char *src = getenv("ODDSKY_SOURCE_DIR");
    char *p = tu_path(dir, "run.yaml");
    FILE *f = fopen(p, "w");
    fprintf(f,
            "catalog:\n"
            "  path: \"%s/catalogs/mock_survey.fits[CATALOG][col *; UG = U - G; GR = G - R; RI = R - I; IZ = I - Z]"
            "[ID <= 1500]\"\n  id: ID\n  features: [UG, GR, RI, IZ, R, REDSHIFT]\n"
            "  passthrough: [RA, DEC, CLASS, ANOMALY]\n"
            "forest:\n  n_trees: 30\nsimilarity:\n  enabled: true\n  top_k: 4\n"
            "export:\n  formats: [fits, csv, html]\nreport:\n  top: 12\n"
            "output: out\nseed: 3\n%s", src, extra ? extra : "");
    fclose(f);
    return p;
}

static int count_lines(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    int n = 0, c;
    while ((c = fgetc(f)) != EOF) n += c == '\n';
    fclose(f);
    return n;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) return NULL;
    char *b = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&b, &len);
    int c;
    while ((c = fgetc(f)) != EOF) fputc(c, m);
    fclose(f);
    fclose(m);
    return b;
}

/* html in export.formats: the run writes the report; every card and plot
 * is there; no temporary is left; `oddsky report` on the folder rewrites it. */
static void test_report_from_run(void **state)
{
    (void)state;
    char *dir = tu_tmpdir(), *conf = write_config(dir, NULL), args[8192], out[4096], err[8192];
    snprintf(args, sizeof args, "-q run '%s'", conf);
    assert_int_equal(tu_run(args, out, sizeof out, err, sizeof err), 0);
    char *rep = tu_path(dir, "out/report"), *index = tu_path(rep, "index.html"), *top = tu_path(rep, "top.csv");
    assert_true(tu_file_exists(index));
    assert_int_equal(count_lines(top), 13);
    static const char *plots[] = {"score.png", "map.png", "sky.png"};
    for (int k = 0; k < 3; k++) {
        char *p = tu_path(rep, plots[k]);
        assert_true(tu_file_exists(p));
        free(p);
    }
    char *html = slurp(index);
    assert_non_null(strstr(html, "id=\"obj-12\""));
    assert_null(strstr(html, "id=\"obj-13\""));
    assert_non_null(strstr(html, "href=\"../anomalies.fits\""));
    /* the weight score.local_weight: auto took, beside the config */
    assert_non_null(strstr(html, "weighed the local detectors by 0.816 for these 1500 objects"));
    /* ... and the isolation trees isolation.n_trees: auto grew, in the page and the run log */
    assert_non_null(strstr(html, "grew 2000 isolation trees for these 1500 objects"));
    snprintf(args, sizeof args, "grep -qF 'isolation: 2000 trees (isolation.n_trees: auto, 1500 objects)' '%s/out/oddsky.log'",
             dir);
    assert_int_equal(system(args), 0);
    /* every picture the page shows is in the folder */
    int n_img = 0;
    for (const char *s = html; (s = strstr(s, "src=\"img/")); s += 9, n_img++) {
        char name[64];
        sscanf(s + 5, "%63[^\"]", name);
        char *p = tu_path(rep, name);
        if (!tu_file_exists(p)) fail_msg("%s is missing", name);
        free(p);
    }
    assert_true(n_img >= 12);
    free(html);
    /* a folder argument: the run's config.yaml; --top changes the cards */
    char *outdir = tu_path(dir, "out");
    snprintf(args, sizeof args, "report '%s' --top 5", outdir);
    assert_int_equal(tu_run(args, out, sizeof out, err, sizeof err), 0);
    assert_non_null(strstr(out, "report/index.html"));
    assert_int_equal(count_lines(top), 6);
    snprintf(args, sizeof args, "ls '%s' | grep -c tmp", outdir);
    FILE *ls = popen(args, "r");
    int n_tmp = -1;
    assert_int_equal(fscanf(ls, "%d", &n_tmp), 1);
    pclose(ls);
    assert_int_equal(n_tmp, 0);
    /* a folder that is not a run */
    snprintf(args, sizeof args, "report '%s'", rep);
    assert_int_equal(tu_run(args, out, sizeof out, err, sizeof err), 2);
    assert_non_null(strstr(err, "config.yaml"));
    tu_rmtree(dir);
    free(dir), free(conf), free(rep), free(index), free(top), free(outdir);
}

/* What the run warned of is on the page, stage by stage, until a rerun of
 * that stage no longer warns: positions on the sky, independent of each
 * other, give a forest that cannot tell the catalog from its shuffled copy. */
static void test_report_shows_warnings(void **state)
{
    (void)state;
    char *dir = tu_tmpdir(), *conf = write_config(dir, NULL), args[8192], out[4096], err[8192];
    snprintf(args, sizeof args, "-q run '%s' --set 'catalog.features=[RA, DEC]' --set 'catalog.passthrough=[CLASS]'", conf);
    assert_int_equal(tu_run(args, out, sizeof out, err, sizeof err), 0);
    if (!strstr(err, "forest: out-of-bag accuracy")) fail_msg("no warning to show: %s", err);
    char *index = tu_path(dir, "out/report/index.html"), *html = slurp(index);
    assert_non_null(strstr(html, "<a href=\"#warnings\">Warnings</a>"));
    char *sec = strstr(html, "<section id=\"warnings\"");
    assert_non_null(sec);
    assert_non_null(strstr(sec, "<li>forest: out-of-bag accuracy"));
    assert_true(strstr(sec, "</section>") < strstr(sec, "id=\"cards\""));
    free(html);
    /* the forest rerun on features it tells apart: the warning goes */
    snprintf(args, sizeof args, "-q run '%s'", conf);
    assert_int_equal(tu_run(args, out, sizeof out, err, sizeof err), 0);
    html = slurp(index);
    assert_null(strstr(html, "id=\"warnings\""));
    free(html);
    tu_rmtree(dir);
    free(dir), free(conf), free(index);
}

static void test_bad_report_keys(void **state)
{
    (void)state;
    char *dir = tu_tmpdir(), args[8192], out[1024], err[4096];
    char *a = write_config(dir, NULL);
    snprintf(args, sizeof args, "check '%s' --set 'report.map=[UG]'", a);
    assert_int_equal(tu_run(args, out, sizeof out, err, sizeof err), 2);
    assert_non_null(strstr(err, "report.map"));
    free(a);
    tu_rmtree(dir);
    free(dir);
}

/* ================================================================ view + server */

typedef struct fixture {
    char *dir;
    cfg *c;
    rep_view *v;
    srv *s;
} fixture;

static int open_fixture(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    fx->dir = tu_tmpdir();
    char *conf = write_config(fx->dir, "labels: labels.csv\n");
    ody_err e;
    assert_ok(cfg_load(conf, NULL, 0, &fx->c, &e), e);
    fx->c->formats &= ~CFG_FMT_HTML;
    assert_ok(rep_open(fx->c, NULL, &fx->v, &e), e);
    srv_opt o;
    srv_opt_init(&o);
    o.token = "secret";
    o.max_body = 1024;
    assert_ok(srv_start(fx->v, &o, &fx->s, &e), e);
    free(conf);
    *state = fx;
    return 0;
}

static int close_fixture(void **state)
{
    fixture *fx = *state;
    srv_stop(fx->s);
    rep_close(fx->v);
    cfg_destroy(fx->c);
    tu_rmtree(fx->dir);
    free(fx->dir);
    free(fx);
    return 0;
}

/* One HTTP/1.0 exchange; the status code, the body into body. */
static int http(const fixture *fx, const char *method, const char *target, const char *headers, const char *data,
                size_t len, char *body, size_t blen)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)srv_port(fx->s))};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a)) { close(fd); return -1; }
    char req[4096];
    int n = snprintf(req, sizeof req, "%s %s HTTP/1.0\r\nHost: 127.0.0.1\r\n%sContent-Length: %zu\r\n\r\n", method,
                     target, headers ? headers : "", len);
    if (write(fd, req, (size_t)n) != n) { close(fd); return -1; }
    for (size_t at = 0; at < len;) {
        ssize_t w = write(fd, data + at, len - at);
        if (w <= 0) break;
        at += (size_t)w;
    }
    static __thread char resp[1 << 20];
    size_t got = 0;
    ssize_t r;
    while (got < sizeof resp - 1 && (r = read(fd, resp + got, sizeof resp - 1 - got)) > 0) got += (size_t)r;
    resp[got] = 0;
    close(fd);
    int code = -1;
    sscanf(resp, "HTTP/1.%*d %d", &code);
    const char *b = strstr(resp, "\r\n\r\n");
    if (body) snprintf(body, blen, "%s", b ? b + 4 : "");
    return code;
}

static int get(const fixture *fx, const char *target, char *body, size_t blen)
{
    return http(fx, "GET", target, NULL, NULL, 0, body, blen);
}

static int post_label(const fixture *fx, const char *json, char *body, size_t blen)
{
    return http(fx, "POST", "/api/label", "X-Oddsky-Token: secret\r\n", json, strlen(json), body, blen);
}

static void test_token_and_routes(void **state)
{
    fixture *fx = *state;
    char body[1 << 16];
    assert_int_equal(get(fx, "/", body, sizeof body), 403);
    assert_int_equal(get(fx, "/?token=wrong", body, sizeof body), 403);
    assert_int_equal(get(fx, "/?token=secre", body, sizeof body), 403);
    assert_int_equal(get(fx, "/?token=secret", body, sizeof body), 200);
    assert_non_null(strstr(body, "btn-yes"));
    assert_int_equal(http(fx, "GET", "/api/status", "X-Oddsky-Token: secret\r\n", NULL, 0, body, sizeof body), 200);
    assert_non_null(strstr(body, "\"objects\":"));
    assert_non_null(strstr(body, "\"warnings\":[]"));
    /* a warning of the forest's last run (the log's own lines, as a run writes them), and one of a forest
     * run since without it: the status lists the first, never the second */
    char *log = tu_path(fx->dir, "out/oddsky.log");
    FILE *lf = fopen(log, "a");
    assert_non_null(lf);
    /* a damaged log first: no spaces, NUL bytes, a line of 100,000 characters, a stage name too long for
     * any stage, a number past any int, a level cut short — none of them a boundary or a warning */
    fputs("\nnospaceatall\n", lf);
    fwrite("2026 warn\0ing x\0\n", 1, 18, lf);
    for (int k = 0; k < 100000; k++) fputc(k % 97 ? 'w' : ' ', lf);
    fputs("\n2026 info    stage 2/10 ", lf);
    for (int k = 0; k < 300; k++) fputc('f', lf);
    fputs(": running\n2026 info    stage 99999999999999999999/1 forest: done\n2026 info\n2026 warning\n", lf);
    fputs("2026-01-01T00:00:00Z info    stage 2/10 forest: running\n"
          "2026-01-01T00:00:01Z warning forest: out-of-bag accuracy 0.501 — planted\n"
          "2026-01-01T00:00:02Z info    stage 2/10 forest: done in 0.00 s\n"
          "2026-01-01T00:00:03Z warning stage 2/10 forest: running — a path, not a boundary\n"
          "2026-01-01T00:00:04Z info    stage 3/10 weirdness: running\n"
          "2026-01-01T00:00:05Z warning weirdness: planted, then cleared\n"
          "2026-01-01T00:00:06Z info    stage 3/10 weirdness: done in 0.00 s\n"
          "2026-01-01T00:00:07Z info    stage 3/10 weirdness: running\n"
          "2026-01-01T00:00:08Z info    stage 3/10 weirdness: done in 0.00 s\n", lf);
    fclose(lf);
    free(log);
    assert_int_equal(get(fx, "/api/status?token=secret", body, sizeof body), 200);
    assert_non_null(strstr(body, "\"warnings\":[\"forest: out-of-bag accuracy 0.501 — planted\"]"));
    assert_int_equal(get(fx, "/api/next?n=3&token=secret", body, sizeof body), 200);
    assert_true(body[0] == '[' && strstr(body, "\"id\":"));
    assert_int_equal(get(fx, "/api/next?n=0&token=secret", body, sizeof body), 400);
    assert_int_equal(get(fx, "/api/next?n=x&token=secret", body, sizeof body), 400);
    assert_int_equal(get(fx, "/img?id=1&token=secret", body, sizeof body), 200);
    assert_int_equal(get(fx, "/img?id=nope&token=secret", body, sizeof body), 404);
    assert_int_equal(get(fx, "/api/object?id=1&token=secret", body, sizeof body), 200);
    assert_int_equal(get(fx, "/report/../config.yaml?token=secret", body, sizeof body), 400);
    assert_int_equal(get(fx, "/report/%2e%2e/config.yaml?token=secret", body, sizeof body), 400);
    assert_int_equal(get(fx, "/report/index.html?token=secret", body, sizeof body), 404);  /* not written */
    assert_int_equal(get(fx, "/etc/passwd?token=secret", body, sizeof body), 404);
    assert_int_equal(http(fx, "DELETE", "/api/label?token=secret", NULL, NULL, 0, body, sizeof body), 405);
    assert_int_equal(get(fx, "/api/label?token=secret", body, sizeof body), 405);
}

static void test_labels_through_the_api(void **state)
{
    fixture *fx = *state;
    char body[1 << 16];
    assert_int_equal(get(fx, "/api/next?n=1&token=secret", body, sizeof body), 200);
    char first[64];
    assert_int_equal(sscanf(strstr(body, "\"id\":\"") + 6, "%63[^\"]", first), 1);
    char json[256];
    snprintf(json, sizeof json, "{\"id\": \"%s\", \"label\": 1}", first);
    assert_int_equal(post_label(fx, json, body, sizeof body), 200);
    assert_int_equal(get(fx, "/api/next?n=1&token=secret", body, sizeof body), 200);
    assert_null(strstr(body, json + 7));  /* it moved on */
    char *lab = tu_path(fx->dir, "labels.csv"), *txt = slurp(lab);
    assert_non_null(strstr(txt, first));
    free(txt);
    /* bad requests: 4xx, nothing written, still serving */
    assert_int_equal(post_label(fx, "{\"id\": \"no-such\", \"label\": 1}", body, sizeof body), 404);
    assert_int_equal(post_label(fx, "{\"id\": 1, \"label\": 5}", body, sizeof body), 400);
    assert_int_equal(post_label(fx, "{\"id\": [1], \"label\": 1}", body, sizeof body), 400);
    assert_int_equal(post_label(fx, "not json", body, sizeof body), 400);
    assert_int_equal(post_label(fx, "{\"id\": 1, \"id\": 2, \"label\": 1}", body, sizeof body), 400);
    char big[4096];
    memset(big, ' ', sizeof big - 1);
    big[sizeof big - 1] = 0;
    assert_int_equal(post_label(fx, big, body, sizeof body), 413);
    assert_int_equal(http(fx, "POST", "/api/label", NULL, "{\"id\": 1, \"label\": 1}", 22, body, sizeof body), 403);
    assert_int_equal(count_lines(lab), 2);
    /* an integer ID works too */
    assert_int_equal(post_label(fx, "{\"id\": 7, \"label\": 0}", body, sizeof body), 200);
    assert_int_equal(count_lines(lab), 3);
    /* another oddsky at work in the run folder: the label is kept, and the answer says so and why the
     * ranking waits (it said only the second, as if the click were lost) */
    char *lk = tu_path(fx->dir, "out/.oddsky.lock");
    int fd = open(lk, O_RDWR);
    assert_true(fd >= 0);
    assert_int_equal(flock(fd, LOCK_EX), 0);
    assert_int_equal(post_label(fx, "{\"id\": 9, \"label\": 1}", body, sizeof body), 400);
    if (!strstr(body, "label recorded in") || !strstr(body, "another oddsky is using this run folder")) fail_msg("%s", body);
    assert_int_equal(count_lines(lab), 4);
    close(fd);
    free(lk);
    free(lab);
    /* with labels the report has the discovery curve and the labelled object first */
    ody_err e;
    assert_ok(rep_write(fx->v, &e), e);
    char *disc = tu_path(fx->dir, "out/report/discovery.png"), *idx = tu_path(fx->dir, "out/report/index.html");
    assert_true(tu_file_exists(disc));
    char *html = slurp(idx), *card1 = strstr(html, "id=\"obj-1\"");
    assert_non_null(card1);
    char want[128];
    snprintf(want, sizeof want, "<span class=\"id\">%s</span>", first);
    assert_true(strstr(card1, want) && strstr(card1, want) < strstr(card1, "id=\"obj-2\""));
    free(html), free(disc), free(idx);
}

typedef struct clicker { fixture *fx; int id, code; } clicker;

static void *click(void *arg)
{
    clicker *k = arg;
    char json[128], body[4096];
    snprintf(json, sizeof json, "{\"id\": %d, \"label\": %d}", k->id, k->id % 2);
    k->code = post_label(k->fx, json, body, sizeof body);
    return NULL;
}

/* Clicks at the same moment are all recorded; a client that hangs up
 * half-way does not stop the server. */
static void test_concurrent_clicks_and_hangups(void **state)
{
    fixture *fx = *state;
    enum { N = 8 };
    /* half a request, then gone */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)srv_port(fx->s))};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    const char *half = "POST /api/label?token=secret HTTP/1.1\r\nContent-Length: 100\r\n\r\n{\"id\": 20";
    assert_true(write(fd, half, strlen(half)) > 0);
    close(fd);
    pthread_t t[N];
    clicker k[N];
    for (int i = 0; i < N; i++) {
        k[i] = (clicker){fx, 100 + i, 0};
        pthread_create(&t[i], NULL, click, &k[i]);
    }
    for (int i = 0; i < N; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(k[i].code, 200);
    }
    char *lab = tu_path(fx->dir, "labels.csv"), *txt = slurp(lab);
    for (int i = 0; i < N; i++) {
        char line[64];
        snprintf(line, sizeof line, "\n%d,%d,", 100 + i, (100 + i) % 2);
        if (!strstr(txt, line)) fail_msg("label of %d lost:\n%s", 100 + i, txt);
    }
    assert_null(strstr(txt, "\n20,"));
    free(txt);
    free(lab);
    char body[256];
    assert_int_equal(get(fx, "/api/status?token=secret", body, sizeof body), 200);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_png_and_atomic_save),
        cmocka_unit_test(test_lupton_stretch),
        cmocka_unit_test(test_profile_rows_and_curve),
        cmocka_unit_test(test_report_from_run),
        cmocka_unit_test(test_report_shows_warnings),
        cmocka_unit_test(test_bad_report_keys),
        cmocka_unit_test_setup_teardown(test_token_and_routes, open_fixture, close_fixture),
        cmocka_unit_test_setup_teardown(test_labels_through_the_api, open_fixture, close_fixture),
        cmocka_unit_test_setup_teardown(test_concurrent_clicks_and_hangups, open_fixture, close_fixture),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
