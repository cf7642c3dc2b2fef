/* The render stage: the engine's IR -> the desired ruleset (agent/
 * dataplane/ruleset.h), sharing the mirror's set objects where nothing
 * changed. Pure: no socket, no kernel. The passes of a sync are in
 * dataplane.c; the diff is plan.c. */
#define _GNU_SOURCE /* qsort_r */
#include "agent/dataplane/dp-private.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool capent_eq(const void *item, const void *key)
{
	return !strcmp(((const struct capent *)item)->base, key);
}

/* Capacity of a hash set: twice its elements rounded up to a power of two,
 * kept while the set stays between an eighth and all of it, so that a
 * set is renamed (recreated larger or smaller) only on real growth. */
static uint32_t dp_capacity(struct dp *dp, const char *base, size_t n, bool peek)
{
	struct capent *c = htab_find(&dp->caps, hash_str(base), capent_eq, base);
	if (peek)
		return c ? c->cap : 0;
	if (!c) {
		c = xcalloc(1, sizeof(*c));
		c->base = xstrdup(base);
		htab_insert(&dp->caps, hash_str(base), c);
	}
	if (!c->cap || n > c->cap || (c->cap > 16 && n * 8 < c->cap)) {
		uint32_t cap = 16;
		while (cap < 2 * n && cap < (1u << 30))
			cap *= 2;
		c->cap = cap;
	}
	c->epoch = dp->epoch;
	return c->cap;
}

struct portkey {
	size_t n;
	const uint8_t *keys;
};

static uint64_t portkey_hash(const struct portkey *k)
{
	return hash_bytes(k->keys, k->n * 16, 0x636f7272616cULL);
}

static bool portent_eq(const void *item, const void *key)
{
	const struct portent *p = item;
	const struct portkey *k = key;
	return p->n == k->n && !memcmp(p->keys, k->keys, k->n * 16);
}

/* The interned id of a port set's content (merged, sorted elements). */
static uint32_t dp_port_id(struct dp *dp, const uint8_t *keys, size_t n)
{
	struct portkey k = { n, keys };
	uint64_t h = portkey_hash(&k);
	struct portent *p = htab_find(&dp->ports, h, portent_eq, &k);
	if (!p) {
		p = xcalloc(1, sizeof(*p));
		p->id = ++dp->next_port;
		p->n = n;
		p->keys = xmalloc(n * 16);
		memcpy(p->keys, keys, n * 16);
		htab_insert(&dp->ports, h, p);
	}
	p->epoch = dp->epoch;
	return p->id;
}

/* Forgets port contents the last render did not use. */
static void dp_ports_prune(struct dp *dp)
{
	struct vec gone = { 0 };
	struct portent *p;
	htab_foreach(&dp->ports, p) if (p->epoch != dp->epoch) vec_push(&gone, p);
	for (size_t i = 0; i < gone.n; i++) {
		p = gone.v[i];
		struct portkey k = { p->n, p->keys };
		htab_remove(&dp->ports, portkey_hash(&k), portent_eq, &k);
		free(p->keys);
		free(p);
	}
	vec_free(&gone);
}

static void dp_capacity_touch(struct dp *dp, const char *base)
{
	struct capent *c = htab_find(&dp->caps, hash_str(base), capent_eq, base);
	if (c)
		c->epoch = dp->epoch;
}

/* Forgets the capacities of sets the last render did not produce. */
static void dp_capacity_prune(struct dp *dp)
{
	struct vec gone = { 0 };
	struct capent *c;
	htab_foreach(&dp->caps, c) if (c->epoch != dp->epoch) vec_push(&gone, c);
	for (size_t i = 0; i < gone.n; i++) {
		c = gone.v[i];
		htab_remove(&dp->caps, hash_str(c->base), capent_eq, c->base);
		free(c->base);
		free(c);
	}
	vec_free(&gone);
}

/* ---------- element buffers ---------- */

struct ebuf {
	size_t kl, n, cap;
	uint8_t *k; /* n * 2 * kl */
};

static uint8_t *ebuf_push(struct ebuf *b)
{
	if (b->n == b->cap) {
		b->cap = b->cap ? 2 * b->cap : 16;
		b->k = xrealloc(b->k, b->cap * 2 * b->kl);
	}
	uint8_t *p = b->k + b->n++ * 2 * b->kl;
	memset(p, 0, 2 * b->kl);
	return p;
}

static int elem_cmp(const void *a, const void *b, void *kl)
{
	return memcmp(a, b, 2 * *(size_t *)kl);
}

/* Sorts and drops duplicates; with merge, also joins overlapping and
 * adjacent ranges of the last field (a port) under an equal prefix. */
static void ebuf_sort_merge(struct ebuf *b, size_t prefix, bool merge)
{
	size_t kl = b->kl, out = 0;
	if (b->n < 2) /* an empty buffer has no array: qsort_r's base must not be NULL */
		return;
	qsort_r(b->k, b->n, 2 * kl, elem_cmp, &kl);
	for (size_t i = 0; i < b->n; i++) {
		uint8_t *cur = b->k + i * 2 * kl;
		if (out && !merge && !memcmp(b->k + (out - 1) * 2 * kl, cur, 2 * kl))
			continue;
		if (out && merge) {
			uint8_t *last = b->k + (out - 1) * 2 * kl;
			unsigned lhi = (unsigned)last[kl + prefix] << 8 | last[kl + prefix + 1];
			unsigned clo = (unsigned)cur[prefix] << 8 | cur[prefix + 1];
			unsigned chi = (unsigned)cur[kl + prefix] << 8 | cur[kl + prefix + 1];
			if (!memcmp(last, cur, prefix) && clo <= lhi + 1) {
				if (chi > lhi) {
					last[kl + prefix] = (uint8_t)(chi >> 8);
					last[kl + prefix + 1] = (uint8_t)chi;
				}
				continue;
			}
		}
		if (out != i)
			memmove(b->k + out * 2 * kl, cur, 2 * kl);
		out++;
	}
	b->n = out;
}

static void put_ip(uint8_t *k, ip128 a, bool v4)
{
	if (v4) {
		uint32_t v = ip_v4(a);
		k[0] = (uint8_t)(v >> 24), k[1] = (uint8_t)(v >> 16), k[2] = (uint8_t)(v >> 8), k[3] = (uint8_t)v;
		return;
	}
	for (int i = 0; i < 8; i++) {
		k[i] = (uint8_t)(a.hi >> (56 - 8 * i));
		k[8 + i] = (uint8_t)(a.lo >> (56 - 8 * i));
	}
}

static struct rs_set *set_new(const char *name, enum rs_key key, struct ebuf *b)
{
	struct rs_set *s = rs_set_new(name, key);
	if (b) {
		s->n = b->n;
		s->keys = b->k;
		b->k = NULL;
		b->n = b->cap = 0;
	}
	return s;
}

/* ---------- render ---------- */

struct rctx {
	struct dp *dp;
	const struct engine *e;
	struct ruleset *rs;
	const struct ruleset *reuse; /* mirror: peer sets not dirty are shared */
	const struct ptrset *dirty;  /* dirty peer sets */
	struct htab names;           /* struct rs_set* by name, while building */
	struct htab pscache;         /* struct pscache by peer set */
	struct vec locals;           /* struct pod* on this node */
	struct vec all;              /* every pod, filled on demand */
	bool quarantine[DIR_COUNT];  /* some local address is quarantined */
	bool untracked;              /* the untracked_tcp chain is made */
	uint64_t elems;
};

static bool set_name_eq(const void *item, const void *key)
{
	return !strcmp(((const struct rs_set *)item)->name, key);
}

static struct rs_set *rc_find(struct rctx *c, const char *name)
{
	return htab_find(&c->names, hash_str(name), set_name_eq, name);
}

static void rc_add(struct rctx *c, struct rs_set *s)
{
	if (rc_find(c, s->name)) {
		/* names are unique by construction (see ruleset.h); two sets
		 * under one name would let one rule match another's elements */
		fprintf(stderr, "corral: internal error: two sets named %s in one ruleset\n", s->name);
		abort();
	}
	htab_insert(&c->names, hash_str(s->name), s);
	vec_push(&c->rs->sets, s);
	c->elems += s->n;
}

static int ip_cmp_q(const void *a, const void *b)
{
	return ip_cmp(*(const ip128 *)a, *(const ip128 *)b);
}

static bool ip_succ(ip128 a, ip128 *out)
{
	out->lo = a.lo + 1;
	out->hi = a.hi + (out->lo == 0);
	return !(a.hi == UINT64_MAX && a.lo == UINT64_MAX);
}

/* Sorts ranges by their start (equal starts in any order): a radix sort,
 * a byte at a time from the lowest, skipping bytes every start shares (the
 * v4-mapped prefix: four passes for IPv4 pods). A peer set with ipBlocks
 * is listed whole at every change of one of its pods, and qsort's
 * comparisons of up to 150,000 addresses were most of a pod event's p99. */
size_t dp_radix_min = 64;

void dp_ranges_sort(struct ip_range *r, size_t n)
{
	if (n < dp_radix_min) {
		qsort(r, n, sizeof(*r), ip_cmp_q);
		return;
	}
	size_t(*count)[256] = xcalloc(16, sizeof(*count));
	for (size_t i = 0; i < n; i++)
		for (int d = 0; d < 16; d++)
			count[d][(d < 8 ? r[i].lo.lo >> (8 * d) : r[i].lo.hi >> (8 * (d - 8))) & 0xff]++;
	struct ip_range *tmp = xmalloc(n * sizeof(*tmp)), *from = r, *to = tmp;
	for (int d = 0; d < 16; d++) {
		size_t *c = count[d], at = 0;
		int b = 0;
		while (b < 256 && c[b] != n)
			b++;
		if (b < 256)
			continue; /* one value for every start: nothing to order */
		for (b = 0; b < 256; b++) {
			size_t k = c[b];
			c[b] = at;
			at += k;
		}
		for (size_t i = 0; i < n; i++) {
			uint64_t w = d < 8 ? from[i].lo.lo >> (8 * d) : from[i].lo.hi >> (8 * (d - 8));
			to[c[w & 0xff]++] = from[i];
		}
		struct ip_range *x = from;
		from = to, to = x;
	}
	if (from != r)
		memcpy(r, from, n * sizeof(*r));
	free(tmp);
	free(count);
}

/* Peer set elements: member pods' addresses (members) and the ranges
 * (interval), merged into disjoint ranges (the kernel does not merge),
 * split by family. Without ranges (interval false) the addresses stay
 * single keys for a hash. A peer set with both is two pairs of sets
 * (peer_sets): its ranges alone, its pods alone. */
static void peer_elems(const struct engine *e, const struct ir_peerset *ps, bool members, bool interval,
		       struct ebuf *v4, struct ebuf *v6)
{
	size_t na = 0, cap = (members ? ptrset_count(&ps->members) * 2 : 0) + (interval ? ps->ranges.n * 2 : 0);
	struct ip_range *r = xmalloc((cap ? cap : 1) * sizeof(*r));
	struct pod *p;
	if (members) {
		htab_foreach(&ps->members.h, p) {
			if (!p->active)
				continue;
			/* only addresses the pod owns: not one quarantined (engine.h) */
			for (uint32_t i = 0; i < p->spec->naddr; i++)
				if (engine_pod_by_addr(e, p->spec->addr[i]) == p)
					r[na].lo = r[na].hi = p->spec->addr[i], na++;
		}
	}
	for (size_t i = 0; interval && i < ps->ranges.n; i++)
		r[na++] = ps->ranges.r[i];
	dp_ranges_sort(r, na);
	size_t out = 0;
	for (size_t i = 0; i < na; i++) {
		ip128 next;
		if (!interval) {
			if (!out || !ip_eq(r[out - 1].lo, r[i].lo))
				r[out++] = r[i];
			continue;
		}
		if (out && ip_succ(r[out - 1].hi, &next) && ip_cmp(r[i].lo, next) <= 0) {
			if (ip_cmp(r[i].hi, r[out - 1].hi) > 0)
				r[out - 1].hi = r[i].hi;
			continue;
		}
		if (out && !ip_succ(r[out - 1].hi, &next))
			continue; /* the previous range reaches the top */
		r[out++] = r[i];
	}
	for (size_t i = 0; i < out; i++) {
		/* ranges never straddle the v4-mapped block except a v6 range
		 * covering it entirely: clip to the family */
		ip128 v4lo = ip_from_v4(0), v4hi = ip_from_v4(UINT32_MAX);
		ip128 lo = r[i].lo, hi = r[i].hi;
		if (ip_cmp(hi, v4lo) >= 0 && ip_cmp(lo, v4hi) <= 0) {
			uint8_t *k = ebuf_push(v4);
			put_ip(k, ip_cmp(lo, v4lo) < 0 ? v4lo : lo, true);
			put_ip(k + 4, ip_cmp(hi, v4hi) > 0 ? v4hi : hi, true);
		}
		if (ip_cmp(lo, v4lo) < 0) {
			uint8_t *k = ebuf_push(v6);
			ip128 top = ip_cmp(hi, v4lo) < 0 ? hi : (ip128){ v4lo.hi, v4lo.lo - 1 };
			put_ip(k, lo, false);
			put_ip(k + 16, top, false);
		}
		if (ip_cmp(hi, v4hi) > 0) {
			uint8_t *k = ebuf_push(v6);
			ip128 bot = ip_cmp(lo, v4hi) > 0 ? lo : (ip128){ v4hi.hi, v4hi.lo + 1 };
			put_ip(k, bot, false);
			put_ip(k + 16, hi, false);
		}
	}
	free(r);
}

/* A hash set named base_c<capacity>, or an interval set named base. */
static struct rs_set *sized_set(struct rctx *c, const char *base, enum rs_key key, bool interval, struct ebuf *b)
{
	char name[96];
	uint32_t cap = interval ? 0 : dp_capacity(c->dp, base, b->n, false);
	if (interval)
		snprintf(name, sizeof(name), "%s", base);
	else
		snprintf(name, sizeof(name), "%s_c%u", base, cap);
	struct rs_set *s = set_new(name, key, b);
	s->interval = interval;
	s->size = cap;
	rc_add(c, s);
	return s;
}

/* The sets a rule's peers match, by family: s the pods' (a hash) or,
 * for peers with ranges only, the ranges' (an interval set); r, for
 * peers with both, the ranges', a rule for each (peer_sets). */
struct pscache {
	const struct ir_peerset *ps;
	struct rs_set *s[2]; /* IPv4, IPv6 */
	struct rs_set *r[2]; /* IPv4, IPv6; or NULL */
};

static bool pscache_eq(const void *item, const void *key)
{
	return ((const struct pscache *)item)->ps == key;
}

static char *clip(char *s);

void dp_host_set_name(const struct ir_peerset *ps, bool v6, char *buf, size_t len)
{
	snprintf(buf, len, "h%u_%d", ps->id, v6 ? 6 : 4);
}

/* A host rule's addresses: a timeout set per family holding what DNS
 * answers gave for its name, each element with the time its answer has
 * left (ruleset.h). The elements are written when the set is made (a
 * full replace, or a new rule); afterwards the DNS proxy adds them. */
static struct rs_set *host_set(struct rctx *c, const struct ir_peerset *ps, bool v6, uint64_t now)
{
	char name[32];
	struct vec all = { 0 };
	dp_host_set_name(ps, v6, name, sizeof(name));
	struct rs_set *s = rs_set_new(name, v6 ? RS_KEY_V6 : RS_KEY_V4);
	s->timeout = true;
	s->size = c->dp->cfg.dns && c->dp->cfg.dns->max_per_name ? c->dp->cfg.dns->max_per_name : DP_HOST_SET_SIZE;
	s->comment = clip(xasprintf("host %s", ps->host));
	fqdn_set_list(&ps->learned, &all);
	size_t kl = v6 ? 16 : 4;
	s->keys = xmalloc((all.n ? all.n : 1) * 2 * kl);
	s->timeouts = xmalloc((all.n ? all.n : 1) * sizeof(*s->timeouts));
	s->comments = xcalloc(all.n ? all.n : 1, sizeof(*s->comments));
	for (size_t i = 0; i < all.n && s->n < s->size; i++) {
		const struct fqdn_addr *x = all.v[i];
		if (ip_is_v4(x->a) == v6 || x->expires_ms <= now)
			continue;
		put_ip(s->keys + s->n * 2 * kl, x->a, !v6);
		memcpy(s->keys + s->n * 2 * kl + kl, s->keys + s->n * 2 * kl, kl);
		s->timeouts[s->n] = x->expires_ms - now;
		s->comments[s->n++] = xstrdup(x->name);
	}
	vec_free(&all);
	rc_add(c, s);
	return s;
}

/* The sets of a peer set, built once per render; shared with the mirror
 * when the engine did not mark the peer set dirty. */
/* Whether address a is an element of pod set ps: its owner is an active
 * member (what peer_elems lists, asked of one address). */
static bool member_addr(const struct engine *e, const struct ir_peerset *ps, ip128 a)
{
	struct pod *p = engine_pod_by_addr(e, a);
	return p && p->active && ptrset_has(&ps->members, p);
}

/* The first element of keys[from, n) whose start is not below key. */
static size_t key_lower_bound(const uint8_t *keys, size_t from, size_t n, size_t kl, const uint8_t *key)
{
	size_t lo = from, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (memcmp(keys + mid * 2 * kl, key, kl) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Appends n elements of k from the at-th on (k may be NULL when n is 0:
 * no offset is taken from it). */
static void ebuf_append(struct ebuf *b, const uint8_t *k, size_t at, size_t n)
{
	if (!n)
		return;
	k += at * 2 * b->kl;
	if (b->n + n > b->cap) {
		b->cap = b->n + n > 2 * b->cap ? b->n + n : 2 * b->cap;
		b->k = xrealloc(b->k, b->cap * 2 * b->kl);
	}
	memcpy(b->k + b->n * 2 * b->kl, k, n * 2 * b->kl);
	b->n += n;
}

/* A pod set (a hash: no ranges) edited rather than listed again: its
 * previous elements (old, sorted keys) with each address touched since
 * (engine.h) in or out as it is now; what changed also goes to add and
 * del, for the plan. Each touched address is found by binary search and
 * the untouched runs between them are copied whole: a pod event at
 * 150,000 pods neither lists every member of the sets it is in nor
 * visits their elements one by one. */
static void peer_elems_delta(const struct engine *e, const struct ir_peerset *ps, const struct rs_set *old, bool v4,
			     struct ebuf *out, struct ebuf *add, struct ebuf *del)
{
	size_t kl = v4 ? 4 : 16, nt = 0;
	ip128 *t = xmalloc((ps->ntouched ? ps->ntouched : 1) * sizeof(*t));
	for (uint32_t i = 0; i < ps->ntouched; i++)
		if (ip_is_v4(ps->touched[i]) == v4)
			t[nt++] = ps->touched[i];
	qsort(t, nt, sizeof(*t), ip_cmp_q);
	out->cap = old->n + nt;
	out->k = xrealloc(out->k, (out->cap ? out->cap : 1) * 2 * kl);
	size_t i = 0;
	for (size_t j = 0; j < nt; j++) {
		if (j && ip_eq(t[j], t[j - 1]))
			continue;
		uint8_t key[32] = { 0 };
		put_ip(key, t[j], v4);
		memcpy(key + kl, key, kl);
		size_t at = old->n ? key_lower_bound(old->keys, i, old->n, kl, key) : 0;
		ebuf_append(out, old->keys, i, at - i); /* untouched: kept */
		i = at;
		bool was = i < old->n && !memcmp(old->keys + i * 2 * kl, key, kl), is = member_addr(e, ps, t[j]);
		if (was)
			i++;
		if (is)
			ebuf_append(out, key, 0, 1);
		if (is && !was)
			ebuf_append(add, key, 0, 1);
		else if (was && !is)
			ebuf_append(del, key, 0, 1);
	}
	ebuf_append(out, old->keys, i, old->n - i);
	free(t);
}

/* The set s was edited from base: the plan writes add and del alone. */
static void set_delta(struct rs_set *s, const struct rs_set *base, struct ebuf *add, struct ebuf *del)
{
	if (strcmp(s->name, base->name)) { /* resized: a new set, added whole */
		free(add->k);
		free(del->k);
		return;
	}
	s->base = base;
	s->dadd = add->k, s->nadd = add->n;
	s->ddel = del->k, s->ndel = del->n;
}

unsigned long dp_render_relisted;

/* The interval sets of a peer set's ranges (ipBlocks with their excepts
 * carved, entities), with its member pods when members, named p<id>_4/_6:
 * shared with the mirror when the peer set is not dirty or, without
 * members, when only pods were touched (its ranges change only with a
 * mark full: engine.h), else listed. */
static void range_sets(struct rctx *c, const struct ir_peerset *ps, bool members, struct rs_set *out[2])
{
	char name[2][32];
	for (int f = 0; f < 2; f++)
		snprintf(name[f], sizeof(name[f]), "p%u_%d", ps->id, f ? 6 : 4);
	struct rs_set *o4 = c->reuse ? ruleset_set(c->reuse, name[0]) : NULL;
	struct rs_set *o6 = c->reuse ? ruleset_set(c->reuse, name[1]) : NULL;
	if (o4 && o6 && o4->interval && o6->interval && (!ptrset_has(c->dirty, ps) || (!members && !ps->full))) {
		o4->refs++, o6->refs++;
		rc_add(c, o4);
		rc_add(c, o6);
		out[0] = o4, out[1] = o6;
		return;
	}
	struct ebuf b4 = { .kl = 4 }, b6 = { .kl = 16 };
	peer_elems(c->e, ps, members, true, &b4, &b6);
	out[0] = sized_set(c, name[0], RS_KEY_V4, true, &b4);
	out[1] = sized_set(c, name[1], RS_KEY_V6, true, &b6);
}

/* The hash sets of a peer set's pods, named p<id>_4/_6_c<capacity>:
 * shared with the mirror when not dirty, edited from it when only some
 * addresses were touched, else listed from every member. */
static void pod_sets(struct rctx *c, const struct ir_peerset *ps, struct rs_set *out[2])
{
	char base[2][32], name[2][96];
	for (int f = 0; f < 2; f++) {
		snprintf(base[f], sizeof(base[f]), "p%u_%d", ps->id, f ? 6 : 4);
		snprintf(name[f], sizeof(name[f]), "%s_c%u", base[f], dp_capacity(c->dp, base[f], 0, true));
	}
	struct rs_set *o4 = c->reuse ? ruleset_set(c->reuse, name[0]) : NULL;
	struct rs_set *o6 = c->reuse ? ruleset_set(c->reuse, name[1]) : NULL;
	if (o4 && o6 && !ptrset_has(c->dirty, ps)) {
		o4->refs++, o6->refs++;
		rc_add(c, o4);
		rc_add(c, o6);
		dp_capacity_touch(c->dp, base[0]);
		dp_capacity_touch(c->dp, base[1]);
		out[0] = o4, out[1] = o6;
		return;
	}
	struct ebuf b4 = { .kl = 4 }, b6 = { .kl = 16 };
	struct ebuf a4 = { .kl = 4 }, a6 = { .kl = 16 }, d4 = { .kl = 4 }, d6 = { .kl = 16 };
	bool edit = o4 && o6 && !ps->full && !o4->interval && !o6->interval;
	if (edit) {
		peer_elems_delta(c->e, ps, o4, true, &b4, &a4, &d4);
		peer_elems_delta(c->e, ps, o6, false, &b6, &a6, &d6);
	} else {
		dp_render_relisted += o4 && o6;
		peer_elems(c->e, ps, true, false, &b4, &b6);
	}
	out[0] = sized_set(c, base[0], RS_KEY_V4, false, &b4);
	out[1] = sized_set(c, base[1], RS_KEY_V6, false, &b6);
	if (edit) {
		set_delta(out[0], o4, &a4, &d4);
		set_delta(out[1], o6, &a6, &d6);
	}
}

bool dp_split_mixed = true;

/* The sets of a peer set, built once per render. Pods' addresses change
 * with every pod event and ranges only with the policy (or the nodes,
 * for entities): a rule whose peers have both matches two sets, the
 * ranges' and the pods' (NetworkPolicy's peers are a union: a selected
 * pod inside an except is admitted, as one merged set admitted it), so
 * that a pod event edits the pods' set instead of listing the pods and
 * ranges again merged into one interval set (issue 16: tens of ms with
 * 18,000 member pods). */
static struct pscache *peer_sets(struct rctx *c, const struct ir_peerset *ps)
{
	struct pscache *pc = htab_find(&c->pscache, hash_ptr(ps), pscache_eq, ps);
	if (pc)
		return pc;
	pc = xcalloc(1, sizeof(*pc));
	pc->ps = ps;
	htab_insert(&c->pscache, hash_ptr(ps), pc);
	if (ps->host) {
		uint64_t now = fqdn_now_ms();
		pc->s[0] = host_set(c, ps, false, now);
		pc->s[1] = host_set(c, ps, true, now);
		return pc;
	}
	/* an entity's ranges come and go with the nodes: its set stays an
	 * interval set (same name) even while they are empty */
	bool ranges = ps->ranges.n > 0 || ps->entities, pods = ps->terms.n > 0;
	if (ranges && pods && dp_split_mixed) {
		range_sets(c, ps, false, pc->r);
		pod_sets(c, ps, pc->s);
	} else if (ranges) {
		range_sets(c, ps, pods, pc->s); /* with its member pods merged in (tests: dp_split_mixed) */
	} else {
		pod_sets(c, ps, pc->s);
	}
	return pc;
}

static void put_port(uint8_t *k, uint8_t proto, unsigned port)
{
	k[0] = proto;
	k[4] = (uint8_t)(port >> 8);
	k[5] = (uint8_t)port;
}

/* The numeric port entries of a rule as a set shared by content (rules
 * with equal entries share it; see struct portent). */
static const char *port_set(struct rctx *c, const struct rule *spec)
{
	struct ebuf b = { .kl = 8 };
	for (uint32_t i = 0; i < spec->nports; i++) {
		const struct port_match *pm = &spec->ports[i];
		if (pm->name)
			continue;
		unsigned lo = pm->lo ? pm->lo : 0, hi = pm->lo ? (pm->hi > pm->lo ? pm->hi : pm->lo) : 65535;
		uint8_t *k = ebuf_push(&b);
		put_port(k, pm->proto, lo);
		put_port(k + 8, pm->proto, hi);
	}
	if (!b.n)
		return NULL;
	ebuf_sort_merge(&b, 4, true);
	char name[32];
	snprintf(name, sizeof(name), "pt_%u", dp_port_id(c->dp, b.k, b.n));
	struct rs_set *s = rc_find(c, name);
	if (s) {
		free(b.k);
		return s->name;
	}
	s = set_new(name, RS_KEY_PORTS, &b);
	s->interval = true;
	rc_add(c, s);
	return s->name;
}

static void named_add(struct ebuf *b4, struct ebuf *b6, const struct engine *e, const struct pod *p,
		      const struct ir_rule *r, bool check_peer)
{
	for (uint32_t i = 0; i < p->spec->naddr; i++) {
		ip128 a = p->spec->addr[i];
		if (engine_pod_by_addr(e, a) != p)
			continue; /* an address claimed by a newer pod */
		if (check_peer && !ir_peerset_has(e, r->peers, a))
			continue;
		bool v4 = ip_is_v4(a);
		size_t al = v4 ? 4 : 16;
		for (uint32_t j = 0; j < r->spec->nports; j++) {
			const struct port_match *pm = &r->spec->ports[j];
			int port = pm->name ? ir_port_resolve(pm, p) : -1;
			if (port < 0)
				continue;
			uint8_t *k = ebuf_push(v4 ? b4 : b6);
			put_ip(k, a, v4);
			put_port(k + al, pm->proto, (unsigned)port);
			memcpy(k + al + 8, k, al + 8); /* hi = lo */
		}
	}
}

/* Whether a flow to or from a pod of group pg passes the chain of g: g
 * itself, or a meet group that meets g. */
static bool group_passes(const struct ir_group *pg, const struct ir_group *g)
{
	if (pg == g)
		return true;
	for (uint32_t i = 0; pg && i < pg->nmeet; i++)
		if (pg->meet[i] == g)
			return true;
	return false;
}

/* Named ports resolve on the destination: the group's own pods for
 * ingress, the peers for egress (every pod when peers include ranges). */
static void named_sets(struct rctx *c, const struct ir_group *g, const struct ir_rule *r, const char *chain,
		       uint32_t k, const char *named[2])
{
	struct ebuf b4 = { .kl = 12 }, b6 = { .kl = 24 };
	char n4[64], n6[64];
	snprintf(n4, sizeof(n4), "np_%s_%u_4", chain, k);
	snprintf(n6, sizeof(n6), "np_%s_%u_6", chain, k);
	if (g->dir == DIR_INGRESS) {
		for (size_t i = 0; i < c->locals.n; i++) {
			struct pod *p = c->locals.v[i];
			if (group_passes(p->group[DIR_INGRESS], g))
				named_add(&b4, &b6, c->e, p, r, false);
		}
	} else if (r->peers && !r->peers->ranges.n && !r->peers->entities) {
		struct pod *p;
		htab_foreach(&r->peers->members.h, p) if (p->active) named_add(&b4, &b6, c->e, p, r, false);
	} else {
		if (!c->all.n)
			engine_pods(c->e, &c->all);
		for (size_t i = 0; i < c->all.n; i++) {
			struct pod *p = c->all.v[i];
			if (p->active)
				named_add(&b4, &b6, c->e, p, r, r->peers != NULL);
		}
	}
	ebuf_sort_merge(&b4, 4 + 4, false);
	ebuf_sort_merge(&b6, 16 + 4, false);
	named[0] = sized_set(c, n4, RS_KEY_NAMED_V4, false, &b4)->name;
	named[1] = sized_set(c, n6, RS_KEY_NAMED_V6, false, &b6)->name;
}

static char *clip(char *s)
{
	/* nft limits comments to 128 bytes; quotes would end the string */
	for (char *p = s; *p; p++)
		if (*p == '"' || *p == '\\' || *p < ' ')
			*p = '\'';
	if (strlen(s) > 120)
		strcpy(s + 117, "...");
	return s;
}

static char *rule_origin(const struct ir_rule *r)
{
	if (!r->pol)
		return clip(xstrdup(r->what));
	const struct policy_spec *sp = r->pol->spec;
	return clip(xasprintf("%s %s/%s %s", policy_kind_name(sp->kind), sp->ns, sp->name, r->spec->path));
}

static struct rs_rule *rule_new(struct rs_chain *ch, enum rs_rule_kind kind)
{
	struct rs_rule *r = xcalloc(1, sizeof(*r));
	r->kind = kind;
	vec_push(&ch->rules, r);
	return r;
}

/* Remembers which rule (origin: rule_origin's) a set serves, for kernel
 * errors about it. */
static void set_origin(struct rctx *c, const char *name, const char *what, const char *origin)
{
	struct rs_set *s = name ? rc_find(c, name) : NULL;
	if (!s || s->origin)
		return;
	s->origin = xasprintf("%s of %s", what, origin);
}

static void group_rule(struct rctx *c, struct rs_chain *ch, const struct ir_group *g, const struct ir_rule *r,
		       uint32_t k)
{
	const struct rule *spec = r->spec;
	const char *pt = spec->any_port ? NULL : port_set(c, spec);
	bool named = false, plain = spec->any_port || pt;
	const char *nm[2] = { NULL, NULL };
	struct pscache *pc = r->peers ? peer_sets(c, r->peers) : NULL;
	for (uint32_t i = 0; i < spec->nports; i++)
		named |= spec->ports[i].name != NULL;
	if (named)
		named_sets(c, g, r, ch->name, k, nm);
	/* formatted once: every chain is rendered again at each sync */
	char *origin = rule_origin(r);
	for (int f = 0; pc && f < 2; f++) {
		set_origin(c, pc->r[f] ? pc->r[f]->name : NULL, "peer ranges", origin);
		set_origin(c, pc->s[f]->name, pc->r[f] ? "peer pods" : "peers", origin);
	}
	set_origin(c, pt, "ports", origin);
	set_origin(c, nm[0], "named ports", origin);
	set_origin(c, nm[1], "named ports", origin);
	for (int fam = 4; fam <= 6; fam += 2) {
		/* peers with ranges and pods: a rule for each set, ranges first;
		 * every rule here allows, so the chain allows their union */
		const struct rs_set *sets[2] = { pc ? pc->r[fam == 6] : NULL, pc ? pc->s[fam == 6] : NULL };
		for (int w = 0; w < 2; w++) {
			const char *peer = sets[w] ? sets[w]->name : NULL;
			if (!peer && (w == 0 || pc))
				continue;
			if (plain && (peer || fam == 4)) {
				struct rs_rule *x = rule_new(ch, RR_MATCH);
				x->family = peer ? (uint8_t)fam : 0;
				x->src = g->dir == DIR_INGRESS;
				x->set = peer;
				x->ports = pt;
				x->ret = g->dir == DIR_EGRESS;
				x->comment = xstrdup(origin);
			}
			if (named) {
				struct rs_rule *x = rule_new(ch, RR_MATCH);
				x->family = (uint8_t)fam;
				x->src = g->dir == DIR_INGRESS;
				x->set = peer;
				x->named = nm[fam == 6];
				x->ret = g->dir == DIR_EGRESS;
				x->comment = xstrdup(origin);
			}
		}
	}
	free(origin);
}

static void group_chain_name(const struct ir_group *g, char *buf, size_t len)
{
	snprintf(buf, len, "%s_g%u", g->dir == DIR_INGRESS ? "ing" : "eg", g->id);
}

static struct rs_chain *chain_named(struct rctx *c, const char *name)
{
	for (size_t i = 0; i < c->rs->chains.n; i++)
		if (!strcmp(((struct rs_chain *)c->rs->chains.v[i])->name, name))
			return c->rs->chains.v[i];
	return NULL;
}

/* A meet group's chain (a provisional address that may be any of several
 * waiting pods, engine.h): each group it meets must allow. Egress: a jump
 * to each (each returns on allow, drops otherwise), then the end of the
 * chain returns. Ingress: a jump to the return variant of each but the
 * last (return_variant), then a goto to the last (accepts on allow). The
 * chains it names are rendered first (dp_render_reuse). */
static void meet_chain(struct rctx *c, const struct ir_group *g)
{
	char name[32];
	struct sbuf what = { 0 };
	group_chain_name(g, name, sizeof(name));
	struct rs_chain *ch = xcalloc(1, sizeof(*ch));
	ch->name = xstrdup(name);
	vec_push(&c->rs->chains, ch);
	for (uint32_t i = 0; i < g->nmeet; i++) {
		char sub[40];
		bool last = i + 1 == g->nmeet;
		group_chain_name(g->meet[i], sub, sizeof(sub));
		if (g->dir == DIR_INGRESS && !last)
			strcat(sub, DP_RETURN_SUFFIX);
		const struct rs_chain *to = chain_named(c, sub);
		if (!to) { /* by construction never (dp_render_reuse) */
			fprintf(stderr, "corral: internal error: meet chain %s before %s\n", name, sub);
			abort();
		}
		struct rs_rule *x = rule_new(ch, RR_GOTO);
		x->set = to->name; /* the chain's own string: lives as long as the ruleset */
		x->ret = g->dir == DIR_EGRESS || !last;
		sbuf_addf(&what, "%s%s", i ? ", " : "", to->name);
	}
	char *w = sbuf_steal(&what);
	ch->comment = clip(xasprintf("provisional address: allowed only what each of %s allows", w));
	free(w);
}

/* An ingress group's chain again, as ing_gN_r: its rules return on allow
 * (a meet chain then asks the next group) instead of accepting. */
static void return_variant(struct rctx *c, const struct rs_chain *of)
{
	struct rs_chain *ch = xcalloc(1, sizeof(*ch));
	ch->name = xasprintf("%s%s", of->name, DP_RETURN_SUFFIX);
	ch->comment = clip(xasprintf("%s returning on allow (met by a provisional address)", of->name));
	for (size_t i = 0; i < of->rules.n; i++) {
		const struct rs_rule *o = of->rules.v[i];
		struct rs_rule *x = rule_new(ch, o->kind);
		*x = *o;
		x->prefix = o->prefix ? xstrdup(o->prefix) : NULL;
		x->comment = o->comment ? xstrdup(o->comment) : NULL;
		if (x->kind == RR_MATCH)
			x->ret = true;
	}
	vec_push(&c->rs->chains, ch);
}

static void group_chain(struct rctx *c, const struct ir_group *g)
{
	char name[32];
	struct sbuf pols = { 0 };
	if (g->nmeet) {
		meet_chain(c, g);
		return;
	}
	group_chain_name(g, name, sizeof(name));
	struct rs_chain *ch = xcalloc(1, sizeof(*ch));
	ch->name = xstrdup(name);
	for (uint32_t i = 0; i < g->npol; i++)
		sbuf_addf(&pols, "%s%s %s/%s", i ? ", " : "", policy_kind_name(g->pols[i]->spec->kind),
			  g->pols[i]->spec->ns, g->pols[i]->spec->name);
	ch->comment = clip(sbuf_steal(&pols));
	vec_push(&c->rs->chains, ch);
	for (size_t k = 0; k < g->rules.n; k++)
		group_rule(c, ch, g, g->rules.v[k], (uint32_t)k);
	struct rs_rule *x = rule_new(ch, RR_LOG_DROP);
	x->prefix = xasprintf("corral:%c:g%u ", g->dir == DIR_INGRESS ? 'i' : 'e', g->id);
	x->rate = c->dp->cfg.log_rate;
	x->burst = c->dp->cfg.log_burst;
	x->group = c->dp->cfg.log_group;
	x = rule_new(ch, RR_COUNTER_DROP);
	x->comment = xasprintf("default deny (%s)", dir_name(g->dir));
	if (g->dir == DIR_INGRESS && g->meet_refs)
		return_variant(c, ch);
}

struct mapent {
	ip128 a;
	char *chain;
};

static int mapent_cmp(const void *a, const void *b)
{
	return ip_cmp(((const struct mapent *)a)->a, ((const struct mapent *)b)->a);
}

const char *const dp_quarantine_chain[DIR_COUNT] = { "ing_quarantine", "eg_quarantine" };

/* Addresses claimed by several live pods drop everything, isolated or
 * not (engine.h): one chain per direction, there only while needed. */
static void quarantine_chains(struct rctx *c)
{
	for (int d = 0; d < DIR_COUNT; d++) {
		if (!c->quarantine[d])
			continue;
		struct rs_chain *ch = xcalloc(1, sizeof(*ch));
		ch->name = xstrdup(dp_quarantine_chain[d]);
		ch->comment = xstrdup("addresses claimed by several live pods: every flow dropped");
		vec_push(&c->rs->chains, ch);
		struct rs_rule *x = rule_new(ch, RR_LOG_DROP);
		x->prefix = xasprintf("corral:%c:q ", d == DIR_INGRESS ? 'i' : 'e');
		x->rate = c->dp->cfg.log_rate;
		x->burst = c->dp->cfg.log_burst;
		x->group = c->dp->cfg.log_group;
		x = rule_new(ch, RR_COUNTER_DROP);
		x->comment = xasprintf("quarantined address (%s)", dir_name((enum dir)d));
	}
}

/* A pod of this node claims a: a pod elsewhere that still holds a (an
 * address moved between nodes, a terminating pod) gives it no verdict
 * here, so a denied local address stays denied. */
static bool claimed_here(const struct engine *e, ip128 a)
{
	struct pod *const *pods;
	size_t n = engine_addr_claims(e, a, &pods);
	for (size_t i = 0; i < n; i++)
		if (pods[i]->local)
			return true;
	return false;
}

/* Dispatch: each local pod address -> its group chain, per direction; a
 * quarantined address -> the quarantine chain (once, however many local
 * pods claim it). */
static void dispatch_maps(struct rctx *c, enum dir d, const char *n4, const char *n6)
{
	struct mapent *m = xmalloc((c->locals.n * 2 + c->dp->ndenied + 1) * sizeof(*m));
	size_t n = 0, kept = 0;
	/* addresses the agent denies both ways while no pod owns them yet
	 * (provisional, dp_set_denied): first, so that they win a tie */
	for (size_t i = 0; i < c->dp->ndenied; i++) {
		if (claimed_here(c->e, c->dp->denied[i]))
			continue; /* a local pod's now: its own verdict */
		m[n].a = c->dp->denied[i];
		m[n++].chain = xstrdup(dp_quarantine_chain[d]);
		c->quarantine[d] = true;
	}
	for (size_t i = 0; i < c->locals.n; i++) {
		struct pod *p = c->locals.v[i];
		for (uint32_t j = 0; j < p->spec->naddr; j++) {
			ip128 a = p->spec->addr[j];
			char name[32];
			if (engine_addr_quarantined(c->e, a)) {
				snprintf(name, sizeof(name), "%s", dp_quarantine_chain[d]);
				c->quarantine[d] = true;
			} else if (p->group[d] && engine_pod_by_addr(c->e, a) == p) {
				group_chain_name(p->group[d], name, sizeof(name));
			} else {
				continue;
			}
			m[n].a = a;
			m[n++].chain = xstrdup(name);
		}
	}
	qsort(m, n, sizeof(*m), mapent_cmp);
	for (size_t i = 0; i < n; i++) { /* two local claimants: one entry */
		if (kept && ip_eq(m[kept - 1].a, m[i].a)) {
			free(m[i].chain);
			continue;
		}
		m[kept++] = m[i];
	}
	n = kept;
	for (int fam = 4; fam <= 6; fam += 2) {
		struct ebuf b = { .kl = fam == 4 ? 4 : 16 };
		struct vec chains = { 0 };
		for (size_t i = 0; i < n; i++) {
			if (ip_is_v4(m[i].a) != (fam == 4))
				continue;
			uint8_t *k = ebuf_push(&b);
			put_ip(k, m[i].a, fam == 4);
			memcpy(k + b.kl, k, b.kl);
			vec_push(&chains, m[i].chain);
		}
		struct rs_set *s = set_new(fam == 4 ? n4 : n6, fam == 4 ? RS_KEY_V4 : RS_KEY_V6, &b);
		s->map = true;
		s->jump = d == DIR_EGRESS;
		s->chain = (char **)chains.v;
		rc_add(c, s);
	}
	free(m);
}

/* A chain that logs (rate-limited) and drops everything that comes to it,
 * counted. */
static void log_drop_chain(struct rctx *c, const char *name, const char *comment, const char *prefix,
			   const char *drop_comment)
{
	struct rs_chain *ch = xcalloc(1, sizeof(*ch));
	ch->name = xstrdup(name);
	ch->comment = xstrdup(comment);
	vec_push(&c->rs->chains, ch);
	struct rs_rule *x = rule_new(ch, RR_LOG_DROP);
	x->prefix = xstrdup(prefix);
	x->rate = c->dp->cfg.log_rate;
	x->burst = c->dp->cfg.log_burst;
	x->group = c->dp->cfg.log_group;
	x = rule_new(ch, RR_COUNTER_DROP);
	x->comment = xstrdup(drop_comment);
}

/* Packets whose source address does not route back through the interface
 * they came in on: a pod using another pod's address (on this node or
 * another), an address outside the cluster, or a local pod's address
 * arriving from another node. Checked first, for every packet (also
 * those of established flows, which a forged packet could join), so no
 * policy verdict ever sees a forged source. */
static void forged_chain(struct rctx *c)
{
	log_drop_chain(c, DP_FORGED_CHAIN, "source address does not route back through the interface it came from",
		       "corral:e:s ", "forged source address");
}

static void addr_set(struct rctx *c, const char *name, bool v6, const ip128 *a, size_t n);

const char *const dp_unclassified_chain[DIR_COUNT] = { "ing_unclassified", "eg_unclassified" };

/* The node's own interfaces (dp_set_node_ifaces), and, with the
 * unclassified check, the addresses the agent has classified: every
 * address of this node's pods (provisional twins included) and the
 * provisional denies; with the chains that drop the rest. */
static void iface_sets(struct rctx *c)
{
	struct ebuf b = { .kl = 16 };
	for (size_t i = 0; i < c->dp->nifaces; i++) {
		uint8_t *k = ebuf_push(&b);
		memcpy(k, c->dp->ifaces[i], 16);
		memcpy(k + 16, k, 16);
	}
	ebuf_sort_merge(&b, 16, false);
	struct rs_set *s = set_new(DP_NODE_IFACES, RS_KEY_IFNAME, &b);
	s->comment = xstrdup("the node's own interfaces: the others are pods'");
	s->origin = xstrdup("the node's interfaces");
	rc_add(c, s);
	if (!c->dp->unclassified)
		return;
	size_t n = 0;
	for (size_t i = 0; i < c->locals.n; i++)
		n += ((struct pod *)c->locals.v[i])->spec->naddr;
	ip128 *a = xmalloc((n + c->dp->ndenied + 1) * sizeof(*a));
	n = 0;
	for (size_t i = 0; i < c->locals.n; i++) {
		const struct pod *p = c->locals.v[i];
		for (uint32_t j = 0; j < p->spec->naddr; j++)
			a[n++] = p->spec->addr[j];
	}
	for (size_t i = 0; i < c->dp->ndenied; i++)
		a[n++] = c->dp->denied[i];
	addr_set(c, "classified_v4", false, a, n);
	addr_set(c, "classified_v6", true, a, n);
	free(a);
	for (int fam = 4; fam <= 6; fam += 2) {
		s = rc_find(c, fam == 4 ? "classified_v4" : "classified_v6");
		s->comment = xstrdup("this node's pods' addresses, provisional ones included");
		s->origin = xstrdup("the node's pod addresses");
	}
	for (int d = 0; d < DIR_COUNT; d++) {
		struct rs_chain *ch = xcalloc(1, sizeof(*ch));
		ch->name = xstrdup(dp_unclassified_chain[d]);
		ch->comment = xstrdup(d == DIR_EGRESS ? "a pod's interface, a source address the agent has not classified"
						      : "to a pod's interface, a destination the agent has not classified");
		vec_push(&c->rs->chains, ch);
		struct rs_rule *x = rule_new(ch, RR_LOG_DROP);
		x->prefix = xasprintf("corral:%c:u ", d == DIR_INGRESS ? 'i' : 'e');
		x->rate = c->dp->cfg.log_rate;
		x->burst = c->dp->cfg.log_burst;
		x->group = c->dp->cfg.log_group;
		x = rule_new(ch, RR_COUNTER_DROP);
		x->comment = xasprintf("unclassified address (%s)", dir_name((enum dir)d));
	}
}

/* Packets of a pod's interface (not one of the node's) with an address
 * the agent has not classified yet: a new pod's, between the CNI's route
 * and the agent's transaction (issue 14). src: the input interface and
 * the source (link-local sources excepted: neighbour discovery with the
 * node), else the output interface and the destination. */
static void unclassified_rules(struct rctx *c, struct rs_chain *ch, bool src, bool dst)
{
	if (!c->dp->ifaces_known || !c->dp->unclassified)
		return;
	for (int k = 0; k < 2; k++) {
		if (!(k ? dst : src))
			continue;
		for (int fam = 4; fam <= 6; fam += 2) {
			struct rs_rule *r = rule_new(ch, RR_UNCLASSIFIED);
			r->family = (uint8_t)fam;
			r->src = !k;
			r->set = fam == 4 ? "classified_v4" : "classified_v6";
			r->dset = DP_NODE_IFACES;
			r->ports = dp_unclassified_chain[k ? DIR_INGRESS : DIR_EGRESS];
			r->comment = xstrdup(k ? "to a pod's interface: only destinations the agent has classified"
					       : "from a pod's interface: only sources the agent has classified");
		}
	}
}

/* A local pod's source -> jump to its egress chain (returns on allow),
 * then a local pod's destination -> goto its ingress chain. */
static void dispatch_rules(struct rctx *c, struct rs_chain *ch)
{
	static const struct {
		const char *map;
		uint8_t fam;
		bool src;
	} v[] = { { "egress_v4", 4, true }, { "egress_v6", 6, true }, { "ingress_v4", 4, false },
		  { "ingress_v6", 6, false } };
	for (size_t i = 0; i < ARRAY_SIZE(v); i++) {
		struct rs_rule *r = rule_new(ch, RR_VMAP);
		r->family = v[i].fam;
		r->src = v[i].src;
		r->set = rc_find(c, v[i].map)->name;
	}
}

/* A flow a revocation pass stopped keeps its conntrack entry, marked
 * (revoke.h): its packets are dropped in both directions, before the
 * established accept would let them through. (A deleted entry let the
 * next packet start a new one, and a packet from the responder then
 * started it reversed, as a flow the policies allow.) */
static void revoked_rule(struct rctx *c, struct rs_chain *ch)
{
	struct rs_rule *r = rule_new(ch, RR_CT_REVOKED);
	r->mark = c->dp->cfg.revoked_mark;
	r->comment = xstrdup("flows a policy change revoked");
}

/* A TCP segment that starts a tracked flow but is no SYN (dataplane.h
 * DP_UNTRACKED_CHAIN): dropped and logged, in a chain of its own made
 * with the first rule that goes there. */
static void untracked_rule(struct rctx *c, struct rs_chain *ch)
{
	struct rs_rule *r = rule_new(ch, RR_TCP_UNTRACKED);
	r->set = DP_UNTRACKED_CHAIN;
	r->comment = xstrdup("TCP in mid-stream with no tracked connection: a revoked flow, or one conntrack lost");
	if (c->untracked)
		return;
	c->untracked = true;
	log_drop_chain(c, DP_UNTRACKED_CHAIN,
		       "TCP segments that are no connection's first and belong to no tracked connection", "corral:e:t ",
		       "TCP segment of no tracked connection");
}

static void base_chain(struct rctx *c)
{
	struct rs_chain *ch = xcalloc(1, sizeof(*ch));
	ch->name = xstrdup("forward");
	ch->base = true;
	if (!c->dp->cfg.no_source_check) {
		struct rs_rule *r = rule_new(ch, RR_SRC_CHECK);
		r->set = DP_FORGED_CHAIN;
		r->comment = xstrdup("source address bound to its interface");
		forged_chain(c);
	}
	revoked_rule(c, ch);
	rule_new(ch, RR_CT_ESTABLISHED);
	rule_new(ch, RR_CT_INVALID);
	untracked_rule(c, ch);
	rule_new(ch, RR_ND)->comment = xstrdup("neighbour discovery between bridged pods");
	unclassified_rules(c, ch, true, true);
	dispatch_rules(c, ch);
	vec_push(&c->rs->chains, ch);
}

/* Packets to the node itself (the agent knows the node's interfaces):
 * a pod's packet to a node-local address (a Service address on
 * kube-ipvs0 that IPVS takes in this hook and sends again through
 * output, a NodePort, the node's own) must carry its own source, as in
 * forward; the node's interfaces are left alone (a multi-homed node
 * routes asymmetrically). */
static void input_chain(struct rctx *c)
{
	bool unclassified = c->dp->unclassified;
	if (!c->dp->ifaces_known || (c->dp->cfg.no_source_check && !unclassified))
		return;
	struct rs_chain *ch = xcalloc(1, sizeof(*ch));
	ch->name = xstrdup("input");
	ch->base = true;
	ch->hook = RS_HOOK_INPUT;
	ch->comment = xstrdup("packets to the node: from a pod's interface, only with the pod's own source");
	if (!c->dp->cfg.no_source_check) {
		struct rs_rule *r = rule_new(ch, RR_IIF_SRC_CHECK);
		r->set = DP_NODE_IFACES;
		r->ports = DP_FORGED_CHAIN;
		r->comment = xstrdup("a pod's source address bound to its interface");
	}
	if (unclassified) {
		revoked_rule(c, ch);
		rule_new(ch, RR_CT_ESTABLISHED);
		unclassified_rules(c, ch, true, false);
	}
	vec_push(&c->rs->chains, ch);
}

/* Packets the node itself sends. Its own (a source address of the node:
 * kubelet probes, host-network pods, anything on the node) are accepted,
 * since NetworkPolicy always lets a pod's node reach it. The others carry
 * a pod's address and were routed through the node's input path and sent
 * again: kube-proxy's IPVS mode takes a pod's packet to a Service address
 * (a local address, on kube-ipvs0 or the node's own for a NodePort) in
 * the input hook, rewrites its destination to a backend and sends it
 * through output, so it never crosses forward. Those meet the same
 * dispatch as forwarded packets: the source pod's egress (when it is on
 * this node), then the backend's ingress (when it is on this node). */
static void output_chain(struct rctx *c)
{
	struct rs_chain *ch = xcalloc(1, sizeof(*ch));
	ch->name = xstrdup("output");
	ch->base = true;
	ch->hook = RS_HOOK_OUTPUT;
	ch->comment = xstrdup("packets the node sends: its own, and pods' sent again by IPVS (kube-proxy ipvs mode)");
	revoked_rule(c, ch);
	rule_new(ch, RR_CT_ESTABLISHED);
	rule_new(ch, RR_LOCAL_SRC)->comment = xstrdup("the node's own packets: a pod's node may always reach it");
	untracked_rule(c, ch);
	unclassified_rules(c, ch, false, true);
	dispatch_rules(c, ch);
	vec_push(&c->rs->chains, ch);
}

/* ---------- DNS redirect ---------- */

/* Whether a local pod's egress has a host rule: its DNS goes through
 * the proxy, which learns the addresses its answers give. */
static bool has_host_rule(const struct pod *p)
{
	const struct ir_group *g = p->group[DIR_EGRESS];
	for (size_t i = 0; g && i < g->rules.n; i++) {
		const struct ir_rule *r = g->rules.v[i];
		if (r->peers && r->peers->host)
			return true;
	}
	return false;
}

static void addr_set(struct rctx *c, const char *name, bool v6, const ip128 *a, size_t n)
{
	struct ebuf b = { .kl = v6 ? 16 : 4 };
	for (size_t i = 0; i < n; i++) {
		if (ip_is_v4(a[i]) == v6)
			continue;
		uint8_t *k = ebuf_push(&b);
		put_ip(k, a[i], !v6);
		memcpy(k + b.kl, k, b.kl);
	}
	ebuf_sort_merge(&b, b.kl, false);
	rc_add(c, set_new(name, v6 ? RS_KEY_V6 : RS_KEY_V4, &b));
}

/* The addresses of the cluster DNS: the kube-dns pods (as the DNS default
 * rule names them) and the Service addresses the agent was given. */
static void dns_servers(struct rctx *c, struct vec *out)
{
	const struct dp_dns *d = c->dp->cfg.dns;
	const struct ns *n = engine_ns_find(c->e, "kube-system");
	struct list *it;
	for (size_t i = 0; i < d->nservers; i++)
		vec_push(out, (void *)&d->servers[i]);
	if (!n)
		return;
	list_foreach(it, &n->pods) {
		struct pod *p = container_of(it, struct pod, ns_node);
		istr v = labelset_get(&p->spec->labels, "k8s-app");
		if (!p->active || p->spec->unreadable || !v || strcmp(v, "kube-dns"))
			continue;
		for (uint32_t j = 0; j < p->spec->naddr; j++)
			if (engine_pod_by_addr(c->e, p->spec->addr[j]) == p)
				vec_push(out, &p->spec->addr[j]);
	}
}

/* The redirect of local pods with host rules to the proxy, while it is
 * alive (ruleset.h); nothing when no local pod has a host rule. */
static void dns_redirect(struct rctx *c)
{
	const struct dp_dns *d = c->dp->cfg.dns;
	struct vec srv = { 0 };
	size_t n = 0;
	if (!d || !d->port || (!d->have[0] && !d->have[1]))
		return;
	ip128 *cl = xmalloc((c->locals.n * 2 + 1) * sizeof(*cl));
	for (size_t i = 0; i < c->locals.n; i++) {
		struct pod *p = c->locals.v[i];
		for (uint32_t j = 0; has_host_rule(p) && j < p->spec->naddr; j++)
			if (engine_pod_by_addr(c->e, p->spec->addr[j]) == p)
				cl[n++] = p->spec->addr[j];
	}
	if (!n) {
		free(cl);
		return;
	}
	dns_servers(c, &srv);
	ip128 *sa = xmalloc((srv.n + 1) * sizeof(*sa));
	for (size_t i = 0; i < srv.n; i++)
		sa[i] = *(const ip128 *)srv.v[i];
	addr_set(c, "dns_clients_v4", false, cl, n);
	addr_set(c, "dns_clients_v6", true, cl, n);
	addr_set(c, "dns_servers_v4", false, sa, srv.n);
	addr_set(c, "dns_servers_v6", true, sa, srv.n);
	/* alive from the start: udp . 53 and tcp . 53 */
	struct ebuf b = { .kl = 8 };
	for (int l4 = 0; l4 < 2; l4++) {
		uint8_t *k = ebuf_push(&b);
		put_port(k, l4 ? PROTO_UDP : PROTO_TCP, 53);
		memcpy(k + 8, k, 8);
	}
	struct rs_set *alive = set_new(DP_DNS_ALIVE_SET, RS_KEY_PORTS, &b);
	alive->timeout = true;
	alive->comment = xstrdup("the DNS proxy is alive: refreshed by the agent");
	alive->timeouts = xmalloc(2 * sizeof(*alive->timeouts));
	alive->timeouts[0] = alive->timeouts[1] = d->alive_ms;
	rc_add(c, alive);
	struct rs_chain *ch = xcalloc(1, sizeof(*ch));
	ch->name = xstrdup("dns_redirect");
	ch->nat = true;
	ch->comment = xstrdup("DNS of pods with host rules to the agent's DNS proxy, while it is alive");
	vec_push(&c->rs->chains, ch);
	for (int f = 0; f < 2; f++) {
		if (!d->have[f])
			continue;
		for (int l4 = 0; l4 < 2; l4++) {
			struct rs_rule *x = rule_new(ch, RR_DNS_REDIRECT);
			x->family = f ? 6 : 4;
			x->set = f ? "dns_clients_v6" : "dns_clients_v4";
			x->dset = f ? "dns_servers_v6" : "dns_servers_v4";
			x->ports = DP_DNS_ALIVE_SET;
			x->l4 = l4 ? PROTO_TCP : PROTO_UDP;
			memcpy(x->nat_addr, d->addr[f], 16);
			x->nat_port = d->port;
			x->comment = xstrdup("cluster DNS of pods with host rules: to the agent's DNS proxy");
		}
	}
	free(sa);
	free(cl);
	vec_free(&srv);
}

static int set_cmp(const void *a, const void *b)
{
	return strcmp((*(const struct rs_set *const *)a)->name, (*(const struct rs_set *const *)b)->name);
}

static int chain_cmp(const void *a, const void *b)
{
	const struct rs_chain *x = *(const struct rs_chain *const *)a, *y = *(const struct rs_chain *const *)b;
	if (x->base != y->base)
		return x->base ? -1 : 1;
	if (x->nat != y->nat)
		return x->nat ? -1 : 1;
	return strcmp(x->name, y->name);
}

struct ruleset *dp_render_reuse(struct dp *dp, const struct engine *e, const struct ruleset *reuse,
				const struct ptrset *dirty, uint64_t *elems)
{
	struct rctx c = { .dp = dp, .e = e, .reuse = reuse, .dirty = dirty };
	struct vec groups = { 0 };
	dp->epoch++;
	c.rs = xcalloc(1, sizeof(*c.rs));
	c.rs->table = xstrdup(dp->table);
	engine_local_pods(e, &c.locals);
	engine_groups(e, &groups);
	dispatch_maps(&c, DIR_EGRESS, "egress_v4", "egress_v6");
	dispatch_maps(&c, DIR_INGRESS, "ingress_v4", "ingress_v6");
	if (dp->ifaces_known && (!dp->cfg.no_source_check || dp->unclassified))
		iface_sets(&c); /* only when a check uses them */
	base_chain(&c);
	input_chain(&c);
	output_chain(&c);
	for (int meet = 0; meet < 2; meet++) /* meet chains name the others: last */
		for (size_t i = 0; i < groups.n; i++)
			if (!((const struct ir_group *)groups.v[i])->nmeet == !meet)
				group_chain(&c, groups.v[i]);
	quarantine_chains(&c);
	dns_redirect(&c);
	vec_sort(&c.rs->sets, set_cmp);
	vec_sort(&c.rs->chains, chain_cmp);
	if (elems)
		*elems = c.elems;
	vec_free(&groups);
	vec_free(&c.locals);
	vec_free(&c.all);
	htab_free(&c.names);
	struct pscache *pc;
	htab_foreach(&c.pscache, pc) free(pc);
	htab_free(&c.pscache);
	dp_capacity_prune(dp);
	dp_ports_prune(dp);
	return c.rs;
}

struct ruleset *dp_render(struct dp *dp, const struct engine *e)
{
	return dp_render_reuse(dp, e, NULL, NULL, NULL);
}

void dp_group_chain(const struct ir_group *g, char *buf, size_t len)
{
	group_chain_name(g, buf, len);
}

/* Whether rule x can admit peer: its family, and its peer set (if any)
 * holds it in the mirror. */
static bool rule_admits(const struct ruleset *rs, const struct rs_rule *x, ip128 peer)
{
	bool v4 = ip_is_v4(peer);
	if (x->family && x->family != (v4 ? 4 : 6))
		return false;
	if (!x->set)
		return true;
	const struct rs_set *s = ruleset_set(rs, x->set);
	if (!s)
		return false;
	size_t kl = rs_key_len(s->key);
	if (kl != (v4 ? 4u : 16u))
		return false;
	uint8_t k[16];
	put_ip(k, peer, v4);
	for (size_t i = 0; i < s->n; i++)
		if (memcmp(s->keys + i * 2 * kl, k, kl) <= 0 && memcmp(k, s->keys + i * 2 * kl + kl, kl) <= 0)
			return true;
	return false;
}

char *dp_rule_text(const struct dp *dp, const struct ir_group *g, const struct ir_rule *r, const ip128 *peer)
{
	char name[32];
	if (!dp->mirror || !r)
		return NULL;
	group_chain_name(g, name, sizeof(name));
	const struct rs_chain *ch = ruleset_chain(dp->mirror, name);
	char *want = rule_origin(r);
	const struct rs_rule *first = NULL, *hit = NULL;
	/* an IR rule is several applied rules (a family each, and for peers
	 * mixing ranges and pods a set each): the one whose set holds peer */
	for (size_t i = 0; ch && i < ch->rules.n && !hit; i++) {
		const struct rs_rule *x = ch->rules.v[i];
		if (!x->comment || strcmp(x->comment, want))
			continue;
		if (!first)
			first = x;
		if (!peer || rule_admits(dp->mirror, x, *peer))
			hit = x;
	}
	free(want);
	if (!hit)
		hit = first;
	if (!hit)
		return NULL;
	struct sbuf b = { 0 };
	rs_rule_format(hit, &b);
	return sbuf_steal(&b);
}
