/* The DNS proxy of DNS-aware egress (dns.h). Its sockets live in an epoll
 * set of their own, whose fd the agent's loop polls.
 *
 * Passes for one answer:
 *   1. match it to the pending query (our id, from the upstream we asked);
 *   2. parse it (dnsmsg.c): the CNAME chain from the question, the A and
 *      AAAA records of the chain's end;
 *   3. find the host rules of the asking pod's egress group whose pattern
 *      matches a name of the chain;
 *   4. learn each address (not a pod's, not forbidden, within bounds) in
 *      the engine (the evaluator and explain see it) and write the new and
 *      refreshed ones to the kernel in one transaction, acknowledged;
 *   5. relay the answer, with the pod's id, from the address it asked. */
#define _GNU_SOURCE
#include "agent/daemon/dns.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "agent/daemon/dnsmsg.h"
#include "agent/daemon/log.h"
#include "agent/nl/nft.h"
#include "agent/nl/route.h"
#include "policy/explain.h"
#include "policy/fqdn.h"

#define MSG_MAX 65535
#define OBSERVED_MAX 4096 /* recent answers for names no host rule of the pod allows */

enum refuse { R_POD, R_FORBIDDEN, R_FULL, R_COUNT };
static const char *const refuse_name[R_COUNT] = { "pod address", "forbidden range", "name full" };

struct counters {
	atomic_ullong queries, answers, learned, refreshed, expired, refused[R_COUNT], over, malformed,
		servfail, dropped_queries, kernel_errors, not_allowed_drops, policy_refused;
};

struct listener {
	int fd;
	bool tcp, v6;
};

struct tcp_conn;

/* A query sent upstream, waiting for its answer. */
struct pending {
	bool used;
	uint16_t id, client_id;
	struct sockaddr_storage up;     /* the upstream asked: only it may answer */
	struct sockaddr_storage client; /* UDP: where the answer goes */
	socklen_t clen;
	int lfd;                        /* UDP: the listener it came in on */
	struct tcp_conn *tcp;           /* TCP: the client connection */
	ip128 pod;
	uint8_t *query;                 /* for SERVFAIL */
	size_t qlen;
	uint64_t deadline;
};

/* A TCP client (a pod retrying over TCP) and its upstream connection. */
struct tcp_conn {
	int fd, up;
	ip128 pod;
	uint8_t *in;       /* from the pod: 2-byte length, message */
	size_t nin;
	uint8_t *upin;     /* from upstream */
	size_t nupin;
	uint8_t *out;      /* to write (to the pod, or the query to upstream) */
	size_t nout, sent;
	bool up_connected, busy;
	uint64_t deadline;
};

struct observed {
	ip128 a, pod;
	uint64_t seen_ms, expires_ms;
	char name[DNS_NAME_MAX + 1];
};

struct dns_proxy {
	struct dns_ctx ctx;
	struct dp_dns dpc;
	int ep, timer;
	struct listener lis[4];
	size_t nlis;
	int up[2]; /* upstream UDP sockets, IPv4 and IPv6 */
	struct pending **pend; /* 65536 slots, by our id; an entry while in flight */
	size_t npend;
	struct vec tcp;       /* struct tcp_conn* */
	ip128 *upstreams;     /* configured; none: the kube-dns pods */
	size_t nup;
	uint32_t rr;
	ip128 *services;
	size_t nservices;
	struct range_set forbidden;
	uint64_t grace_ms, max_ttl_ms;
	uint32_t max_per_name;
	struct observed *obs; /* ring */
	size_t nobs;
	struct counters c;
	uint64_t last_alive_err;
	uint64_t last_alive;   /* the last liveness refresh that worked (now_ms) */
	bool restored;
};

static uint64_t now_ms(void)
{
	return fqdn_now_ms();
}

/* ---------- addresses ---------- */

static ip128 sa_ip(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return ip_from_v4(ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr));
	const uint8_t *p = ((const struct sockaddr_in6 *)ss)->sin6_addr.s6_addr;
	ip128 a = { 0, 0 };
	for (int i = 0; i < 8; i++) {
		a.hi = a.hi << 8 | p[i];
		a.lo = a.lo << 8 | p[8 + i];
	}
	if (ip_is_v4(a)) /* a v4-mapped source on an IPv6 socket */
		return a;
	return a;
}

static socklen_t ip_sa(ip128 a, uint16_t port, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (ip_is_v4(a)) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		s4->sin_addr.s_addr = htonl(ip_v4(a));
		return sizeof(*s4);
	}
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
	s6->sin6_family = AF_INET6;
	s6->sin6_port = htons(port);
	for (int i = 0; i < 8; i++) {
		s6->sin6_addr.s6_addr[i] = (uint8_t)(a.hi >> (56 - 8 * i));
		s6->sin6_addr.s6_addr[8 + i] = (uint8_t)(a.lo >> (56 - 8 * i));
	}
	return sizeof(*s6);
}

static int parse_list(const char *text, ip128 **out, size_t *n)
{
	char *dup = xstrdup(text), *save = NULL;
	*out = NULL;
	*n = 0;
	for (char *t = strtok_r(dup, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		ip128 a;
		if (ip_parse(t, &a) < 0) {
			free(dup);
			return -EINVAL;
		}
		*out = xrealloc(*out, (*n + 1) * sizeof(**out));
		(*out)[(*n)++] = a;
	}
	free(dup);
	return 0;
}

/* Socket made in the enforced namespace (the agent may run outside it). */
static int ns_socket(struct dns_proxy *d, int family, int type)
{
	int self = -1, fd;
	if (d->ctx.netns_fd >= 0) {
		self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
		if (self < 0 || setns(d->ctx.netns_fd, CLONE_NEWNET) < 0) {
			int e = errno;
			if (self >= 0)
				close(self);
			errno = e;
			return -1;
		}
	}
	fd = socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int e = errno;
	if (self >= 0) {
		if (setns(self, CLONE_NEWNET) < 0)
			abort(); /* half in another namespace: nothing sane to do */
		close(self);
	}
	errno = e;
	return fd;
}

static int ep_add(struct dns_proxy *d, int fd, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.fd = fd };
	return epoll_ctl(d->ep, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

static void ep_mod(struct dns_proxy *d, int fd, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.fd = fd };
	if (epoll_ctl(d->ep, EPOLL_CTL_MOD, fd, &ev) < 0)
		log_msg(LOG_ERROR, "dns", "epoll: %s", strerror(errno));
}

/* The node's first address of a family that is neither loopback nor
 * link-local: the one the redirect sends pods' queries to. */
static bool auto_addr(const struct route_addr *v, size_t n, bool v6, ip128 *out)
{
	for (size_t i = 0; i < n; i++) {
		if (v[i].family != (v6 ? 6 : 4))
			continue;
		const uint8_t *p = v[i].a;
		if (!v6 && (p[0] == 127 || (p[0] == 169 && p[1] == 254) || p[0] == 0))
			continue;
		if (v6 && ((p[0] == 0xfe && (p[1] & 0xc0) == 0x80) || p[0] == 0xff))
			continue;
		ip128 a = { 0, 0 };
		if (!v6)
			a = ip_from_v4((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]);
		else
			for (int k = 0; k < 8; k++) {
				a.hi = a.hi << 8 | p[k];
				a.lo = a.lo << 8 | p[8 + k];
			}
		if (v6 && ip_eq(a, (ip128){ 0, 1 }))
			continue;
		*out = a;
		return true;
	}
	return false;
}

static int proxy_addrs(const struct agent_config *cfg, ip128 out[2], bool have[2], char **err)
{
	have[0] = have[1] = false;
	if (strcmp(cfg->dns_proxy_addresses, "auto")) {
		ip128 *v;
		size_t n;
		if (parse_list(cfg->dns_proxy_addresses, &v, &n) < 0) {
			*err = xasprintf("dnsProxyAddresses: not a list of addresses");
			return -EINVAL;
		}
		for (size_t i = 0; i < n; i++) {
			int f = !ip_is_v4(v[i]);
			if (!have[f])
				out[f] = v[i], have[f] = true;
		}
		free(v);
		return 0;
	}
	struct route_sock *rs = route_sock_open();
	struct route_addr *v = NULL;
	size_t n = 0;
	int rc = rs ? route_addrs_local(rs, &v, &n) : -errno;
	route_sock_close(rs);
	if (rc < 0) {
		*err = xasprintf("dnsProxyAddresses auto: reading the node's addresses: %s", strerror(-rc));
		return rc;
	}
	have[0] = auto_addr(v, n, false, &out[0]);
	have[1] = auto_addr(v, n, true, &out[1]);
	free(v);
	return 0;
}

static int listen_one(struct dns_proxy *d, ip128 a, bool tcp, char **err)
{
	struct sockaddr_storage ss;
	socklen_t sl = ip_sa(a, d->dpc.port, &ss);
	int fd = socket(ss.ss_family, (tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;
	char t[IP_STRLEN];
	ip_format(a, t, sizeof(t));
	if (fd >= 0) {
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (ss.ss_family == AF_INET6)
			setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	}
	if (fd < 0 || bind(fd, (struct sockaddr *)&ss, sl) < 0 || (tcp && listen(fd, 64) < 0) ||
	    ep_add(d, fd, EPOLLIN) < 0) {
		int e = errno;
		*err = xasprintf("DNS proxy: cannot listen on %s port %u (%s): %s", t, d->dpc.port, tcp ? "TCP" : "UDP",
				 strerror(e));
		if (fd >= 0)
			close(fd);
		return -e;
	}
	d->lis[d->nlis++] = (struct listener){ fd, tcp, !ip_is_v4(a) };
	return 0;
}

int dns_proxy_new(struct dns_proxy **out, const struct agent_config *cfg, const struct dns_ctx *ctx, char **err)
{
	*out = NULL;
	if (!cfg->dns_proxy_port)
		return 0;
	struct dns_proxy *d = xcalloc(1, sizeof(*d));
	d->ctx = *ctx;
	d->up[0] = d->up[1] = d->timer = -1;
	d->dpc.port = cfg->dns_proxy_port;
	d->dpc.max_per_name = cfg->dns_max_per_name;
	d->dpc.alive_ms = DNS_ALIVE_MS;
	d->max_per_name = cfg->dns_max_per_name;
	d->grace_ms = (uint64_t)cfg->dns_grace_s * 1000;
	d->max_ttl_ms = (uint64_t)cfg->dns_max_ttl_s * 1000;
	d->pend = xcalloc(65536, sizeof(*d->pend)); /* 512 KiB of pointers */
	d->obs = xcalloc(OBSERVED_MAX, sizeof(*d->obs));
	parse_list(cfg->dns_upstreams, &d->upstreams, &d->nup); /* checked by config.c */
	parse_list(cfg->dns_service_addresses, &d->services, &d->nservices);
	d->dpc.servers = d->services;
	d->dpc.nservers = d->nservices;
	char *dup = xstrdup(cfg->dns_forbidden), *save = NULL;
	for (char *t = strtok_r(dup, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		ip128 lo, hi;
		bool hb;
		if (cidr_parse(t, &lo, &hi, &hb) == 0)
			range_set_add(&d->forbidden, lo, hi);
	}
	free(dup);
	ip128 addr[2];
	int rc = proxy_addrs(cfg, addr, d->dpc.have, err);
	d->ep = epoll_create1(EPOLL_CLOEXEC);
	d->timer = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (!rc && (d->ep < 0 || d->timer < 0 || ep_add(d, d->timer, EPOLLIN) < 0)) {
		rc = -errno;
		*err = xasprintf("DNS proxy: %s", strerror(errno));
	}
	for (int f = 0; !rc && f < 2; f++) {
		if (!d->dpc.have[f])
			continue;
		uint8_t *k = d->dpc.addr[f];
		if (!f) {
			uint32_t v = ip_v4(addr[0]);
			k[0] = (uint8_t)(v >> 24), k[1] = (uint8_t)(v >> 16), k[2] = (uint8_t)(v >> 8), k[3] = (uint8_t)v;
		} else {
			for (int i = 0; i < 8; i++) {
				k[i] = (uint8_t)(addr[1].hi >> (56 - 8 * i));
				k[8 + i] = (uint8_t)(addr[1].lo >> (56 - 8 * i));
			}
		}
		if (!(rc = listen_one(d, addr[f], false, err)))
			rc = listen_one(d, addr[f], true, err);
	}
	for (int f = 0; !rc && f < 2; f++) {
		d->up[f] = socket(f ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (d->up[f] < 0 || ep_add(d, d->up[f], EPOLLIN) < 0) {
			rc = -errno;
			*err = xasprintf("DNS proxy: upstream socket: %s", strerror(errno));
		}
	}
	if (!rc && !d->dpc.have[0] && !d->dpc.have[1]) {
		*err = xstrdup("DNS proxy: the node has no address to redirect DNS to (set dnsProxyAddresses)");
		rc = -EADDRNOTAVAIL;
	}
	if (rc < 0) {
		dns_proxy_free(d);
		return rc;
	}
	struct itimerspec it = { { 1, 0 }, { 1, 0 } };
	timerfd_settime(d->timer, 0, &it, NULL);
	*out = d;
	return 0;
}

static void tcp_close(struct dns_proxy *d, struct tcp_conn *t)
{
	close(t->fd); /* closing removes it from the epoll set */
	if (t->up >= 0)
		close(t->up);
	free(t->in);
	free(t->upin);
	free(t->out);
	vec_remove(&d->tcp, t);
	free(t);
}

void dns_proxy_free(struct dns_proxy *d)
{
	if (!d)
		return;
	for (size_t i = 0; i < d->nlis; i++)
		close(d->lis[i].fd);
	for (int f = 0; f < 2; f++)
		if (d->up[f] >= 0)
			close(d->up[f]);
	while (d->tcp.n)
		tcp_close(d, d->tcp.v[0]);
	vec_free(&d->tcp);
	for (size_t i = 0; i < 65536; i++)
		if (d->pend[i]) {
			free(d->pend[i]->query);
			free(d->pend[i]);
		}
	free(d->pend);
	free(d->obs);
	free(d->upstreams);
	free(d->services);
	range_set_free(&d->forbidden);
	if (d->timer >= 0)
		close(d->timer);
	if (d->ep >= 0)
		close(d->ep);
	free(d);
}

int dns_fd(const struct dns_proxy *d)
{
	return d ? d->ep : -1;
}

const struct dp_dns *dns_dp_config(const struct dns_proxy *d)
{
	return d ? &d->dpc : NULL;
}

/* ---------- where queries go ---------- */

static void kube_dns_pods(const struct engine *e, struct vec *out)
{
	const struct ns *n = engine_ns_find(e, "kube-system");
	struct list *it;
	if (!n)
		return;
	list_foreach(it, &n->pods) {
		struct pod *p = container_of(it, struct pod, ns_node);
		istr v = labelset_get(&p->spec->labels, "k8s-app");
		if (p->active && !p->spec->unreadable && v && !strcmp(v, "kube-dns"))
			vec_push(out, p);
	}
}

/* The upstream for a query of family v6 (of the pod's query): configured
 * ones in turn, else the kube-dns pods in turn. */
static bool upstream(struct dns_proxy *d, bool v6, ip128 *out)
{
	d->rr++;
	for (size_t k = 0; k < d->nup; k++) {
		ip128 a = d->upstreams[(d->rr + k) % d->nup];
		if (ip_is_v4(a) != v6)
			return *out = a, true;
	}
	struct vec pods = { 0 };
	bool found = false;
	kube_dns_pods(*d->ctx.e, &pods);
	for (size_t k = 0; k < pods.n && !found; k++) {
		const struct pod *p = pods.v[(d->rr + k) % pods.n];
		for (uint32_t j = 0; j < p->spec->naddr && !found; j++)
			if (ip_is_v4(p->spec->addr[j]) != v6)
				*out = p->spec->addr[j], found = true;
	}
	for (size_t k = 0; k < pods.n && !found; k++) { /* the other family */
		const struct pod *p = pods.v[(d->rr + k) % pods.n];
		if (p->spec->naddr)
			*out = p->spec->addr[0], found = true;
	}
	vec_free(&pods);
	return found;
}

/* The redirect bypasses the forward hook: a query goes upstream only if
 * the pod's egress admits DNS to the cluster DNS (to a kube-dns pod),
 * as the kernel would have judged the query itself. */
static bool dns_allowed(struct dns_proxy *d, ip128 pod, int proto)
{
	const struct engine *e = *d->ctx.e;
	struct vec pods = { 0 };
	struct endpoint src = { engine_pod_by_addr(e, pod), pod };
	kube_dns_pods(e, &pods);
	bool ok = pods.n == 0; /* only Service addresses known: nothing to judge with */
	for (size_t i = 0; i < pods.n && !ok; i++) {
		struct pod *p = pods.v[i];
		for (uint32_t j = 0; j < p->spec->naddr && !ok; j++) {
			struct endpoint dst = { p, p->spec->addr[j] };
			struct verdict v;
			policy_eval(e, &src, &dst, proto, 53, &v);
			ok = v.side[DIR_EGRESS].allowed;
			verdict_free(&v);
		}
	}
	vec_free(&pods);
	return ok;
}

/* ---------- learning ---------- */

static bool forbidden(struct dns_proxy *d, ip128 a, enum refuse *why)
{
	if (engine_addr_claims(*d->ctx.e, a, NULL) > 0) {
		*why = R_POD;
		return true;
	}
	if (range_set_contains(&d->forbidden, a)) {
		*why = R_FORBIDDEN;
		return true;
	}
	return false;
}

static void observe(struct dns_proxy *d, ip128 pod, const struct dns_msg *m, uint64_t now)
{
	for (size_t i = 0; i < m->naddrs; i++) {
		struct observed *o = &d->obs[d->nobs++ % OBSERVED_MAX];
		o->a = m->addrs[i].a;
		o->pod = pod;
		o->seen_ms = now;
		o->expires_ms = now + (m->addrs[i].ttl * 1000ull < d->max_ttl_ms ? m->addrs[i].ttl * 1000ull : d->max_ttl_ms) +
				d->grace_ms;
		snprintf(o->name, sizeof(o->name), "%s", m->names[0]);
	}
}

/* The name of the chain a pattern matches, or NULL. */
static const char *chain_match(const char *pattern, const struct dns_msg *m)
{
	for (size_t i = 0; i < m->nnames; i++)
		if (*m->names[i] && fqdn_match(pattern, m->names[i]))
			return m->names[i];
	return NULL;
}

/* 3. and 4.: learned in the engine, then in the kernel (acknowledged). */
static void learn(struct dns_proxy *d, ip128 podaddr, const struct dns_msg *m)
{
	struct engine *e = *d->ctx.e;
	struct pod *p = engine_pod_by_addr(e, podaddr);
	const struct ir_group *g = p && p->local && p->active ? p->group[DIR_EGRESS] : NULL;
	uint64_t now = now_ms();
	struct dp_host_elem *el = xmalloc((m->naddrs + 1) * 8 * sizeof(*el));
	size_t n = 0, cap = (m->naddrs + 1) * 8, matched = 0;
	struct ptrset seen = { 0 };
	atomic_fetch_add(&d->c.over, m->over);
	for (size_t i = 0; g && i < g->rules.n; i++) {
		const struct ir_rule *r = g->rules.v[i];
		const char *name = r->peers && r->peers->host ? chain_match(r->peers->host, m) : NULL;
		if (!name || !ptrset_add(&seen, r->peers))
			continue;
		matched++;
		struct ir_peerset *ps = r->peers;
		for (size_t k = 0; k < m->naddrs; k++) {
			enum refuse why;
			ip128 a = m->addrs[k].a;
			if (forbidden(d, a, &why)) {
				atomic_fetch_add(&d->c.refused[why], 1);
				continue;
			}
			uint64_t ttl = (uint64_t)m->addrs[k].ttl * 1000;
			ttl = (ttl < d->max_ttl_ms ? ttl : d->max_ttl_ms) + d->grace_ms;
			const struct fqdn_addr *old = fqdn_set_find(&ps->learned, a);
			/* in the kernel still, for long enough not to expire before
			 * the transaction that deletes and adds it again */
			bool live = old && old->expires_ms > now + 250;
			uint64_t was = live ? old->expires_ms : 0;
			int rc = fqdn_set_learn(&ps->learned, a, name, now, ttl, d->max_per_name);
			if (rc < 0) {
				atomic_fetch_add(&d->c.refused[R_FULL], 1);
				continue;
			}
			atomic_fetch_add(rc == FQDN_NEW ? &d->c.learned : &d->c.refreshed, 1);
			const struct fqdn_addr *x = fqdn_set_find(&ps->learned, a);
			if (n < cap)
				el[n++] = (struct dp_host_elem){ ps, a, x->expires_ms - now, x->name,
								 rc != FQDN_NEW && live && x->expires_ms > was };
		}
	}
	ptrset_free(&seen);
	if (!matched)
		observe(d, podaddr, m, now);
	char *err = NULL;
	size_t skipped = 0;
	if (n && dp_host_add(*d->ctx.dp, *d->ctx.nft, el, n, &skipped, &err) < 0) {
		atomic_fetch_add(&d->c.kernel_errors, 1);
		log_msg(LOG_ERROR, "dns", "learning %zu addresses for %s: %s (the next sync writes them)", n, m->names[0],
			err);
	} else if (n) {
		log_msg(LOG_DEBUG, "dns", "learned %zu addresses for %s in %zu host rules; %zu of them in sets not in "
			"the kernel yet (the next sync writes them)", n, m->names[0], matched, skipped);
	}
	free(err);
	free(el);
}

/* 2. to 4. for one answer from upstream; false if it does not parse. */
static bool handle_answer(struct dns_proxy *d, ip128 pod, const uint8_t *buf, size_t len)
{
	static struct dns_msg m; /* 10 KiB: not on the stack; the loop is single-threaded */
	if (dns_parse_answer(buf, len, &m) < 0) {
		atomic_fetch_add(&d->c.malformed, 1);
		return false;
	}
	atomic_fetch_add(&d->c.answers, 1);
	if (m.naddrs)
		learn(d, pod, &m);
	return true;
}

/* ---------- UDP ---------- */

static void pend_free(struct dns_proxy *d, struct pending *p)
{
	d->pend[p->id] = NULL;
	free(p->query);
	free(p);
	d->npend--;
}

static struct pending *pend_new(struct dns_proxy *d, uint16_t *id)
{
	if (d->npend >= DNS_PENDING_MAX)
		return NULL;
	for (int tries = 0; tries < 64; tries++) {
		uint16_t r;
		if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != sizeof(r))
			r = (uint16_t)rand();
		if (!d->pend[r]) {
			struct pending *p = d->pend[r] = xcalloc(1, sizeof(*p));
			p->used = true;
			p->id = r;
			d->npend++;
			*id = r;
			return p;
		}
	}
	return NULL;
}

static void put_id(uint8_t *msg, uint16_t id)
{
	msg[0] = (uint8_t)(id >> 8);
	msg[1] = (uint8_t)id;
}

static void servfail(struct dns_proxy *d, struct pending *p);

static void udp_query(struct dns_proxy *d, const struct listener *l)
{
	static uint8_t buf[MSG_MAX];
	static struct dns_msg m;
	for (int k = 0; k < 64; k++) {
		struct sockaddr_storage from;
		socklen_t fl = sizeof(from);
		ssize_t n = recvfrom(l->fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fl);
		if (n < 0)
			return;
		atomic_fetch_add(&d->c.queries, 1);
		ip128 pod = sa_ip(&from), up;
		uint16_t id;
		struct pending *p;
		if (dns_parse_query(buf, (size_t)n, &m) < 0 || !dns_allowed(d, pod, PROTO_UDP) ||
		    !upstream(d, !ip_is_v4(pod), &up) || !(p = pend_new(d, &id))) {
			atomic_fetch_add(&d->c.dropped_queries, 1);
			continue;
		}
		p->client_id = m.id;
		p->client = from;
		p->clen = fl;
		p->lfd = l->fd;
		p->pod = pod;
		p->query = xmalloc((size_t)n);
		memcpy(p->query, buf, (size_t)n);
		p->qlen = (size_t)n;
		p->deadline = now_ms() + DNS_UPSTREAM_TIMEOUT_MS;
		put_id(buf, id);
		socklen_t tl = ip_sa(up, 53, &p->up);
		if (sendto(d->up[!ip_is_v4(up)], buf, (size_t)n, 0, (struct sockaddr *)&p->up, tl) < 0)
			servfail(d, p);
	}
}

static void reply_udp(struct pending *p, uint8_t *msg, size_t len)
{
	put_id(msg, p->client_id);
	if (sendto(p->lfd, msg, len, 0, (struct sockaddr *)&p->client, p->clen) < 0)
		log_msg(LOG_DEBUG, "dns", "answering a pod: %s", strerror(errno));
}

static void tcp_reply(struct dns_proxy *d, struct tcp_conn *t, const uint8_t *msg, size_t len);

static void servfail(struct dns_proxy *d, struct pending *p)
{
	uint8_t *out = NULL;
	size_t len = 0;
	atomic_fetch_add(&d->c.servfail, 1);
	if (dns_servfail(p->query, p->qlen, &out, &len) == 0) {
		if (p->tcp)
			tcp_reply(d, p->tcp, out, len);
		else
			reply_udp(p, out, len);
	}
	free(out);
	pend_free(d, p);
}

static void udp_answer(struct dns_proxy *d, int fd)
{
	static uint8_t buf[MSG_MAX];
	for (int k = 0; k < 64; k++) {
		struct sockaddr_storage from;
		socklen_t fl = sizeof(from);
		ssize_t n = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fl);
		if (n < 0)
			return;
		if (n < 12)
			continue;
		struct pending *p = d->pend[(uint16_t)(buf[0] << 8 | buf[1])];
		struct sockaddr_storage want;
		if (!p || p->tcp)
			continue; /* late, or not an answer to us */
		/* from the server asked, port 53: a forged answer must guess the
		 * id, our port and the server (RFC 5452) */
		socklen_t wl = ip_sa(sa_ip(&p->up), 53, &want);
		if (fl != wl || memcmp(&from, &want, wl))
			continue;
		handle_answer(d, p->pod, buf, (size_t)n); /* relayed even when it does not parse */
		reply_udp(p, buf, (size_t)n);
		pend_free(d, p);
	}
}

/* ---------- TCP (pods retrying a truncated answer) ---------- */

static void tcp_reply(struct dns_proxy *d, struct tcp_conn *t, const uint8_t *msg, size_t len)
{
	free(t->out);
	t->out = xmalloc(len + 2);
	t->out[0] = (uint8_t)(len >> 8);
	t->out[1] = (uint8_t)len;
	memcpy(t->out + 2, msg, len);
	t->nout = len + 2;
	t->sent = 0;
	t->busy = false;
	if (t->up >= 0) {
		close(t->up);
		t->up = -1;
	}
	ep_mod(d, t->fd, EPOLLIN | EPOLLOUT);
}

static void tcp_accept(struct dns_proxy *d, const struct listener *l)
{
	for (int k = 0; k < 16; k++) {
		struct sockaddr_storage from;
		socklen_t fl = sizeof(from);
		int fd = accept4(l->fd, (struct sockaddr *)&from, &fl, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		if (d->tcp.n >= DNS_TCP_MAX || ep_add(d, fd, EPOLLIN) < 0) {
			atomic_fetch_add(&d->c.dropped_queries, 1);
			close(fd);
			continue;
		}
		struct tcp_conn *t = xcalloc(1, sizeof(*t));
		t->fd = fd;
		t->up = -1;
		t->pod = sa_ip(&from);
		t->in = xmalloc(MSG_MAX + 2);
		t->deadline = now_ms() + 10000;
		vec_push(&d->tcp, t);
	}
}

/* A whole query from the pod: sent upstream on a new connection. */
static void tcp_forward(struct dns_proxy *d, struct tcp_conn *t)
{
	static struct dns_msg m;
	size_t len = (size_t)t->in[0] << 8 | t->in[1];
	ip128 up;
	atomic_fetch_add(&d->c.queries, 1);
	if (dns_parse_query(t->in + 2, len, &m) < 0 || !dns_allowed(d, t->pod, PROTO_TCP) ||
	    !upstream(d, !ip_is_v4(t->pod), &up)) {
		atomic_fetch_add(&d->c.dropped_queries, 1);
		tcp_close(d, t);
		return;
	}
	struct sockaddr_storage to;
	socklen_t tl = ip_sa(up, 53, &to);
	t->up = ns_socket(d, to.ss_family, SOCK_STREAM);
	if (t->up < 0 || (connect(t->up, (struct sockaddr *)&to, tl) < 0 && errno != EINPROGRESS) ||
	    ep_add(d, t->up, EPOLLOUT) < 0) {
		uint8_t *out = NULL;
		size_t olen = 0;
		atomic_fetch_add(&d->c.servfail, 1);
		if (dns_servfail(t->in + 2, len, &out, &olen) == 0)
			tcp_reply(d, t, out, olen);
		free(out);
		t->nin = 0;
		return;
	}
	free(t->out);
	t->out = xmalloc(len + 2);
	memcpy(t->out, t->in, len + 2);
	t->nout = len + 2;
	t->sent = 0;
	t->busy = true;
	t->up_connected = false;
	t->nupin = 0;
	if (!t->upin)
		t->upin = xmalloc(MSG_MAX + 2);
	t->deadline = now_ms() + DNS_UPSTREAM_TIMEOUT_MS;
	ep_mod(d, t->fd, 0); /* one query at a time */
}

static void tcp_from_pod(struct dns_proxy *d, struct tcp_conn *t)
{
	if (t->nout > t->sent) { /* an answer to write */
		ssize_t w = write(t->fd, t->out + t->sent, t->nout - t->sent);
		if (w < 0 && errno != EAGAIN) {
			tcp_close(d, t);
			return;
		}
		t->sent += w > 0 ? (size_t)w : 0;
		if (t->sent == t->nout) {
			t->nout = t->sent = 0;
			t->nin = 0;
			ep_mod(d, t->fd, EPOLLIN);
		}
		return;
	}
	ssize_t r = read(t->fd, t->in + t->nin, MSG_MAX + 2 - t->nin);
	if (r <= 0) {
		if (r == 0 || errno != EAGAIN)
			tcp_close(d, t);
		return;
	}
	t->nin += (size_t)r;
	t->deadline = now_ms() + 10000;
	if (t->nin >= 2 && t->nin >= 2 + ((size_t)t->in[0] << 8 | t->in[1]))
		tcp_forward(d, t);
}

static void tcp_from_upstream(struct dns_proxy *d, struct tcp_conn *t)
{
	if (!t->up_connected || t->sent < t->nout) {
		int err = 0;
		socklen_t el = sizeof(err);
		getsockopt(t->up, SOL_SOCKET, SO_ERROR, &err, &el);
		ssize_t w = err ? -1 : write(t->up, t->out + t->sent, t->nout - t->sent);
		if (w < 0 && (err || errno != EAGAIN)) {
			size_t len = (size_t)t->in[0] << 8 | t->in[1];
			uint8_t *out = NULL;
			size_t olen = 0;
			atomic_fetch_add(&d->c.servfail, 1);
			if (dns_servfail(t->in + 2, len, &out, &olen) == 0)
				tcp_reply(d, t, out, olen);
			free(out);
			return;
		}
		t->up_connected = true;
		t->sent += w > 0 ? (size_t)w : 0;
		if (t->sent == t->nout)
			ep_mod(d, t->up, EPOLLIN);
		return;
	}
	ssize_t r = read(t->up, t->upin + t->nupin, MSG_MAX + 2 - t->nupin);
	if (r <= 0 && !(r < 0 && errno == EAGAIN)) {
		tcp_close(d, t);
		return;
	}
	t->nupin += r > 0 ? (size_t)r : 0;
	size_t want = t->nupin >= 2 ? 2 + ((size_t)t->upin[0] << 8 | t->upin[1]) : SIZE_MAX;
	if (t->nupin < want)
		return;
	handle_answer(d, t->pod, t->upin + 2, want - 2);
	tcp_reply(d, t, t->upin + 2, want - 2);
}

/* ---------- the second tick: liveness, expiry, timeouts ---------- */

static void tick(struct dns_proxy *d)
{
	uint64_t now = now_ms(), expired = 0;
	char *err = NULL;
	if (d->last_alive && now - d->last_alive >= d->dpc.alive_ms)
		log_msg(LOG_WARN, "dns", "the DNS redirect's liveness was refreshed %llu ms after the last time, its "
			"elements last %u ms: meanwhile pods' DNS went direct, unlearned (the agent was held up)",
			(unsigned long long)(now - d->last_alive), d->dpc.alive_ms);
	if (dp_dns_alive(*d->ctx.dp, *d->ctx.nft, &err) < 0) {
		if (now - d->last_alive_err > 60000) {
			log_msg(LOG_ERROR, "dns",
				"refreshing the DNS redirect: %s (pods' DNS goes direct, unlearned, until it works)", err);
			d->last_alive_err = now;
		}
	} else {
		d->last_alive = now;
	}
	free(err);
	struct vec v = { 0 };
	engine_host_peersets(*d->ctx.e, &v);
	for (size_t i = 0; i < v.n; i++)
		fqdn_set_expire(&((struct ir_peerset *)v.v[i])->learned, now, DNS_FORGET_MS, &expired);
	vec_free(&v);
	atomic_fetch_add(&d->c.expired, expired);
	for (size_t i = 0; i < 65536 && d->npend; i++)
		if (d->pend[i] && !d->pend[i]->tcp && d->pend[i]->deadline <= now)
			servfail(d, d->pend[i]);
	for (size_t i = d->tcp.n; i-- > 0;) {
		struct tcp_conn *t = d->tcp.v[i];
		if (t->deadline > now)
			continue;
		if (t->busy) { /* upstream silent */
			size_t len = (size_t)t->in[0] << 8 | t->in[1];
			uint8_t *out = NULL;
			size_t olen = 0;
			atomic_fetch_add(&d->c.servfail, 1);
			if (dns_servfail(t->in + 2, len, &out, &olen) == 0)
				tcp_reply(d, t, out, olen);
			free(out);
			t->deadline = now + 10000;
		} else {
			tcp_close(d, t);
		}
	}
}

void dns_dispatch(struct dns_proxy *d)
{
	struct epoll_event evs[32];
	int n = epoll_wait(d->ep, evs, 32, 0);
	for (int i = 0; i < n; i++) {
		int fd = evs[i].data.fd;
		bool done = false;
		if (fd == d->timer) {
			uint64_t ticks;
			if (read(fd, &ticks, sizeof(ticks)) > 0)
				tick(d);
			continue;
		}
		for (size_t k = 0; k < d->nlis && !done; k++)
			if (d->lis[k].fd == fd) {
				if (d->lis[k].tcp)
					tcp_accept(d, &d->lis[k]);
				else
					udp_query(d, &d->lis[k]);
				done = true;
			}
		for (int f = 0; f < 2 && !done; f++)
			if (d->up[f] == fd) {
				udp_answer(d, fd);
				done = true;
			}
		for (size_t k = 0; k < d->tcp.n && !done; k++) {
			struct tcp_conn *t = d->tcp.v[k];
			if (t->fd == fd)
				tcp_from_pod(d, t), done = true;
			else if (t->up == fd)
				tcp_from_upstream(d, t), done = true;
		}
	}
}

/* ---------- restart: learned addresses read back ---------- */

static ip128 key_ip(const uint8_t *k, uint32_t len)
{
	if (len == 4)
		return ip_from_v4((uint32_t)k[0] << 24 | (uint32_t)k[1] << 16 | (uint32_t)k[2] << 8 | k[3]);
	ip128 a = { 0, 0 };
	for (int i = 0; i < 8; i++) {
		a.hi = a.hi << 8 | k[i];
		a.lo = a.lo << 8 | k[8 + i];
	}
	return a;
}

struct restore_ctx {
	struct dns_proxy *d;
	struct vec hosts; /* struct ir_peerset* */
	size_t n;
};

static void restore_one(const struct nft_timed_elem *x, void *arg)
{
	struct restore_ctx *c = arg;
	if (strncmp(x->set_comment, "host ", 5) || !x->expires_ms || (x->key_len != 4 && x->key_len != 16))
		return;
	for (size_t i = 0; i < c->hosts.n; i++) {
		struct ir_peerset *ps = c->hosts.v[i];
		if (strcmp(ps->host, x->set_comment + 5))
			continue;
		uint64_t now = now_ms();
		ip128 a = key_ip(x->key, x->key_len);
		if (fqdn_set_learn(&ps->learned, a, *x->comment ? x->comment : ps->host, now, x->expires_ms,
				   c->d->max_per_name) >= 0) {
			struct fqdn_addr *f = (struct fqdn_addr *)fqdn_set_find(&ps->learned, a);
			/* learned when the answer came: timeout minus what is left */
			if (x->timeout_ms > x->expires_ms && now > x->timeout_ms - x->expires_ms)
				f->learned_ms = f->seen_ms = now - (x->timeout_ms - x->expires_ms);
			c->n++;
		}
	}
}

void dns_restore(struct dns_proxy *d)
{
	if (!d || d->restored)
		return;
	d->restored = true;
	struct restore_ctx c = { d, { 0 }, 0 };
	engine_host_peersets(*d->ctx.e, &c.hosts);
	int rc = c.hosts.n ? nft_timed_elems(*d->ctx.nft, dp_table(*d->ctx.dp), restore_one, &c) : 0;
	if (rc < 0)
		log_msg(LOG_WARN, "dns", "reading learned addresses back: %s (pods resolve them again)", strerror(-rc));
	else if (c.n)
		log_msg(LOG_INFO, "dns", "%zu learned addresses read back from the kernel, with the time they have left",
			c.n);
	vec_free(&c.hosts);
}

/* ---------- what people see ---------- */

static const char *observed_name(const struct dns_proxy *d, ip128 pod, ip128 a, uint64_t now, uint64_t *seen)
{
	if (!d)
		return NULL;
	for (size_t k = 0; k < OBSERVED_MAX && k < d->nobs; k++) {
		const struct observed *o = &d->obs[(d->nobs - 1 - k) % OBSERVED_MAX];
		if (ip_eq(o->a, a) && ip_eq(o->pod, pod) && o->expires_ms > now) {
			if (seen)
				*seen = o->seen_ms;
			return o->name;
		}
	}
	return NULL;
}

void dns_note_drop(struct dns_proxy *d, ip128 src, ip128 dst)
{
	if (d && observed_name(d, src, dst, now_ms(), NULL))
		atomic_fetch_add(&d->c.not_allowed_drops, 1);
}

bool dns_group_has_hosts(const struct ir_group *g)
{
	for (size_t k = 0; g && k < g->rules.n; k++) {
		const struct ir_rule *r = g->rules.v[k];
		if (r->peers && r->peers->host)
			return true;
	}
	return false;
}

static void groups_of(const struct engine *e, struct vec *out)
{
	struct vec gs = { 0 };
	engine_groups(e, &gs);
	for (size_t i = 0; i < gs.n; i++) {
		const struct ir_group *g = gs.v[i];
		for (size_t k = 0; g->dir == DIR_EGRESS && k < g->rules.n; k++) {
			const struct ir_rule *r = g->rules.v[k];
			if (r->peers && r->peers->host) {
				vec_push(out, (void *)g);
				break;
			}
		}
	}
	vec_free(&gs);
}

json_t *dns_status(struct dns_proxy *d, char **text)
{
	struct sbuf b = { 0 };
	json_t *names = json_array(), *groups = json_array();
	uint64_t now = now_ms();
	struct vec v = { 0 }, gs = { 0 };
	const struct engine *e = *d->ctx.e;
	dns_status_line(d, &b);
	engine_host_peersets(e, &v);
	for (size_t i = 0; i < v.n; i++) {
		const struct ir_peerset *ps = v.v[i];
		struct vec all = { 0 };
		char set4[32], set6[32];
		dp_host_set_name(ps, false, set4, sizeof(set4));
		dp_host_set_name(ps, true, set6, sizeof(set6));
		fqdn_set_list(&ps->learned, &all);
		json_t *addrs = json_array();
		sbuf_addf(&b, "host %s (sets %s, %s): %zu addresses live\n", ps->host, set4, set6,
			  fqdn_set_live_count(&ps->learned, now));
		for (size_t k = 0; k < all.n; k++) {
			const struct fqdn_addr *x = all.v[k];
			char a[IP_STRLEN];
			bool live = x->expires_ms > now;
			ip_format(x->a, a, sizeof(a));
			long long left = live ? (long long)(x->expires_ms - now) : -(long long)(now - x->expires_ms);
			json_array_append_new(addrs, json_pack("{s:s, s:s, s:b, s:I, s:I}", "address", a, "name", x->name,
							       "live", live, "learned_s_ago",
							       (json_int_t)((now - x->learned_ms) / 1000), "ms_left",
							       (json_int_t)left));
			sbuf_addf(&b, "  %-39s %s, learned %llu s ago, %s %.1f s%s\n", a, x->name,
				  (unsigned long long)((now - x->learned_ms) / 1000), live ? "expires in" : "expired",
				  (double)(live ? left : -left) / 1000, live ? "" : " ago (remembered for established flows)");
		}
		json_array_append_new(names, json_pack("{s:s, s:s, s:s, s:o}", "host", ps->host, "set_v4", set4, "set_v6", set6,
						       "addresses", addrs));
		vec_free(&all);
	}
	groups_of(e, &gs);
	for (size_t i = 0; i < gs.n; i++) {
		const struct ir_group *g = gs.v[i];
		char chain[32];
		json_t *hosts = json_array(), *pods = json_array();
		dp_group_chain(g, chain, sizeof(chain));
		sbuf_addf(&b, "group %s:", chain);
		for (size_t k = 0; k < g->rules.n; k++) {
			const struct ir_rule *r = g->rules.v[k];
			if (r->peers && r->peers->host) {
				json_array_append_new(hosts, json_string(r->peers->host));
				sbuf_addf(&b, " %s", r->peers->host);
			}
		}
		struct vec lp = { 0 };
		engine_local_pods(e, &lp);
		sbuf_add(&b, "; pods");
		for (size_t k = 0; k < lp.n; k++) {
			const struct pod *p = lp.v[k];
			if (p->group[DIR_EGRESS] == g) {
				json_array_append_new(pods, json_sprintf("%s/%s", p->spec->ns, p->spec->name));
				sbuf_addf(&b, " %s/%s", p->spec->ns, p->spec->name);
			}
		}
		sbuf_add(&b, "\n");
		vec_free(&lp);
		json_array_append_new(groups, json_pack("{s:s, s:o, s:o}", "chain", chain, "hosts", hosts, "pods", pods));
	}
	vec_free(&gs);
	vec_free(&v);
	*text = sbuf_steal(&b);
	return json_pack("{s:b, s:o, s:o}", "redirecting", dp_dns_redirecting(*d->ctx.dp), "names", names, "groups",
			 groups);
}

void dns_status_line(struct dns_proxy *d, struct sbuf *b)
{
	if (!d) {
		sbuf_add(b, "DNS proxy: off (dnsProxyPort 0): host rules admit nothing\n");
		return;
	}
	sbuf_addf(b, "DNS proxy: port %u, %s; %llu queries, %llu answers, %llu addresses learned, %llu expired, "
		     "%llu refused (pod %llu, forbidden %llu, full %llu), %llu servfail\n", d->dpc.port,
		  dp_dns_redirecting(*d->ctx.dp) ? "redirecting pods with host rules" : "no local pod has host rules",
		  (unsigned long long)d->c.queries, (unsigned long long)d->c.answers, (unsigned long long)d->c.learned,
		  (unsigned long long)d->c.expired,
		  (unsigned long long)(d->c.refused[R_POD] + d->c.refused[R_FORBIDDEN] + d->c.refused[R_FULL]),
		  (unsigned long long)d->c.refused[R_POD], (unsigned long long)d->c.refused[R_FORBIDDEN],
		  (unsigned long long)d->c.refused[R_FULL], (unsigned long long)d->c.servfail);
}

void dns_metrics(struct dns_proxy *d, struct sbuf *b)
{
	if (!d)
		return;
	sbuf_addf(b, "# HELP corral_dns_queries_total DNS queries of pods with host rules through the proxy.\n"
		     "# TYPE corral_dns_queries_total counter\ncorral_dns_queries_total %llu\n"
		     "# HELP corral_dns_answers_total Answers seen (parsed) from the cluster DNS.\n"
		     "# TYPE corral_dns_answers_total counter\ncorral_dns_answers_total %llu\n"
		     "# HELP corral_dns_answers_malformed_total Answers ldns could not parse (relayed, nothing learned).\n"
		     "# TYPE corral_dns_answers_malformed_total counter\ncorral_dns_answers_malformed_total %llu\n"
		     "# HELP corral_dns_addresses_learned_total Addresses added to a host rule's set.\n"
		     "# TYPE corral_dns_addresses_learned_total counter\ncorral_dns_addresses_learned_total %llu\n"
		     "# HELP corral_dns_addresses_refreshed_total Addresses an answer gave again (timeout renewed).\n"
		     "# TYPE corral_dns_addresses_refreshed_total counter\ncorral_dns_addresses_refreshed_total %llu\n"
		     "# HELP corral_dns_addresses_expired_total Learned addresses whose answer's time ran out.\n"
		     "# TYPE corral_dns_addresses_expired_total counter\ncorral_dns_addresses_expired_total %llu\n",
		  (unsigned long long)d->c.queries, (unsigned long long)d->c.answers, (unsigned long long)d->c.malformed,
		  (unsigned long long)d->c.learned, (unsigned long long)d->c.refreshed, (unsigned long long)d->c.expired);
	sbuf_add(b, "# HELP corral_dns_addresses_refused_total Addresses answers gave that were not learned, by reason.\n"
		    "# TYPE corral_dns_addresses_refused_total counter\n");
	for (int r = 0; r < R_COUNT; r++)
		sbuf_addf(b, "corral_dns_addresses_refused_total{reason=\"%s\"} %llu\n", refuse_name[r],
			  (unsigned long long)d->c.refused[r]);
	sbuf_addf(b, "corral_dns_addresses_refused_total{reason=\"answer too long\"} %llu\n"
		     "# HELP corral_dns_servfail_total Queries answered SERVFAIL (the cluster DNS did not answer).\n"
		     "# TYPE corral_dns_servfail_total counter\ncorral_dns_servfail_total %llu\n"
		     "# HELP corral_dns_queries_dropped_total Queries not forwarded (unreadable, not allowed, over bounds).\n"
		     "# TYPE corral_dns_queries_dropped_total counter\ncorral_dns_queries_dropped_total %llu\n"
		     "# HELP corral_dns_kernel_errors_total Learned addresses the kernel refused (written at the next sync).\n"
		     "# TYPE corral_dns_kernel_errors_total counter\ncorral_dns_kernel_errors_total %llu\n"
		     "# HELP corral_dns_drops_not_allowed_total Drops to an address DNS gave the pod for a name no host rule allows.\n"
		     "# TYPE corral_dns_drops_not_allowed_total counter\ncorral_dns_drops_not_allowed_total %llu\n",
		  (unsigned long long)d->c.over, (unsigned long long)d->c.servfail, (unsigned long long)d->c.dropped_queries,
		  (unsigned long long)d->c.kernel_errors, (unsigned long long)d->c.not_allowed_drops);
}

/* ---------- explain ---------- */

static void line(FILE *text, json_t *arr, char *s)
{
	if (text)
		fprintf(text, "  dns: %s\n", s);
	json_array_append_new(arr, json_string(s));
	free(s);
}

void dns_explain(struct dns_proxy *d, const struct engine *e, const struct endpoint *src, const struct endpoint *dst,
		 const struct verdict *v, FILE *text, json_t *o)
{
	const struct dir_verdict *s = &v->side[DIR_EGRESS];
	json_t *arr = json_array();
	uint64_t now = now_ms(), seen = 0;
	char a[IP_STRLEN];
	bool any = false;
	ip_format(dst->addr, a, sizeof(a));
	if (text)
		fprintf(text, "\nDNS-aware egress for %s:\n", a);
	for (uint32_t i = 0; s->group && i < s->nchecks; i++) {
		const struct ir_rule *r = s->checks[i].rule;
		if (!r->peers || !r->peers->host)
			continue;
		any = true;
		const struct fqdn_addr *x = fqdn_set_find(&r->peers->learned, dst->addr);
		char *what = explain_rule(r);
		if (x && x->expires_ms > now)
			line(text, arr, xasprintf("%s: %s learned %llu s ago from an answer for %s, %.1f s left%s", what, a,
						  (unsigned long long)((now - x->learned_ms) / 1000), x->name,
						  (double)(x->expires_ms - now) / 1000,
						  s->checks[i].port_ok ? "" : " (but not on this port)"));
		else if (x)
			line(text, arr, xasprintf("%s: %s was learned for %s but expired %.1f s ago: new flows need the name "
						  "resolved again", what, a, x->name, (double)(now - x->expires_ms) / 1000));
		else
			line(text, arr, xasprintf("%s: %s is not an address DNS answered for %s (%zu live addresses)", what, a,
						  r->peers->host, fqdn_set_live_count(&r->peers->learned, now)));
		free(what);
	}
	const char *obs = observed_name(d, src->addr, dst->addr, now, &seen);
	if (obs)
		line(text, arr, xasprintf("%s was answered to this pod for %s %llu s ago: no host rule of the pod allows "
					  "that name", a, obs, (unsigned long long)((now - seen) / 1000)));
	enum refuse why;
	if (d && !dst->pod && range_set_contains(&d->forbidden, dst->addr))
		line(text, arr, xasprintf("%s is in dnsForbiddenRanges: no host rule ever learns it", a));
	else if (d && dst->pod && forbidden(d, dst->addr, &why))
		line(text, arr, xasprintf("%s is a pod's address: host rules never learn pod addresses (name the "
					  "application instead)", a));
	if (!any && !obs && text)
		fprintf(text, "  dns: no host rule at %s's egress\n", src->pod ? src->pod->spec->name : a);
	json_object_set_new(o, "dns", arr);
}

int dns_name_addr(const struct engine *e, const struct endpoint *src, const char *name, ip128 *out, char **note)
{
	const struct ir_group *g = src->pod ? src->pod->group[DIR_EGRESS] : NULL;
	uint64_t now = now_ms();
	bool pattern = false;
	*note = NULL;
	for (size_t i = 0; g && i < g->rules.n; i++) {
		const struct ir_rule *r = g->rules.v[i];
		if (!r->peers || !r->peers->host || !fqdn_match(r->peers->host, name))
			continue;
		pattern = true;
		struct vec all = { 0 };
		fqdn_set_list(&r->peers->learned, &all);
		const struct fqdn_addr *best = NULL;
		for (size_t k = 0; k < all.n; k++) {
			const struct fqdn_addr *x = all.v[k];
			if (!strcmp(x->name, name) && x->expires_ms > now && (!best || x->seen_ms > best->seen_ms))
				best = x;
		}
		vec_free(&all);
		if (best) {
			*out = best->a;
			return 0;
		}
	}
	*note = pattern ? xasprintf("no live address learned for %s: the pod has not resolved it through the cluster DNS "
				    "lately (or its answers expired)", name)
			: xasprintf("no host rule of the pod's egress matches %s: its addresses are dropped", name);
	(void)e;
	return -ENOENT;
}
