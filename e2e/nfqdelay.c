/*
 * nfqdelay: holds each packet of an NFQUEUE for DELAY_MS plus a uniform random jitter in
 * [0, JITTER_MS], then accepts it. The e2e runner (src/e2e/Fabric.ts) compiles it with
 *   gcc -O2 -o nfqdelay nfqdelay.c -lnetfilter_queue -lnfnetlink
 * and runs it inside a node's network namespace, beside
 *   iptables -t mangle -I OUTPUT -d SUBNET -j NFQUEUE --queue-num N --queue-bypass
 * so only that node's outgoing packets are delayed (the kernel has no netem here).
 *
 * usage: nfqdelay QUEUE_NUM DELAY_MS JITTER_MS [SEED]
 * It runs until SIGTERM/SIGINT; packets still held then are accepted at once. When it is not
 * running, --queue-bypass lets packets through undelayed. The queue fails open (packets pass) if
 * it overflows.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <linux/netfilter.h>
#include <libnetfilter_queue/libnetfilter_queue.h>

#define MAX_HELD 65536

struct held { uint64_t due; uint32_t id; };

static struct held heap[MAX_HELD];
static size_t held_count = 0;
static uint64_t delay_ns, jitter_ns;
static uint64_t rng_state = 88172645463325252ULL;
static volatile sig_atomic_t stopping = 0;
static struct nfq_q_handle *qh;

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static uint64_t xorshift(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return rng_state;
}

static void heap_push(struct held h) {
  size_t i = held_count++;
  heap[i] = h;
  while (i > 0) {
    size_t p = (i - 1) / 2;
    if (heap[p].due <= heap[i].due) break;
    struct held t = heap[p]; heap[p] = heap[i]; heap[i] = t;
    i = p;
  }
}

static struct held heap_pop(void) {
  struct held top = heap[0];
  heap[0] = heap[--held_count];
  size_t i = 0;
  for (;;) {
    size_t l = 2 * i + 1, r = l + 1, m = i;
    if (l < held_count && heap[l].due < heap[m].due) m = l;
    if (r < held_count && heap[r].due < heap[m].due) m = r;
    if (m == i) break;
    struct held t = heap[m]; heap[m] = heap[i]; heap[i] = t;
    i = m;
  }
  return top;
}

static int on_packet(struct nfq_q_handle *q, struct nfgenmsg *msg, struct nfq_data *nfa, void *data) {
  (void)msg; (void)data;
  struct nfqnl_msg_packet_hdr *ph = nfq_get_msg_packet_hdr(nfa);
  if (ph == NULL) return 0;
  uint32_t id = ntohl(ph->packet_id);
  if (held_count >= MAX_HELD) return nfq_set_verdict(q, id, NF_ACCEPT, 0, NULL);
  uint64_t j = jitter_ns == 0 ? 0 : xorshift() % (jitter_ns + 1);
  struct held h = { now_ns() + delay_ns + j, id };
  heap_push(h);
  return 0;
}

static void on_signal(int sig) { (void)sig; stopping = 1; }

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: nfqdelay QUEUE_NUM DELAY_MS JITTER_MS [SEED]\n");
    return 2;
  }
  int queue = atoi(argv[1]);
  delay_ns = (uint64_t)(atof(argv[2]) * 1e6);
  jitter_ns = (uint64_t)(atof(argv[3]) * 1e6);
  if (argc > 4) rng_state ^= strtoull(argv[4], NULL, 10) * 2654435761ULL;
  if (rng_state == 0) rng_state = 1;
  signal(SIGTERM, on_signal);
  signal(SIGINT, on_signal);

  struct nfq_handle *h = nfq_open();
  if (h == NULL) { perror("nfq_open"); return 1; }
  nfq_unbind_pf(h, AF_INET);
  if (nfq_bind_pf(h, AF_INET) < 0) { perror("nfq_bind_pf"); return 1; }
  qh = nfq_create_queue(h, (uint16_t)queue, &on_packet, NULL);
  if (qh == NULL) { perror("nfq_create_queue"); return 1; }
  if (nfq_set_mode(qh, NFQNL_COPY_META, 0) < 0) { perror("nfq_set_mode"); return 1; }
  nfq_set_queue_maxlen(qh, MAX_HELD);
  nfq_set_queue_flags(qh, NFQA_CFG_F_FAIL_OPEN, NFQA_CFG_F_FAIL_OPEN);
  nfnl_rcvbufsiz(nfq_nfnlh(h), 8 * 1024 * 1024);
  int fd = nfq_fd(h);
  int one = 1;
  setsockopt(fd, SOL_NETLINK, NETLINK_NO_ENOBUFS, &one, sizeof one);
  fprintf(stderr, "nfqdelay: queue %d, delay %s ms, jitter %s ms\n", queue, argv[2], argv[3]);

  char buf[65536] __attribute__((aligned));
  while (!stopping) {
    uint64_t now = now_ns();
    while (held_count > 0 && heap[0].due <= now) nfq_set_verdict(qh, heap_pop().id, NF_ACCEPT, 0, NULL);
    int timeout = -1;
    if (held_count > 0) {
      uint64_t wait = heap[0].due - now;
      timeout = (int)(wait / 1000000ULL);
      if (timeout == 0 && wait > 0) timeout = 1;
    }
    if (timeout < 0 || timeout > 200) timeout = 200;
    struct pollfd p = { fd, POLLIN, 0 };
    int r = poll(&p, 1, timeout);
    if (r < 0 && errno != EINTR) { perror("poll"); break; }
    if (r > 0 && (p.revents & POLLIN)) {
      for (;;) {
        ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n <= 0) break;
        nfq_handle_packet(h, buf, (int)n);
      }
    }
  }
  while (held_count > 0) nfq_set_verdict(qh, heap_pop().id, NF_ACCEPT, 0, NULL);
  nfq_destroy_queue(qh);
  nfq_close(h);
  return 0;
}
