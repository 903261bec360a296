/*
 * An open-loop HTTP/1.1 load generator for the routerd benchmarks (benchmarks/loadgen.py builds
 * and runs it).
 *
 * Theory of operation. Request k is *scheduled* at start + k / rate, whatever happened to the
 * requests before it. A scheduled request goes out on the first idle keep-alive connection (one
 * request in flight per connection, no pipelining); when every connection is busy it waits, and
 * its latency still counts from its scheduled time. So a stall of the server shows up in the
 * percentiles as the queue it would build in front of real clients, instead of silently slowing
 * the generator down (the "coordinated omission" of closed-loop tools such as wrk).
 *
 * One thread, epoll, and a timerfd armed at the next scheduled time (nanosecond resolution, no
 * busy waiting: the machine is shared with the servers under test). The generator's own
 * accuracy is reported: the achieved rate, and the send lag, from when a request could have gone
 * (its scheduled time, with a connection idle) to when it went.
 *
 * usage: loadgen PORT HOST PATH RATE SECONDS CONNECTIONS [WARMUP_SECONDS]
 * Prints one JSON object on stdout. Responses must carry Content-Length (they do here: the
 * benchmark backend is nginx serving fixed bodies).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define HEAD_MAX 16384
#define DRAIN_NS 2000000000ULL

typedef struct {
    int fd;
    int busy;
    uint64_t scheduled;
    uint64_t idle_since;
    size_t req_sent;
    char head[HEAD_MAX];
    size_t head_len;
    size_t expect; /* whole response size in bytes; 0 while the head is incomplete */
    size_t got;
    int status;
} conn_t;

static const char *request;
static size_t request_len;
static struct sockaddr_in addr;
static int ep;
static conn_t *conns;
static int *idle;
static int idle_count;

static uint64_t *latency, *lag;
static size_t recorded, lag_recorded, capacity;
static uint64_t errors, non_2xx;
static uint64_t measure_from, measure_until;

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void die(const char *what) {
    fprintf(stderr, "loadgen: %s: %s\n", what, strerror(errno));
    exit(2);
}

static void open_conn(int index) {
    conn_t *c = &conns[index];
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) die("socket");
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) die("connect");
    int flags = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, flags | O_NONBLOCK);
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)index};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) die("epoll_ctl");
    c->fd = fd;
    c->busy = 0;
    c->idle_since = 0;
    idle[idle_count++] = index;
}

static void reset_response(conn_t *c) {
    c->head_len = 0;
    c->expect = 0;
    c->got = 0;
    c->status = 0;
    c->req_sent = 0;
}

static void fail_conn(int index) {
    conn_t *c = &conns[index];
    errors++;
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    reset_response(c);
    open_conn(index);
}

static void want_write(int index, int on) {
    struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0), .data.u32 = (uint32_t)index};
    epoll_ctl(ep, EPOLL_CTL_MOD, conns[index].fd, &ev);
}

static void send_rest(int index) {
    conn_t *c = &conns[index];
    while (c->req_sent < request_len) {
        ssize_t n = send(c->fd, request + c->req_sent, request_len - c->req_sent, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN) {
                want_write(index, 1);
                return;
            }
            fail_conn(index);
            return;
        }
        c->req_sent += (size_t)n;
    }
}

static void start_request(uint64_t scheduled, uint64_t now) {
    int index = idle[--idle_count];
    conn_t *c = &conns[index];
    c->busy = 1;
    c->scheduled = scheduled;
    reset_response(c);
    /* The generator's own lag: from when the request could have gone (scheduled, and a
       connection idle) to when it went. Waiting for a busy server is not the generator's. */
    uint64_t ready = scheduled > c->idle_since ? scheduled : c->idle_since;
    if (scheduled >= measure_from && lag_recorded < capacity) lag[lag_recorded++] = now > ready ? now - ready : 0;
    send_rest(index);
}

/* Parses the status line and Content-Length once the head is complete; 0 while incomplete. */
static int parse_head(conn_t *c) {
    char *end = memmem(c->head, c->head_len, "\r\n\r\n", 4);
    if (end == NULL) return c->head_len < HEAD_MAX ? 0 : -1;
    size_t head_size = (size_t)(end - c->head) + 4;
    if (c->head_len < 12 || memcmp(c->head, "HTTP/1.", 7) != 0) return -1;
    c->status = atoi(c->head + 9);
    long length = -1;
    for (char *line = memchr(c->head, '\n', head_size); line && line < end; line = memchr(line, '\n', (size_t)(end - line))) {
        line++;
        if (strncasecmp(line, "content-length:", 15) == 0) length = atol(line + 15);
    }
    if (length < 0) return -1;
    c->expect = head_size + (size_t)length;
    return 1;
}

static void on_readable(int index) {
    conn_t *c = &conns[index];
    char buffer[65536];
    for (;;) {
        ssize_t n = recv(c->fd, buffer, sizeof buffer, 0);
        if (n < 0) {
            if (errno == EAGAIN) return;
            fail_conn(index);
            return;
        }
        if (n == 0 || !c->busy) {
            fail_conn(index);
            return;
        }
        if (c->expect == 0) {
            size_t room = HEAD_MAX - c->head_len;
            size_t take = (size_t)n < room ? (size_t)n : room;
            memcpy(c->head + c->head_len, buffer, take);
            c->head_len += take;
            int parsed = parse_head(c);
            if (parsed < 0) {
                fail_conn(index);
                return;
            }
        }
        c->got += (size_t)n;
        if (c->expect != 0 && c->got >= c->expect) {
            if (c->got > c->expect) {
                fail_conn(index);
                return;
            }
            uint64_t done = now_ns();
            if (c->status < 200 || c->status > 399) non_2xx++;
            if (c->scheduled >= measure_from && c->scheduled < measure_until && recorded < capacity)
                latency[recorded++] = done - c->scheduled;
            c->busy = 0;
            c->idle_since = done;
            idle[idle_count++] = index;
            return;
        }
    }
}

static int compare(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static double quantile_us(const uint64_t *sorted, size_t n, double q) {
    if (n == 0) return 0.0;
    size_t rank = (size_t)ceil(q * (double)n);
    if (rank < 1) rank = 1;
    if (rank > n) rank = n;
    return (double)sorted[rank - 1] / 1000.0;
}

int main(int argc, char **argv) {
    if (argc < 7) {
        fprintf(stderr, "usage: loadgen PORT HOST PATH RATE SECONDS CONNECTIONS [WARMUP_SECONDS]\n");
        return 2;
    }
    int port = atoi(argv[1]);
    const char *host = argv[2], *path = argv[3];
    double rate = atof(argv[4]), seconds = atof(argv[5]);
    int connections = atoi(argv[6]);
    double warmup = argc > 7 ? atof(argv[7]) : 0.0;
    if (port <= 0 || rate <= 0 || seconds <= 0 || connections <= 0) {
        fprintf(stderr, "loadgen: bad arguments\n");
        return 2;
    }
    char *built;
    if (asprintf(&built, "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: routerd-bench-loadgen\r\n\r\n", path, host) < 0) die("asprintf");
    request = built;
    request_len = strlen(built);

    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ep = epoll_create1(0);
    if (ep < 0) die("epoll_create1");
    conns = calloc((size_t)connections, sizeof *conns);
    idle = calloc((size_t)connections, sizeof *idle);
    capacity = (size_t)(rate * seconds * 1.05) + 1024;
    latency = malloc(capacity * sizeof *latency);
    lag = malloc(capacity * sizeof *lag);
    if (!conns || !idle || !latency || !lag) die("malloc");
    for (int i = 0; i < connections; i++) open_conn(i);

    /* The default 50 us timer slack would show up as send lag. */
    prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
    int timer = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
    if (timer < 0) die("timerfd_create");
    struct epoll_event tev = {.events = EPOLLIN, .data.u32 = UINT32_MAX};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, timer, &tev) != 0) die("epoll_ctl timer");

    double interval = 1e9 / rate;
    uint64_t start = now_ns() + 1000000ULL;
    uint64_t end = start + (uint64_t)((warmup + seconds) * 1e9);
    measure_from = start + (uint64_t)(warmup * 1e9);
    measure_until = end;
    uint64_t next = 0, armed = 0;
    uint64_t drain_deadline = 0;
    struct epoll_event events[256];

    for (;;) {
        uint64_t now = now_ns();
        uint64_t due = start + (uint64_t)((double)next * interval);
        while (due < end && due <= now && idle_count > 0) {
            start_request(due, now);
            next++;
            due = start + (uint64_t)((double)next * interval);
        }
        int outstanding = connections - idle_count;
        int timeout = -1;
        if (due >= end) {
            if (drain_deadline == 0) drain_deadline = (now > end ? now : end) + DRAIN_NS;
            if (outstanding == 0 || now >= drain_deadline) break;
            timeout = (int)((drain_deadline - now) / 1000000ULL) + 1;
        } else if (idle_count > 0 && due > now && due != armed) {
            struct itimerspec spec = {0};
            spec.it_value.tv_sec = (time_t)(due / 1000000000ULL);
            spec.it_value.tv_nsec = (long)(due % 1000000000ULL);
            timerfd_settime(timer, TFD_TIMER_ABSTIME, &spec, NULL);
            armed = due;
        }
        int n = epoll_wait(ep, events, 256, timeout);
        if (n < 0 && errno != EINTR) die("epoll_wait");
        for (int i = 0; i < n; i++) {
            uint32_t index = events[i].data.u32;
            if (index == UINT32_MAX) {
                uint64_t expirations;
                if (read(timer, &expirations, sizeof expirations) < 0) { /* spurious */ }
                armed = 0;
                continue;
            }
            if (events[i].events & EPOLLOUT) {
                want_write((int)index, 0);
                send_rest((int)index);
            }
            if (events[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) on_readable((int)index);
        }
    }
    uint64_t finished = now_ns();

    uint64_t scheduled = (uint64_t)ceil(seconds * rate);
    uint64_t unsent = scheduled > lag_recorded ? scheduled - lag_recorded : 0;
    qsort(latency, recorded, sizeof *latency, compare);
    qsort(lag, lag_recorded, sizeof *lag, compare);
    printf("{\"target_rps\": %.1f, \"seconds\": %.3f, \"warmup_seconds\": %.3f, \"connections\": %d,\n", rate, seconds, warmup, connections);
    printf(" \"scheduled\": %llu, \"sent\": %zu, \"completed\": %zu, \"unsent\": %llu,\n", (unsigned long long)scheduled, lag_recorded, recorded, (unsigned long long)unsent);
    printf(" \"errors\": %llu, \"non_2xx\": %llu, \"achieved_rps\": %.1f, \"drain_seconds\": %.3f,\n", (unsigned long long)errors, (unsigned long long)non_2xx, (double)recorded / seconds, finished > end ? (double)(finished - end) / 1e9 : 0.0);
    printf(" \"latency_us\": {\"p50\": %.1f, \"p90\": %.1f, \"p99\": %.1f, \"p99.9\": %.1f, \"max\": %.1f},\n",
           quantile_us(latency, recorded, 0.5), quantile_us(latency, recorded, 0.9), quantile_us(latency, recorded, 0.99),
           quantile_us(latency, recorded, 0.999), quantile_us(latency, recorded, 1.0));
    printf(" \"send_lag_us\": {\"p50\": %.1f, \"p99\": %.1f, \"p99.9\": %.1f, \"max\": %.1f},\n",
           quantile_us(lag, lag_recorded, 0.5), quantile_us(lag, lag_recorded, 0.99), quantile_us(lag, lag_recorded, 0.999), quantile_us(lag, lag_recorded, 1.0));
    printf(" \"cdf_us\": [");
    for (int i = 1; i < 100; i++)
        printf("%s[%.4f, %.1f]", i == 1 ? "" : ", ", i / 100.0, quantile_us(latency, recorded, i / 100.0));
    static const double tail[] = {0.995, 0.999, 0.9995, 0.9999, 1.0};
    for (size_t i = 0; i < sizeof tail / sizeof *tail; i++)
        printf(", [%.4f, %.1f]", tail[i], quantile_us(latency, recorded, tail[i]));
    printf("]}\n");
    return 0;
}
