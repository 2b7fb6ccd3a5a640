/*
 * echo_load.c: the bench's C load generator, so that the latency ladder (make bench-latency)
 * measures the servers and not its own instrument.
 *
 * One thread, one epoll loop, C connections to an echo server. Each connection runs in lock
 * step (send a message, read its echo back, check it byte for byte), as Python loadgen does, so
 * their reports read alike:
 *
 *   - open loop (--rate R): R messages a second over all connections, on a schedule fixed in
 *     advance: message k (k = 0, 1, ...) is due at start + k / R and goes on connection
 *     k mod C. A message whose connection still waits for its previous echo goes out as soon as
 *     that echo is in; a late message never moves the later ones. Latency is counted from when
 *     the message was due to when its whole echo was in (coordinated omission corrected, as
 *     wrk2 does);
 *   - closed loop (no --rate): each connection sends its next message when its echo is in, and
 *     latency is counted from the send.
 *
 * Waking costs: on a small VM one sleep and wake-up of a process costs ~20 us of CPU, four
 * times an echo's send and receive. So in the open loop the loop sleeps on the clock alone
 * (clock_nanosleep, timer slack 1 ns), until the next due message, never less than GRAIN_NS
 * after its last wake-up: each wake-up sends every message due before the next one could come
 * (up to GRAIN_NS early, its latency then counted from its send) and reads every echo that
 * came in meanwhile. An echo is timed by the kernel as it arrives (SO_TIMESTAMPNS), not when
 * the loop reads it, so reading late adds nothing to its latency. The closed loop never sleeps
 * while echoes come in.
 *
 * Before the clock starts, every connection sends one message and waits for its echo, which is
 * checked and not counted: so the server has accepted and served every connection before the
 * first message is due. Without it, a run at 1,000 connections and a low rate (about one
 * message a connection) times how long the server takes to accept 1,000 sockets, not its echo.
 * A connection whose first echo is not back within --timeout is dropped (an error).
 *
 * Messages due in the first --warmup seconds are sent and checked but not measured; those due
 * in the next --duration seconds are. After the window no new message goes out; the ones owed
 * and in flight are waited for up to --timeout seconds, and what has not come back by then is
 * missing. Latencies go into a log-linear histogram (128 buckets per power of two: under 0.8%
 * relative error). It prints one JSON line, Python loadgen's report of a sustained run key for
 * key (sent, echoed, mismatched, missing, errors, msgs_per_s, duration_s, latency_us,
 * cgroup_cpu_s: its cgroup's CPU, ...), counted over the measured window, and exits 0 if every
 * message of it came back intact, 1 otherwise, 2 on a bad argument.
 *
 * usage: echo_load --target HOST [--port 12345] [--connections 1] [--size 64] [--rate R]
 *                  [--duration 5] [--warmup 0] [--timeout 5]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define PAYLOAD_VARIANTS 7 /* prime: connection i and i+1 never send the same message in step */
#define MAX_SIZE (16 * 1024 * 1024)
#define READ_SIZE (64 * 1024)
#define MAX_EVENTS 512
#define SPARE_FDS 16 /* stdio, epoll, the resolver */
#define SUB_BITS 7   /* histogram: 2^7 linear buckets per power of two */
#define SUB (1u << SUB_BITS)
#define BUCKETS (64 * SUB)
#define NS 1000000000LL
#define GRAIN_NS 100000 /* open loop: at most one wake-up per 100 us */

struct conn {
    int fd;
    bool connecting, alive, busy, writing;
    uint32_t ident;
    uint64_t seq; /* messages started on this connection: the index of its next one */
    int64_t due;  /* the message in flight: when it was due (ns) */
    int64_t sent_at; /* and when it went out (before ``due`` by up to GRAIN_NS) */
    const unsigned char *msg;
    size_t out, got; /* bytes of it sent, and echoed so far */
    bool intact, echoed_once;
};

struct counts {
    uint64_t due, sent, echoed, mismatched_measured;
    uint64_t mismatched; /* every wrong echo, warm-up included: a wrong byte is never fine */
    uint64_t echoed_in_window, served, errors;
};

static struct conn *conns;
static uint32_t nconns;
static size_t size;
static unsigned char *payloads[PAYLOAD_VARIANTS];
static int ep;
static int64_t start, from, to, deadline; /* the schedule's origin, the window, the drain's end */
static double period;                     /* ns between two messages in all; 0: closed loop */
static uint64_t cursor;                   /* open loop: the next message index to release */
static uint64_t payload_shift; /* 1 once primed: a connection's first scheduled message differs
                                  from the one it was primed with */
static uint32_t in_flight, live;          /* messages in flight; connections up */
static struct counts n;
static char first_error[160];
static uint64_t histogram[BUCKETS], recorded;
static int64_t max_ns;

static int64_t ns_of(struct timespec t)
{
    return (int64_t)t.tv_sec * NS + t.tv_nsec;
}

static int64_t clock_ns(clockid_t clock)
{
    struct timespec t;
    clock_gettime(clock, &t);
    return ns_of(t);
}

static int64_t now_ns(void)
{
    return clock_ns(CLOCK_MONOTONIC);
}

static void usage_error(const char *fmt, const char *what)
{
    fprintf(stderr, "echo_load: ");
    fprintf(stderr, fmt, what);
    fprintf(stderr, " (usage: echo_load --target HOST [--port P] [--connections C] [--size S] "
                    "[--rate R] [--duration D] [--warmup W] [--timeout T])\n");
    exit(2);
}

static double number_arg(const char *name, const char *text, double least, double most)
{
    char *end;
    errno = 0;
    double value = strtod(text, &end);
    if (*text == '\0' || *end != '\0' || errno || !isfinite(value) || value < least ||
        value > most) {
        char what[160];
        snprintf(what, sizeof what, "--%s %.40s: expected a number from %g to %g", name, text,
                 least, most);
        usage_error("%s", what);
    }
    return value;
}

static double whole_arg(const char *name, const char *text, double least, double most)
{
    double value = number_arg(name, text, least, most);
    if (value != floor(value)) {
        char what[120];
        snprintf(what, sizeof what, "--%s %.40s: expected a whole number", name, text);
        usage_error("%s", what);
    }
    return value;
}

static void fail(const char *what)
{
    n.errors++;
    if (!first_error[0])
        snprintf(first_error, sizeof first_error, "%s", what);
}

static void drop(struct conn *c, const char *what)
{
    fail(what);
    close(c->fd); /* also takes it out of the epoll set */
    c->alive = false;
    if (!c->connecting)
        live--;
    if (c->busy) {
        c->busy = false;
        in_flight--;
    }
}

/* -- the histogram: bucket b < SUB holds the value b; above, SUB buckets per power of two ---- */

static unsigned bucket_of(uint64_t v)
{
    if (v < SUB)
        return (unsigned)v;
    unsigned shift = (unsigned)(63 - __builtin_clzll(v)) - SUB_BITS;
    return (shift + 1) * SUB + (unsigned)((v >> shift) - SUB);
}

static uint64_t bucket_middle(unsigned b)
{
    if (b < SUB)
        return b;
    unsigned shift = b / SUB - 1;
    uint64_t low = (uint64_t)(b % SUB + SUB) << shift;
    return low + ((1ULL << shift) >> 1);
}

static void record(int64_t latency_ns)
{
    uint64_t v = latency_ns > 0 ? (uint64_t)latency_ns : 0;
    histogram[bucket_of(v)]++;
    recorded++;
    if ((int64_t)v > max_ns)
        max_ns = (int64_t)v;
}

/* The q-quantile in whole microseconds: the middle of the bucket holding the ceil(q*count)-th. */
static long long quantile_us(double q)
{
    if (!recorded)
        return 0;
    uint64_t rank = (uint64_t)ceil(q * (double)recorded), seen = 0;
    if (rank < 1)
        rank = 1;
    for (unsigned b = 0; b < BUCKETS; b++) {
        seen += histogram[b];
        if (seen >= rank) {
            uint64_t v = bucket_middle(b);
            return llround((double)(v < (uint64_t)max_ns ? v : (uint64_t)max_ns) / 1e3);
        }
    }
    return llround((double)max_ns / 1e3);
}

/* -- CPU: this process's, and its cgroup's (in a container: the container's, as loadgen's) -- */

static double own_cpu_s(void)
{
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return (double)(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
           (double)(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

/* CPU seconds used by every process in this cgroup (v1 cpuacct, else v2), or -1 if unreadable. */
static double cgroup_cpu_s(void)
{
    unsigned long long value;
    FILE *f = fopen("/sys/fs/cgroup/cpuacct/cpuacct.usage", "r");
    if (f) {
        int ok = fscanf(f, "%llu", &value) == 1;
        fclose(f);
        if (ok)
            return (double)value / 1e9;
    }
    if (!(f = fopen("/sys/fs/cgroup/cpu.stat", "r")))
        return -1;
    char key[64];
    double out = -1;
    while (fscanf(f, "%63s %llu", key, &value) == 2)
        if (strcmp(key, "usage_usec") == 0) {
            out = (double)value / 1e6;
            break;
        }
    fclose(f);
    return out;
}

/* -- the lock step ---------------------------------------------------------------------------- */

static void watch(struct conn *c, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.u32 = (uint32_t)(c - conns)};
    if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) < 0)
        drop(c, strerror(errno));
}

/* Send what is left of the message in flight; what the kernel will not take waits for EPOLLOUT. */
static void write_out(struct conn *c)
{
    while (c->out < size) {
        ssize_t w = send(c->fd, c->msg + c->out, size - c->out, MSG_NOSIGNAL);
        if (w > 0) {
            c->out += (size_t)w;
        } else if (w < 0 && errno == EINTR) {
            continue;
        } else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (!c->writing) {
                c->writing = true;
                watch(c, EPOLLIN | EPOLLOUT);
            }
            return;
        } else {
            drop(c, strerror(errno));
            return;
        }
    }
    if (c->writing) {
        c->writing = false;
        watch(c, EPOLLIN);
    }
}

static void send_message(struct conn *c, int64_t due, int64_t now)
{
    c->msg = payloads[(c->ident + c->seq + payload_shift) % PAYLOAD_VARIANTS];
    c->seq++;
    c->due = due;
    c->sent_at = now;
    c->out = c->got = 0;
    c->intact = true;
    c->busy = true;
    in_flight++;
    if (due >= from) { /* measured (a warm-up message is sent and checked, not counted) */
        n.sent++;
        n.due += period == 0; /* closed loop: a message is due when it is sent */
    }
    write_out(c);
}

static int64_t due_of(uint64_t index)
{
    return start + (int64_t)llround((double)index * period);
}

/* Open loop: how many messages the schedule puts in the measured window. */
static uint64_t scheduled_in_window(void)
{
    uint64_t count = 0;
    for (uint64_t k = 0; due_of(k) < to; k++)
        count += due_of(k) >= from;
    return count;
}

/* Open loop: send every message due before the next wake-up could come, on a connection that
 * is free for it. */
static void release_due(int64_t now)
{
    for (;;) {
        int64_t due = due_of(cursor);
        if (due >= now + GRAIN_NS || due >= to)
            return;
        struct conn *c = &conns[cursor % nconns];
        /* A busy connection sends this one when its echo is in (see on_echo). */
        if (c->alive && !c->busy && c->seq * nconns + c->ident == cursor)
            send_message(c, due, now);
        cursor++;
    }
}

/* The whole echo of the message in flight came in at ``arrived`` (the kernel's time); count
 * it, then send what comes next on its connection at ``now``. */
static void on_echo(struct conn *c, int64_t arrived, int64_t now)
{
    c->busy = false;
    in_flight--;
    bool measured = c->due >= from && c->due < to;
    if (!c->intact) {
        n.mismatched++;
        n.mismatched_measured += measured;
    } else if (measured) {
        n.echoed++;
    }
    if (measured) /* from its due time, or from its send where that was earlier */
        record(arrived - (c->sent_at < c->due ? c->sent_at : c->due));
    if (c->intact && arrived >= from && arrived < to)
        n.echoed_in_window++;
    if (!c->echoed_once && arrived < to) {
        c->echoed_once = true;
        n.served++;
    }
    if (period > 0) {
        int64_t next = due_of(c->seq * nconns + c->ident);
        if (next < now + GRAIN_NS && next < to) /* due (or overdue: its latency from its due) */
            send_message(c, next, now);
    } else if (now < to) {
        send_message(c, now, now);
    }
}

/* Read what came in; ``now`` and ``realtime`` (CLOCK_REALTIME - CLOCK_MONOTONIC) are from
 * when the loop woke up. */
static void on_readable(struct conn *c, unsigned char *buf, int64_t now, int64_t realtime)
{
    size_t want = c->busy ? size - c->got : READ_SIZE;
    struct iovec iov = {.iov_base = buf, .iov_len = want < READ_SIZE ? want : READ_SIZE};
    union {
        char space[CMSG_SPACE(sizeof(struct timespec))];
        struct cmsghdr align;
    } control;
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.space,
                         .msg_controllen = sizeof control.space};
    ssize_t r = recvmsg(c->fd, &msg, 0);
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (r < 0) {
        drop(c, strerror(errno));
        return;
    }
    if (r == 0) {
        drop(c, "server closed the connection");
        return;
    }
    if (!c->busy) { /* bytes nobody sent: the stream is out of step for good */
        n.mismatched++;
        drop(c, "server sent more bytes than it was sent");
        return;
    }
    if (c->intact && memcmp(buf, c->msg + c->got, (size_t)r) != 0)
        c->intact = false;
    c->got += (size_t)r;
    if (c->got < size)
        return;
    /* TCP gives the arrival time of the last segment read: the echo's end. */
    int64_t arrived = now;
    struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
    if (cm && cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_TIMESTAMPNS) {
        struct timespec stamp;
        memcpy(&stamp, CMSG_DATA(cm), sizeof stamp);
        arrived = ns_of(stamp) - realtime;
    }
    on_echo(c, arrived, now);
}

/* What epoll_wait found at ``now``: writes that can go on, and echoes that came in. */
static void handle(const struct epoll_event *events, int k, unsigned char *buf, int64_t now)
{
    int64_t realtime = clock_ns(CLOCK_REALTIME) - now;
    for (int e = 0; e < k; e++) {
        struct conn *c = &conns[events[e].data.u32];
        if (!c->alive)
            continue;
        if ((events[e].events & EPOLLOUT) && c->writing)
            write_out(c);
        if (c->alive && (events[e].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
            on_readable(c, buf, now, realtime);
    }
}

/* -- set-up ----------------------------------------------------------------------------------- */

static void make_payloads(void)
{
    uint64_t x = 0x9E3779B97F4A7C15ULL ^ size; /* xorshift64: every run sends the same bytes */
    for (int v = 0; v < PAYLOAD_VARIANTS; v++) {
        if (!(payloads[v] = malloc(size))) {
            fprintf(stderr, "echo_load: out of memory for %zu-byte messages\n", size);
            exit(1);
        }
        for (size_t i = 0; i < size; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            payloads[v][i] = (unsigned char)x;
        }
    }
}

/* Open every connection at once (a name with several addresses gets them in turns); return how
 * many are up within ``timeout_ns``. */
static uint32_t connect_all(const char *host, const char *port, int64_t timeout_ns)
{
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *found, *a;
    int err = getaddrinfo(host, port, &hints, &found);
    if (err) {
        char what[160];
        snprintf(what, sizeof what, "cannot resolve %.80s: %s", host, gai_strerror(err));
        fail(what);
        return 0;
    }
    size_t naddr = 0;
    for (a = found; a; a = a->ai_next)
        naddr++;
    uint32_t pending = 0, up = 0;
    for (uint32_t i = 0; i < nconns; i++) {
        struct conn *c = &conns[i];
        a = found;
        for (size_t skip = i % naddr; skip; skip--)
            a = a->ai_next;
        c->ident = i;
        c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (c->fd < 0) {
            fail(strerror(errno));
            continue;
        }
        int one = 1;
        setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        setsockopt(c->fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one);
        struct epoll_event ev = {.events = EPOLLOUT, .data.u32 = i};
        if ((connect(c->fd, a->ai_addr, a->ai_addrlen) < 0 && errno != EINPROGRESS) ||
            epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) < 0) {
            fail(strerror(errno));
            close(c->fd);
            continue;
        }
        c->alive = c->connecting = true;
        pending++;
    }
    freeaddrinfo(found);
    struct epoll_event events[MAX_EVENTS];
    int64_t end = now_ns() + timeout_ns;
    while (pending) {
        int64_t left = end - now_ns();
        int k = left > 0 ? epoll_wait(ep, events, MAX_EVENTS, (int)((left + 999999) / 1000000)) : 0;
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        for (int e = 0; e < k; e++) {
            struct conn *c = &conns[events[e].data.u32];
            int so_error = 0;
            socklen_t len = sizeof so_error;
            getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &so_error, &len);
            pending--;
            if (so_error) {
                drop(c, strerror(so_error));
                c->connecting = false;
                continue;
            }
            c->connecting = false;
            live++;
            up++;
            watch(c, EPOLLIN); /* up: from now on it waits for its echoes */
        }
    }
    for (uint32_t i = 0; i < nconns; i++)
        if (conns[i].connecting) {
            drop(&conns[i], "connect timed out");
            conns[i].connecting = false;
        }
    return up;
}

/* One message on every connection, its echo awaited for up to ``timeout_ns``, before the
 * schedule exists: with no window yet (``from`` past every time, ``to`` before), nothing is
 * counted and no echo sends another. Then the connections start their schedule afresh. */
static void prime(unsigned char *buf, int64_t timeout_ns)
{
    from = INT64_MAX;
    to = 0;
    int64_t now = now_ns(), end = now + timeout_ns;
    for (uint32_t i = 0; i < nconns; i++)
        if (conns[i].alive)
            send_message(&conns[i], now, now);
    struct epoll_event events[MAX_EVENTS];
    while (in_flight && now < end) {
        int k = epoll_wait(ep, events, MAX_EVENTS, (int)((end - now + 999999) / 1000000));
        if (k < 0 && errno != EINTR) {
            fprintf(stderr, "echo_load: epoll_wait: %s\n", strerror(errno));
            exit(1);
        }
        now = now_ns();
        handle(events, k > 0 ? k : 0, buf, now);
    }
    for (uint32_t i = 0; i < nconns; i++) {
        if (conns[i].busy)
            drop(&conns[i], "no echo of its first message in time");
        conns[i].seq = 0;
    }
    payload_shift = 1;
}

/* The next moment the loop must be awake for: a due message, the window's edges, the end. */
static int64_t next_wake(int64_t now)
{
    int64_t wake = deadline;
    if (now < from)
        wake = from;
    else if (now < to)
        wake = to;
    if (period > 0 && now < to) {
        int64_t due = due_of(cursor);
        if (due < wake)
            wake = due;
    }
    return wake;
}

static void print_report(const char *host, const char *port, double rate, double window_s,
                         double cpu_s, double cgroup_s)
{
    char rate_text[32] = "null", cgroup_text[32] = "null", error_text[200] = "null";
    if (rate > 0)
        snprintf(rate_text, sizeof rate_text, "%.17g", rate);
    if (cgroup_s >= 0)
        snprintf(cgroup_text, sizeof cgroup_text, "%.4f", cgroup_s);
    if (first_error[0]) { /* JSON string: the messages here hold no quote or backslash but may */
        size_t o = 0;
        error_text[o++] = '"';
        for (const char *p = first_error; *p && o < sizeof error_text - 3; p++) {
            if (*p == '"' || *p == '\\')
                error_text[o++] = '\\';
            error_text[o++] = (char)(*p < ' ' ? ' ' : *p);
        }
        error_text[o++] = '"';
        error_text[o] = '\0';
    }
    uint64_t missing = n.due - n.echoed - n.mismatched_measured;
    double per_s = window_s > 0 ? (double)n.echoed_in_window / window_s : 0;
    /* loadgen's SustainedReport, key for key and in its order (echolab_loadgen/report.py);
     * the server's count is not read here (null), its /stats says it. */
    printf("{\"mode\": \"sustained\", \"target\": \"%s:%s\", \"sent\": %llu, \"echoed\": %llu, "
           "\"mismatched\": %llu, \"missing\": %llu, \"errors\": %llu, \"server_counted\": null, "
           "\"lost_updates\": null, \"msgs_per_s\": %.1f, \"mib_per_s\": %.3f, "
           "\"duration_s\": %.3f, \"connections\": %u, \"size\": %zu, \"latency_us\": {\"p50\": "
           "%lld, \"p90\": %lld, \"p99\": %lld, \"p999\": %lld, \"max\": %lld}, "
           "\"first_error\": %s, \"served\": %llu, \"loadgen_cpu_percent\": %.1f, "
           "\"cgroup_cpu_s\": %s, \"procs\": 1, \"rate\": %s}\n",
           host, port, (unsigned long long)n.sent, (unsigned long long)n.echoed,
           (unsigned long long)n.mismatched, (unsigned long long)missing,
           (unsigned long long)n.errors, per_s, per_s * (double)size / (1024.0 * 1024.0),
           window_s, nconns, size, quantile_us(0.50), quantile_us(0.90), quantile_us(0.99),
           quantile_us(0.999), llround((double)max_ns / 1e3), error_text,
           (unsigned long long)n.served, window_s > 0 ? 100 * cpu_s / window_s : 0.0,
           cgroup_text, rate_text);
}

int main(int argc, char **argv)
{
    static const struct option options[] = {
        {"target", required_argument, NULL, 'h'},  {"port", required_argument, NULL, 'p'},
        {"connections", required_argument, NULL, 'c'}, {"size", required_argument, NULL, 's'},
        {"rate", required_argument, NULL, 'r'},    {"duration", required_argument, NULL, 'd'},
        {"warmup", required_argument, NULL, 'w'},  {"timeout", required_argument, NULL, 't'},
        {NULL, 0, NULL, 0},
    };
    static unsigned char buf[READ_SIZE];
    const char *host = NULL;
    char port[8] = "12345";
    double connections = 1, rate = 0, duration = 5, warmup = 0, timeout = 5;
    size = 64;
    opterr = 0; /* our own one-line errors */
    for (int opt; (opt = getopt_long(argc, argv, ":", options, NULL)) != -1;) {
        switch (opt) {
        case 'h':
            host = optarg;
            break;
        case 'p':
            snprintf(port, sizeof port, "%.0f", whole_arg("port", optarg, 1, 65535));
            break;
        case 'c':
            connections = whole_arg("connections", optarg, 1, 1000000);
            break;
        case 's':
            size = (size_t)whole_arg("size", optarg, 1, MAX_SIZE);
            break;
        case 'r':
            rate = number_arg("rate", optarg, 0.001, 1e9);
            break;
        case 'd':
            duration = number_arg("duration", optarg, 0.001, 86400);
            break;
        case 'w':
            warmup = number_arg("warmup", optarg, 0, 86400);
            break;
        case 't':
            timeout = number_arg("timeout", optarg, 0.001, 3600);
            break;
        case ':':
            usage_error("%s needs a value", argv[optind - 1]);
            break;
        default:
            usage_error("unknown option %s", argv[optind - 1]);
        }
    }
    if (optind < argc)
        usage_error("unexpected argument %s", argv[optind]);
    if (!host)
        usage_error("%s", "--target HOST is required");
    nconns = (uint32_t)connections;
    struct rlimit lim;
    getrlimit(RLIMIT_NOFILE, &lim);
    lim.rlim_cur = lim.rlim_max; /* thousands of sockets */
    setrlimit(RLIMIT_NOFILE, &lim);
    if (lim.rlim_cur < (rlim_t)nconns + SPARE_FDS) {
        char what[80];
        snprintf(what, sizeof what, "--connections %u: at most %llu here (RLIMIT_NOFILE)", nconns,
                 (unsigned long long)(lim.rlim_cur - SPARE_FDS));
        usage_error("%s", what);
    }

    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGPIPE, SIG_IGN);
    prctl(PR_SET_TIMERSLACK, 1UL); /* wake when asked, not up to 50 us later */
    make_payloads();
    if (!(conns = calloc(nconns, sizeof *conns))) {
        fprintf(stderr, "echo_load: out of memory for %u connections\n", nconns);
        return 1;
    }
    if ((ep = epoll_create1(EPOLL_CLOEXEC)) < 0) {
        fprintf(stderr, "echo_load: %s\n", strerror(errno));
        return 1;
    }

    uint32_t up = connect_all(host, port, (int64_t)(timeout * 1e9));
    prime(buf, (int64_t)(timeout * 1e9));
    start = now_ns();
    from = start + (int64_t)(warmup * 1e9);
    to = from + (int64_t)(duration * 1e9);
    deadline = to + (int64_t)(timeout * 1e9);
    period = rate > 0 ? 1e9 / rate : 0;
    double cpu_from = 0, cpu_to = 0, cgroup_from = -1, cgroup_to = -1;
    bool in_window = false, window_done = false;
    if (period == 0)
        for (uint32_t i = 0; i < nconns; i++)
            if (conns[i].alive)
                send_message(&conns[i], start, start);

    struct epoll_event events[MAX_EVENTS];
    int64_t now = start;
    int k = 0;
    while (live) {
        if (!in_window && now >= from) {
            in_window = true;
            cpu_from = own_cpu_s();
            cgroup_from = cgroup_cpu_s();
        }
        if (in_window && !window_done && now >= to) {
            window_done = true;
            cpu_to = own_cpu_s();
            cgroup_to = cgroup_cpu_s();
        }
        if (period > 0) /* after the window too: what was due in it and not yet sent */
            release_due(now);
        if ((now >= to && in_flight == 0) || now >= deadline)
            break;
        int64_t wake = next_wake(now);
        if (period > 0 && now < to) {
            /* Open loop: sleep on the clock alone (unless the last look left events unread),
             * then take every event that came meanwhile. */
            if (k < MAX_EVENTS && wake > now) {
                struct timespec at = {.tv_sec = wake / NS, .tv_nsec = wake % NS};
                clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &at, NULL);
            }
            k = epoll_wait(ep, events, MAX_EVENTS, 0);
        } else { /* closed loop, or the drain: wake for echoes, at the latest at the next edge */
            k = epoll_wait(ep, events, MAX_EVENTS, (int)((wake - now + 999999) / 1000000));
        }
        if (k < 0 && errno != EINTR) {
            fprintf(stderr, "echo_load: epoll_wait: %s\n", strerror(errno));
            return 1;
        }
        now = now_ns();
        handle(events, k, buf, now);
    }
    int64_t end = now < to ? now : to;
    if (!window_done) { /* ended early (no connection left): the window is what ran of it */
        cpu_to = own_cpu_s();
        cgroup_to = cgroup_cpu_s();
        if (!in_window) {
            cpu_from = cpu_to;
            cgroup_from = cgroup_to;
        }
    }
    if (!up)
        n.due = 0;
    else if (period > 0)
        n.due = scheduled_in_window();
    double window_s = end > from ? (double)(end - from) / 1e9 : 0;
    double cgroup_s = cgroup_from >= 0 && cgroup_to >= 0 ? cgroup_to - cgroup_from : -1;
    print_report(host, port, rate, window_s, cpu_to - cpu_from, cgroup_s);
    if (!up) {
        fprintf(stderr, "echo_load: cannot reach %s:%s: %s\n", host, port, first_error);
        return 1;
    }
    uint64_t missing = n.due - n.echoed - n.mismatched_measured;
    return n.mismatched || missing || n.errors ? 1 : 0;
}
