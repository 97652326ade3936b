// What the two floor peers (floor.c, floor-proxy.c) share: the ring and listener set-up, SQE tags, and
// counting request heads across reads. Header-only, so each peer still builds with one cc line.
#ifndef NETTUNE_FLOOR_COMMON_H
#define NETTUNE_FLOOR_COMMON_H
#include <liburing.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define FLOOR_OP_ACCEPT 1

static inline unsigned long long tag(int op, int fd) { return (unsigned long long)fd << 8 | (unsigned)op; }

static struct io_uring_sqe *sqe_of(struct io_uring *ring) {
    struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
    if (!sqe) {
        io_uring_submit(ring);
        sqe = io_uring_get_sqe(ring);
    }
    return sqe;
}

// Counts the request heads that end in these bytes; *match is how much of CRLF CRLF the bytes so far end with.
static int count_heads(int *match, const char *p, int n) {
    static const char end[4] = {'\r', '\n', '\r', '\n'};
    int heads = 0;
    for (int i = 0; i < n; i++) {
        if (p[i] == end[*match]) {
            if (++*match == 4) { heads++; *match = 0; }
        } else {
            *match = p[i] == '\r' ? 1 : 0;
        }
    }
    return heads;
}

static void arm_accept(struct io_uring *ring, int lfd) {
    struct io_uring_sqe *sqe = sqe_of(ring);
    io_uring_prep_multishot_accept(sqe, lfd, NULL, NULL, SOCK_CLOEXEC);
    io_uring_sqe_set_data64(sqe, tag(FLOOR_OP_ACCEPT, lfd));
}

// A listener on 127.0.0.1:port and a SINGLE_ISSUER + DEFER_TASKRUN ring accepting on it; exits on failure.
static int listen_and_ring(const char *port, struct io_uring *ring) {
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(port)),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    if (bind(lfd, (struct sockaddr *)&addr, sizeof addr) || listen(lfd, 4096)) { perror("listen"); exit(1); }
    struct io_uring_params p = { .flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_CQSIZE,
                                 .cq_entries = 16384 };
    int r = io_uring_queue_init_params(4096, ring, &p);
    if (r < 0) { fprintf(stderr, "io_uring_queue_init: %s\n", strerror(-r)); exit(1); }
    arm_accept(ring, lfd);
    return lfd;
}
// Runs the ring for ever: each accepted socket goes to on_accept, every other completion to on_completion with the
// op and fd of its tag.
static void run_ring(struct io_uring *ring, int lfd, void (*on_accept)(int fd), void (*on_completion)(int op, int fd, int res)) {
    while (1) {
        io_uring_submit_and_wait(ring, 1);
        struct io_uring_cqe *cqe;
        unsigned head, seen = 0;
        io_uring_for_each_cqe(ring, head, cqe) {
            seen++;
            int op = (int)(cqe->user_data & 0xff), fd = (int)(cqe->user_data >> 8);
            if (op == FLOOR_OP_ACCEPT) {
                if (!(cqe->flags & IORING_CQE_F_MORE)) arm_accept(ring, lfd);
                if (cqe->res >= 0) on_accept(cqe->res);
            } else {
                on_completion(op, fd, cqe->res);
            }
        }
        io_uring_cq_advance(ring, seen);
    }
}
#endif
