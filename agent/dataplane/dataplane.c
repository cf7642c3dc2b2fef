/* The data plane: IR -> ruleset (render.c), ruleset vs mirror ->
 * transaction (plan.c), transaction -> kernel (agent/nl/nft.c).
 *
 * Passes of one sync:
 *   1. take the engine's dirty peer sets;
 *   2. render the desired ruleset: chains and small sets always (they
 *      follow the <= 110 local pods), peer sets only when dirty or new,
 *      otherwise the mirror's set object is shared;
 *   3. plan: diff against the mirror (or a full replace when there is none);
 *   4. commit as one netlink batch; on success the desired ruleset becomes
 *      the mirror, on failure the mirror is dropped so the next sync is a
 *      full replace. A refusal is worded here, from the operation the
 *      kernel refused (nft.c maps it back by sequence number). */
#define _GNU_SOURCE
#include "agent/dataplane/dp-private.h"
#include "agent/nl/nft.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct dp *dp_new(const struct dp_config *cfg)
{
	struct dp *dp = xcalloc(1, sizeof(*dp));
	if (cfg)
		dp->cfg = *cfg;
	dp->table = xstrdup(dp->cfg.table ? dp->cfg.table : "corral");
	dp->cfg.table = dp->table;
	if (!dp->cfg.log_group)
		dp->cfg.log_group = 100;
	if (!dp->cfg.log_rate)
		dp->cfg.log_rate = 10;
	if (!dp->cfg.log_burst)
		dp->cfg.log_burst = 20;
	if (!dp->cfg.revoked_mark)
		dp->cfg.revoked_mark = DP_REVOKED_MARK;
	return dp;
}

void dp_free(struct dp *dp)
{
	if (!dp)
		return;
	ruleset_free(dp->mirror);
	struct capent *c;
	htab_foreach(&dp->caps, c) {
		free(c->base);
		free(c);
	}
	htab_free(&dp->caps);
	struct portent *p;
	htab_foreach(&dp->ports, p) {
		free(p->keys);
		free(p);
	}
	htab_free(&dp->ports);
	free(dp->table);
	free(dp->denied);
	free(dp->ifaces);
	free(dp);
}

void dp_set_commit_hook(struct dp *dp, const struct dp_commit_hook *h)
{
	dp->hook = *h;
}

void dp_set_denied(struct dp *dp, const ip128 *a, size_t n)
{
	free(dp->denied);
	dp->denied = n ? xmalloc(n * sizeof(*a)) : NULL;
	if (n)
		memcpy(dp->denied, a, n * sizeof(*a));
	dp->ndenied = n;
}

void dp_set_node_ifaces(struct dp *dp, const char *const *names, size_t n, bool unclassified)
{
	free(dp->ifaces);
	dp->ifaces = xcalloc(n ? n : 1, sizeof(*dp->ifaces));
	dp->nifaces = 0;
	for (size_t i = 0; i < n; i++) {
		size_t l = strlen(names[i]);
		if (l && l < sizeof(dp->ifaces[0])) /* no kernel interface has another */
			memcpy(dp->ifaces[dp->nifaces++], names[i], l);
	}
	dp->ifaces_known = true;
	dp->unclassified = unclassified;
}

void dp_inject_failure(struct dp *dp)
{
	dp->inject = true;
}

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static struct rs_rule bad_rule = { .kind = RR_VMAP, .family = 4, .src = true, .set = "corral_no_such_map",
				   .comment = "injected failure" };

static char *refused_text(const struct dp_txn *t, const struct nft_txn_info *info, int rc)
{
	struct sbuf sb = { 0 };
	if (info->refused_op < 0)
		sbuf_add(&sb, "the batch (the kernel could not queue its errors)");
	else
		dp_op_describe(&t->ops[info->refused_op], &sb);
	char *what = sbuf_steal(&sb);
	char *out = xasprintf("kernel refused the transaction at %s: %s%s%s", what, strerror(-rc),
			      info->kernel_msg[0] ? ": " : "", info->kernel_msg);
	free(what);
	return out;
}

/* The passes; sock NULL: a dry run that takes the plan as applied and
 * writes it to plan_out. */
static int sync_passes(struct dp *dp, struct engine *e, struct nft_sock *sock, bool force_full, struct dp_stats *st,
		       char **err, struct sbuf *plan_out)
{
	struct vec dirty = { 0 }, owned = { 0 };
	struct ptrset dset = { 0 };
	struct dp_txn t = { .table = dp->table };
	struct dp_stats local;
	if (!st)
		st = &local;
	memset(st, 0, sizeof(*st));
	*err = NULL;
	double t0 = now_ms();
	/* 1. */
	engine_take_dirty(e, &dirty, NULL);
	for (size_t i = 0; i < dirty.n; i++)
		ptrset_add(&dset, dirty.v[i]);
	if (force_full) {
		ruleset_free(dp->mirror);
		dp->mirror = NULL;
	}
	/* 2. */
	struct ruleset *rs = dp_render_reuse(dp, e, dp->mirror, &dset, &st->elems_total);
	if (!dp->mirror) /* nothing reused: every peer set was listed as it is now */
		engine_peersets_rendered(e);
	else /* what was touched is in rs now */
		for (size_t i = 0; i < dirty.n; i++)
			engine_peerset_rendered(dirty.v[i]);
	/* 3. */
	dp_plan(dp->mirror, rs, &t, &owned, st);
	if (dp->inject) {
		dp_txn_push(&t, (struct dp_op){ .kind = OP_RULE_ADD, .chain = ruleset_chain(rs, "forward"),
					     .rule = &bad_rule });
		dp->inject = false;
	}
	double t1 = now_ms();
	/* 4. an empty diff sends nothing */
	struct nft_txn_info info = { .refused_op = -1 };
	if (plan_out)
		dp_txn_format(&t, plan_out);
	bool send = t.n && sock;
	if (send && dp->hook.before)
		dp->hook.before(&t, dp->hook.arg);
	double t2 = now_ms();
	int rc = send ? nft_txn_commit(sock, &t, &info, err) : 0;
	double t3 = now_ms();
	st->acked_at = t3;
	if (send && dp->hook.after)
		dp->hook.after(&t, rc, dp->hook.arg);
	st->before_ms = t2 - t1;
	st->after_ms = now_ms() - t3;
	if (rc < 0 && !*err) /* refused: word it by the operation, as nftables does by seqnum */
		*err = refused_text(&t, &info, rc);
	st->msgs = info.msgs;
	st->bytes = info.bytes;
	st->encode_ms = info.build_ms;
	st->kernel_ms = info.kernel_ms;
	st->render_ms = t1 - t0;
	st->apply_ms = now_ms() - t1;
	ruleset_free(dp->mirror);
	dp->mirror = NULL;
	if (rc < 0)
		ruleset_free(rs);
	else
		dp->mirror = rs;
	for (size_t i = 0; i < owned.n; i++)
		rs_set_put(owned.v[i]);
	vec_free(&owned);
	vec_free(&dirty);
	ptrset_free(&dset);
	free(t.ops);
	return rc;
}

int dp_sync(struct dp *dp, struct engine *e, struct nft_sock *sock, bool force_full, struct dp_stats *st,
	    char **err)
{
	return sync_passes(dp, e, sock, force_full, st, err, NULL);
}

void dp_sync_dry(struct dp *dp, struct engine *e, bool force_full, struct sbuf *plan)
{
	char *err = NULL;
	sync_passes(dp, e, NULL, force_full, NULL, &err, plan);
	free(err);
}

/* ---------- elements written outside the plan (timeout sets) ---------- */

static void put_key(uint8_t *k, ip128 a, bool v4)
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

/* A transaction of element additions to timeout sets, sent and
 * acknowledged; the sets are freed after. flush: each set emptied first;
 * again: those elements added, deleted and added again first. */
static int commit_elems(struct dp *dp, struct nft_sock *sock, struct vec *sets, struct vec *again, bool flush,
			char **err)
{
	struct dp_txn t = { .table = dp->table };
	struct nft_txn_info info = { .refused_op = -1 };
	for (int k = 0; k < 2; k++)
		for (size_t i = 0; again && i < again->n; i++) {
			struct rs_set *s = again->v[i];
			if (s->n)
				dp_txn_push(&t, (struct dp_op){ .kind = k ? OP_ELEM_DEL : OP_ELEM_ADD, .set = s,
							     .count = s->n });
		}
	for (size_t i = 0; i < sets->n; i++) {
		struct rs_set *s = sets->v[i];
		if (flush)
			dp_txn_push(&t, (struct dp_op){ .kind = OP_SET_FLUSH, .set = s });
		if (s->n)
			dp_txn_push(&t, (struct dp_op){ .kind = OP_ELEM_ADD, .set = s, .count = s->n });
	}
	*err = NULL;
	int rc = t.n ? nft_txn_commit(sock, &t, &info, err) : 0;
	if (rc < 0 && !*err)
		*err = refused_text(&t, &info, rc);
	for (int v = 0; v < 2; v++) {
		struct vec *vs = v ? again : sets;
		for (size_t i = 0; vs && i < vs->n; i++)
			rs_set_put(vs->v[i]);
		if (vs)
			vec_free(vs);
	}
	free(t.ops);
	return rc;
}

static struct rs_set *elem_set(struct vec *sets, const char *name, enum rs_key key, size_t cap)
{
	for (size_t i = 0; i < sets->n; i++)
		if (!strcmp(((struct rs_set *)sets->v[i])->name, name))
			return sets->v[i];
	struct rs_set *s = rs_set_new(name, key);
	s->timeout = true;
	s->keys = xmalloc(cap * 2 * rs_key_len(key));
	s->timeouts = xmalloc(cap * sizeof(*s->timeouts));
	s->comments = xcalloc(cap, sizeof(*s->comments));
	vec_push(sets, s);
	return s;
}

int dp_host_add(struct dp *dp, struct nft_sock *sock, const struct dp_host_elem *el, size_t n, size_t *skipped,
		char **err)
{
	/* An element added again keeps its first expiry on a kernel without
	 * element timeout updates (before 6.10), whatever the message says:
	 * one an earlier answer put in is added, deleted and added in one
	 * transaction (atomic: a packet sees it all along). The first add
	 * (a no-op when it is there) makes sure the delete finds it, had it
	 * left the kernel meanwhile (expired). */
	struct vec sets = { 0 }, again = { 0 };
	*err = NULL;
	*skipped = 0;
	for (size_t i = 0; i < n; i++) {
		char name[32];
		bool v4 = ip_is_v4(el[i].addr);
		dp_host_set_name(el[i].ps, !v4, name, sizeof(name));
		if (!dp->mirror || !ruleset_set(dp->mirror, name)) {
			(*skipped)++;
			continue; /* not in the kernel yet: the next sync writes it whole */
		}
		for (int k = 0; k < 2; k++) {
			if (k && !el[i].again)
				break;
			struct rs_set *s = elem_set(k ? &again : &sets, name, v4 ? RS_KEY_V4 : RS_KEY_V6, n);
			size_t kl = rs_key_len(s->key);
			uint8_t key[16];
			put_key(key, el[i].addr, v4);
			if (k) { /* once each: a second delete of one key would be refused */
				size_t j = 0;
				while (j < s->n && memcmp(s->keys + j * 2 * kl, key, kl))
					j++;
				if (j < s->n)
					continue;
			}
			memcpy(s->keys + s->n * 2 * kl, key, kl);
			memcpy(s->keys + s->n * 2 * kl + kl, key, kl);
			s->timeouts[s->n] = el[i].timeout_ms;
			s->comments[s->n++] = el[i].name ? xstrdup(el[i].name) : NULL;
		}
	}
	return commit_elems(dp, sock, &sets, &again, false, err);
}

bool dp_dns_redirecting(const struct dp *dp)
{
	return dp->mirror && ruleset_set(dp->mirror, DP_DNS_ALIVE_SET);
}

int dp_dns_alive(struct dp *dp, struct nft_sock *sock, char **err)
{
	struct vec sets = { 0 };
	*err = NULL;
	if (!dp_dns_redirecting(dp) || !dp->cfg.dns)
		return 0;
	struct rs_set *s = elem_set(&sets, DP_DNS_ALIVE_SET, RS_KEY_PORTS, 2);
	static const uint8_t l4[2] = { PROTO_UDP, PROTO_TCP };
	for (int i = 0; i < 2; i++) {
		uint8_t *k = s->keys + i * 16;
		memset(k, 0, 16);
		k[0] = k[8] = l4[i];
		k[5] = k[13] = 53;
		s->timeouts[i] = dp->cfg.dns->alive_ms;
	}
	s->n = 2;
	/* emptied and filled again in one transaction: a kernel before 6.10
	 * keeps an element's first expiry when it is added again, even with
	 * NFTNL_SET_ELEM_EXPIRATION, so liveness lapsed between an element's
	 * end and the next refresh; a flush never fails (a delete of an
	 * element that just expired would: ENOENT) and the transaction is
	 * atomic (a packet sees the old elements or the new) */
	return commit_elems(dp, sock, &sets, NULL, true, err);
}

char *dp_applied_text(const struct dp *dp)
{
	return dp->mirror ? ruleset_format(dp->mirror) : NULL;
}

const char *dp_table(const struct dp *dp)
{
	return dp->table;
}
