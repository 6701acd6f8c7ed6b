/* openloop: a tiny open-loop (fixed-rate) HTTP/1.1 load generator for Portico's benchmarks.
 *
 * wrk is closed-loop (it sends the next request when the previous answer arrives), so it cannot
 * hold a fixed rate and hides queueing ("coordinated omission"). wrk2 is not packaged for this
 * Debian release, so bench/run compiles this file with the system C compiler instead.
 *
 * Request i is due at start + i/rate, whatever happened before. It is sent on an idle keep-alive
 * connection (a pool of -c connections); if none is idle it waits in a queue. Its latency is
 * measured from the moment it was DUE, not when it was sent, so queueing counts.
 *
 * Usage: openloop HOST_HEADER PORT PATH RATE DURATION_S CONNECTIONS
 * Prints one JSON line: sent, ok, errors, achieved_rps, p50_us, p90_us, p99_us, max_us.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define MAXC 512
#define BUF 65536

struct conn {
    int fd;
    int busy;
    double due;          /* when the in-flight request was due */
    size_t len;
    char buf[BUF];
};

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int dial(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        close(fd);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

/* Length of a complete response at the start of buf, 0 if incomplete, -1 if malformed. */
static long complete(const char *buf, size_t len, int *status) {
    const char *end = memmem(buf, len, "\r\n\r\n", 4);
    if (!end) return 0;
    size_t head = end - buf + 4;
    if (len < 12) return 0;
    *status = atoi(buf + 9);
    const char *p = buf;
    long clen = -1;
    int chunked = 0;
    while (p < end) {
        const char *nl = memmem(p, end - p + 2, "\r\n", 2);
        if (!nl) break;
        if (strncasecmp(p, "content-length:", 15) == 0) clen = atol(p + 15);
        if (strncasecmp(p, "transfer-encoding:", 18) == 0 && memmem(p, nl - p, "chunked", 7)) chunked = 1;
        p = nl + 2;
    }
    if (chunked) {
        const char *z = memmem(buf + head, len - head, "0\r\n\r\n", 5);
        return z ? (long)(z - buf + 5) : 0;
    }
    if (clen < 0) return -1;
    return (size_t)(head + clen) <= len ? (long)(head + clen) : 0;
}

int main(int argc, char **argv) {
    if (argc != 7) {
        fprintf(stderr, "usage: openloop HOST PORT PATH RATE DURATION_S CONNECTIONS\n");
        return 2;
    }
    const char *host = argv[1];
    int port = atoi(argv[2]);
    const char *path = argv[3];
    double rate = atof(argv[4]), duration = atof(argv[5]);
    int nconn = atoi(argv[6]);
    if (nconn < 1 || nconn > MAXC || rate <= 0 || duration <= 0) return 2;
    char req[1024];
    int reqlen = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: openloop\r\n\r\n", path, host);
    long total = (long)(rate * duration);
    double *lat = calloc(total + 1, sizeof(double));
    static struct conn conns[MAXC];
    int ep = epoll_create1(0);
    for (int i = 0; i < nconn; i++) {
        conns[i].fd = dial(port);
        if (conns[i].fd < 0) {
            fprintf(stderr, "connect failed: %s\n", strerror(errno));
            return 1;
        }
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = i};
        epoll_ctl(ep, EPOLL_CTL_ADD, conns[i].fd, &ev);
    }
    int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
    struct epoll_event tev = {.events = EPOLLIN, .data.u32 = MAXC};
    epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &tev);

    long next = 0, done = 0, ok = 0, errors = 0;
    double start = now_s() + 0.01;
    double stop_at = start + duration + 5.0; /* grace for stragglers */
    struct epoll_event evs[64];
    while (done < total && now_s() < stop_at) {
        double t = now_s();
        /* Send every request that is due, while a connection is idle. */
        while (next < total && start + next / rate <= t) {
            int c = -1;
            for (int i = 0; i < nconn; i++)
                if (!conns[i].busy && conns[i].fd >= 0) { c = i; break; }
            if (c < 0) break; /* queued: its latency keeps counting from when it was due */
            conns[c].busy = 1;
            conns[c].due = start + next / rate;
            conns[c].len = 0;
            if (write(conns[c].fd, req, reqlen) != reqlen) {
                errors++;
                done++;
                conns[c].busy = 0;
            }
            next++;
        }
        int pending_idle = 0;
        for (int i = 0; i < nconn; i++) pending_idle |= !conns[i].busy;
        if (next < total && pending_idle) {
            double due = start + next / rate;
            struct itimerspec its = {0};
            its.it_value.tv_sec = (time_t)due;
            its.it_value.tv_nsec = (long)((due - (time_t)due) * 1e9);
            timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL);
        }
        int n = epoll_wait(ep, evs, 64, 100);
        for (int k = 0; k < n; k++) {
            unsigned id = evs[k].data.u32;
            if (id == MAXC) {
                unsigned long long x;
                (void)!read(tfd, &x, sizeof x);
                continue;
            }
            struct conn *c = &conns[id];
            ssize_t r = read(c->fd, c->buf + c->len, BUF - c->len);
            if (r <= 0) {
                if (c->busy) { errors++; done++; }
                epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
                close(c->fd);
                c->fd = dial(port);
                c->busy = 0;
                if (c->fd >= 0) {
                    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = id};
                    epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
                }
                continue;
            }
            c->len += r;
            int status = 0;
            long used = complete(c->buf, c->len, &status);
            if (used == 0) continue;
            if (used > 0 && c->busy) {
                double l = now_s() - c->due;
                if (status >= 200 && status < 400) lat[ok++] = l;
                else errors++;
                done++;
            } else if (used < 0) {
                errors++;
                done++;
            }
            c->busy = 0;
            c->len = 0;
        }
    }
    double elapsed = now_s() - start;
    qsort(lat, ok, sizeof(double), cmp);
#define PCT(p) (ok ? lat[(long)((ok - 1) * (p))] * 1e6 : -1)
    printf("{\"sent\": %ld, \"ok\": %ld, \"errors\": %ld, \"target_rps\": %.1f, \"achieved_rps\": %.1f, "
           "\"p50_us\": %.1f, \"p90_us\": %.1f, \"p99_us\": %.1f, \"max_us\": %.1f}\n",
           next, ok, errors + (total - done), rate, elapsed > 0 ? ok / (elapsed < duration ? duration : elapsed) : 0,
           PCT(0.5), PCT(0.9), PCT(0.99), PCT(1.0));
    return 0;
}
