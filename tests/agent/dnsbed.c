#define _GNU_SOURCE
#include "dnsbed.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ldns/ldns.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define ZONE_MAX 256

struct zent {
	char name[256];
	unsigned ttl;
	size_t n;
	char rec[8][96];
	int fresh;      /* 0, or the first host number of fresh addresses */
	size_t many;    /* bed_zone_many */
	unsigned long count;
};

static struct {
	struct kcluster *kc;
	char prefix[64];
	int ext_ns;
	pthread_t dns_thr, ext_thr;
	int udp, tcp, ext_l[3];
	pthread_mutex_t mu;
	struct zent zone[ZONE_MAX];
	size_t nzone;
	bool silent, stop;
	unsigned long queries;
} B = { .mu = PTHREAD_MUTEX_INITIALIZER };

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
	char *cmd;
	va_list ap;
	va_start(ap, fmt);
	if (vasprintf(&cmd, fmt, ap) < 0)
		abort();
	va_end(ap);
	int rc = system(cmd);
	if (rc != 0)
		fprintf(stderr, "dnsbed: failed (%d): %s\n", rc, cmd);
	free(cmd);
	return rc == 0 ? 0 : -1;
}

struct sockreq {
	int domain, type;
};

static int mksock(void *arg)
{
	struct sockreq *r = arg;
	return socket(r->domain, r->type | SOCK_CLOEXEC, 0);
}

static int sock_in(int ns, int domain, int type)
{
	struct sockreq r = { domain, type };
	return kc_in_ns(B.kc, ns, mksock, &r);
}

static int listen_any(int ns, int type, int port)
{
	int fd = sock_in(ns, AF_INET6, type), one = 1, zero = 0;
	struct sockaddr_in6 a = { .sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port), .sin6_addr = IN6ADDR_ANY_INIT };
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || (type == SOCK_STREAM && listen(fd, 1024) < 0)) {
		close(fd);
		return -1;
	}
	return fd;
}

/* ---------- the zone and the server ---------- */

static struct zent *zfind(const char *name)
{
	for (size_t i = 0; i < B.nzone; i++)
		if (!strcasecmp(B.zone[i].name, name))
			return &B.zone[i];
	return NULL;
}

static struct zent *zget(const char *name)
{
	struct zent *z = zfind(name);
	if (!z) {
		if (B.nzone == ZONE_MAX)
			abort();
		z = &B.zone[B.nzone++];
	}
	memset(z, 0, sizeof(*z));
	snprintf(z->name, sizeof(z->name), "%s", name);
	return z;
}

void bed_zone_set(const char *name, unsigned ttl, const char *const *records, size_t n)
{
	pthread_mutex_lock(&B.mu);
	struct zent *z = zget(name);
	z->ttl = ttl;
	for (size_t i = 0; i < n && i < 8; i++)
		snprintf(z->rec[z->n++], sizeof(z->rec[0]), "%s", records[i]);
	pthread_mutex_unlock(&B.mu);
}

void bed_zone_fresh(const char *name, unsigned ttl, unsigned first)
{
	pthread_mutex_lock(&B.mu);
	struct zent *z = zget(name);
	z->ttl = ttl;
	z->fresh = (int)first;
	pthread_mutex_unlock(&B.mu);
}

void bed_zone_many(const char *name, unsigned ttl, size_t n)
{
	pthread_mutex_lock(&B.mu);
	struct zent *z = zget(name);
	z->ttl = ttl;
	z->many = n;
	pthread_mutex_unlock(&B.mu);
}

void bed_dns_silent(bool on)
{
	pthread_mutex_lock(&B.mu);
	B.silent = on;
	pthread_mutex_unlock(&B.mu);
}

unsigned long bed_dns_queries(void)
{
	pthread_mutex_lock(&B.mu);
	unsigned long n = B.queries;
	pthread_mutex_unlock(&B.mu);
	return n;
}

static void push(ldns_pkt *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void push(ldns_pkt *r, const char *fmt, ...)
{
	char *s;
	ldns_rr *rr = NULL;
	va_list ap;
	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		abort();
	va_end(ap);
	if (ldns_rr_new_frm_str(&rr, s, 0, NULL, NULL) == LDNS_STATUS_OK)
		ldns_pkt_push_rr(r, LDNS_SECTION_ANSWER, rr);
	else
		fprintf(stderr, "dnsbed: bad record %s\n", s);
	free(s);
}

/* Answers for name and qtype, following CNAMEs as a recursive server. */
static void answer(ldns_pkt *r, const char *name, int qtype, int depth)
{
	struct zent *z = zfind(name);
	if (!z || depth > 8)
		return;
	unsigned long k = z->count++;
	if (z->fresh) {
		if (qtype == LDNS_RR_TYPE_A)
			push(r, "%s. %u IN A 203.0.113.%lu", name, z->ttl, z->fresh + k % 200);
		else
			push(r, "%s. %u IN AAAA 2001:db8:f::%lx", name, z->ttl, k + 1);
		return;
	}
	for (size_t i = 0; i < z->many && qtype == LDNS_RR_TYPE_A; i++)
		push(r, "%s. %u IN A 198.51.100.%zu", name, z->ttl, i % 250 + 1);
	for (size_t i = 0; i < z->n; i++) {
		char type[16], val[80];
		if (sscanf(z->rec[i], "%15s %79s", type, val) != 2)
			continue;
		if (!strcmp(type, "CNAME")) {
			push(r, "%s. %u IN CNAME %s.", name, z->ttl, val);
			answer(r, val, qtype, depth + 1);
		} else if ((!strcmp(type, "A") && qtype == LDNS_RR_TYPE_A) ||
			   (!strcmp(type, "AAAA") && qtype == LDNS_RR_TYPE_AAAA)) {
			push(r, "%s. %u IN %s %s", name, z->ttl, type, val);
		}
	}
}

/* The wire answer to query q (NULL: none); limit: the UDP size, 0 for TCP. */
static uint8_t *serve(const uint8_t *q, size_t qlen, size_t limit, size_t *outlen)
{
	ldns_pkt *p = NULL, *r;
	uint8_t *out = NULL;
	if (ldns_wire2pkt(&p, q, qlen) != LDNS_STATUS_OK)
		return NULL;
	pthread_mutex_lock(&B.mu);
	B.queries++;
	if (B.silent || ldns_rr_list_rr_count(ldns_pkt_question(p)) != 1) {
		pthread_mutex_unlock(&B.mu);
		ldns_pkt_free(p);
		return NULL;
	}
	ldns_rr *qr = ldns_rr_list_rr(ldns_pkt_question(p), 0);
	char *qn = ldns_rdf2str(ldns_rr_owner(qr));
	size_t l = strlen(qn);
	if (l && qn[l - 1] == '.')
		qn[l - 1] = 0;
	r = ldns_pkt_new();
	ldns_pkt_set_id(r, ldns_pkt_id(p));
	ldns_pkt_set_qr(r, true);
	ldns_pkt_set_aa(r, true);
	ldns_pkt_set_rd(r, ldns_pkt_rd(p));
	ldns_pkt_set_ra(r, true);
	ldns_pkt_push_rr(r, LDNS_SECTION_QUESTION, ldns_rr_clone(qr));
	answer(r, qn, ldns_rr_get_type(qr), 0);
	if (!zfind(qn))
		ldns_pkt_set_rcode(r, LDNS_RCODE_NXDOMAIN);
	pthread_mutex_unlock(&B.mu);
	if (ldns_pkt_edns(p)) {
		ldns_pkt_set_edns_udp_size(r, 4096);
		if (limit)
			limit = ldns_pkt_edns_udp_size(p) > 512 ? ldns_pkt_edns_udp_size(p) : 512;
	}
	if (ldns_pkt2wire(&out, r, outlen) == LDNS_STATUS_OK && limit && *outlen > limit) {
		/* too large for UDP: the question alone, truncated */
		free(out);
		out = NULL;
		ldns_rr_list_deep_free(ldns_pkt_answer(r));
		ldns_pkt_set_answer(r, ldns_rr_list_new());
		ldns_pkt_set_ancount(r, 0);
		ldns_pkt_set_tc(r, true);
		if (ldns_pkt2wire(&out, r, outlen) != LDNS_STATUS_OK)
			out = NULL;
	}
	free(qn);
	ldns_pkt_free(r);
	ldns_pkt_free(p);
	return out;
}

static void serve_tcp(int c)
{
	static uint8_t buf[65537];
	size_t n = 0;
	struct pollfd pf = { c, POLLIN, 0 };
	while (poll(&pf, 1, 2000) > 0) {
		ssize_t r = read(c, buf + n, sizeof(buf) - n);
		if (r <= 0)
			break;
		n += (size_t)r;
		if (n >= 2 && n >= 2 + ((size_t)buf[0] << 8 | buf[1])) {
			size_t ol = 0;
			uint8_t *out = serve(buf + 2, (size_t)buf[0] << 8 | buf[1], 0, &ol);
			if (out) {
				uint8_t hdr[2] = { (uint8_t)(ol >> 8), (uint8_t)ol };
				if (write(c, hdr, 2) != 2 || write(c, out, ol) != (ssize_t)ol)
					perror("dnsbed: tcp answer");
				free(out);
			}
			break;
		}
	}
	close(c);
}

static void *dns_main(void *arg)
{
	static uint8_t buf[65536];
	struct pollfd pf[2] = { { B.udp, POLLIN, 0 }, { B.tcp, POLLIN, 0 } };
	while (!B.stop) {
		if (poll(pf, 2, 200) <= 0)
			continue;
		if (pf[0].revents) {
			struct sockaddr_storage from;
			socklen_t fl = sizeof(from);
			ssize_t n = recvfrom(B.udp, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fl);
			size_t ol = 0;
			uint8_t *out = n > 0 ? serve(buf, (size_t)n, 512, &ol) : NULL;
			if (out && sendto(B.udp, out, ol, 0, (struct sockaddr *)&from, fl) < 0)
				perror("dnsbed: sendto");
			free(out);
		}
		if (pf[1].revents) {
			int c = accept(B.tcp, NULL, NULL);
			if (c >= 0)
				serve_tcp(c);
		}
	}
	return arg;
}

/* "The internet": accepts and closes. */
static void *ext_main(void *arg)
{
	struct pollfd pf[3];
	for (int i = 0; i < 3; i++)
		pf[i] = (struct pollfd){ B.ext_l[i], POLLIN, 0 };
	while (!B.stop) {
		if (poll(pf, 3, 200) <= 0)
			continue;
		for (int i = 0; i < 3; i++)
			if (pf[i].revents) {
				int c = accept4(B.ext_l[i], NULL, NULL, SOCK_NONBLOCK);
				if (c >= 0)
					close(c);
			}
	}
	return arg;
}

/* ---------- set-up ---------- */

int bed_up(struct kcluster *kc, const char *script, const char *prefix)
{
	if (kc_up(kc, script, prefix) < 0)
		return -1;
	B.kc = kc;
	const char *P = kc->prefix;
	/* node-1's uplink to the internet namespace; node-2 reaches it through node-1 */
	if (sh("ip netns add %s-ext && ip -n %s-ext link set lo up && "
	       "ip netns exec %s-ext sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0 && "
	       "ip -n %s-n1 link add uplink type veth peer name uplink netns %s-ext && "
	       "ip -n %s-n1 addr add 10.254.0.1/30 dev uplink && ip -n %s-ext addr add 10.254.0.2/30 dev uplink && "
	       "ip -n %s-n1 -6 addr add fd00:fe::1/64 dev uplink nodad && ip -n %s-ext -6 addr add fd00:fe::2/64 dev uplink nodad && "
	       "ip -n %s-n1 link set uplink up && ip -n %s-ext link set uplink up && "
	       "ip -n %s-ext route add local 203.0.113.0/24 dev lo && ip -n %s-ext route add local 198.51.100.0/24 dev lo && "
	       "ip -n %s-n1 route add 198.51.100.0/24 via 10.254.0.2 && ip -n %s-n2 route add 198.51.100.0/24 via 10.255.0.1 && ip -n %s-ext -6 route add local 2001:db8::/32 dev lo && "
	       "ip -n %s-ext route add 10.0.0.0/8 via 10.254.0.1 && ip -n %s-ext -6 route add fd00::/16 via fd00:fe::1 && "
	       "ip -n %s-n1 route add 203.0.113.0/24 via 10.254.0.2 && ip -n %s-n1 -6 route add 2001:db8::/32 via fd00:fe::2 && "
	       "ip -n %s-n2 route add 203.0.113.0/24 via 10.255.0.1 && ip -n %s-n2 -6 route add 2001:db8::/32 via fd00:ff::1 && "
	       "ip netns exec %s-n1 ping -6 -c1 -W1 fd00:fe::2 >/dev/null",
	       P, P, P, P, P, P, P, P, P, P, P, P, P, P, P, P, P, P, P, P, P, P, P) < 0)
		return -1;
	char path[128];
	snprintf(path, sizeof(path), "/run/netns/%s-ext", P);
	B.ext_ns = open(path, O_RDONLY | O_CLOEXEC);
	static const int ports[3] = { 80, 443, 8443 };
	for (int i = 0; i < 3; i++)
		if ((B.ext_l[i] = listen_any(B.ext_ns, SOCK_STREAM, ports[i])) < 0)
			return -1;
	B.udp = listen_any(kc->pod_ns[BED_DNS_POD], SOCK_DGRAM, 53);
	B.tcp = listen_any(kc->pod_ns[BED_DNS_POD], SOCK_STREAM, 53);
	if (B.ext_ns < 0 || B.udp < 0 || B.tcp < 0)
		return -1;
	pthread_create(&B.dns_thr, NULL, dns_main, NULL);
	pthread_create(&B.ext_thr, NULL, ext_main, NULL);
	return 0;
}

void bed_down(void)
{
	B.stop = true;
	pthread_join(B.dns_thr, NULL);
	pthread_join(B.ext_thr, NULL);
	close(B.udp);
	close(B.tcp);
	for (int i = 0; i < 3; i++)
		close(B.ext_l[i]);
	close(B.ext_ns);
	kc_down(B.kc);
}

/* ---------- a pod's resolver ---------- */

static socklen_t dns_addr(bool v6, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (!v6) {
		struct sockaddr_in *s = (struct sockaddr_in *)ss;
		s->sin_family = AF_INET;
		s->sin_port = htons(53);
		inet_pton(AF_INET, "10.1.3.3", &s->sin_addr);
		return sizeof(*s);
	}
	struct sockaddr_in6 *s = (struct sockaddr_in6 *)ss;
	s->sin6_family = AF_INET6;
	s->sin6_port = htons(53);
	inet_pton(AF_INET6, "fd00::3:3", &s->sin6_addr);
	return sizeof(*s);
}

static int read_answer(const uint8_t *buf, size_t n, uint16_t id, struct bed_addrs *out)
{
	ldns_pkt *p = NULL;
	if (ldns_wire2pkt(&p, buf, n) != LDNS_STATUS_OK || ldns_pkt_id(p) != id) {
		ldns_pkt_free(p);
		return -1;
	}
	out->tc = ldns_pkt_tc(p);
	out->rcode = ldns_pkt_get_rcode(p);
	const ldns_rr_list *an = ldns_pkt_answer(p);
	for (size_t i = 0; i < ldns_rr_list_rr_count(an) && out->n < 512; i++) {
		const ldns_rr *rr = ldns_rr_list_rr(an, i);
		const ldns_rdf *d = ldns_rr_rdf(rr, 0);
		const uint8_t *x = ldns_rdf_data(d);
		if (ldns_rr_get_type(rr) == LDNS_RR_TYPE_A)
			out->a[out->n++] = ip_from_v4((uint32_t)x[0] << 24 | (uint32_t)x[1] << 16 | (uint32_t)x[2] << 8 | x[3]);
		else if (ldns_rr_get_type(rr) == LDNS_RR_TYPE_AAAA) {
			ip128 a = { 0, 0 };
			for (int k = 0; k < 8; k++) {
				a.hi = a.hi << 8 | x[k];
				a.lo = a.lo << 8 | x[8 + k];
			}
			out->a[out->n++] = a;
		}
	}
	ldns_pkt_free(p);
	return 0;
}

static int wait_fd(int fd, short ev, double end)
{
	struct pollfd pf = { fd, ev, 0 };
	int left = (int)(end - now_ms());
	return left > 0 ? poll(&pf, 1, left) : 0;
}

static int resolve_tcp(int ns, const uint8_t *q, size_t ql, uint16_t id, bool v6, double end, struct bed_addrs *out)
{
	static uint8_t buf[65537];
	struct sockaddr_storage ss;
	socklen_t sl = dns_addr(v6, &ss);
	int fd = sock_in(ns, ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK), rc = -1;
	if (fd < 0)
		return -1;
	uint8_t hdr[2] = { (uint8_t)(ql >> 8), (uint8_t)ql };
	if ((connect(fd, (struct sockaddr *)&ss, sl) == 0 || errno == EINPROGRESS) && wait_fd(fd, POLLOUT, end) > 0 &&
	    write(fd, hdr, 2) == 2 && write(fd, q, ql) == (ssize_t)ql) {
		size_t n = 0;
		while (wait_fd(fd, POLLIN, end) > 0) {
			ssize_t r = read(fd, buf + n, sizeof(buf) - n);
			if (r <= 0)
				break;
			n += (size_t)r;
			if (n >= 2 && n >= 2 + ((size_t)buf[0] << 8 | buf[1])) {
				memset(out, 0, sizeof(*out));
				rc = read_answer(buf + 2, n - 2, id, out);
				break;
			}
		}
	}
	close(fd);
	return rc;
}

int bed_resolve(struct kcluster *kc, int pod, const char *name, int qtype, bool v6, int timeout_ms,
		struct bed_addrs *out, double *ms)
{
	double t0 = now_ms(), end = t0 + timeout_ms;
	uint16_t id = (uint16_t)rand();
	ldns_pkt *q = NULL;
	uint8_t *w = NULL, buf[65536];
	size_t wl = 0;
	memset(out, 0, sizeof(*out));
	if (ldns_pkt_query_new_frm_str(&q, name, (ldns_rr_type)qtype, LDNS_RR_CLASS_IN, LDNS_RD) != LDNS_STATUS_OK)
		return -1;
	ldns_pkt_set_id(q, id);
	if (ldns_pkt2wire(&w, q, &wl) != LDNS_STATUS_OK) {
		ldns_pkt_free(q);
		return -1;
	}
	ldns_pkt_free(q);
	struct sockaddr_storage ss;
	socklen_t sl = dns_addr(v6, &ss);
	int fd = sock_in(kc->pod_ns[pod], ss.ss_family, SOCK_DGRAM), rc = -1;
	if (fd >= 0 && sendto(fd, w, wl, 0, (struct sockaddr *)&ss, sl) == (ssize_t)wl) {
		while (wait_fd(fd, POLLIN, end) > 0) {
			ssize_t n = recv(fd, buf, sizeof(buf), 0);
			if (n > 0 && read_answer(buf, (size_t)n, id, out) == 0) {
				rc = 0;
				break;
			}
		}
	}
	if (fd >= 0)
		close(fd);
	if (rc == 0 && out->tc) /* as resolvers do: again over TCP */
		rc = resolve_tcp(kc->pod_ns[pod], w, wl, id, v6, end, out);
	free(w);
	if (ms)
		*ms = now_ms() - t0;
	return rc;
}

bool bed_connect(struct kcluster *kc, int pod, ip128 a, int port, int timeout_ms)
{
	struct sockaddr_storage ss = { 0 };
	socklen_t sl;
	if (ip_is_v4(a)) {
		struct sockaddr_in *s = (struct sockaddr_in *)&ss;
		s->sin_family = AF_INET;
		s->sin_port = htons((uint16_t)port);
		s->sin_addr.s_addr = htonl(ip_v4(a));
		sl = sizeof(*s);
	} else {
		struct sockaddr_in6 *s = (struct sockaddr_in6 *)&ss;
		s->sin6_family = AF_INET6;
		s->sin6_port = htons((uint16_t)port);
		for (int i = 0; i < 8; i++) {
			s->sin6_addr.s6_addr[i] = (uint8_t)(a.hi >> (56 - 8 * i));
			s->sin6_addr.s6_addr[8 + i] = (uint8_t)(a.lo >> (56 - 8 * i));
		}
		sl = sizeof(*s);
	}
	int fd = sock_in(kc->pod_ns[pod], ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK);
	bool ok = false;
	if (fd < 0)
		return false;
	if (connect(fd, (struct sockaddr *)&ss, sl) == 0)
		ok = true;
	else if (errno == EINPROGRESS && wait_fd(fd, POLLOUT, now_ms() + timeout_ms) > 0) {
		int err = 0;
		socklen_t el = sizeof(err);
		getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el);
		ok = err == 0;
	}
	close(fd);
	return ok;
}
