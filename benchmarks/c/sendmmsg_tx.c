/* Baseline sender for mcastkit's benchmarks: COUNT datagrams of SIZE bytes to GROUP:PORT
 * out of lo with sendmmsg(2), batches of 64, optionally paced to RATE datagrams/s.
 * Prints "<sent> <seconds>".  usage: sendmmsg_tx GROUP PORT SIZE COUNT [RATE] */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define VLEN 64

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
    struct ip_mreqn mr = {0};
    mr.imr_ifindex = if_nametoindex("lo");
    setsockopt(fd, IPPROTO_IP, IP_MULTICAST_IF, &mr, sizeof mr);
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(atoi(argv[2]));
    inet_pton(AF_INET, argv[1], &sa.sin_addr);
    int size = atoi(argv[3]);
    long count = atol(argv[4]);
    double rate = argc > 5 ? atof(argv[5]) : 0;
    char *buf = calloc(1, size > 0 ? size : 1);
    struct iovec iov = {buf, (size_t)size};
    struct mmsghdr msgs[VLEN];
    memset(msgs, 0, sizeof msgs);
    for (int i = 0; i < VLEN; i++) {
        msgs[i].msg_hdr.msg_name = &sa;
        msgs[i].msg_hdr.msg_namelen = sizeof sa;
        msgs[i].msg_hdr.msg_iov = &iov;
        msgs[i].msg_hdr.msg_iovlen = 1;
    }
    long sent = 0;
    double t0 = now(), m0 = measured();
    while (sent < count) {
        int want = count - sent < VLEN ? (int)(count - sent) : VLEN;
        int n = sendmmsg(fd, msgs, want, 0);
        if (n < 0) { usleep(100); continue; }
        sent += n;
        if (rate > 0) {
            double due = t0 + sent / rate;
            double d = due - now();
            if (d > 0) usleep((useconds_t)(d * 1e6));
        }
    }
    printf("%ld %.6f\n", sent, rate > 0 ? now() - t0 : measured() - m0);
    return 0;
}
