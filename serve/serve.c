/* serve.c — the review page's HTTP server (libmicrohttpd) and JSON API
 * (jansson). */
#define _GNU_SOURCE
#include "serve.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "page.h"

struct srv {
    struct MHD_Daemon *d;
    rep_view *v;
    pthread_mutex_t lock;     /* one request at a time touches the view */
    char token[72];
    char url[160];
    int port;
    size_t max_body;
};

void srv_opt_init(srv_opt *o)
{
    memset(o, 0, sizeof *o);
    o->max_body = 64 * 1024;
}

const char *srv_url(const srv *s) { return s->url; }
int srv_port(const srv *s) { return s->port; }

/* ================================================================ answers */

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *type, void *body, size_t len,
                             enum MHD_ResponseMemoryMode mode)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, body, mode);
    if (!r) {
        if (mode == MHD_RESPMEM_MUST_FREE) free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", type);
    MHD_add_response_header(r, "Cache-Control", "no-store");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    enum MHD_Result ok = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ok;
}

/* Takes j. */
static enum MHD_Result reply_json(struct MHD_Connection *c, unsigned status, json_t *j)
{
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!s) return reply(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "text/plain", "out of memory", 13, MHD_RESPMEM_PERSISTENT);
    return reply(c, status, "application/json", s, strlen(s), MHD_RESPMEM_MUST_FREE);
}

static enum MHD_Result reply_error(struct MHD_Connection *c, unsigned status, const char *msg)
{
    return reply_json(c, status, json_pack("{s:s}", "error", msg));
}

/* ================================================================ objects */

static json_t *object_json(const rep_view *v, size_t row)
{
    rep_obj o;
    rep_describe(v, row, &o);
    json_t *pass = json_object(), *nb = json_array();
    for (int q = 0; q < o.n_pass; q++) json_object_set_new(pass, o.pass_name[q], json_string(o.pass_val[q]));
    for (int q = 0; q < o.n_nb; q++) json_array_append_new(nb, json_string(o.nb[q]));
    return json_pack("{s:s, s:I, s:f, s:f, s:i, s:s, s:s, s:o, s:o}", "id", o.id, "rank", (json_int_t)o.rank,
                     "score", isfinite(o.score) ? o.score : 0.0, "anomaly_score", isfinite(o.anomaly) ? o.anomaly : 0.0,
                     "label", o.label, "driven_by", o.driver, "why", o.why, "passthrough", pass, "neighbours", nb);
}

static enum MHD_Result api_next(srv *s, struct MHD_Connection *c)
{
    const char *ns = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "n");
    char *end = NULL;
    long k = ns ? strtol(ns, &end, 10) : 10;
    if (ns && (!*ns || *end || k < 1 || k > 1000)) return reply_error(c, 400, "n must be an integer from 1 to 1000");
    size_t *rows = malloc((size_t)k * sizeof *rows);
    json_t *a = json_array();
    if (!rows || !a) {
        free(rows);
        json_decref(a);
        return reply_error(c, 500, "out of memory");
    }
    size_t m = rep_next(s->v, (size_t)k, rows);
    for (size_t r = 0; r < m; r++) json_array_append_new(a, object_json(s->v, rows[r]));
    free(rows);
    return reply_json(c, 200, a);
}

static long lookup_id(srv *s, struct MHD_Connection *c, const char **id)
{
    *id = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "id");
    return *id ? rep_find(s->v, *id) : -1;
}

static enum MHD_Result api_object(srv *s, struct MHD_Connection *c)
{
    const char *id;
    long row = lookup_id(s, c, &id);
    if (!id) return reply_error(c, 400, "give the object as ?id=ID");
    if (row < 0) return reply_error(c, 404, "no object with that ID in this run");
    return reply_json(c, 200, object_json(s->v, (size_t)row));
}

/* The status, with what the run warned of: whoever labels should know of
 * a sentinel or a forest that says little before trusting the list. */
static enum MHD_Result api_status(srv *s, struct MHD_Connection *c)
{
    json_t *warnings = json_array();
    char *w = rep_warnings(s->v), *save = NULL;
    for (char *l = w ? strtok_r(w, "\n", &save) : NULL; l && warnings; l = strtok_r(NULL, "\n", &save))
        json_array_append_new(warnings, json_string(l));
    free(w);
    return reply_json(c, 200, json_pack("{s:I, s:I, s:s, s:o}", "objects", (json_int_t)rep_size(s->v), "labelled",
                                        (json_int_t)rep_labelled(s->v), "labels_file", rep_labels_path(s->v),
                                        "warnings", warnings));
}

static enum MHD_Result image(srv *s, struct MHD_Connection *c)
{
    const char *id;
    long row = lookup_id(s, c, &id);
    if (!id) return reply_error(c, 400, "give the object as ?id=ID");
    if (row < 0) return reply_error(c, 404, "no object with that ID in this run");
    unsigned char *png;
    size_t len;
    ody_err e;
    if (rep_picture(s->v, (size_t)row, &png, &len, &e)) return reply_error(c, 500, e.msg);
    return reply(c, 200, "image/png", png, len, MHD_RESPMEM_MUST_FREE);
}

/* ================================================================ labels */

/* {"id": "..." or 123, "label": 0 or 1} */
static enum MHD_Result api_label(srv *s, struct MHD_Connection *c, const char *body, size_t len)
{
    json_error_t je;
    json_t *j = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    if (!j || !json_is_object(j)) {
        json_decref(j);
        return reply_error(c, 400, "the body must be JSON: {\"id\": ID, \"label\": 0 or 1}");
    }
    json_t *id = json_object_get(j, "id"), *lab = json_object_get(j, "label");
    char buf[CAT_ID_MAX + 1];  /* any catalog's ID fits */
    if (json_is_string(id) && json_string_length(id) < sizeof buf) snprintf(buf, sizeof buf, "%s", json_string_value(id));
    else if (json_is_integer(id)) snprintf(buf, sizeof buf, "%" JSON_INTEGER_FORMAT, json_integer_value(id));
    else buf[0] = 0;
    int y = json_is_integer(lab) ? (int)json_integer_value(lab) : -1;
    int bad_y = !json_is_integer(lab) || (json_integer_value(lab) != 0 && json_integer_value(lab) != 1);
    json_decref(j);
    if (!buf[0]) return reply_error(c, 400, "\"id\" must be the object's ID, a string or an integer");
    if (bad_y) return reply_error(c, 400, "\"label\" must be 1 (interesting) or 0 (not)");
    if (rep_find(s->v, buf) < 0) return reply_error(c, 404, "no object with that ID in this run");
    ody_err e;
    if (rep_label(s->v, buf, y, &e)) return reply_error(c, e.code == ODY_EINPUT ? 400 : 500, e.msg);
    return reply_json(c, 200, json_pack("{s:b, s:s, s:i, s:s}", "ok", 1, "id", buf, "label", y, "labels_file",
                                        rep_labels_path(s->v)));
}

/* ================================================================ the report */

static enum MHD_Result report_file(srv *s, struct MHD_Connection *c, const char *rel)
{
    static const char ok_chars[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-/";
    if (!*rel) rel = "index.html";
    if (strspn(rel, ok_chars) != strlen(rel) || strstr(rel, "..") || rel[0] == '/' || strstr(rel, "//") ||
        strlen(rel) > 200)
        return reply_error(c, 400, "not a file of the report");
    char path[4400];
    snprintf(path, sizeof path, "%s/report/%s", rep_dir(s->v), rel);
    FILE *f = fopen(path, "rb");
    if (!f) return reply_error(c, 404, "no such file in the report — write it with `oddsky report RUN_DIR`");
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    char chunk[65536];
    size_t got;
    while (m && (got = fread(chunk, 1, sizeof chunk, f)) > 0) fwrite(chunk, 1, got, m);
    fclose(f);
    if (!m) return reply_error(c, 500, "out of memory");
    fclose(m);
    const char *dot = strrchr(rel, '.');
    const char *type = !dot ? "application/octet-stream" : !strcmp(dot, ".html") ? "text/html; charset=utf-8"
                       : !strcmp(dot, ".png") ? "image/png" : !strcmp(dot, ".csv") ? "text/csv" : "text/plain";
    return reply(c, 200, type, buf, len, MHD_RESPMEM_MUST_FREE);
}

/* ================================================================ dispatch */

typedef struct req {
    char *body;
    size_t len, cap;
    int too_big;
} req;

static int token_ok(const srv *s, struct MHD_Connection *c)
{
    const char *t = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "token");
    if (!t) t = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Oddsky-Token");
    if (!t || strlen(t) != strlen(s->token)) return 0;
    unsigned char d = 0;  /* the same time whatever the first wrong character */
    for (size_t i = 0; t[i]; i++) d |= (unsigned char)(t[i] ^ s->token[i]);
    return d == 0;
}

static enum MHD_Result route(srv *s, struct MHD_Connection *c, const char *url, const char *method, req *r)
{
    int get = !strcmp(method, "GET"), post = !strcmp(method, "POST");
    if (!get && !post) return reply_error(c, 405, "only GET and POST");
    if (!token_ok(s, c)) return reply_error(c, 403, "wrong or missing token — open the URL `oddsky serve` printed");
    if (post != !strcmp(url, "/api/label"))
        return reply_error(c, 405, post ? "only /api/label takes a POST" : "POST a label to /api/label");
    if (post) {
        if (r->too_big) return reply_error(c, 413, "the body is too large");
        return api_label(s, c, r->body ? r->body : "", r->len);
    }
    if (!strcmp(url, "/")) return reply(c, 200, "text/html; charset=utf-8", (void *)SRV_PAGE, strlen(SRV_PAGE),
                                        MHD_RESPMEM_PERSISTENT);
    if (!strcmp(url, "/api/next")) return api_next(s, c);
    if (!strcmp(url, "/api/object")) return api_object(s, c);
    if (!strcmp(url, "/api/status")) return api_status(s, c);
    if (!strcmp(url, "/img")) return image(s, c);
    if (!strncmp(url, "/report/", 8)) return report_file(s, c, url + 8);
    return reply_error(c, 404, "no such page");
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                              const char *version, const char *data, size_t *data_size, void **con_cls)
{
    (void)version;
    srv *s = cls;
    req *r = *con_cls;
    if (!r) {  /* the headers: allocate the request's state, answer on the next call */
        if (!(r = calloc(1, sizeof *r))) return MHD_NO;
        *con_cls = r;
        return MHD_YES;
    }
    if (*data_size) {  /* a piece of the body: kept up to the limit, the rest counted and dropped */
        if (r->len + *data_size > s->max_body) r->too_big = 1;
        else {
            if (r->len + *data_size + 1 > r->cap) {
                size_t cap = (r->len + *data_size + 1) * 2;
                char *b = realloc(r->body, cap);
                if (!b) return MHD_NO;
                r->body = b, r->cap = cap;
            }
            memcpy(r->body + r->len, data, *data_size);
            r->len += *data_size;
        }
        *data_size = 0;
        return MHD_YES;
    }
    pthread_mutex_lock(&s->lock);
    enum MHD_Result res = route(s, c, url, method, r);
    pthread_mutex_unlock(&s->lock);
    return res;
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode t)
{
    (void)cls, (void)c, (void)t;
    req *r = *con_cls;
    if (r) free(r->body);
    free(r);
    *con_cls = NULL;
}

/* ================================================================ start, stop */

static int random_token(char *out, size_t len, ody_err *err)
{
    unsigned char b[16];
    if (getrandom(b, sizeof b, 0) != (ssize_t)sizeof b)
        return ody_fail(err, ODY_EINTERNAL, "cannot draw a random token (%s)", strerror(errno));
    for (size_t i = 0; i < sizeof b && 2 * i + 2 < len; i++) snprintf(out + 2 * i, 3, "%02x", b[i]);
    return 0;
}

int srv_start(rep_view *v, const srv_opt *o, srv **out, ody_err *err)
{
    if (o->port < 0 || o->port > 65535)
        return ody_fail(err, ODY_EINPUT, "--port %d: a port is 0 (any free one) to 65535", o->port);
    srv *s = calloc(1, sizeof *s);
    if (!s) return ody_fail(err, ODY_ENOMEM, "out of memory");
    s->v = v;
    s->max_body = o->max_body ? o->max_body : 64 * 1024;
    pthread_mutex_init(&s->lock, NULL);
    int rc = o->token ? (snprintf(s->token, sizeof s->token, "%s", o->token), 0)
                      : random_token(s->token, sizeof s->token, err);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)o->port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);  /* this machine only */
    if (!rc)
        s->d = MHD_start_daemon(MHD_USE_AUTO_INTERNAL_THREAD, (uint16_t)o->port, NULL, NULL, handle, s,
                                MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&a, MHD_OPTION_NOTIFY_COMPLETED, completed, s,
                                MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30, MHD_OPTION_CONNECTION_LIMIT,
                                (unsigned)64, MHD_OPTION_END);
    if (!rc && !s->d)
        rc = ody_fail(err, ODY_EINPUT, "cannot listen on 127.0.0.1:%d (%s) — another program may use it: try "
                      "another --port, or --port 0 for any free one", o->port, strerror(errno));
    if (rc) {
        pthread_mutex_destroy(&s->lock);
        free(s);
        return rc;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : o->port;
    snprintf(s->url, sizeof s->url, "http://127.0.0.1:%d/?token=%s", s->port, s->token);
    *out = s;
    return 0;
}

void srv_stop(srv *s)
{
    if (!s) return;
    MHD_stop_daemon(s->d);
    pthread_mutex_destroy(&s->lock);
    free(s);
}
