/*
 * loadgen: the msgsvc benchmark's load generator and plain C sender.
 *
 * Built on demand by `python -m benchmarks` with the system compiler; one
 * single-threaded epoll loop, so it costs far less per message than the
 * Python server it measures (the driver records its CPU time to show it).
 *
 * Modes (all connect to 127.0.0.1 only, all bounded in time and in count):
 *   queue   msgsvc: unit = "SEND <size bytes>" + "RECV", both replies parsed
 *   redis   Redis:  unit = "LPUSH q <size bytes>" + "RPOP q" (RESP)
 *   beanstalk  beanstalkd: unit = "put 0 0 60 <size>" + the data, "reserve",
 *           then "delete <id>" once the RESERVED reply names the job; put and
 *           reserve are pipelined like the redis mode, the unit ends at DELETED
 *   ref     thread-per-connection reference: unit = one connection that sends
 *           the message + one connection that sends "<<GET>>" and reads it back
 *   chat    msgsvc: `--conns` members take a NAME, each keeps `--pipeline`
 *           SAYs in flight; counts "* CHAT" events delivered to the members
 *   bulk    one connection: `--cmd` (e.g. "GEN 200000000") `--count` times,
 *           reading the DATA reply; reports bytes/s
 *   idle    opens `--conns` connections, reads each greeting (or, with
 *           `--ping 1` for Redis, the reply to PING), prints READY and
 *           holds them until standard input closes (or `--duration` ends)
 *   sender  the plain C sender for the bulk rows: listens on 127.0.0.1:0,
 *           prints "PORT <n>", answers "GEN n" and "GET file" lines with the
 *           same DATA replies as msgsvc using read()/write() of 256 KiB
 *
 * The pipelined modes (queue, redis, beanstalk, chat) take `--port2 N`: the
 * connections then alternate between --port and --port2 (connection i goes to
 * --port2 when i is odd), for two servers sharing one store.
 *
 * Results are one JSON object on standard output.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define RBUF (256 * 1024)
#define MAX_PIPELINE 1024
#define CHUNK (256 * 1024)

static struct {
    const char *mode;
    int port;
    int conns;
    int pipeline;
    double duration;
    double warmup;
    int size;
    long max_units;
    const char *cmd;
    int count;
    const char *files;
    double connect_timeout;
    int ping;
    int port2;
} opt = {"queue", 0, 1, 1, 3.0, 0.5, 41, 50000000L, "GEN 1000", 1, ".", 30.0, 0, 0};

static void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "loadgen: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(2);
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double cpu_seconds(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

/* ---- latency samples (microseconds), kept in a growable array ---------- */

static uint32_t *samples;
static size_t nsamples, capsamples;

static void record(double seconds) {
    if (nsamples == capsamples) {
        capsamples = capsamples ? capsamples * 2 : 1 << 16;
        samples = realloc(samples, capsamples * sizeof *samples);
        if (!samples) die("out of memory");
    }
    double us = seconds * 1e6;
    samples[nsamples++] = us > 4e9 ? 4000000000u : (uint32_t)us;
}

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

static double percentile(double p) {
    if (!nsamples) return 0;
    size_t i = (size_t)(p * (nsamples - 1) + 0.5);
    return samples[i];
}

/* ---- sockets ---------------------------------------------------------- */

static int connect_loopback(int port, int nonblocking) {
    int fd = socket(AF_INET, SOCK_STREAM | (nonblocking ? SOCK_NONBLOCK : 0), 0);
    if (fd < 0) die("socket: %s", strerror(errno));
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0 && errno != EINPROGRESS)
        die("connect 127.0.0.1:%d: %s", port, strerror(errno));
    return fd;
}

static void write_all(int fd, const char *data, size_t len) {
    while (len) {
        ssize_t n = write(fd, data, len);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) {
                struct pollfd p = {fd, POLLOUT, 0};
                poll(&p, 1, 1000);
                continue;
            }
            die("write: %s", strerror(errno));
        }
        data += n;
        len -= (size_t)n;
    }
}

/* ---- pipelined request/reply connections (queue, redis, chat) ---------- */

enum proto { P_MSGSVC, P_REDIS, P_BEANSTALK };

typedef struct {
    int fd;
    char *buf;           /* unparsed reply bytes */
    size_t len;
    long data_left;      /* msgsvc: bytes of a DATA payload (+CRLF) still to skip */
    int greeted;         /* msgsvc: the greeting line has been read */
    double started[MAX_PIPELINE]; /* send time of each unit in flight, FIFO */
    int head, inflight;
    int replies_in_unit; /* replies of the head unit received so far */
    char *out;           /* bytes waiting to be written */
    size_t outlen, outcap;
} conn_t;

static long units_done, units_measured, errors, empties, events_counted, events_measured;
static double t_start, t_measure, t_end;
static int running = 1;

static void out_append(conn_t *c, const char *data, size_t len) {
    if (c->outlen + len > c->outcap) {
        c->outcap = (c->outlen + len) * 2;
        c->out = realloc(c->out, c->outcap);
        if (!c->out) die("out of memory");
    }
    memcpy(c->out + c->outlen, data, len);
    c->outlen += len;
}

static int flush_out(conn_t *c) {
    size_t off = 0;
    while (off < c->outlen) {
        ssize_t n = write(c->fd, c->out + off, c->outlen - off);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) break;
            die("write: %s", strerror(errno));
        }
        off += (size_t)n;
    }
    memmove(c->out, c->out + off, c->outlen - off);
    c->outlen -= off;
    return c->outlen > 0;
}

static char unit_bytes[4096];
static size_t unit_len;
static int replies_per_unit;

static void build_unit(void) {
    char payload[2048];
    if (opt.size >= (int)sizeof payload) die("--size too large");
    for (int i = 0; i < opt.size; i++) payload[i] = (char)('a' + i % 26);
    if (!strcmp(opt.mode, "queue")) {
        unit_len = (size_t)snprintf(unit_bytes, sizeof unit_bytes, "SEND %.*s\nRECV\n", opt.size, payload);
        replies_per_unit = 2;
    } else if (!strcmp(opt.mode, "redis")) {
        unit_len = (size_t)snprintf(unit_bytes, sizeof unit_bytes,
                                    "*3\r\n$5\r\nLPUSH\r\n$5\r\nbench\r\n$%d\r\n%.*s\r\n*2\r\n$4\r\nRPOP\r\n$5\r\nbench\r\n",
                                    opt.size, opt.size, payload);
        replies_per_unit = 2;
    } else if (!strcmp(opt.mode, "beanstalk")) {
        unit_len = (size_t)snprintf(unit_bytes, sizeof unit_bytes, "put 0 0 60 %d\r\n%.*s\r\nreserve\r\n", opt.size,
                                    opt.size, payload);
        replies_per_unit = 1; /* only DELETED ends a unit: INSERTED and RESERVED are steps */
    } else { /* chat */
        unit_len = (size_t)snprintf(unit_bytes, sizeof unit_bytes, "SAY %.*s\n", opt.size, payload);
        replies_per_unit = 1;
    }
}

static void issue_units(conn_t *c) {
    while (running && c->inflight < opt.pipeline && units_done + c->inflight < opt.max_units) {
        int slot = (c->head + c->inflight) % MAX_PIPELINE;
        c->started[slot] = now();
        c->inflight++;
        out_append(c, unit_bytes, unit_len);
    }
}

static void reply_done(conn_t *c, int is_error, int is_empty) {
    if (is_error) errors++;
    if (is_empty) empties++;
    if (!c->inflight) die("reply without a request");
    if (++c->replies_in_unit < replies_per_unit) return;
    c->replies_in_unit = 0;
    double t = now();
    double started = c->started[c->head];
    c->head = (c->head + 1) % MAX_PIPELINE;
    c->inflight--;
    units_done++;
    if (started >= t_measure && t <= t_end) {
        units_measured++;
        record(t - started);
    }
}

/* Parse complete msgsvc replies and events from c->buf; returns bytes consumed. */
static size_t parse_msgsvc(conn_t *c) {
    size_t pos = 0;
    for (;;) {
        if (c->data_left) {
            size_t take = c->len - pos < (size_t)c->data_left ? c->len - pos : (size_t)c->data_left;
            pos += take;
            c->data_left -= (long)take;
            if (c->data_left) return pos;
            reply_done(c, 0, 0);
            continue;
        }
        char *line = c->buf + pos;
        char *nl = memchr(line, '\n', c->len - pos);
        if (!nl) return pos;
        size_t linelen = (size_t)(nl - line);
        pos += linelen + 1;
        if (!c->greeted) {
            if (strncmp(line, "OK ", 3)) die("unexpected greeting: %.*s", (int)linelen, line);
            c->greeted = 1;
            continue;
        }
        if (linelen >= 2 && line[0] == '*' && line[1] == ' ') {
            if (linelen >= 7 && !strncmp(line, "* CHAT ", 7)) {
                events_counted++;
                double t = now();
                if (t >= t_measure && t <= t_end) events_measured++;
            }
            continue;
        }
        if (line[0] == '#') { /* a tag: skip it */
            char *sp = memchr(line, ' ', linelen);
            if (!sp) die("bad tagged reply");
            linelen -= (size_t)(sp + 1 - line);
            line = sp + 1;
        }
        if (linelen >= 2 && !strncmp(line, "OK", 2)) {
            reply_done(c, 0, 0);
        } else if (linelen >= 4 && !strncmp(line, "ERR ", 4)) {
            reply_done(c, 1, linelen >= 9 && !strncmp(line, "ERR empty", 9));
        } else if (linelen >= 5 && !strncmp(line, "DATA ", 5)) {
            c->data_left = strtol(line + 5, NULL, 10) + 2;
        } else {
            die("unexpected reply: %.*s", (int)(linelen > 80 ? 80 : linelen), line);
        }
    }
}

/* Parse complete RESP replies (simple, error, integer, bulk); returns bytes consumed. */
static size_t parse_redis(conn_t *c) {
    size_t pos = 0;
    for (;;) {
        char *line = c->buf + pos;
        char *nl = memchr(line, '\n', c->len - pos);
        if (!nl) return pos;
        size_t linelen = (size_t)(nl - line) + 1;
        if (line[0] == '$') {
            long n = strtol(line + 1, NULL, 10);
            if (n < 0) {
                pos += linelen;
                reply_done(c, 0, 1);
                continue;
            }
            if (c->len - pos < linelen + (size_t)n + 2) return pos;
            pos += linelen + (size_t)n + 2;
            reply_done(c, 0, 0);
        } else if (line[0] == ':' || line[0] == '+') {
            pos += linelen;
            reply_done(c, 0, 0);
        } else if (line[0] == '-') {
            pos += linelen;
            reply_done(c, 1, 0);
        } else {
            die("unexpected RESP reply: %.*s", (int)(linelen > 80 ? 80 : linelen), line);
        }
    }
}

/* Parse complete beanstalk replies; a RESERVED job is deleted at once (the delete is queued on c->out). */
static size_t parse_beanstalk(conn_t *c) {
    size_t pos = 0;
    for (;;) {
        char *line = c->buf + pos;
        char *nl = memchr(line, '\n', c->len - pos);
        if (!nl) return pos;
        size_t linelen = (size_t)(nl - line) + 1;
        if (linelen >= 9 && !strncmp(line, "RESERVED ", 9)) {
            char *end;
            unsigned long long id = strtoull(line + 9, &end, 10);
            long n = strtol(end, NULL, 10);
            if (c->len - pos < linelen + (size_t)n + 2) return pos;
            pos += linelen + (size_t)n + 2;
            char del[64];
            int dl = snprintf(del, sizeof del, "delete %llu\r\n", id);
            out_append(c, del, (size_t)dl);
        } else if (linelen >= 9 && !strncmp(line, "INSERTED ", 9)) {
            pos += linelen;
        } else if (linelen >= 7 && !strncmp(line, "DELETED", 7)) {
            pos += linelen;
            reply_done(c, 0, 0);
        } else {
            die("unexpected beanstalk reply: %.*s", (int)(linelen > 80 ? 80 : linelen), line);
        }
    }
}

static conn_t *conns;

static void handle_readable(conn_t *c, enum proto proto) {
    for (;;) {
        if (c->len == RBUF) die("reply buffer overflow");
        ssize_t n = read(c->fd, c->buf + c->len, RBUF - c->len);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) return;
            die("read: %s", strerror(errno));
        }
        if (n == 0) die("the server closed a connection");
        c->len += (size_t)n;
        size_t used = proto == P_REDIS ? parse_redis(c) : proto == P_BEANSTALK ? parse_beanstalk(c) : parse_msgsvc(c);
        memmove(c->buf, c->buf + used, c->len - used);
        c->len -= used;
        if ((size_t)n < RBUF / 2) return;
    }
}

/* msgsvc chat: every member takes a name and waits for its OK before the run starts. */
static void name_members(void) {
    for (int i = 0; i < opt.conns; i++) {
        conn_t *c = &conns[i];
        char line[64];
        int n = snprintf(line, sizeof line, "NAME bench%d\n", i);
        write_all(c->fd, line, (size_t)n);
        c->started[0] = now();
        c->inflight = 1;
        c->replies_in_unit = 0;
    }
    replies_per_unit = 1;
    double deadline = now() + opt.connect_timeout;
    int pending = opt.conns;
    while (pending) {
        pending = 0;
        for (int i = 0; i < opt.conns; i++) {
            conn_t *c = &conns[i];
            if (!c->inflight) continue;
            struct pollfd p = {c->fd, POLLIN, 0};
            if (poll(&p, 1, 1) > 0) handle_readable(c, P_MSGSVC);
            if (c->inflight) pending++;
        }
        if (now() > deadline) die("members did not get their names in time");
    }
    if (errors) die("NAME was refused");
    units_done = 0;
    events_counted = 0;
    nsamples = 0;
}

static int run_pipelined(void) {
    enum proto proto = !strcmp(opt.mode, "redis") ? P_REDIS : !strcmp(opt.mode, "beanstalk") ? P_BEANSTALK : P_MSGSVC;
    int ep = epoll_create1(0);
    conns = calloc((size_t)opt.conns, sizeof *conns);
    for (int i = 0; i < opt.conns; i++) {
        conn_t *c = &conns[i];
        c->fd = connect_loopback(opt.port2 && i % 2 ? opt.port2 : opt.port, 0);
        c->buf = malloc(RBUF);
        c->greeted = proto != P_MSGSVC;
        int fl = fcntl(c->fd, F_GETFL);
        fcntl(c->fd, F_SETFL, fl | O_NONBLOCK);
    }
    /* read the greetings */
    for (int i = 0; i < opt.conns && proto == P_MSGSVC; i++) {
        double deadline = now() + opt.connect_timeout;
        while (!conns[i].greeted) {
            struct pollfd p = {conns[i].fd, POLLIN, 0};
            poll(&p, 1, 100);
            handle_readable(&conns[i], proto);
            if (now() > deadline) die("no greeting");
        }
    }
    if (!strcmp(opt.mode, "chat")) name_members();
    build_unit();
    for (int i = 0; i < opt.conns; i++) {
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &conns[i]};
        epoll_ctl(ep, EPOLL_CTL_ADD, conns[i].fd, &ev);
    }
    t_start = now();
    t_measure = t_start + opt.warmup;
    t_end = t_measure + opt.duration;
    double cpu0 = cpu_seconds();
    for (int i = 0; i < opt.conns; i++) {
        issue_units(&conns[i]);
        flush_out(&conns[i]);
    }
    struct epoll_event events[256];
    double drain_deadline = t_end + 5.0;
    for (;;) {
        double t = now();
        if (running && (t >= t_end || units_done >= opt.max_units)) running = 0;
        if (!running) {
            long inflight = 0;
            for (int i = 0; i < opt.conns; i++) inflight += conns[i].inflight;
            if (!inflight || t > drain_deadline) break;
        }
        int n = epoll_wait(ep, events, 256, 10);
        for (int i = 0; i < n; i++) {
            conn_t *c = events[i].data.ptr;
            if (events[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) handle_readable(c, proto);
            issue_units(c);
            int pending = flush_out(c);
            struct epoll_event ev = {.events = EPOLLIN | (pending ? EPOLLOUT : 0), .data.ptr = c};
            if (pending || (events[i].events & EPOLLOUT)) epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
        }
    }
    double cpu = cpu_seconds() - cpu0;
    double wall = now() - t_start;
    qsort(samples, nsamples, sizeof *samples, cmp_u32);
    double seconds = opt.duration;
    printf("{\"mode\": \"%s\", \"conns\": %d, \"pipeline\": %d, \"units\": %ld, \"seconds\": %.3f, "
           "\"rate\": %.1f, \"p50_us\": %.0f, \"p99_us\": %.0f, \"p999_us\": %.0f, \"errors\": %ld, "
           "\"empty\": %ld, \"events\": %ld, \"event_rate\": %.1f, \"client_cpu\": %.3f}\n",
           opt.mode, opt.conns, opt.pipeline, units_measured, seconds, units_measured / seconds, percentile(0.5),
           percentile(0.99), percentile(0.999), errors, empties, events_measured, events_measured / seconds,
           cpu / wall);
    return 0;
}

/* ---- ref: one message per connection ---------------------------------- */

enum ref_phase { R_SEND, R_RECV };

typedef struct {
    int fd;
    enum ref_phase phase;
    double started;
    size_t wrote;
    size_t got;
} refslot_t;

static char ref_msg[2048];

static void ref_open(int ep, refslot_t *s) {
    s->fd = connect_loopback(opt.port, 1);
    s->wrote = 0;
    s->got = 0;
    struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = s};
    epoll_ctl(ep, EPOLL_CTL_ADD, s->fd, &ev);
}

static int run_ref(void) {
    for (int i = 0; i < opt.size; i++) ref_msg[i] = (char)('a' + i % 26);
    int ep = epoll_create1(0);
    refslot_t *slots = calloc((size_t)opt.conns, sizeof *slots);
    t_start = now();
    t_measure = t_start + opt.warmup;
    t_end = t_measure + opt.duration;
    double cpu0 = cpu_seconds();
    int open_slots = 0;
    for (int i = 0; i < opt.conns; i++) {
        slots[i].phase = R_SEND;
        slots[i].started = now();
        ref_open(ep, &slots[i]);
        open_slots++;
    }
    struct epoll_event events[256];
    char buf[4096];
    double drain_deadline = t_end + 5.0;
    while (open_slots) {
        double t = now();
        if (running && (t >= t_end || units_done >= opt.max_units)) running = 0;
        if (!running && t > drain_deadline) break;
        int n = epoll_wait(ep, events, 256, 10);
        for (int i = 0; i < n; i++) {
            refslot_t *s = events[i].data.ptr;
            const char *msg = s->phase == R_SEND ? ref_msg : "<<GET>>";
            size_t len = s->phase == R_SEND ? (size_t)opt.size : 7;
            if (s->wrote < len) {
                if (events[i].events & (EPOLLERR | EPOLLHUP)) die("ref: connection failed");
                ssize_t w = write(s->fd, msg + s->wrote, len - s->wrote);
                if (w < 0) {
                    if (errno == EAGAIN || errno == EINTR) continue;
                    die("ref write: %s", strerror(errno));
                }
                s->wrote += (size_t)w;
                if (s->wrote == len) {
                    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = s};
                    epoll_ctl(ep, EPOLL_CTL_MOD, s->fd, &ev);
                }
                continue;
            }
            ssize_t r = read(s->fd, buf, sizeof buf);
            if (r < 0) {
                if (errno == EAGAIN || errno == EINTR) continue;
                die("ref read: %s", strerror(errno));
            }
            if (r > 0) {
                s->got += (size_t)r;
                continue;
            }
            /* EOF: the server handled this connection */
            close(s->fd);
            if (s->phase == R_SEND) {
                s->phase = R_RECV;
                ref_open(ep, s);
                continue;
            }
            if (s->got != (size_t)opt.size) {
                errors++;
                if (s->got == 29) empties++; /* "Error - no messages in queue." */
            }
            t = now();
            units_done++;
            if (s->started >= t_measure && t <= t_end) {
                units_measured++;
                record(t - s->started);
            }
            if (running && units_done < opt.max_units) {
                s->phase = R_SEND;
                s->started = t;
                ref_open(ep, s);
            } else {
                open_slots--;
            }
        }
    }
    double cpu = cpu_seconds() - cpu0;
    double wall = now() - t_start;
    qsort(samples, nsamples, sizeof *samples, cmp_u32);
    printf("{\"mode\": \"ref\", \"conns\": %d, \"pipeline\": 1, \"units\": %ld, \"seconds\": %.3f, \"rate\": %.1f, "
           "\"p50_us\": %.0f, \"p99_us\": %.0f, \"p999_us\": %.0f, \"errors\": %ld, \"empty\": %ld, "
           "\"client_cpu\": %.3f}\n",
           opt.conns, units_measured, opt.duration, units_measured / opt.duration, percentile(0.5), percentile(0.99),
           percentile(0.999), errors, empties, cpu / wall);
    return 0;
}

/* ---- bulk: one large DATA reply at a time ------------------------------ */

static int run_bulk(void) {
    int fd = connect_loopback(opt.port, 0);
    char *buf = malloc(1 << 20);
    size_t len = 0;
    char line[512];
    int n = snprintf(line, sizeof line, "%s\n", opt.cmd);
    double deadline = now() + opt.duration;
    printf("{\"mode\": \"bulk\", \"cmd\": \"%s\", \"transfers\": [", opt.cmd);
    int greeted = 0;
    double cpu0 = cpu_seconds(), t0 = now();
    for (int i = 0; i < opt.count && now() < deadline; i++) {
        double started = now();
        write_all(fd, line, (size_t)n);
        long payload = -1;
        long received = 0;
        while (payload < 0 || received < payload + 2) {
            if (payload < 0) {
                char *nl = memchr(buf, '\n', len);
                if (nl) {
                    size_t linelen = (size_t)(nl - buf) + 1;
                    if (!greeted && !strncmp(buf, "OK ", 3)) {
                        greeted = 1;
                    } else if (!strncmp(buf, "DATA ", 5)) {
                        payload = strtol(buf + 5, NULL, 10);
                    } else {
                        die("unexpected reply: %.*s", (int)(linelen > 80 ? 80 : linelen), buf);
                    }
                    memmove(buf, buf + linelen, len - linelen);
                    len -= linelen;
                    if (payload >= 0) {
                        received = (long)len;
                        len = 0;
                    }
                    continue;
                }
                ssize_t r = read(fd, buf + len, (1 << 20) - len);
                if (r <= 0) die("bulk: connection closed");
                len += (size_t)r;
                continue;
            }
            ssize_t r = read(fd, buf, 1 << 20);
            if (r <= 0) die("bulk: connection closed after %ld of %ld bytes", received, payload);
            received += r;
            if (now() > deadline + 60) die("bulk: transfer too slow");
        }
        if (received != payload + 2) die("bulk: %ld bytes after the payload", received - payload - 2);
        double seconds = now() - started;
        printf("%s{\"bytes\": %ld, \"seconds\": %.4f}", i ? ", " : "", payload, seconds);
        fflush(stdout);
    }
    double cpu = cpu_seconds() - cpu0;
    printf("], \"client_cpu\": %.3f}\n", cpu / (now() - t0));
    close(fd);
    return 0;
}

/* ---- idle: hold many connections open ---------------------------------- */

static int run_idle(void) {
    int *fds = calloc((size_t)opt.conns, sizeof *fds);
    const int window = 64; /* connections awaiting their greeting at once (listen backlogs are short) */
    int opened = 0, greeted = 0;
    struct pollfd *pfds = calloc((size_t)window, sizeof *pfds);
    int *idx = calloc((size_t)window, sizeof *idx);
    int npending = 0;
    double deadline = now() + opt.connect_timeout;
    char buf[512];
    while (greeted < opt.conns) {
        while (npending < window && opened < opt.conns) {
            fds[opened] = connect_loopback(opt.port, 0);
            if (opt.ping) write_all(fds[opened], "PING\r\n", 6); /* Redis greets no one: ask for a PONG */
            pfds[npending] = (struct pollfd){fds[opened], POLLIN, 0};
            idx[npending++] = opened++;
        }
        int n = poll(pfds, (nfds_t)npending, 100);
        if (n < 0 && errno != EINTR) die("poll: %s", strerror(errno));
        for (int i = 0; i < npending; i++) {
            if (!pfds[i].revents) continue;
            ssize_t r = read(pfds[i].fd, buf, sizeof buf);
            if (r <= 0 || (strncmp(buf, "OK", 2) && strncmp(buf, "+PONG", 5))) die("connection %d: no greeting (%s)", idx[i], r < 0 ? strerror(errno) : "refused");
            greeted++;
            pfds[i] = pfds[--npending];
            idx[i] = idx[npending];
            i--;
        }
        if (now() > deadline) die("only %d of %d connections greeted in time", greeted, opt.conns);
    }
    printf("READY %d\n", greeted);
    fflush(stdout);
    /* hold until stdin closes or the time bound passes */
    struct pollfd in = {0, POLLIN, 0};
    double hold_until = now() + opt.duration;
    while (now() < hold_until) {
        int r = poll(&in, 1, 100);
        if (r > 0 && read(0, buf, sizeof buf) <= 0) break;
    }
    for (int i = 0; i < opt.conns; i++) close(fds[i]);
    printf("{\"mode\": \"idle\", \"conns\": %d}\n", greeted);
    return 0;
}

/* ---- sender: the plain C sender for bulk transfers --------------------- */

static void sender_reply(int fd, const char *cmd) {
    static char chunk[CHUNK];
    char header[512];
    if (!strncmp(cmd, "GEN ", 4)) {
        long size = strtol(cmd + 4, NULL, 10);
        static char pattern[CHUNK + 94];
        for (int i = 0; i < CHUNK + 94; i++) pattern[i] = (char)(33 + i % 94);
        int h = snprintf(header, sizeof header, "DATA %ld gen\r\n", size);
        write_all(fd, header, (size_t)h);
        long offset = 0;
        while (offset < size) {
            long n = size - offset < CHUNK ? size - offset : CHUNK;
            write_all(fd, pattern + offset % 94, (size_t)n);
            offset += n;
        }
    } else if (!strncmp(cmd, "GET ", 4)) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", opt.files, cmd + 4);
        int file = open(path, O_RDONLY);
        if (file < 0) {
            write_all(fd, "ERR no-file File path is invalid\r\n", 34);
            return;
        }
        struct stat st;
        fstat(file, &st);
        int h = snprintf(header, sizeof header, "DATA %ld %s\r\n", (long)st.st_size, cmd + 4);
        write_all(fd, header, (size_t)h);
        ssize_t n;
        while ((n = read(file, chunk, CHUNK)) > 0) write_all(fd, chunk, (size_t)n);
        close(file);
    } else {
        write_all(fd, "ERR unknown-command only GEN and GET\r\n", 38);
        return;
    }
    write_all(fd, "\r\n", 2);
}

static int run_sender(void) {
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(opt.port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(ls, (struct sockaddr *)&sa, sizeof sa) < 0) die("bind: %s", strerror(errno));
    listen(ls, 16);
    socklen_t salen = sizeof sa;
    getsockname(ls, (struct sockaddr *)&sa, &salen);
    printf("PORT %d\n", ntohs(sa.sin_port));
    fflush(stdout);
    double deadline = now() + opt.duration; /* the sender stops by itself */
    while (now() < deadline) {
        struct pollfd p = {ls, POLLIN, 0};
        if (poll(&p, 1, 200) <= 0) continue;
        int fd = accept(ls, NULL, NULL);
        if (fd < 0) continue;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); /* the final CRLF must not wait for an ACK */
        write_all(fd, "OK sender ready\r\n", 17);
        char line[1024];
        size_t len = 0;
        for (;;) {
            ssize_t r = read(fd, line + len, sizeof line - 1 - len);
            if (r <= 0) break;
            len += (size_t)r;
            char *nl;
            while ((nl = memchr(line, '\n', len))) {
                *nl = 0;
                if (nl > line && nl[-1] == '\r') nl[-1] = 0;
                sender_reply(fd, line);
                size_t used = (size_t)(nl - line) + 1;
                memmove(line, line + used, len - used);
                len -= used;
            }
            if (len == sizeof line - 1) break;
        }
        close(fd);
    }
    return 0;
}

int main(int argc, char **argv) {
    signal(SIGPIPE, SIG_IGN);
    if (argc < 2) die("usage: loadgen queue|redis|beanstalk|ref|chat|bulk|idle|sender [--option value ...]");
    opt.mode = argv[1];
    for (int i = 2; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (!strcmp(k, "--port")) opt.port = atoi(v);
        else if (!strcmp(k, "--conns")) opt.conns = atoi(v);
        else if (!strcmp(k, "--pipeline")) opt.pipeline = atoi(v);
        else if (!strcmp(k, "--duration")) opt.duration = atof(v);
        else if (!strcmp(k, "--warmup")) opt.warmup = atof(v);
        else if (!strcmp(k, "--size")) opt.size = atoi(v);
        else if (!strcmp(k, "--max-units")) opt.max_units = atol(v);
        else if (!strcmp(k, "--cmd")) opt.cmd = v;
        else if (!strcmp(k, "--count")) opt.count = atoi(v);
        else if (!strcmp(k, "--files")) opt.files = v;
        else if (!strcmp(k, "--connect-timeout")) opt.connect_timeout = atof(v);
        else if (!strcmp(k, "--ping")) opt.ping = atoi(v);
        else if (!strcmp(k, "--port2")) opt.port2 = atoi(v);
        else die("unknown option %s", k);
    }
    if (opt.conns < 1 || opt.pipeline < 1 || opt.pipeline > MAX_PIPELINE) die("bad --conns or --pipeline");
    if (!strcmp(opt.mode, "sender")) return run_sender();
    if (opt.port <= 0) die("--port is required");
    if (!strcmp(opt.mode, "queue") || !strcmp(opt.mode, "redis") || !strcmp(opt.mode, "beanstalk") ||
        !strcmp(opt.mode, "chat"))
        return run_pipelined();
    if (!strcmp(opt.mode, "ref")) return run_ref();
    if (!strcmp(opt.mode, "bulk")) return run_bulk();
    if (!strcmp(opt.mode, "idle")) return run_idle();
    die("unknown mode %s", opt.mode);
    return 2;
}
