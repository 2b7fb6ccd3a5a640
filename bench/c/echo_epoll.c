/*
 * echo_epoll.c: the bench's ruler, the C row every Python variant is held against.
 *
 * Not a lesson: the same single-threaded epoll loop as the epoll variant, in C, so the bench can
 * say how much of a variant's cost is Python's. It keeps the lab's contract, so loadgen and the
 * bench measure it exactly as they measure a variant:
 *
 *   - echo port (default 12345): every byte echoed back, in order, on the same connection;
 *   - stats port (default 8080): GET /stats answers the lab's JSON counters (messages = recv()
 *     calls that returned data, as the Python servers count them), GET /health answers 200;
 *     at most 64 stats connections at once, each closed 5 s after its accept if not answered;
 *   - SIGTERM or SIGINT ends it with the tutorial's line, "Total messages received: N".
 *
 * Level-triggered epoll over non-blocking sockets. One 64 KiB read buffer serves every
 * connection; what the kernel will not take at once is kept for that connection alone, and the
 * connection stops being read until it is written out (back-pressure: a client that never reads
 * costs at most one read's worth of memory). A client that resets, or vanishes, only closes its
 * own connection. Out of descriptors, a spare one accepts and closes the newcomer, so the loop
 * never spins on a connection it cannot take.
 *
 * usage: echo_epoll [PORT [STATS_PORT]]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define READ_SIZE (64 * 1024)
#define MAX_EVENTS 256
#define HEAD_LIMIT 1024  /* bytes of a stats request's head */
#define MAX_STATS 64     /* stats connections open at once */
#define STATS_DEADLINE 5.0 /* seconds from a stats connection's accept to its answer */

enum kind { FREE, ECHO, STATS };

struct conn {
    enum kind kind;
    char *buf;      /* ECHO: bytes the kernel has not taken yet; STATS: the request so far */
    size_t off, len;
    double since;   /* STATS: when it was accepted */
};

static struct conn *conns;  /* indexed by descriptor */
static size_t nconns;
static int ep, echo_fd, stats_fd, spare_fd;
static volatile sig_atomic_t stopping;
static double started;
static int open_stats;
static int stats_fds[MAX_STATS]; /* the open stats connections; -1: a free slot */
static uint64_t messages, bytes_received, bytes_sent;
static uint64_t connections_total, connections_current, connections_refused;

static double now_s(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

static void die(const char *what)
{
    fprintf(stderr, "echo_epoll: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void on_signal(int sig)
{
    (void)sig;
    stopping = 1;
}

static int watch(int op, int fd, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.fd = fd};
    return epoll_ctl(ep, op, fd, &ev);
}

static int listen_on(int port)
{
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    int one = 1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        die("socket");
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    addr.sin_addr.s_addr = htonl(INADDR_ANY);
    if (bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(fd, SOMAXCONN) < 0)
        die("bind/listen");
    if (watch(EPOLL_CTL_ADD, fd, EPOLLIN) < 0)
        die("epoll_ctl");
    return fd;
}

static void drop(int fd)
{
    struct conn *c = &conns[fd];
    if (c->kind == ECHO) {
        connections_current--;
    } else {
        open_stats--;
        for (int i = 0; i < MAX_STATS; i++)
            if (stats_fds[i] == fd)
                stats_fds[i] = -1;
    }
    free(c->buf);
    *c = (struct conn){.kind = FREE};
    close(fd); /* also takes it out of the epoll set */
}

static void accept_all(int listener, enum kind kind)
{
    for (;;) {
        int fd = accept4(listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE) {
                /* Out of descriptors: free the spare, take the newcomer and close it at once. */
                connections_refused++;
                close(spare_fd);
                fd = accept(listener, NULL, NULL);
                if (fd >= 0)
                    close(fd);
                spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
                continue;
            }
            return; /* EAGAIN: no more waiting; ECONNABORTED and the like: that one is gone */
        }
        if ((size_t)fd >= nconns || (kind == STATS && open_stats >= MAX_STATS)) {
            close(fd);
            if (kind == ECHO)
                connections_refused++;
            continue;
        }
        if (kind == STATS && !(conns[fd].buf = malloc(HEAD_LIMIT))) {
            close(fd);
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (watch(EPOLL_CTL_ADD, fd, EPOLLIN) < 0) {
            free(conns[fd].buf);
            conns[fd].buf = NULL;
            close(fd);
            continue;
        }
        conns[fd].kind = kind;
        if (kind == ECHO) {
            connections_total++;
            connections_current++;
        } else {
            open_stats++;
            conns[fd].since = now_s();
            for (int i = 0; i < MAX_STATS; i++)
                if (stats_fds[i] < 0) {
                    stats_fds[i] = fd;
                    break;
                }
        }
    }
}

/* Write what the connection holds; 1 when all is out, 0 when the kernel is full, -1 on error. */
static int flush_out(int fd)
{
    struct conn *c = &conns[fd];
    while (c->off < c->len) {
        ssize_t n = send(fd, c->buf + c->off, c->len - c->off, MSG_NOSIGNAL);
        if (n > 0) {
            c->off += (size_t)n;
            bytes_sent += (uint64_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return 0;
        } else {
            return -1;
        }
    }
    free(c->buf);
    c->buf = NULL;
    c->off = c->len = 0;
    return 1;
}

static void on_echo(int fd, uint32_t events, char *buf)
{
    struct conn *c = &conns[fd];
    if (c->buf) { /* waiting to write: read nothing more until the echo is out */
        int done = flush_out(fd);
        if (done < 0)
            drop(fd);
        else if (done == 1)
            watch(EPOLL_CTL_MOD, fd, EPOLLIN);
        return;
    }
    if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
        return;
    ssize_t n = recv(fd, buf, READ_SIZE, 0);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n <= 0) { /* 0: the client closed; < 0: it reset, or the connection broke */
        drop(fd);
        return;
    }
    messages++;
    bytes_received += (uint64_t)n;
    size_t off = 0;
    while (off < (size_t)n) {
        ssize_t w = send(fd, buf + off, (size_t)n - off, MSG_NOSIGNAL);
        if (w > 0) {
            off += (size_t)w;
            bytes_sent += (uint64_t)w;
        } else if (w < 0 && errno == EINTR) {
            continue;
        } else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            c->len = (size_t)n - off;
            c->off = 0;
            if (!(c->buf = malloc(c->len))) {
                drop(fd);
                return;
            }
            memcpy(c->buf, buf + off, c->len);
            watch(EPOLL_CTL_MOD, fd, EPOLLOUT);
            return;
        } else {
            drop(fd);
            return;
        }
    }
}

static void answer(int fd, const char *status, const char *type, const char *body)
{
    char head[256];
    int len = snprintf(head, sizeof head,
                       "HTTP/1.0 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                       "Connection: close\r\n\r\n",
                       status, type, strlen(body));
    /* Small enough for any socket buffer: one try each, then close. */
    if (send(fd, head, (size_t)len, MSG_NOSIGNAL) == len)
        send(fd, body, strlen(body), MSG_NOSIGNAL);
    drop(fd);
}

static void on_stats(int fd)
{
    struct conn *c = &conns[fd];
    ssize_t n = recv(fd, c->buf + c->len, HEAD_LIMIT - 1 - c->len, 0);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n <= 0) {
        drop(fd);
        return;
    }
    c->len += (size_t)n;
    c->buf[c->len] = '\0';
    if (!strstr(c->buf, "\r\n\r\n") && !strstr(c->buf, "\n\n")) {
        if (c->len >= HEAD_LIMIT - 1)
            answer(fd, "400 Bad Request", "text/plain", "request head too long\n");
        return;
    }
    if (strncmp(c->buf, "GET /health ", 12) == 0) {
        answer(fd, "200 OK", "text/plain", "ok\n");
    } else if (strncmp(c->buf, "GET /stats ", 11) == 0) {
        char body[512];
        double uptime = now_s() - started;
        snprintf(body, sizeof body,
                 "{\"variant\": \"c-epoll\", \"messages\": %" PRIu64
                 ", \"bytes_received\": %" PRIu64 ", \"bytes_sent\": %" PRIu64
                 ", \"connections_total\": %" PRIu64 ", \"connections_current\": %" PRIu64
                 ", \"connections_refused\": %" PRIu64
                 ", \"uptime_s\": %.1f, \"log_per_message\": false}\n",
                 messages, bytes_received, bytes_sent, connections_total, connections_current,
                 connections_refused, uptime);
        answer(fd, "200 OK", "application/json", body);
    } else {
        answer(fd, "404 Not Found", "text/plain", "GET /stats or GET /health\n");
    }
}

static int port_arg(const char *text)
{
    char *end;
    long port = strtol(text, &end, 10);
    if (*text == '\0' || *end != '\0' || port < 1 || port > 65535) {
        fprintf(stderr, "echo_epoll: not a port: %s\n", text);
        exit(2);
    }
    return (int)port;
}

int main(int argc, char **argv)
{
    static char buf[READ_SIZE];
    struct epoll_event events[MAX_EVENTS];
    struct rlimit lim;
    struct sigaction sa = {.sa_handler = on_signal}; /* no SA_RESTART: epoll_wait returns */

    if (argc > 3) {
        fprintf(stderr, "usage: echo_epoll [PORT [STATS_PORT]]\n");
        return 2;
    }
    int port = argc > 1 ? port_arg(argv[1]) : 12345;
    int stats_port = argc > 2 ? port_arg(argv[2]) : 8080;
    setvbuf(stdout, NULL, _IOLBF, 0); /* every line reaches the log at once */
    signal(SIGPIPE, SIG_IGN);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    started = now_s();
    for (int i = 0; i < MAX_STATS; i++)
        stats_fds[i] = -1;

    if (getrlimit(RLIMIT_NOFILE, &lim) < 0)
        die("getrlimit");
    nconns = lim.rlim_cur;
    if (!(conns = calloc(nconns, sizeof *conns)))
        die("calloc");
    if ((ep = epoll_create1(EPOLL_CLOEXEC)) < 0)
        die("epoll_create1");
    spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    echo_fd = listen_on(port);
    stats_fd = listen_on(stats_port);
    printf("c-epoll: echo on port %d, stats on port %d\n", port, stats_port);

    while (!stopping) {
        /* With a stats connection open, wake at least once a second to enforce its deadline. */
        int n = epoll_wait(ep, events, MAX_EVENTS, open_stats ? 1000 : -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            die("epoll_wait");
        }
        for (int i = 0; i < n; i++) {
            int fd = events[i].data.fd;
            if (fd == echo_fd)
                accept_all(fd, ECHO);
            else if (fd == stats_fd)
                accept_all(fd, STATS);
            else if (conns[fd].kind == ECHO)
                on_echo(fd, events[i].events, buf);
            else if (conns[fd].kind == STATS)
                on_stats(fd);
        }
        if (open_stats) { /* a stats client that never finishes its request is closed */
            double now = now_s();
            for (int i = 0; i < MAX_STATS; i++)
                if (stats_fds[i] >= 0 && now - conns[stats_fds[i]].since > STATS_DEADLINE)
                    drop(stats_fds[i]);
        }
    }
    printf("Total messages received: %" PRIu64 "\n", messages);
    return 0;
}
