// The floor proxy of the reverse-proxy benchmark: the least an io_uring HTTP/1.1 relay on this machine can
// do per proxied request, to say what share of a proxy's cost the four socket operations of a request
// (client receive, upstream send, upstream receive, client send) take on their own. Each client connection
// gets one kept-alive upstream connection, connected when the client is accepted. A request head (anything
// ending in CRLF CRLF; requests have no body here) goes upstream verbatim, byte for byte as it came, and the
// answer comes back verbatim too: the first read asks for 4 KiB, the response's end is known from its
// "Content-Length: " header (the upstream is nginx, which spells it so), and a body with 16 KiB or more
// still to come moves upstream socket -> pipe -> client socket by non-blocking splice on this thread,
// waiting for readiness on the ring when a side is not ready: the data plane's own relay, without its
// parsing, rewriting, limits, timeouts or error handling. One thread, one ring (SINGLE_ISSUER +
// DEFER_TASKRUN), multishot accept, single-buffer sends, the upstream's answer received with
// IORING_RECVSEND_POLL_FIRST. It is a floor, not a proxy: never point anything but the benchmark at it.
//
//   floor-proxy PORT UPSTREAM_PORT          (listens on 127.0.0.1:PORT, relays to 127.0.0.1:UPSTREAM_PORT)
//
// Built by bench/dataplane/common.sh with: cc -O2 -o floor-proxy floor-proxy.c -luring (Debian's liburing-dev).
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "floor-common.h"

#define MAX_CONNS 4096
#define IN_BYTES 16384
#define HEAD_READ_BYTES 4096
#define OUT_BYTES 65536
#define SPLICE_MIN_BYTES 16384

enum { OP_ACCEPT = FLOOR_OP_ACCEPT, OP_RECV_CLIENT, OP_SEND_UPSTREAM, OP_RECV_UPSTREAM, OP_SEND_CLIENT, OP_POLL_UPSTREAM, OP_POLL_CLIENT };

struct conn {
    int fd, up;
    int match;          // how much of "\r\n\r\n" the request bytes so far end with
    int in_len;
    int out_len;        // response bytes in out, being sent
    long head_end;      // -1 until the response head is complete
    long remaining;     // response body bytes still to come from the upstream
    int pipe_r, pipe_w, pipe_bytes;
    char in[IN_BYTES];
    char out[OUT_BYTES];
};

static struct conn *conns[MAX_CONNS];
static struct sockaddr_in upstream;
static struct io_uring ring;

static void post(int op, struct conn *c, int fd, void *buf, unsigned len, int poll_first) {
    struct io_uring_sqe *sqe = sqe_of(&ring);
    if (op == OP_RECV_CLIENT || op == OP_RECV_UPSTREAM) io_uring_prep_recv(sqe, fd, buf, len, 0);
    else io_uring_prep_send(sqe, fd, buf, len, MSG_NOSIGNAL | MSG_WAITALL);
    if (poll_first) sqe->ioprio |= IORING_RECVSEND_POLL_FIRST;
    io_uring_sqe_set_data64(sqe, tag(op, c->fd));
}

static void post_poll(int op, struct conn *c, int fd, unsigned events) {
    struct io_uring_sqe *sqe = sqe_of(&ring);
    io_uring_prep_poll_add(sqe, fd, events);
    io_uring_sqe_set_data64(sqe, tag(op, c->fd));
}

static void close_conn(struct conn *c) {
    close(c->fd);
    close(c->up);
    if (c->pipe_r >= 0) { close(c->pipe_r); close(c->pipe_w); }
    conns[c->fd] = NULL;
    free(c);
}

static void next_request(struct conn *c) {
    c->in_len = 0;
    post(OP_RECV_CLIENT, c, c->fd, c->in, IN_BYTES, 0);
}

// Moves the rest of the body by splice; returns 0 when it waits on the ring, 1 when the response is done, -1 on failure.
static int splice_body(struct conn *c) {
    while (1) {
        if (c->pipe_bytes > 0) {
            ssize_t n = splice(c->pipe_r, NULL, c->fd, NULL, (size_t)c->pipe_bytes,
                               SPLICE_F_MOVE | SPLICE_F_NONBLOCK | (c->remaining > 0 ? SPLICE_F_MORE : 0));
            if (n < 0 && (errno == EAGAIN || errno == EINTR)) { post_poll(OP_POLL_CLIENT, c, c->fd, POLLOUT); return 0; }
            if (n <= 0) return -1;
            c->pipe_bytes -= (int)n;
            continue;
        }
        if (c->remaining == 0) return 1;
        ssize_t n = splice(c->up, NULL, c->pipe_w, NULL, (size_t)c->remaining, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) { post_poll(OP_POLL_UPSTREAM, c, c->up, POLLIN); return 0; }
        if (n <= 0) return -1;
        c->pipe_bytes += (int)n;
        c->remaining -= n;
    }
}

// The response bytes in out so far: decide what to send and what is still to come.
static int on_response_bytes(struct conn *c) {
    if (c->head_end < 0) {
        char *end = memmem(c->out, (size_t)c->out_len, "\r\n\r\n", 4);
        if (!end) { // the head goes on
            if (c->out_len >= OUT_BYTES) return -1;
            post(OP_RECV_UPSTREAM, c, c->up, c->out + c->out_len, (unsigned)(OUT_BYTES - c->out_len), 0);
            return 0;
        }
        c->head_end = end + 4 - c->out;
        char *cl = memmem(c->out, (size_t)c->head_end, "\r\nContent-Length: ", 18);
        long length = cl ? strtol(cl + 18, NULL, 10) : 0;
        c->remaining = length - (c->out_len - c->head_end);
    } else {
        c->remaining -= c->out_len;
    }
    post(OP_SEND_CLIENT, c, c->fd, c->out, (unsigned)c->out_len, 0);
    return 0;
}

static void on_client_sent(struct conn *c) {
    if (c->remaining <= 0) { next_request(c); return; }
    if (c->remaining >= SPLICE_MIN_BYTES) {
        if (c->pipe_r < 0) {
            int p[2];
            if (pipe2(p, O_NONBLOCK | O_CLOEXEC)) { close_conn(c); return; }
            c->pipe_r = p[0];
            c->pipe_w = p[1];
        }
        int r = splice_body(c);
        if (r < 0) close_conn(c);
        else if (r > 0) next_request(c);
        return;
    }
    c->out_len = 0;
    post(OP_RECV_UPSTREAM, c, c->up, c->out, (unsigned)(c->remaining < OUT_BYTES ? c->remaining : OUT_BYTES), 0);
}

static void on_accept(int fd) {
    int one = 1;
    if (fd >= MAX_CONNS) { close(fd); return; }
    int up = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (up < 0 || up >= MAX_CONNS || connect(up, (struct sockaddr *)&upstream, sizeof upstream)) {
        perror("upstream");
        close(fd);
        if (up >= 0) close(up);
        return;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(up, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    fcntl(fd, F_SETFL, O_NONBLOCK); // for the splices; the ring's operations wait on readiness themselves
    fcntl(up, F_SETFL, O_NONBLOCK);
    struct conn *c = malloc(sizeof *c);
    c->fd = fd;
    c->up = up;
    c->match = 0;
    c->pipe_r = c->pipe_w = -1;
    c->pipe_bytes = 0;
    conns[fd] = c;
    next_request(c);
}

static void on_completion(int op, int fd, int res) {
    struct conn *c = conns[fd];
    if (!c) return;
    switch (op) {
    case OP_RECV_CLIENT:
        if (res <= 0) { close_conn(c); return; }
        c->in_len += res;
        if (count_heads(&c->match, c->in + c->in_len - res, res) == 0) {
            if (c->in_len >= IN_BYTES) { close_conn(c); return; }
            post(OP_RECV_CLIENT, c, c->fd, c->in + c->in_len, (unsigned)(IN_BYTES - c->in_len), 0);
            return;
        }
        post(OP_SEND_UPSTREAM, c, c->up, c->in, (unsigned)c->in_len, 0);
        return;
    case OP_SEND_UPSTREAM:
        if (res < 0) { close_conn(c); return; }
        c->out_len = 0;
        c->head_end = -1;
        // The answer cannot be there yet: wait for readiness instead of trying first.
        post(OP_RECV_UPSTREAM, c, c->up, c->out, HEAD_READ_BYTES, 1);
        return;
    case OP_RECV_UPSTREAM:
        if (res <= 0) { close_conn(c); return; }
        c->out_len += res;
        if (on_response_bytes(c) < 0) close_conn(c);
        return;
    case OP_SEND_CLIENT:
        if (res < 0) { close_conn(c); return; }
        on_client_sent(c);
        return;
    default: { // OP_POLL_UPSTREAM, OP_POLL_CLIENT
        if (res < 0) { close_conn(c); return; }
        int r = splice_body(c);
        if (r < 0) close_conn(c);
        else if (r > 0) next_request(c);
        return;
    }
    }
}

int main(int argc, char **argv) {
    if (argc != 3) { fprintf(stderr, "usage: %s PORT UPSTREAM_PORT\n", argv[0]); return 2; }
    signal(SIGPIPE, SIG_IGN);
    upstream = (struct sockaddr_in){ .sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(argv[2])),
                                     .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    int lfd = listen_and_ring(argv[1], &ring);
    run_ring(&ring, lfd, on_accept, on_completion);
}
