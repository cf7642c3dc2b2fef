#define _GNU_SOURCE
#include "kcluster.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static struct kcluster *g_kc; /* the one to remove at exit */
static unsigned g_sport = 20000; /* SCTP source ports: a new range per probe */

static int run_script(const char *script, const char *cmd, const char *prefix)
{
	char *line;
	if (asprintf(&line, "sh '%s' %s '%s'", script, cmd, prefix) < 0)
		return -1;
	int rc = system(line);
	free(line);
	return rc == 0 ? 0 : -1;
}

void kc_down(struct kcluster *kc)
{
	if (!kc || !kc->prefix[0])
		return;
	for (int i = 0; i < kc->nsrv; i++)
		close(kc->srv[i]);
	for (int i = 0; i < kc->nconn; i++)
		close(kc->conn[i]);
	kc->nsrv = kc->nconn = 0;
	for (int i = 0; i < KC_NODES; i++)
		if (kc->node_ns[i] >= 0)
			close(kc->node_ns[i]);
	for (int i = 0; i < KC_PODS; i++)
		if (kc->pod_ns[i] >= 0)
			close(kc->pod_ns[i]);
	run_script(kc->script, "down", kc->prefix);
	kc->prefix[0] = '\0';
}

static void at_exit(void)
{
	kc_down(g_kc);
}

static void on_signal(int sig)
{
	kc_down(g_kc);
	signal(sig, SIG_DFL);
	raise(sig);
}

int kc_pod_node(int i)
{
	return i % 2;
}

void kc_pod_addr(int i, bool v6, char *buf, unsigned len)
{
	if (v6)
		snprintf(buf, len, "fd00::%d:%d", i / 3 + 1, i % 3 + 1);
	else
		snprintf(buf, len, "10.1.%d.%d", i / 3 + 1, i % 3 + 1);
}

static int open_ns(const char *name)
{
	char path[256];
	snprintf(path, sizeof(path), "/run/netns/%s", name);
	return open(path, O_RDONLY | O_CLOEXEC);
}

int kc_in_ns(struct kcluster *kc, int fd, int (*fn)(void *), void *arg)
{
	if (setns(fd, CLONE_NEWNET) < 0)
		return -1;
	int r = fn(arg);
	int e = errno;
	if (setns(kc->self_ns, CLONE_NEWNET) < 0)
		abort(); /* never go on in the wrong namespace */
	errno = e;
	return r;
}

struct sockreq {
	int domain, type, proto;
};

static int mksock(void *arg)
{
	struct sockreq *r = arg;
	return socket(r->domain, r->type | SOCK_NONBLOCK | SOCK_CLOEXEC, r->proto);
}

static int sock_in(struct kcluster *kc, int ns, int domain, int type, int proto)
{
	struct sockreq r = { domain, type, proto };
	return kc_in_ns(kc, ns, mksock, &r);
}

static int add_server(struct kcluster *kc, int pod, int kind, int type, int port)
{
	int one = 1, zero = 0;
	int fd = kind >= 2 ? sock_in(kc, kc->pod_ns[pod], kind == 2 ? AF_INET : AF_INET6, SOCK_RAW, 132)
			   : sock_in(kc, kc->pod_ns[pod], AF_INET6, type, 0);
	if (fd < 0)
		return -1;
	if (kind < 2) {
		struct sockaddr_in6 a = { .sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port),
					  .sin6_addr = IN6ADDR_ANY_INIT };
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
		if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || (kind == 0 && listen(fd, 256) < 0)) {
			close(fd);
			return -1;
		}
	}
	kc->srv[kc->nsrv] = fd;
	kc->srv_kind[kc->nsrv] = kind;
	kc->srv_pod[kc->nsrv++] = pod;
	return 0;
}

int kc_up(struct kcluster *kc, const char *script, const char *prefix)
{
	memset(kc, 0, sizeof(*kc));
	if (geteuid() != 0) { /* network namespaces and nftables need root */
		fprintf(stderr, "kcluster: needs root (network namespaces, nftables): skipped\n");
		exit(77);
	}
	/* CORRAL_NETNS_TAG keeps two test runs on one machine (two work trees)
	 * from removing each other's namespaces */
	const char *tag = getenv("CORRAL_NETNS_TAG");
	snprintf(kc->prefix, sizeof(kc->prefix), "%s%s", tag ? tag : "", prefix);
	prefix = kc->prefix;
	snprintf(kc->script, sizeof(kc->script), "%s", script);
	for (int i = 0; i < KC_NODES; i++)
		kc->node_ns[i] = -1;
	for (int i = 0; i < KC_PODS; i++)
		kc->pod_ns[i] = -1;
	g_kc = kc;
	atexit(at_exit);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGPIPE, SIG_IGN);
	kc->self_ns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	if (kc->self_ns < 0 || run_script(script, "up", prefix) < 0) {
		fprintf(stderr, "kcluster: cannot build the namespace cluster %s\n", prefix);
		return -1;
	}
	char name[64];
	for (int i = 0; i < KC_NODES; i++) {
		snprintf(name, sizeof(name), "%s-n%d", prefix, i + 1);
		if ((kc->node_ns[i] = open_ns(name)) < 0)
			return -1;
	}
	for (int i = 0; i < KC_PODS; i++) {
		snprintf(name, sizeof(name), "%s-%c-%c", prefix, "xyz"[i / 3], "abc"[i % 3]);
		if ((kc->pod_ns[i] = open_ns(name)) < 0)
			return -1;
		for (int port = 80; port <= 81; port++)
			if (add_server(kc, i, 0, SOCK_STREAM, port) < 0 || add_server(kc, i, 1, SOCK_DGRAM, port) < 0)
				return -1;
		if (add_server(kc, i, 2, 0, 0) < 0 || add_server(kc, i, 3, 0, 0) < 0)
			return -1;
	}
	return 0;
}

static int open_nft(void *arg)
{
	*(struct nft_sock **)arg = nft_sock_open();
	return 0;
}

struct nft_sock *kc_nft_open(struct kcluster *kc, int node)
{
	struct nft_sock *s = NULL;
	kc_in_ns(kc, kc->node_ns[node], open_nft, &s);
	return s;
}

int kc_probe_timeout(void)
{
	const char *v = getenv("CORRAL_PROBE_MS");
	return v && atoi(v) > 0 ? atoi(v) : 500;
}

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static socklen_t mkaddr(int i, bool v6, int port, struct sockaddr_storage *ss)
{
	char a[64];
	kc_pod_addr(i, v6, a, sizeof(a));
	memset(ss, 0, sizeof(*ss));
	if (v6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		inet_pton(AF_INET6, a, &s6->sin6_addr);
		return sizeof(*s6);
	}
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	s4->sin_family = AF_INET;
	s4->sin_port = htons((uint16_t)port);
	inet_pton(AF_INET, a, &s4->sin_addr);
	return sizeof(*s4);
}

/* CRC32c (Castagnoli), as SCTP uses (RFC 4960, appendix B). */
static uint32_t crc32c(const uint8_t *p, size_t n)
{
	uint32_t c = 0xffffffffu;
	for (size_t i = 0; i < n; i++) {
		c ^= p[i];
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (0x82f63b78u & (0u - (c & 1)));
	}
	return ~c;
}

/* An SCTP INIT chunk from port sport: what a client's first packet is. */
static void sctp_init(uint8_t pkt[32], uint16_t sport, uint16_t dport)
{
	memset(pkt, 0, 32);
	pkt[0] = (uint8_t)(sport >> 8), pkt[1] = (uint8_t)sport;
	pkt[2] = (uint8_t)(dport >> 8), pkt[3] = (uint8_t)dport;
	/* verification tag 0 for INIT; chunk type 1, length 20 */
	pkt[12] = 1, pkt[15] = 20;
	pkt[16] = 0x12, pkt[17] = 0x34, pkt[18] = 0x56, pkt[19] = 0x78;    /* initiate tag */
	pkt[22] = 0x10;                                                    /* a_rwnd 4096 */
	pkt[25] = 1, pkt[27] = 1;                                          /* streams */
	pkt[28] = 0, pkt[29] = 0, pkt[30] = 0, pkt[31] = 1;                /* initial TSN */
	uint32_t c = crc32c(pkt, 32);
	pkt[8] = (uint8_t)c, pkt[9] = (uint8_t)(c >> 8), pkt[10] = (uint8_t)(c >> 16), pkt[11] = (uint8_t)(c >> 24);
}

static void accept_all(struct kcluster *kc, int fd)
{
	int c;
	while ((c = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
		if (kc->nconn < (int)(sizeof(kc->conn) / sizeof(kc->conn[0])))
			kc->conn[kc->nconn++] = c;
		else
			close(c);
	}
}

static void echo_conn(struct kcluster *kc, int k)
{
	char buf[512];
	ssize_t n = recv(kc->conn[k], buf, sizeof(buf), 0);
	if (n > 0) {
		if (send(kc->conn[k], buf, (size_t)n, MSG_NOSIGNAL) < 0) {
		}
		return;
	}
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	close(kc->conn[k]);
	kc->conn[k] = kc->conn[--kc->nconn];
}

struct probe {
	int fd, i, j;
	bool done;
};

/* One event-loop turn over servers and probe clients. sctp_seen is set
 * by raw receivers: [i][j] from the source port. */
static void pump(struct kcluster *kc, struct probe *pr, int npr, int proto, bool (*got)[KC_PODS], int wait_ms)
{
	struct pollfd p[KC_PODS * 8 + 1024 + KC_PODS * KC_PODS];
	int n = 0;
	for (int k = 0; k < kc->nsrv; k++)
		p[n++] = (struct pollfd){ kc->srv[k], POLLIN, 0 };
	int conn0 = n;
	for (int k = 0; k < kc->nconn; k++)
		p[n++] = (struct pollfd){ kc->conn[k], POLLIN, 0 };
	int pr0 = n;
	for (int k = 0; k < npr; k++)
		p[n++] = (struct pollfd){ pr[k].done ? -1 : pr[k].fd, proto == 6 ? POLLOUT : POLLIN, 0 };
	if (poll(p, (nfds_t)n, wait_ms) <= 0)
		return;
	for (int k = 0; k < kc->nsrv; k++) {
		if (!(p[k].revents & POLLIN))
			continue;
		int fd = kc->srv[k];
		uint8_t buf[2048];
		struct sockaddr_storage from;
		socklen_t fl = sizeof(from);
		if (kc->srv_kind[k] == 0) {
			accept_all(kc, fd);
		} else if (kc->srv_kind[k] == 1) {
			ssize_t r;
			while ((r = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fl)) > 0) {
				if (sendto(fd, buf, (size_t)r, 0, (struct sockaddr *)&from, fl) < 0) {
				}
				fl = sizeof(from);
			}
		} else {
			ssize_t r;
			while ((r = recv(fd, buf, sizeof(buf), 0)) > 0) {
				size_t off = kc->srv_kind[k] == 2 ? (size_t)(buf[0] & 15) * 4 : 0;
				if ((size_t)r < off + 32 || !got)
					continue;
				unsigned sport = (unsigned)buf[off] << 8 | buf[off + 1];
				if (sport >= g_sport && sport < g_sport + KC_PODS * KC_PODS) {
					int i = (int)(sport - g_sport) / KC_PODS, j = (int)(sport - g_sport) % KC_PODS;
					if (j == kc->srv_pod[k])
						got[i][j] = true;
				}
			}
		}
	}
	for (int k = pr0 - 1; k >= conn0; k--) /* backwards: echo_conn may remove */
		if (p[k].revents)
			echo_conn(kc, k - conn0);
	for (int k = 0; k < npr; k++) {
		short ev = p[pr0 + k].revents;
		if (!ev || pr[k].done || proto == 132)
			continue;
		pr[k].done = true;
		if (proto == 6) {
			int err = 0;
			socklen_t el = sizeof(err);
			getsockopt(pr[k].fd, SOL_SOCKET, SO_ERROR, &err, &el);
			got[pr[k].i][pr[k].j] = err == 0;
		} else {
			char buf[64];
			got[pr[k].i][pr[k].j] = recv(pr[k].fd, buf, sizeof(buf), 0) > 0;
		}
	}
}

void kc_serve(struct kcluster *kc, int ms)
{
	double end = now_ms() + ms;
	do
		pump(kc, NULL, 0, 6, NULL, (int)(end - now_ms()) > 0 ? (int)(end - now_ms()) : 0);
	while (now_ms() < end);
}

void kc_probe(struct kcluster *kc, int proto, int port, bool v6, int timeout_ms, bool got[KC_PODS][KC_PODS])
{
	struct probe pr[KC_PODS * KC_PODS];
	int npr = 0;
	g_sport = g_sport + 100 > 60000 ? 20000 : g_sport + 100;
	memset(got, 0, sizeof(bool) * KC_PODS * KC_PODS);
	for (int i = 0; i < KC_PODS; i++)
		for (int j = 0; j < KC_PODS; j++) {
			if (i == j)
				continue;
			struct sockaddr_storage dst;
			socklen_t dl = mkaddr(j, v6, proto == 132 ? 0 : port, &dst);
			int type = proto == 6 ? SOCK_STREAM : proto == 17 ? SOCK_DGRAM : SOCK_RAW;
			int fd = sock_in(kc, kc->pod_ns[i], v6 ? AF_INET6 : AF_INET, type, proto == 132 ? 132 : 0);
			if (fd < 0) {
				perror("kcluster: probe socket");
				continue;
			}
			pr[npr++] = (struct probe){ fd, i, j, false };
			if (proto == 132) {
				uint8_t pkt[32];
				sctp_init(pkt, (uint16_t)(g_sport + (unsigned)(i * KC_PODS + j)), (uint16_t)port);
				if (sendto(fd, pkt, sizeof(pkt), 0, (struct sockaddr *)&dst, dl) < 0)
					perror("kcluster: sctp send");
			} else if (connect(fd, (struct sockaddr *)&dst, dl) < 0 && errno != EINPROGRESS) {
				pr[npr - 1].done = true;
			} else if (proto == 17 && send(fd, "probe", 5, 0) < 0) {
				pr[npr - 1].done = true;
			}
		}
	double end = now_ms() + timeout_ms;
	for (;;) {
		int left = 0;
		for (int k = 0; k < npr; k++)
			left += !pr[k].done;
		if (proto == 132) {
			left = 0;
			for (int k = 0; k < npr; k++)
				left += !got[pr[k].i][pr[k].j];
		}
		double rem = end - now_ms();
		if (!left || rem <= 0)
			break;
		pump(kc, pr, npr, proto, got, (int)rem + 1);
	}
	for (int k = 0; k < npr; k++)
		close(pr[k].fd);
	kc_serve(kc, 5); /* let servers see the closes */
}

int kc_connect(struct kcluster *kc, int i, int j, int port, int timeout_ms)
{
	return kc_connect_af(kc, i, j, port, false, timeout_ms);
}

int kc_connect_af(struct kcluster *kc, int i, int j, int port, bool v6, int timeout_ms)
{
	struct sockaddr_storage dst;
	socklen_t dl = mkaddr(j, v6, port, &dst);
	int fd = sock_in(kc, kc->pod_ns[i], v6 ? AF_INET6 : AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&dst, dl) < 0 && errno != EINPROGRESS) {
		close(fd);
		return -1;
	}
	struct probe pr = { fd, i, j, false };
	bool got[KC_PODS][KC_PODS] = { { false } };
	double end = now_ms() + timeout_ms;
	while (!pr.done && now_ms() < end)
		pump(kc, &pr, 1, 6, got, (int)(end - now_ms()) + 1);
	if (!got[i][j]) {
		close(fd);
		return -1;
	}
	kc_serve(kc, 5); /* the server side accepts */
	return fd;
}

int kc_connect_to(struct kcluster *kc, int ns, const char *addr, int port, int timeout_ms)
{
	struct sockaddr_storage dst;
	socklen_t dl;
	bool v6 = strchr(addr, ':') != NULL;
	memset(&dst, 0, sizeof(dst));
	if (v6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&dst;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		if (inet_pton(AF_INET6, addr, &s6->sin6_addr) != 1)
			return -1;
		dl = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&dst;
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		if (inet_pton(AF_INET, addr, &s4->sin_addr) != 1)
			return -1;
		dl = sizeof(*s4);
	}
	int fd = sock_in(kc, ns, v6 ? AF_INET6 : AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&dst, dl) < 0 && errno != EINPROGRESS) {
		close(fd);
		return -1;
	}
	struct probe pr = { fd, 0, 0, false };
	bool got[KC_PODS][KC_PODS] = { { false } };
	double end = now_ms() + timeout_ms;
	while (!pr.done && now_ms() < end)
		pump(kc, &pr, 1, 6, got, (int)(end - now_ms()) + 1);
	if (!got[0][0]) {
		close(fd);
		return -1;
	}
	kc_serve(kc, 5); /* the server side accepts */
	return fd;
}

bool kc_conn_alive(struct kcluster *kc, int fd, int timeout_ms)
{
	char buf[16];
	if (send(fd, "ping", 4, MSG_NOSIGNAL) != 4)
		return false;
	double end = now_ms() + timeout_ms;
	while (now_ms() < end) {
		kc_serve(kc, 2);
		ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n == 4)
			return true;
		if (n == 0 || (n < 0 && errno != EAGAIN))
			return false;
	}
	return false;
}

/* ---------- raw packets with any source ---------- */

static uint32_t csum_add(uint32_t sum, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i + 1 < n; i += 2)
		sum += (uint32_t)p[i] << 8 | p[i + 1];
	if (n & 1)
		sum += (uint32_t)p[n - 1] << 8;
	return sum;
}

static uint16_t csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/* The transport checksum over the pseudo-header of either family. */
static uint16_t l4_csum(bool v6, const uint8_t *s, const uint8_t *d, uint8_t proto, const uint8_t *l4, size_t n)
{
	size_t al = v6 ? 16 : 4;
	uint8_t tail[8] = { 0 };
	uint32_t sum = csum_add(csum_add(0, s, al), d, al);
	if (v6) {
		tail[2] = (uint8_t)(n >> 8), tail[3] = (uint8_t)n, tail[7] = proto;
		sum = csum_add(sum, tail, 8);
	} else {
		tail[1] = proto, tail[2] = (uint8_t)(n >> 8), tail[3] = (uint8_t)n;
		sum = csum_add(sum, tail, 4);
	}
	return csum_fold(csum_add(sum, l4, n));
}

struct rawsend {
	bool v6;
	const uint8_t *pkt;
	size_t len;
	struct sockaddr_storage dst;
};

static int raw_send(void *arg)
{
	struct rawsend *r = arg;
	/* IPPROTO_RAW: the header comes from us (IP_HDRINCL; IPv6 too) */
	int fd = socket(r->v6 ? AF_INET6 : AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
	if (fd < 0)
		return -1;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&r->dst;
	if (r->v6 && ((s6->sin6_addr.s6_addr[0] == 0xfe && (s6->sin6_addr.s6_addr[1] & 0xc0) == 0x80) ||
		      (s6->sin6_addr.s6_addr[0] == 0xff && (s6->sin6_addr.s6_addr[1] & 0x0f) == 2)))
		s6->sin6_scope_id = if_nametoindex("eth0"); /* link-local (or link-scope multicast): a pod's one interface */
	ssize_t n = sendto(fd, r->pkt, r->len, 0, (struct sockaddr *)&r->dst,
			   r->v6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in));
	int e = errno;
	close(fd);
	errno = e;
	return n == (ssize_t)r->len ? 0 : -1;
}

/* Wraps the transport bytes l4 in an IP header and sends them. */
static int send_ip(struct kcluster *kc, int ns, uint8_t proto, const char *src, const char *dst, uint8_t *l4,
		   size_t n, int csum_off, uint8_t hops)
{
	bool v6 = strchr(src, ':') != NULL;
	uint8_t pkt[1600] = { 0 }, s[16], d[16];
	size_t hl = v6 ? 40 : 20;
	struct rawsend r = { .v6 = v6, .pkt = pkt, .len = hl + n };
	if (n > sizeof(pkt) - hl || inet_pton(v6 ? AF_INET6 : AF_INET, src, s) != 1 ||
	    inet_pton(v6 ? AF_INET6 : AF_INET, dst, d) != 1)
		return -1;
	if (csum_off >= 0) {
		uint16_t c = l4_csum(v6, s, d, proto, l4, n);
		l4[csum_off] = (uint8_t)(c >> 8), l4[csum_off + 1] = (uint8_t)c;
	}
	if (v6) {
		pkt[0] = 0x60;
		pkt[4] = (uint8_t)(n >> 8), pkt[5] = (uint8_t)n, pkt[6] = proto, pkt[7] = hops;
		memcpy(pkt + 8, s, 16);
		memcpy(pkt + 24, d, 16);
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&r.dst;
		s6->sin6_family = AF_INET6;
		memcpy(&s6->sin6_addr, d, 16);
	} else {
		/* the kernel fills the length, the id and the header checksum */
		pkt[0] = 0x45, pkt[8] = hops, pkt[9] = proto;
		memcpy(pkt + 12, s, 4);
		memcpy(pkt + 16, d, 4);
		struct sockaddr_in *s4 = (struct sockaddr_in *)&r.dst;
		s4->sin_family = AF_INET;
		memcpy(&s4->sin_addr, d, 4);
	}
	memcpy(pkt + hl, l4, n);
	return kc_in_ns(kc, ns, raw_send, &r);
}

int kc_send_raw(struct kcluster *kc, int ns, int proto, const char *src, const char *dst, uint16_t sport,
		uint16_t dport)
{
	uint8_t l4[32] = { 0 };
	size_t n;
	int coff;
	if (proto == 132) {
		sctp_init(l4, sport, dport); /* CRC32c, no pseudo-header */
		return send_ip(kc, ns, 132, src, dst, l4, 32, -1, 64);
	}
	l4[0] = (uint8_t)(sport >> 8), l4[1] = (uint8_t)sport;
	l4[2] = (uint8_t)(dport >> 8), l4[3] = (uint8_t)dport;
	if (proto == 6) {
		n = 20, coff = 16;
		l4[4] = 0x12, l4[5] = 0x34, l4[6] = 0x56, l4[7] = 0x78; /* sequence */
		l4[12] = 5 << 4, l4[13] = 0x02;                         /* 5 words, SYN */
		l4[14] = 0x72, l4[15] = 0x10;                           /* window */
	} else {
		n = 16, coff = 6;
		l4[4] = 0, l4[5] = 16;
		memcpy(l4 + 8, "forged!\n", 8);
	}
	return send_ip(kc, ns, (uint8_t)proto, src, dst, l4, n, coff, 64);
}

int kc_send_nd(struct kcluster *kc, int ns, const char *src, const char *dst, unsigned extra)
{
	uint8_t l4[1400] = { 0 };
	size_t n = 24 + extra;
	if (n > sizeof(l4) || inet_pton(AF_INET6, dst, l4 + 8) != 1)
		return -1;
	l4[0] = 135; /* neighbour solicitation, code 0; the target follows */
	for (size_t i = 24; i < n; i++)
		l4[i] = (uint8_t)('a' + i % 26); /* the "payload" */
	return send_ip(kc, ns, 58, src, dst, l4, n, 2, 255);
}

int kc_send_na(struct kcluster *kc, int ns, const char *src, const char *dst, const char *target)
{
	uint8_t l4[24] = { 0 };
	if (inet_pton(AF_INET6, target, l4 + 8) != 1)
		return -1;
	l4[0] = 136;  /* neighbour advertisement, code 0 */
	l4[4] = 0x20; /* override: replace what the receiver holds */
	return send_ip(kc, ns, 58, src, dst, l4, sizeof(l4), 2, 255);
}

struct rawopen {
	bool v6;
	int proto;
};

static int raw_open(void *arg)
{
	struct rawopen *r = arg;
	return socket(r->v6 ? AF_INET6 : AF_INET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, r->proto);
}

int kc_raw_open(struct kcluster *kc, int pod, int proto, bool v6)
{
	struct rawopen r = { v6, proto };
	return kc_in_ns(kc, kc->pod_ns[pod], raw_open, &r);
}

bool kc_raw_seen(int fd, bool v6, const char *src, uint16_t id, int timeout_ms)
{
	uint8_t want[16], buf[2048];
	if (inet_pton(v6 ? AF_INET6 : AF_INET, src, want) != 1)
		return false;
	double end = now_ms() + timeout_ms;
	for (;;) {
		struct sockaddr_in6 from;
		socklen_t fl = sizeof(from);
		ssize_t n = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fl);
		if (n > 0) {
			/* IPv4 raw sockets get the IP header, IPv6 ones only the payload */
			size_t off = v6 ? 0 : (size_t)(buf[0] & 15) * 4;
			const uint8_t *s = v6 ? (const uint8_t *)&from.sin6_addr : buf + 12;
			if ((size_t)n >= off + 2 && !memcmp(s, want, v6 ? 16 : 4) &&
			    ((unsigned)buf[off] << 8 | buf[off + 1]) == id)
				return true;
			continue;
		}
		double rem = end - now_ms();
		if (rem <= 0)
			return false;
		struct pollfd p = { fd, POLLIN, 0 };
		poll(&p, 1, (int)rem + 1);
	}
}

int kc_udp_open(struct kcluster *kc, int i, int j, int port, bool v6)
{
	struct sockaddr_storage dst;
	socklen_t dl = mkaddr(j, v6, port, &dst);
	int fd = sock_in(kc, kc->pod_ns[i], v6 ? AF_INET6 : AF_INET, SOCK_DGRAM, 0);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&dst, dl) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

bool kc_udp_alive(struct kcluster *kc, int fd, int timeout_ms)
{
	char buf[64];
	while (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) > 0) /* late echoes of earlier rounds */
		;
	if (send(fd, "flow", 4, 0) != 4)
		return false;
	double end = now_ms() + timeout_ms;
	while (now_ms() < end) {
		kc_serve(kc, 2);
		if (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) == 4)
			return true;
	}
	return false;
}
