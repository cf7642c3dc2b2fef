#include "agent/dataplane/revoke.h"
#include "agent/dataplane/dataplane.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

struct rctx {
	const struct engine *e;
	const struct route_addr *own;
	size_t nown;
	void (*each)(const struct revoked *r, void *arg);
	void *arg;
	size_t considered, kept;
};

static ip128 flow_ip(const uint8_t *a, uint8_t family)
{
	if (family == 4)
		return ip_from_v4((uint32_t)a[0] << 24 | (uint32_t)a[1] << 16 | (uint32_t)a[2] << 8 | a[3]);
	ip128 r = { 0, 0 };
	for (int i = 0; i < 8; i++) {
		r.hi = r.hi << 8 | a[i];
		r.lo = r.lo << 8 | a[8 + i];
	}
	return r;
}

static bool node_own(const struct rctx *c, uint8_t family, const uint8_t *a)
{
	for (size_t i = 0; i < c->nown; i++)
		if (c->own[i].family == family && !memcmp(c->own[i].a, a, family == 4 ? 4 : 16))
			return true;
	return false;
}

/* Whether a has a dispatch entry in this node's table: a live pod of
 * this node claims it (owned, or quarantined with a local claimant). */
static bool on_node(const struct engine *e, ip128 a)
{
	struct pod *const *pods;
	size_t n = engine_addr_claims(e, a, &pods);
	for (size_t i = 0; i < n; i++)
		if (pods[i]->local && pods[i]->active)
			return true;
	return false;
}

static bool doomed(const struct ct_flow *f, void *arg)
{
	struct rctx *c = arg;
	/* (an entry revoked before stays so where there is nothing to judge:
	 * its pod left the node) */
	if (node_own(c, f->family, f->src) || node_own(c, f->family, f->dst))
		return f->revoked; /* input or output path: never filtered */
	ip128 s = flow_ip(f->src, f->family), d = flow_ip(f->dst, f->family);
	bool ls = on_node(c->e, s), ld = on_node(c->e, d);
	if (!ls && !ld)
		return f->revoked; /* routed through this node only: not ours to judge */
	c->considered++;
	struct endpoint se = { engine_pod_by_addr(c->e, s), s }, de = { engine_pod_by_addr(c->e, d), d };
	struct verdict v;
	policy_eval_established(c->e, &se, &de, f->proto, f->dport, &v);
	bool eg = !ls || v.side[DIR_EGRESS].allowed, in = !ld || v.side[DIR_INGRESS].allowed;
	bool admit = v.loopback || (eg && in);
	c->kept += !admit && f->revoked;
	if (!admit && !f->revoked && c->each) {
		enum dir dir = eg ? DIR_INGRESS : DIR_EGRESS;
		struct revoked r = { s, d, f->proto, f->dport, dir, v.side[dir].quarantined ? NULL : v.side[dir].group };
		c->each(&r, c->arg);
	}
	verdict_free(&v);
	return !admit;
}

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

int revoke_flows(const struct engine *e, struct ct_sock *ct, struct route_sock *rt, uint32_t mark,
		 void (*each)(const struct revoked *r, void *arg), void *arg, struct revoke_stats *st)
{
	struct route_addr *own = NULL;
	size_t nown = 0;
	double t0 = now_ms();
	memset(st, 0, sizeof(*st));
	/* the node's addresses first: without them, a kubelet probe to an
	 * isolated pod would look like a forwarded flow to revoke */
	int rc = route_addrs_local(rt, &own, &nown);
	if (rc < 0)
		return rc;
	struct rctx c = { e, own, nown, each, arg, 0, 0 };
	struct ct_revoke_stats ps;
	rc = ct_revoke(ct, mark, doomed, &c, &ps);
	st->tracked = ps.tracked;
	st->considered = c.considered;
	st->revoked = ps.revoked;
	st->marked_before = ps.marked_before;
	st->restored = ps.restored;
	st->kept = c.kept;
	st->gone = ps.gone;
	st->dump_ms = ps.dump_ms;
	st->mark_ms = ps.mark_ms;
	st->ms = now_ms() - t0;
	free(own);
	return rc;
}

bool revoke_needed(const struct dp_stats *st)
{
	return st->full || st->narrowed;
}
