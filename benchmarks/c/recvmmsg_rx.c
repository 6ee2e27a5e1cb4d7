/* Baseline receiver for mcastkit's benchmarks: join GROUP on lo, say "ready", wait for a
 * line on stdin, then drain the queue with recvmmsg(2) until it is empty (drain mode) or
 * until DURATION seconds pass (live mode). Prints "<count> <seconds>".
 * usage: recvmmsg_rx GROUP PORT RCVBUF drain|live [DURATION] */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define VLEN 256
#define SLOT 2048

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* the clock the parent times rows with: MCAST_BENCH_CLOCK=cpu (this process's CPU time,
 * the default) or wall */
static double measured(void) {
    const char *c = getenv("MCAST_BENCH_CLOCK");
    if (c && strcmp(c, "wall") == 0) return now();
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    if (argc < 5) { fprintf(stderr, "usage\n"); return 2; }
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    int one = 1, rcv = atoi(argv[3]);
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcv, sizeof rcv) != 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv);
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(atoi(argv[2]));
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0) { perror("bind"); return 1; }
    struct ip_mreqn mr = {0};
    inet_pton(AF_INET, argv[1], &mr.imr_multiaddr);
    mr.imr_ifindex = if_nametoindex("lo");
    if (setsockopt(fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mr, sizeof mr) != 0) {
        perror("join"); return 1;
    }
    static char bufs[VLEN][SLOT];
    struct iovec iov[VLEN];
    struct mmsghdr msgs[VLEN];
    memset(msgs, 0, sizeof msgs);
    for (int i = 0; i < VLEN; i++) {
        iov[i].iov_base = bufs[i];
        iov[i].iov_len = SLOT;
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
    }
    printf("ready\n");
    fflush(stdout);
    char line[64];
    if (!fgets(line, sizeof line, stdin)) return 1;
    int live = strcmp(argv[4], "live") == 0;
    double dur = argc > 5 ? atof(argv[5]) : 5.0;
    long count = 0;
    double t0 = now(), last = t0, m0 = measured();
    for (;;) {
        int n = recvmmsg(fd, msgs, VLEN, MSG_DONTWAIT, NULL);
        if (n > 0) { count += n; last = now(); continue; }
        if (!live) break;
        if (now() - t0 > dur) break;
        usleep(50);
    }
    printf("%ld %.6f\n", count, live ? last - t0 : measured() - m0);
    return 0;
}
