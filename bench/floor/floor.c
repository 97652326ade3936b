// The floor peer of the data-plane benchmarks: the least an io_uring HTTP/1.1 responder on this machine
// can do per response. It answers every request head (anything ending in CRLF CRLF) with one fixed
// response, the file given on the command line preceded by the head a static server sends for it (Server,
// Date, Content-Type, Last-Modified, ETag, Accept-Ranges, Content-Length: the headers nginx and the data
// plane send), so that the client and the kernel handle the same bytes per response as with the servers
// measured against it; its Date is the time it started. It never parses, never looks at paths, never
// touches a file after start. One thread, one ring (SINGLE_ISSUER + DEFER_TASKRUN),
// multishot accept, one recv per connection at a time, pipelined requests answered by a single sendmsg
// of as many copies of the response as heads arrived. Pin it with taskset.
//
//   floor PORT FILE          (listens on 127.0.0.1:PORT)
//
// Built by bench/dataplane/common.sh with: cc -O2 -o floor floor.c -luring (Debian's liburing-dev).
#define _GNU_SOURCE
#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "floor-common.h"

#define MAX_CONNS 4096
#define RECV_BYTES 16384
#define MAX_BATCH 64

enum { OP_ACCEPT = FLOOR_OP_ACCEPT, OP_RECV, OP_SEND };

struct conn {
    int fd;
    int match; // how much of "\r\n\r\n" the bytes so far end with, carried across reads
    struct msghdr msg;
    struct iovec iov[MAX_BATCH];
    char buf[RECV_BYTES];
};

static struct conn *conns[MAX_CONNS];
static struct io_uring ring;
static char *response;
static size_t response_len;

static void post_recv(struct io_uring *ring, struct conn *c) {
    struct io_uring_sqe *sqe = sqe_of(ring);
    io_uring_prep_recv(sqe, c->fd, c->buf, RECV_BYTES, 0);
    io_uring_sqe_set_data64(sqe, tag(OP_RECV, c->fd));
}

static void close_conn(struct conn *c) {
    close(c->fd);
    conns[c->fd] = NULL;
    free(c);
}

static void on_accept(int fd) {
    int one = 1;
    if (fd >= MAX_CONNS) { close(fd); return; }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct conn *c = calloc(1, sizeof *c);
    c->fd = fd;
    conns[fd] = c;
    post_recv(&ring, c);
}

static void on_completion(int op, int fd, int res) {
    struct conn *c = conns[fd];
    if (!c) return;
    if (op == OP_RECV) {
        if (res <= 0) { close_conn(c); return; }
        int heads = count_heads(&c->match, c->buf, res);
        if (heads == 0) { post_recv(&ring, c); return; }
        if (heads > MAX_BATCH) heads = MAX_BATCH; // more than this in one read is not a load we make
        for (int i = 0; i < heads; i++) {
            c->iov[i].iov_base = response;
            c->iov[i].iov_len = response_len;
        }
        memset(&c->msg, 0, sizeof c->msg);
        c->msg.msg_iov = c->iov;
        c->msg.msg_iovlen = (size_t)heads;
        struct io_uring_sqe *sqe = sqe_of(&ring);
        // MSG_WAITALL: the ring retries a short send itself, so a completion means all of it went.
        io_uring_prep_sendmsg(sqe, c->fd, &c->msg, MSG_NOSIGNAL | MSG_WAITALL);
        io_uring_sqe_set_data64(sqe, tag(OP_SEND, c->fd));
    } else if (op == OP_SEND) {
        if (res < 0) { close_conn(c); return; }
        post_recv(&ring, c);
    }
}

int main(int argc, char **argv) {
    if (argc != 3) { fprintf(stderr, "usage: %s PORT FILE\n", argv[0]); return 2; }
    signal(SIGPIPE, SIG_IGN);
    FILE *f = fopen(argv[2], "rb");
    if (!f) { perror(argv[2]); return 1; }
    struct stat st;
    fstat(fileno(f), &st);
    char now[64], mtime[64], head[512];
    time_t t = time(NULL);
    strftime(now, sizeof now, "%a, %d %b %Y %H:%M:%S GMT", gmtime(&t));
    strftime(mtime, sizeof mtime, "%a, %d %b %Y %H:%M:%S GMT", gmtime(&st.st_mtime));
    int head_len = snprintf(head, sizeof head,
        "HTTP/1.1 200 OK\r\nServer: floor\r\nDate: %s\r\nContent-Type: application/octet-stream\r\n"
        "Last-Modified: %s\r\nETag: \"%llx-%llx\"\r\nAccept-Ranges: bytes\r\nContent-Length: %lld\r\n\r\n",
        now, mtime, (unsigned long long)st.st_mtime, (unsigned long long)st.st_size, (long long)st.st_size);
    response_len = (size_t)head_len + (size_t)st.st_size;
    response = malloc(response_len);
    memcpy(response, head, (size_t)head_len);
    if (fread(response + head_len, 1, (size_t)st.st_size, f) != (size_t)st.st_size) { perror("read"); return 1; }
    fclose(f);

    int lfd = listen_and_ring(argv[1], &ring);
    run_ring(&ring, lfd, on_accept, on_completion);
}
