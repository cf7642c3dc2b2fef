/* The bridge table: each bridged pod's port bound to its pod's addresses
 * (bridge.h). Rendered from the ports the agent learned from the node
 * (agent/nl/link.c), planned against its own mirror like inet corral
 * (plan.c) and sent in one batch (nft.c). */
#include "agent/dataplane/bridge.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/nl/nft.h"

struct dp_bridge {
	char *table;
	struct dp_config cfg;
	struct ruleset *mirror; /* NULL: unknown (the first sync replaces, or removes) */
	bool absent;            /* the kernel has no bridge table (known) */
	struct dp_commit_hook hook;
};

void dp_bridge_set_commit_hook(struct dp_bridge *b, const struct dp_commit_hook *h)
{
	b->hook = *h;
}

struct dp_bridge *dp_bridge_new(const struct dp_config *cfg)
{
	struct dp_bridge *b = xcalloc(1, sizeof(*b));
	b->cfg = *cfg;
	b->table = xstrdup(cfg->table ? cfg->table : "corral");
	b->cfg.table = b->table;
	if (!b->cfg.log_group) /* the defaults of dp_new */
		b->cfg.log_group = 100;
	if (!b->cfg.log_rate)
		b->cfg.log_rate = 10;
	if (!b->cfg.log_burst)
		b->cfg.log_burst = 20;
	return b;
}

void dp_bridge_free(struct dp_bridge *b)
{
	if (!b)
		return;
	ruleset_free(b->mirror);
	free(b->table);
	free(b);
}

struct keys {
	uint8_t *v;
	size_t n, cap, kl;
};

static uint8_t *key_push(struct keys *k)
{
	if (k->n == k->cap) {
		k->cap = k->cap ? 2 * k->cap : 16;
		k->v = xrealloc(k->v, k->cap * 2 * k->kl);
	}
	uint8_t *p = k->v + k->n++ * 2 * k->kl;
	memset(p, 0, 2 * k->kl);
	return p;
}

static int key_cmp_len;
static int key_cmp(const void *a, const void *b)
{
	return memcmp(a, b, (size_t)key_cmp_len);
}

static struct rs_set *set_of(const char *name, enum rs_key key, struct keys *k, const char *comment)
{
	struct rs_set *s = rs_set_new(name, key);
	/* sorted and unique, as the plan's merge walk expects; hi = lo */
	key_cmp_len = (int)(2 * k->kl);
	if (k->n)
		qsort(k->v, k->n, 2 * k->kl, key_cmp);
	size_t kept = 0;
	for (size_t i = 0; i < k->n; i++) {
		if (kept && !memcmp(k->v + (kept - 1) * 2 * k->kl, k->v + i * 2 * k->kl, 2 * k->kl))
			continue;
		memmove(k->v + kept * 2 * k->kl, k->v + i * 2 * k->kl, 2 * k->kl);
		kept++;
	}
	s->n = kept;
	s->keys = k->v;
	s->comment = xstrdup(comment);
	s->origin = xstrdup(comment);
	return s;
}

static struct rs_rule *rule(struct rs_chain *ch, enum rs_rule_kind kind, const char *comment)
{
	struct rs_rule *r = xcalloc(1, sizeof(*r));
	r->kind = kind;
	r->comment = comment ? xstrdup(comment) : NULL;
	vec_push(&ch->rules, r);
	return r;
}

static int set_name_cmp(const void *a, const void *b)
{
	return strcmp((*(const struct rs_set *const *)a)->name, (*(const struct rs_set *const *)b)->name);
}

static int chain_name_cmp(const void *a, const void *b)
{
	const struct rs_chain *x = *(const struct rs_chain *const *)a, *y = *(const struct rs_chain *const *)b;
	if (x->bridge_base != y->bridge_base)
		return x->bridge_base ? -1 : 1;
	return strcmp(x->name, y->name);
}

/* A chain that logs (rate-limited NFLOG, prefix) and drops, counted. */
static void drop_chain(const struct dp_bridge *b, struct ruleset *rs, const char *name, const char *comment,
		       const char *prefix, const char *counter)
{
	struct rs_chain *ch = xcalloc(1, sizeof(*ch));
	ch->name = xstrdup(name);
	ch->comment = xstrdup(comment);
	vec_push(&rs->chains, ch);
	struct rs_rule *r = rule(ch, RR_LOG_DROP, NULL);
	r->prefix = xstrdup(prefix);
	r->rate = b->cfg.log_rate;
	r->burst = b->cfg.log_burst;
	r->group = b->cfg.log_group;
	rule(ch, RR_COUNTER_DROP, counter);
}

struct ruleset *dp_bridge_render(const struct dp_bridge *b, const struct dp_port *ports, size_t n)
{
	struct ruleset *rs = xcalloc(1, sizeof(*rs));
	rs->table = xstrdup(b->table);
	rs->bridge = true;
	struct keys names = { .kl = 16 }, others = { .kl = 16 }, open = { .kl = 16 }, v4 = { .kl = 20 },
		    v6 = { .kl = 32 };
	for (size_t i = 0; i < n; i++) {
		size_t nl = strlen(ports[i].name);
		if (!nl || nl >= 16)
			continue; /* no kernel interface has such a name */
		if (ports[i].other) {
			memcpy(key_push(&others), ports[i].name, nl);
			continue;
		}
		memcpy(key_push(&names), ports[i].name, nl);
		if (ports[i].open)
			memcpy(key_push(&open), ports[i].name, nl);
		for (size_t j = 0; j < ports[i].naddr; j++) {
			const struct dp_port_addr *a = &ports[i].addr[j];
			struct keys *k = a->family == 4 ? &v4 : &v6;
			uint8_t *p = key_push(k);
			memcpy(p, ports[i].name, nl);
			memcpy(p + 16, a->a, a->family == 4 ? 4 : 16);
			memcpy(p + k->kl, p, k->kl); /* hi = lo */
		}
	}
	/* hi = lo for names too */
	struct keys *ifs[] = { &names, &others, &open };
	for (size_t k = 0; k < ARRAY_SIZE(ifs); k++)
		for (size_t i = 0; i < ifs[k]->n; i++)
			memcpy(ifs[k]->v + i * 32 + 16, ifs[k]->v + i * 32, 16);
	vec_push(&rs->sets, set_of(DP_BR_PORTS, RS_KEY_IFNAME, &names, "bridge ports of local pods"));
	vec_push(&rs->sets, set_of(DP_BR_OTHERS, RS_KEY_IFNAME, &others,
				   "bridge ports that are no pod's (uplinks, tunnels, the node's own)"));
	vec_push(&rs->sets, set_of(DP_BR_OPEN, RS_KEY_IFNAME, &open,
				   "ports of pods that admit everything (no ingress isolation)"));
	vec_push(&rs->sets, set_of(DP_BR_SRC_V4, RS_KEY_IF_V4, &v4, "each pod port and its pod's IPv4 addresses"));
	vec_push(&rs->sets, set_of(DP_BR_SRC_V6, RS_KEY_IF_V6, &v6, "each pod port and its pod's IPv6 addresses"));
	vec_sort(&rs->sets, set_name_cmp);

	struct rs_chain *ch = xcalloc(1, sizeof(*ch));
	ch->name = xstrdup("prerouting");
	ch->bridge_base = true;
	ch->br_hook = 0; /* NF_BR_PRE_ROUTING */
	ch->comment = xstrdup("a pod's port admits only its pod's own addresses, ARP for them and real neighbour discovery");
	vec_push(&rs->chains, ch);
	rule(ch, RR_BR_IF, "a bridge port that is no pod's")->set = DP_BR_OTHERS;
	/* every port of a bridge is a pod's or in others: one in neither is
	 * a pod's port the agent has not heard of yet (fail closed) */
	struct rs_rule *r = rule(ch, RR_BR_NOT_PORT, "a port the agent has not learned yet");
	r->set = DP_BR_PORTS;
	r->ports = DP_FORGED_CHAIN;
	/* IPv4 first: most frames, and no special case comes before it */
	r = rule(ch, RR_BR_BIND, "the pod's own IPv4 address");
	r->family = 4;
	r->set = DP_BR_SRC_V4;
	r = rule(ch, RR_BR_ND_LONG, "neighbour discovery carrying data");
	r->ports = DP_FORGED_CHAIN;
	r = rule(ch, RR_BR_NA_TARGET, "neighbour advertisement for another address");
	r->set = DP_BR_SRC_V6;
	r->ports = DP_FORGED_CHAIN;
	/* link-local addresses are bound to their ports for neighbour
	 * discovery only: inet corral's policy dispatch is keyed by pod IPs,
	 * so anything else to or from fe80::/10 would pass every policy */
	r = rule(ch, RR_BR_LL_PROTO, "link-local source: neighbour discovery and MLD only");
	r->src = true;
	r->ports = DP_FORGED_CHAIN;
	r = rule(ch, RR_BR_LL_ICMP, "link-local source: neighbour discovery and MLD only");
	r->src = true;
	r->ports = DP_FORGED_CHAIN;
	r = rule(ch, RR_BR_LL_PROTO, "link-local destination: neighbour discovery and MLD only");
	r->ports = DP_FORGED_CHAIN;
	r = rule(ch, RR_BR_LL_ICMP, "link-local destination: neighbour discovery and MLD only");
	r->ports = DP_FORGED_CHAIN;
	rule(ch, RR_BR_ARP, "ARP for the pod's own IPv4 address")->set = DP_BR_SRC_V4;
	r = rule(ch, RR_BR_BIND, "the pod's own IPv6 address");
	r->family = 6;
	r->set = DP_BR_SRC_V6;
	r = rule(ch, RR_BR_UNSPEC6, "duplicate address detection");
	r->icmp = 135, r->hops = 255;
	r = rule(ch, RR_BR_UNSPEC6, "multicast listener report before an address is ready");
	r->icmp = 143, r->hops = 1;
	rule(ch, RR_GOTO, "anything else from a pod's port")->set = DP_FORGED_CHAIN;

	drop_chain(b, rs, DP_FORGED_CHAIN, "frames from a pod's port with an address that is not its pod's", "corral:e:s ",
		   "forged source address (bridge port)");

	/* frames leaving by a pod's port, bridged from another port (forward)
	 * or sent by the node (output): inet corral judges a packet by its
	 * addresses, so one addressed to anything but the pod (broadcast,
	 * multicast, another address, a link-local one) would meet no
	 * ingress policy; a pod isolated for ingress gets only what is
	 * addressed to it, ARP and neighbour discovery */
	static const uint8_t hooks[] = { 2 /* NF_BR_FORWARD */, 3 /* NF_BR_LOCAL_OUT */ };
	for (size_t h = 0; h < ARRAY_SIZE(hooks); h++) {
		ch = xcalloc(1, sizeof(*ch));
		ch->name = xstrdup(hooks[h] == 2 ? "forward" : "output");
		ch->bridge_base = true;
		ch->br_hook = hooks[h];
		ch->comment = xstrdup(hooks[h] == 2 ? "frames bridged to a port" : "frames the node sends out of a port");
		vec_push(&rs->chains, ch);
		rule(ch, RR_GOTO, NULL)->set = DP_BR_TO_POD;
	}
	ch = xcalloc(1, sizeof(*ch));
	ch->name = xstrdup(DP_BR_TO_POD);
	ch->comment = xstrdup("a pod isolated for ingress receives only what is addressed to it");
	vec_push(&rs->chains, ch);
	r = rule(ch, RR_BR_IF, "a bridge port that is no pod's");
	r->set = DP_BR_OTHERS;
	r->oif = true;
	r = rule(ch, RR_BR_IF, "a pod that admits everything");
	r->set = DP_BR_OPEN;
	r->oif = true;
	r = rule(ch, RR_BR_BIND, "addressed to the pod (its ingress policy judges it in inet corral)");
	r->family = 4;
	r->set = DP_BR_SRC_V4;
	r->oif = true;
	rule(ch, RR_BR_ARP_ANY, "address resolution");
	r = rule(ch, RR_BR_ND_LONG, "neighbour discovery carrying data");
	r->ports = DP_BR_MISADDRESSED;
	for (int src = 0; src <= 1; src++) {
		r = rule(ch, RR_BR_LL_PROTO, "link-local: neighbour discovery and MLD only");
		r->src = src;
		r->ports = DP_BR_MISADDRESSED;
		r = rule(ch, RR_BR_LL_ICMP, "link-local: neighbour discovery and MLD only");
		r->src = src;
		r->ports = DP_BR_MISADDRESSED;
	}
	r = rule(ch, RR_BR_BIND, "addressed to the pod (its ingress policy judges it in inet corral)");
	r->family = 6;
	r->set = DP_BR_SRC_V6;
	r->oif = true;
	rule(ch, RR_BR_ND, "neighbour discovery");
	rule(ch, RR_BR_MCAST6, "MLD, router and neighbour discovery to a multicast group");
	rule(ch, RR_BR_MCAST6, "MLD report to a multicast group")->icmp = 143;
	rule(ch, RR_GOTO, "broadcast, multicast or another address")->set = DP_BR_MISADDRESSED;

	drop_chain(b, rs, DP_BR_MISADDRESSED, "frames to an ingress-isolated pod not addressed to it", "corral:i:m ",
		   "not addressed to the pod (bridge port)");
	vec_sort(&rs->chains, chain_name_cmp);
	return rs;
}

int dp_bridge_sync(struct dp_bridge *b, struct nft_sock *sock, const struct dp_port *ports, size_t n,
		   struct dp_stats *st, char **err)
{
	struct dp_stats local;
	struct vec owned = { 0 };
	struct dp_txn t = { .table = b->table, .bridge = true };
	struct ruleset *rs = NULL;
	if (!st)
		st = &local;
	memset(st, 0, sizeof(*st));
	*err = NULL;
	size_t pods = 0;
	for (size_t i = 0; i < n; i++)
		pods += !ports[i].other;
	if (!pods) {
		/* no bridged pod: no table (one left by an earlier run goes) */
		if (b->absent)
			return 0;
		dp_txn_push(&t, (struct dp_op){ .kind = OP_TABLE_ADD });
		dp_txn_push(&t, (struct dp_op){ .kind = OP_TABLE_DEL });
	} else {
		rs = dp_bridge_render(b, ports, n);
		dp_plan(b->absent ? NULL : b->mirror, rs, &t, &owned, st);
	}
	struct nft_txn_info info = { .refused_op = -1 };
	if (t.n && b->hook.before)
		b->hook.before(&t, b->hook.arg);
	int rc = t.n ? nft_txn_commit(sock, &t, &info, err) : 0;
	if (t.n && b->hook.after)
		b->hook.after(&t, rc, b->hook.arg);
	if (rc < 0 && !*err) {
		struct sbuf sb = { 0 };
		if (info.refused_op >= 0)
			dp_op_describe(&t.ops[info.refused_op], &sb);
		char *what = sbuf_steal(&sb);
		*err = xasprintf("kernel refused the bridge table's transaction%s%s: %s%s%s", what && *what ? " at " : "",
				 what ? what : "", strerror(-rc), info.kernel_msg[0] ? ": " : "", info.kernel_msg);
		free(what);
	}
	ruleset_free(b->mirror);
	b->mirror = NULL;
	if (rc < 0) {
		ruleset_free(rs);
		b->absent = false; /* unknown: the next sync replaces */
	} else {
		b->mirror = rs;
		b->absent = !rs;
	}
	st->msgs = info.msgs;
	for (size_t i = 0; i < owned.n; i++)
		rs_set_put(owned.v[i]);
	vec_free(&owned);
	free(t.ops);
	return rc;
}

char *dp_bridge_text(const struct dp_bridge *b)
{
	return b->mirror ? ruleset_format(b->mirror) : NULL;
}

bool dp_bridge_text_present(const struct dp_bridge *b)
{
	return b->mirror != NULL;
}

const char *dp_bridge_table(const struct dp_bridge *b)
{
	return b->table;
}
