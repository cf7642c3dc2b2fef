/* Which addresses the bridge table binds to which pod port (bridge.h,
 * dp_bind_ports). The addresses of a bridged pod are read from its own
 * namespace, where a pod with CAP_NET_ADMIN configures what it likes:
 * what it says is checked against what the API says and against the
 * other ports before it is believed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/dataplane/bridge.h"
#include "agent/nl/link.h"

static ip128 addr_ip(const struct dp_port_addr *a)
{
	return ip_from_bytes(a->a, a->family == 4);
}

static bool link_local(const struct dp_port_addr *a)
{
	return a->family == 6 && a->a[0] == 0xfe && (a->a[1] & 0xc0) == 0x80;
}

/* The distinct local pods that claim an address of port p in the API:
 * the count (2 stands for "several") and the first in who. */
static size_t port_pods(const struct engine *e, const struct link_port *p, const struct pod **who)
{
	size_t n = 0;
	for (size_t j = 0; j < p->naddr && n < 2; j++) {
		if (link_local((const struct dp_port_addr *)&p->addr[j]))
			continue;
		struct pod *const *pods;
		size_t k = engine_addr_claims(e, addr_ip((const struct dp_port_addr *)&p->addr[j]), &pods);
		for (size_t c = 0; c < k && n < 2; c++) {
			if (!pods[c]->local || (n && *who == pods[c]))
				continue;
			if (!n)
				*who = pods[c];
			n++;
		}
	}
	return n;
}

/* Every bridged port's addresses with their port, sorted by address: the
 * ports that carry one address are one run (no scan of every port for
 * every address: this runs after each transaction). */
struct carried {
	struct link_addr a;
	size_t port;
};

static int carried_cmp(const void *x, const void *y)
{
	const struct carried *p = x, *q = y;
	if (p->a.family != q->a.family)
		return p->a.family - q->a.family;
	int c = memcmp(p->a.a, q->a.a, sizeof(p->a.a));
	return c ? c : (p->port > q->port) - (p->port < q->port);
}

static void note(struct dp_bind *b, const char *port, const struct dp_port_addr *a, const char *why)
{
	char s[IP_STRLEN];
	ip_format(addr_ip(a), s, sizeof(s));
	vec_push(&b->notes, xasprintf("port %s: %s not bound: %s", port, s, why));
}

void dp_bind_ports(struct dp_bind *b, const struct engine *e, const struct link_port *lp, size_t n,
		   const struct link_other *other, size_t nother)
{
	memset(b, 0, sizeof(*b));
	size_t total = 0;
	for (size_t i = 0; i < n; i++)
		total += lp[i].kind == LINK_BRIDGED ? lp[i].naddr : 0;
	b->ports = xcalloc(n + nother + 1, sizeof(*b->ports));
	b->addrs = xcalloc(total + 1, sizeof(*b->addrs));
	/* the identity of each bridged port: the local pods its addresses
	 * belong to in the API (none for a new pod the API has not placed) */
	const struct pod **who = xcalloc(n + 1, sizeof(*who));
	size_t *nwho = xcalloc(n + 1, sizeof(*nwho));
	struct carried *all = xcalloc(total + 1, sizeof(*all));
	size_t nall = 0;
	for (size_t i = 0; i < n; i++) {
		if (lp[i].kind != LINK_BRIDGED)
			continue;
		nwho[i] = port_pods(e, &lp[i], &who[i]);
		for (size_t j = 0; j < lp[i].naddr; j++) {
			all[nall].a = lp[i].addr[j];
			all[nall++].port = i;
		}
	}
	qsort(all, nall, sizeof(*all), carried_cmp);
	size_t used = 0;
	for (size_t i = 0; i < n; i++) {
		const struct link_port *p = &lp[i];
		if (p->kind != LINK_BRIDGED)
			continue;
		struct dp_port *d = &b->ports[b->n++];
		d->name = p->name;
		d->addr = b->addrs + used;
		bool open = nwho[i] == 1 && !who[i]->group[DIR_INGRESS], any = false;
		for (size_t j = 0; j < p->naddr; j++) {
			const struct dp_port_addr *a = (const struct dp_port_addr *)&p->addr[j];
			/* the other bridged ports that carry it, and how many of those
			 * the API identifies as its owner's alone */
			size_t carriers = 0, owners = 0;
			ip128 ip = addr_ip(a);
			struct pod *const *pods;
			size_t k = link_local(a) ? 0 : engine_addr_claims(e, ip, &pods);
			const struct pod *local = NULL;
			bool remote = k > 0;
			for (size_t c = 0; c < k; c++)
				if (pods[c]->local) {
					local = pods[c];
					remote = false;
				}
			struct carried key = { p->addr[j], i };
			const struct carried *at = bsearch(&key, all, nall, sizeof(*all), carried_cmp);
			const struct carried *lo = at, *hi = at;
			while (lo > all && lo[-1].a.family == a->family && !memcmp(lo[-1].a.a, a->a, sizeof(lo->a.a)))
				lo--;
			while (hi + 1 < all + nall && hi[1].a.family == a->family && !memcmp(hi[1].a.a, a->a, sizeof(hi->a.a)))
				hi++;
			for (const struct carried *c = lo; at && c <= hi; c++) {
				if (c->port == i)
					continue;
				carriers++;
				owners += local && nwho[c->port] == 1 && who[c->port] == local;
			}
			const char *why = NULL;
			if (remote)
				why = "the API gives it to a pod of another node";
			else if (local && nwho[i] > 1)
				why = "the port carries the addresses of several pods";
			else if (carriers && !local)
				why = "another port carries it too";
			else if (carriers && owners)
				why = "another port carries it too, and the API places its pod there as well";
			if (why) {
				note(b, p->name, a, why);
				open = false;
				continue;
			}
			b->addrs[used++] = *a;
			d->naddr++;
			if (!link_local(a)) {
				any = true;
				if (!local)
					open = false; /* an address the API has not explained (provisional) */
			}
		}
		d->open = open && any;
	}
	for (size_t i = 0; i < nother; i++) {
		struct dp_port *d = &b->ports[b->n++];
		d->name = other[i].name;
		d->other = true;
	}
	free(all);
	free(who);
	free(nwho);
}

void dp_bind_free(struct dp_bind *b)
{
	for (size_t i = 0; i < b->notes.n; i++)
		free(b->notes.v[i]);
	vec_free(&b->notes);
	free(b->ports);
	free(b->addrs);
	memset(b, 0, sizeof(*b));
}
