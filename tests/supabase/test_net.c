/* Unit tests of lib/net against a stub HTTP server on loopback (a thread per connection,
 * answering from a script): correlation ids, retries and their limits, Retry-After,
 * response caps, dropped connections, timeouts, parallel transfers, secret scrubbing. */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "net/net.h"

/* ---- stub server -------------------------------------------------------------------- */

struct answer {
    int status;          /* 0: drop the connection without answering */
    const char *headers; /* extra header lines, each ending in \r\n */
    const char *body;
    int delay_ms;
};

#define MAX_SCRIPT 32
#define MAX_REQS 64

static struct {
    int fd, port;
    pthread_t th;
    pthread_mutex_t mu;
    struct answer script[MAX_SCRIPT];
    int nscript, next;
    char reqs[MAX_REQS][4096];
    int nreqs;
    volatile int stop;
} srv = {.mu = PTHREAD_MUTEX_INITIALIZER};

static struct answer take_answer(void)
{
    struct answer a = {200, "", "{}", 0};
    pthread_mutex_lock(&srv.mu);
    if (srv.next < srv.nscript)
        a = srv.script[srv.next++];
    pthread_mutex_unlock(&srv.mu);
    return a;
}

static void *serve_conn(void *arg)
{
    int c = (int)(intptr_t)arg;
    char buf[65536];
    size_t have = 0;
    for (;;) {
        char *end;
        while (!(end = memmem(buf, have, "\r\n\r\n", 4))) {
            if (have == sizeof buf)
                goto out;
            ssize_t r = read(c, buf + have, sizeof buf - have);
            if (r <= 0)
                goto out;
            have += (size_t)r;
        }
        size_t head = (size_t)(end - buf) + 4;
        size_t clen = 0;
        const char *cl = strcasestr(buf, "\r\nContent-Length:");
        if (cl && cl < end)
            clen = strtoul(cl + 17, NULL, 10);
        while (have < head + clen) {
            ssize_t r = read(c, buf + have, sizeof buf - have);
            if (r <= 0)
                goto out;
            have += (size_t)r;
        }
        pthread_mutex_lock(&srv.mu);
        if (srv.nreqs < MAX_REQS) {
            size_t n = head < sizeof srv.reqs[0] - 1 ? head : sizeof srv.reqs[0] - 1;
            memcpy(srv.reqs[srv.nreqs], buf, n);
            srv.reqs[srv.nreqs][n] = '\0';
            srv.nreqs++;
        }
        pthread_mutex_unlock(&srv.mu);
        memmove(buf, buf + head + clen, have - head - clen);
        have -= head + clen;
        struct answer a = take_answer();
        if (a.delay_ms) {
            struct timespec ts = {a.delay_ms / 1000, (a.delay_ms % 1000) * 1000000L};
            nanosleep(&ts, NULL);
        }
        if (a.status == 0)
            goto out;
        char resp[70000];
        int n = snprintf(resp, sizeof resp, "HTTP/1.1 %d X\r\nContent-Type: application/json\r\n%sContent-Length: %zu\r\n\r\n%s",
                         a.status, a.headers ? a.headers : "", strlen(a.body ? a.body : ""), a.body ? a.body : "");
        if (write(c, resp, (size_t)n) != n)
            goto out;
    }
out:
    close(c);
    return NULL;
}

static void *serve(void *arg)
{
    (void)arg;
    while (!srv.stop) {
        struct pollfd p = {srv.fd, POLLIN, 0};
        if (poll(&p, 1, 50) <= 0)
            continue;
        int c = accept(srv.fd, NULL, NULL);
        if (c < 0)
            continue;
        pthread_t t;
        pthread_create(&t, NULL, serve_conn, (void *)(intptr_t)c);
        pthread_detach(t);
    }
    return NULL;
}

static void stub_start(void)
{
    srv.fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    ck_assert_int_eq(bind(srv.fd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t len = sizeof a;
    getsockname(srv.fd, (struct sockaddr *)&a, &len);
    srv.port = ntohs(a.sin_port);
    ck_assert_int_eq(listen(srv.fd, 16), 0);
    srv.stop = 0;
    srv.nscript = srv.next = srv.nreqs = 0;
    pthread_create(&srv.th, NULL, serve, NULL);
}

static void stub_stop(void)
{
    srv.stop = 1;
    pthread_join(srv.th, NULL);
    close(srv.fd);
}

static void script(const struct answer *a, int n)
{
    pthread_mutex_lock(&srv.mu);
    for (int i = 0; i < n; i++)
        srv.script[i] = a[i];
    srv.nscript = n;
    srv.next = 0;
    srv.nreqs = 0;
    pthread_mutex_unlock(&srv.mu);
}

static char url[128];
static bcd_ctx *ctx;
static bcd__net *net;
static bcd_error err;

static void setup(void)
{
    stub_start();
    snprintf(url, sizeof url, "http://127.0.0.1:%d/rest/v1/things?x=1", srv.port);
    ck_assert_int_eq(bcd_ctx_new(&ctx), BCD_OK);
    struct bcd__net_options o = {.timeout_ms = 5000, .connect_timeout_ms = 2000, .backoff_ms = 20};
    memset(&err, 0, sizeof err);
    ck_assert_int_eq(bcd__net_new(&net, ctx, &o, &err), BCD_OK);
}

static void teardown(void)
{
    bcd__net_free(net);
    bcd_ctx_free(ctx);
    bcd__error_clear(&err);
    stub_stop();
}

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static struct bcd__net_request get_req(void)
{
    static const char *const h[] = {"apikey: sb_secret_test", NULL};
    struct bcd__net_request rq = {.method = BCD__NET_GET, .url = url, .headers = h, .idempotent = true};
    return rq;
}

/* ---- tests -------------------------------------------------------------------------- */

START_TEST(test_net_request_sends_correlation_id_user_agent_and_headers)
{
    struct answer a[] = {{200, "", "{\"ok\":true}", 0}};
    script(a, 1);
    struct bcd__net_request rq = get_req();
    struct bcd__net_response rs;
    ck_assert_int_eq(bcd__net_request(net, &rq, &rs, &err), BCD_OK);
    ck_assert_int_eq(rs.status, 200);
    ck_assert_str_eq((const char *)rs.body, "{\"ok\":true}");
    ck_assert_str_eq(rs.content_type, "application/json");
    ck_assert(bcd__uuid_valid(rs.correlation_id));
    ck_assert_int_eq(rs.attempts, 1);
    char want[80];
    snprintf(want, sizeof want, "X-Correlation-Id: %s\r\n", rs.correlation_id);
    ck_assert_ptr_nonnull(strstr(srv.reqs[0], want));
    ck_assert_ptr_nonnull(strstr(srv.reqs[0], "User-Agent: libbcd/"));
    ck_assert_ptr_nonnull(strstr(srv.reqs[0], "apikey: sb_secret_test\r\n"));
    ck_assert_ptr_nonnull(strstr(srv.reqs[0], "GET /rest/v1/things?x=1 HTTP/1.1"));
    bcd__net_response_clear(&rs);
}
END_TEST

START_TEST(test_net_request_retries_transient_statuses_with_one_correlation_id)
{
    struct answer a[] = {{503, "", "{}", 0}, {500, "", "{}", 0}, {200, "", "done", 0}};
    script(a, 3);
    struct bcd__net_request rq = get_req();
    struct bcd__net_response rs;
    ck_assert_int_eq(bcd__net_request(net, &rq, &rs, &err), BCD_OK);
    ck_assert_int_eq(rs.status, 200);
    ck_assert_int_eq(rs.attempts, 3);
    ck_assert_int_eq(srv.nreqs, 3);
    char want[80];
    snprintf(want, sizeof want, "X-Correlation-Id: %s", rs.correlation_id);
    for (int i = 0; i < 3; i++)
        ck_assert_ptr_nonnull(strstr(srv.reqs[i], want));
    bcd__net_response_clear(&rs);
}
END_TEST

START_TEST(test_net_request_gives_up_after_max_attempts_with_the_last_response)
{
    struct answer a[] = {{502, "", "a", 0}, {502, "", "b", 0}, {502, "", "c", 0}, {200, "", "never", 0}};
    script(a, 4);
    struct bcd__net_request rq = get_req();
    struct bcd__net_response rs;
    ck_assert_int_eq(bcd__net_request(net, &rq, &rs, &err), BCD_OK);
    ck_assert_int_eq(rs.status, 502);
    ck_assert_str_eq((const char *)rs.body, "c");
    ck_assert_int_eq(rs.attempts, 3);
    bcd__net_response_clear(&rs);
}
END_TEST

START_TEST(test_net_request_never_repeats_a_request_that_is_not_idempotent)
{
    struct answer a[] = {{503, "", "busy", 0}, {0, NULL, NULL, 0}};
    script(a, 2);
    struct bcd__net_request rq = get_req();
    rq.method = BCD__NET_POST;
    rq.body = "{}";
    rq.body_len = 2;
    rq.idempotent = false;
    struct bcd__net_response rs;
    ck_assert_int_eq(bcd__net_request(net, &rq, &rs, &err), BCD_OK);
    ck_assert_int_eq(rs.status, 503);
    ck_assert_int_eq(rs.attempts, 1);
    bcd__net_response_clear(&rs);
    /* a dropped connection after sending: not repeated either */
    ck_assert_int_eq(bcd__net_request(net, &rq, &rs, &err), BCD_ENET);
    ck_assert_int_eq(srv.nreqs, 2);
    ck_assert_str_eq(err.code, "network_error");
}
END_TEST

START_TEST(test_net_request_retries_a_dropped_connection)
{
    struct answer a[] = {{0, NULL, NULL, 0}, {200, "", "back", 0}};
    script(a, 2);
    struct bcd__net_request rq = get_req();
    struct bcd__net_response rs;
    ck_assert_int_eq(bcd__net_request(net, &rq, &rs, &err), BCD_OK);
    ck_assert_int_eq(rs.status, 200);
    ck_assert_int_eq(rs.attempts, 2);
    bcd__net_response_clear(&rs);
}
END_TEST

START_TEST(test_net_request_honours_retry_after_within_the_budget)
{
    struct answer a[] = {{429, "Retry-After: 1\r\n", "slow", 0}, {200, "", "ok", 0}};
    script(a, 2);
    struct bcd__net_request rq = get_req();
    struct bcd__net_response rs;
    long t = now_ms();
    ck_assert_int_eq(bcd__net_request(net, &rq, &rs, &err), BCD_OK);
    ck_assert_int_ge(now_ms() - t, 950);
    ck_assert_int_eq(rs.status, 200);
    bcd__net_response_clear(&rs);

    /* a wait beyond the budget ends the retries with the 429 */
    bcd__net *tight = NULL;
    struct bcd__net_options o = {.max_wait_ms = 500, .backoff_ms = 20};
    ck_assert_int_eq(bcd__net_new(&tight, ctx, &o, &err), BCD_OK);
    struct answer b[] = {{429, "Retry-After: 30\r\n", "slow", 0}, {200, "", "ok", 0}};
    script(b, 2);
    t = now_ms();
    ck_assert_int_eq(bcd__net_request(tight, &rq, &rs, &err), BCD_OK);
    ck_assert_int_lt(now_ms() - t, 2000);
    ck_assert_int_eq(rs.status, 429);
    ck_assert_int_eq(rs.attempts, 1);
    bcd__net_response_clear(&rs);
    bcd__net_free(tight);
}
END_TEST

START_TEST(test_net_request_caps_the_response_body)
{
    static char big[5000];
    memset(big, 'x', sizeof big - 1);
    struct answer a[] = {{200, "", big, 0}};
    script(a, 1);
    struct bcd__net_request rq = get_req();
    rq.max_response = 1000;
    struct bcd__net_response rs;
    ck_assert_int_eq(bcd__net_request(net, &rq, &rs, &err), BCD_ELIMIT);
    ck_assert_str_eq(err.code, "response_too_large");
    ck_assert(bcd__uuid_valid(err.correlation_id));
    ck_assert_ptr_null(rs.body);
}
END_TEST

START_TEST(test_net_caps_from_the_configuration)
{
    /* BCD_HTTP_MAX_RESPONSE_BYTES lowers every cap, a request's own included */
    static char big[5000];
    memset(big, 'x', sizeof big - 1);
    ck_assert_int_eq(bcd_ctx_set(ctx, "BCD_HTTP_MAX_RESPONSE_BYTES", "2000"), BCD_OK);
    ck_assert_int_eq(bcd_ctx_set(ctx, "BCD_HTTP_MAX_REQUEST_BYTES", "1024"), BCD_OK);
    ck_assert_int_eq(bcd_ctx_set(ctx, "BCD_HTTP_MAX_REQUEST_BYTES", "12"), BCD_EINVAL);
    bcd__net *capped = NULL;
    struct bcd__net_options o = {.backoff_ms = 10};
    ck_assert_int_eq(bcd__net_new(&capped, ctx, &o, &err), BCD_OK);
    ck_assert_uint_eq(bcd__net_max_request(capped), 1024);
    struct answer a[] = {{200, "", big, 0}, {200, "", big, 0}, {200, "", "{\"ok\":1}", 0}};
    script(a, 3);
    struct bcd__net_request rq = get_req();
    struct bcd__net_response rs;
    ck_assert_int_eq(bcd__net_request(capped, &rq, &rs, &err), BCD_ELIMIT);
    ck_assert_str_eq(err.code, "response_too_large");
    ck_assert_ptr_nonnull(strstr(err.message, "BCD_HTTP_MAX_RESPONSE_BYTES"));
    ck_assert_ptr_null(rs.body);
    rq.max_response = 1 << 20; /* a higher cap of the request's own does not lift it */
    ck_assert_int_eq(bcd__net_request(capped, &rq, &rs, &err), BCD_ELIMIT);
    ck_assert_int_eq(srv.nreqs, 2); /* neither retried */
    ck_assert_int_eq(bcd__net_request(capped, &rq, &rs, &err), BCD_OK);
    ck_assert_str_eq((const char *)rs.body, "{\"ok\":1}");
    bcd__net_response_clear(&rs);
    /* a body over BCD_HTTP_MAX_REQUEST_BYTES never leaves */
    static char upload[1025];
    memset(upload, 'u', sizeof upload);
    struct bcd__net_request put = {.method = BCD__NET_PUT, .url = url, .body = upload, .body_len = sizeof upload,
                                   .idempotent = true};
    ck_assert_int_eq(bcd__net_request(capped, &put, &rs, &err), BCD_ELIMIT);
    ck_assert_str_eq(err.code, "request_too_large");
    ck_assert_ptr_nonnull(strstr(err.message, "nothing was sent"));
    ck_assert_int_eq(srv.nreqs, 3);
    put.body_len = 1024;
    ck_assert_int_eq(bcd__net_request(capped, &put, &rs, &err), BCD_OK);
    ck_assert_int_eq(srv.nreqs, 4);
    bcd__net_response_clear(&rs);
    bcd__net_free(capped);
}
END_TEST

START_TEST(test_net_request_reports_timeouts_and_refused_connections)
{
    bcd__net *quick = NULL;
    struct bcd__net_options o = {.timeout_ms = 300, .backoff_ms = 10, .max_attempts = 2};
    ck_assert_int_eq(bcd__net_new(&quick, ctx, &o, &err), BCD_OK);
    struct answer a[] = {{200, "", "late", 1500}, {200, "", "late", 1500}};
    script(a, 2);
    struct bcd__net_request rq = get_req();
    struct bcd__net_response rs;
    ck_assert_int_eq(bcd__net_request(quick, &rq, &rs, &err), BCD_ENET);
    ck_assert_str_eq(err.code, "network_timeout");
    ck_assert_str_eq(err.correlation_id, rs.correlation_id);
    ck_assert_ptr_nonnull(strstr(err.message, "2 attempts"));
    ck_assert_ptr_null(strstr(err.message, "x=1")); /* no query string in messages */

    /* nothing listens on the port: refused (never sent, so retried even for a POST) */
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bind(s, (struct sockaddr *)&sa, sizeof sa);
    socklen_t len = sizeof sa;
    getsockname(s, (struct sockaddr *)&sa, &len);
    close(s);
    char dead[64];
    snprintf(dead, sizeof dead, "http://127.0.0.1:%d/", ntohs(sa.sin_port));
    rq.url = dead;
    rq.method = BCD__NET_POST;
    rq.idempotent = false;
    ck_assert_int_eq(bcd__net_request(quick, &rq, &rs, &err), BCD_ENET);
    ck_assert_str_eq(err.code, "network_error");
    ck_assert_int_eq(rs.attempts, 2);
    bcd__net_free(quick);

    /* only http and https */
    rq.url = "file:///etc/passwd";
    ck_assert_int_eq(bcd__net_request(net, &rq, &rs, &err), BCD_EINVAL);
}
END_TEST

START_TEST(test_net_request_many_runs_transfers_in_parallel)
{
    struct answer a[6];
    for (int i = 0; i < 6; i++)
        a[i] = (struct answer){200, "", "part", 400};
    script(a, 6);
    struct bcd__net_request rq[6];
    struct bcd__net_response rs[6];
    for (int i = 0; i < 6; i++)
        rq[i] = get_req();
    size_t failed = 99;
    long t = now_ms();
    ck_assert_int_eq(bcd__net_request_many(net, rq, rs, 6, &err, &failed), BCD_OK);
    ck_assert_int_lt(now_ms() - t, 1600); /* sequential: 2.4 s */
    for (int i = 0; i < 6; i++) {
        ck_assert_int_eq(rs[i].status, 200);
        ck_assert_str_eq((const char *)rs[i].body, "part");
        for (int j = 0; j < i; j++)
            ck_assert_str_ne(rs[i].correlation_id, rs[j].correlation_id);
        bcd__net_response_clear(&rs[i]);
    }
    /* one failure: reported with its index, the others complete */
    struct answer b[] = {{200, "", "a", 0}, {200, "", "b", 0}, {200, "", "c", 0}};
    script(b, 3);
    rq[1].url = "gopher://127.0.0.1/";
    ck_assert_int_eq(bcd__net_request_many(net, rq, rs, 3, &err, &failed), BCD_EINVAL);
    ck_assert_uint_eq(failed, 1);
    ck_assert_int_eq(rs[0].status, 200);
    ck_assert_int_eq(rs[2].status, 200);
    bcd__net_response_clear(&rs[0]);
    bcd__net_response_clear(&rs[2]);
}
END_TEST

START_TEST(test_net_scrub_removes_secrets_from_messages_and_details)
{
    ck_assert_int_eq(bcd__net_add_secret(net, "sb_secret_abc123"), BCD_OK);
    bcd__fail(&err, BCD_ENET, "server_error", "the server said: bad key sb_secret_abc123 (sb_secret_abc123)");
    bcd__error_set_details(&err, "{\"hint\":\"apikey=sb_secret_abc123\"}");
    bcd__net_scrub(net, &err);
    ck_assert_str_eq(err.message, "the server said: bad key [redacted] ([redacted])");
    ck_assert_str_eq(err.details_json, "{\"hint\":\"apikey=[redacted]\"}");
}
END_TEST

START_TEST(test_net_fetch_returns_the_body_of_a_200_only)
{
    struct answer a[] = {{200, "", "{\"keys\":[]}", 0}, {404, "", "{}", 0}};
    script(a, 2);
    char *body = NULL;
    size_t len = 0;
    ck_assert_int_eq(bcd__net_fetch(NULL, ctx, url, 1024, &body, &len, &err), BCD_OK);
    ck_assert_str_eq(body, "{\"keys\":[]}");
    ck_assert_uint_eq(len, 11);
    free(body);
    body = NULL;
    ck_assert_int_eq(bcd__net_fetch(NULL, ctx, url, 1024, &body, &len, &err), BCD_ENET);
    ck_assert_str_eq(err.code, "http_status");
    ck_assert_ptr_null(body);
}
END_TEST

START_TEST(test_net_buf_escapes_values)
{
    struct bcd__buf b = {0};
    bcd__buf_put(&b, "a=");
    bcd__net_buf_add_escaped(&b, "2025-03-01T10:00:00+00:00 &#/é", false);
    bcd__buf_printf(&b, "|%d|", 42);
    bcd__net_buf_add_escaped(&b, "u/s/front 1.jpg", true);
    ck_assert(!b.oom);
    ck_assert_str_eq(b.p, "a=2025-03-01T10%3A00%3A00%2B00%3A00%20%26%23%2F%C3%A9|42|u/s/front%201.jpg");
    bcd__buf_free(&b);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("net");
    TCase *tc = tcase_create("net");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_net_request_sends_correlation_id_user_agent_and_headers);
    tcase_add_test(tc, test_net_request_retries_transient_statuses_with_one_correlation_id);
    tcase_add_test(tc, test_net_request_gives_up_after_max_attempts_with_the_last_response);
    tcase_add_test(tc, test_net_request_never_repeats_a_request_that_is_not_idempotent);
    tcase_add_test(tc, test_net_request_retries_a_dropped_connection);
    tcase_add_test(tc, test_net_request_honours_retry_after_within_the_budget);
    tcase_add_test(tc, test_net_request_caps_the_response_body);
    tcase_add_test(tc, test_net_caps_from_the_configuration);
    tcase_add_test(tc, test_net_request_reports_timeouts_and_refused_connections);
    tcase_add_test(tc, test_net_request_many_runs_transfers_in_parallel);
    tcase_add_test(tc, test_net_scrub_removes_secrets_from_messages_and_details);
    tcase_add_test(tc, test_net_fetch_returns_the_body_of_a_200_only);
    tcase_add_test(tc, test_net_buf_escapes_values);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
