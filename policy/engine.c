#include "engine.h"

#include <stdlib.h>
#include <string.h>

#define NS_NAME_LABEL "kubernetes.io/metadata.name"

/* An anchor is the most selective requirement a term has: a pod label in
 * one namespace, a pod label anywhere, a namespace, or a namespace label.
 * (An app label alone is shared by every namespace: anchoring on it made a
 * 150,000-pod compile scan 19,000 pods per peer set.) Anchors exist for
 * the terms of live peer sets only. */
enum anchor_type { ANCHOR_NONE, ANCHOR_POD_LABEL, ANCHOR_NS_NAME, ANCHOR_NS_LABEL, ANCHOR_NS_POD_LABEL };

struct anchor {
	enum anchor_type type;
	istr k, v, ns;
	struct vec terms;
	/* ANCHOR_POD_LABEL: the active pods labelled k=v, cluster-wide (the
	 * label index, kept only for the pairs a live term anchors on: a few
	 * at 150,000 pods, where indexing every label of every pod cost
	 * 19 MB); the other anchors find their pods through namespaces */
	struct list pods; /* struct pod_lnode.node */
};

/* One pod peer of a peer set: pods of namespace ns (or of namespaces
 * matching nssel) that match podsel. Owns copies of its selectors because
 * the peer set outlives the policy that created it. */
struct term {
	struct ir_peerset *ps;
	istr ns;
	struct selector nssel, podsel;
	struct anchor *anchor; /* NULL: unanchored */
};

/* A pod in the list of one indexed label pair; a pod's nodes are chained
 * from struct pod.lnodes. */
struct pod_lnode {
	struct list node;
	struct pod *pod;
	struct pod_lnode *next;
};

struct engine {
	struct engine_config cfg;
	struct htab nss;      /* struct ns, by name */
	struct htab pods;     /* struct pod, by ns/name */
	struct htab addrs;    /* by address: its owner, or its claimants (addr_claim) */
	struct htab anchors;  /* struct anchor */
	struct vec unanchored;/* struct term* */
	struct vec idle;      /* label anchors no term uses, kept indexed a while (anchor_idle) */
	struct htab policies; /* struct policy, by kind/ns/name */
	struct htab peersets; /* struct ir_peerset, by key */
	struct htab groups;   /* struct ir_group, by dir and policies */
	uint32_t next_group, next_peerset;
	uint64_t epoch;
	struct vec dirty_ps, dirty_groups;
	struct vec idle_pols; /* struct policy* no group holds, rules kept until the transaction ends */
	struct ptrset local;  /* active pods on this node */
	struct ptrset here;   /* every pod of this node, active or not */
	struct ptrset meets;  /* provisional pods (struct pod.meet) */
	size_t npol[POLICY_KINDS][2]; /* policies by kind and validity */
	struct engine_stats stats;
	/* cluster default: egress to cluster DNS for AccessPolicy pods */
	struct rule dns_rule_spec;
	struct ir_rule dns_rule;
	istr app_label;
	/* the stand-in policy that isolates pods we could not read */
	struct policy_spec quarantine_spec;
	struct policy quarantine;
	/* objects enforced fail-closed because they could not be read */
	size_t unread_ns, unread_pods, unread_pol[POLICY_KINDS];
	/* entities: the nodes (struct node_spec*, by name), the configured
	 * pod ranges and API server addresses, what was learned of the API
	 * server, and each entity's current ranges */
	struct htab nodes;
	struct htab apislices; /* node_spec with apiserver: the kubernetes Service's EndpointSlices */
	struct range_set cfg_pod_cidrs, cfg_apiserver, learned_apiserver;
	/* world: the pod ranges it was last computed with, and the pod
	 * addresses outside them (strays: an IPAM pool no Node or setting
	 * names), which world leaves out too */
	struct range_set pod_ranges, strays;
	bool strays_changed; /* world to compute again before it is next read */
	size_t unread_nodes;
	struct range_set ent[3];
	bool world_known[2];
};

static int ent_idx(enum entity ent)
{
	return ent == ENT_NODES ? 0 : ent == ENT_WORLD ? 1 : 2;
}

/* The address index (e->addrs) holds, for an address one live pod lists,
 * that pod (struct pod*, with bit i of its owns set for spec->addr[i]);
 * while two or more list it, a struct conflict with the low bit of its
 * pointer set: the address is quarantined (engine.h). No entry of its own
 * (one of 24 bytes, 32 with malloc's header, per pod address at 150,000
 * pods). */
struct conflict {
	ip128 a;
	struct vec pods; /* struct pod*, two or more */
};

static bool is_conflict(const void *item)
{
	return (uintptr_t)item & 1;
}

static struct conflict *conflict_of(const void *item)
{
	return (struct conflict *)((uintptr_t)item & ~(uintptr_t)1);
}

static void *conflict_item(struct conflict *c)
{
	return (void *)((uintptr_t)c | 1);
}

/* Bit i of struct pod.owns for address a of p's spec (0: not listed). */
static uint8_t addr_bit(const struct pod *p, ip128 a)
{
	for (uint32_t i = 0; i < p->spec->naddr; i++)
		if (ip_eq(p->spec->addr[i], a))
			return (uint8_t)(1u << i);
	return 0;
}

/* A view of a pod for matching: enough to evaluate any selector term.
 * nsl NULL: the namespace could not be read, no namespace selector
 * matches it; pl NULL: the pod could not be read, no peer term matches
 * it (fail closed: an object we cannot read is never admitted). */
struct view {
	bool active;
	istr ns;
	const struct labelset *nsl, *pl;
	const struct pod_meet *meet; /* a provisional pod: every candidate must match too */
};

/* The candidates of a provisional pod (engine_pod_upsert_meet): their
 * specs as they were when it was made (references of ours), looked up in
 * the engine's namespaces when matched. */
struct pod_meet {
	const struct engine *e;
	uint32_t n;
	struct pod_spec **cands;
};

static void meet_free(struct pod_meet *m)
{
	if (!m)
		return;
	for (uint32_t i = 0; i < m->n; i++)
		pod_spec_free(m->cands[i]);
	free(m->cands);
	free(m);
}

static const struct labelset *ns_view_labels(const struct ns *n)
{
	return n->spec && n->spec->unreadable ? NULL : ns_labels(n);
}

static const struct labelset *pod_view_labels(const struct pod_spec *s)
{
	return s->unreadable ? NULL : &s->labels;
}

static int pod_cmp(const void *a, const void *b);
static int peerset_cmp(const void *a, const void *b);

/* ---------- hash keys ---------- */

struct podkey {
	const char *ns, *name;
};

static uint64_t podkey_hash(const char *ns, const char *name)
{
	return hash_bytes(name, strlen(name), hash_str(ns));
}

static bool pod_eq(const void *item, const void *key)
{
	const struct pod *p = item;
	const struct podkey *k = key;
	return !strcmp(p->spec->ns, k->ns) && !strcmp(p->spec->name, k->name);
}

static bool ns_eq(const void *item, const void *key)
{
	return !strcmp(((const struct ns *)item)->name, key);
}

static bool addr_eq(const void *item, const void *key)
{
	ip128 a = *(const ip128 *)key;
	if (is_conflict(item))
		return ip_eq(conflict_of(item)->a, a);
	const struct pod *p = item; /* owner of a only if its bit says so */
	return (p->owns & addr_bit(p, a)) != 0;
}

static uint64_t addr_hash(ip128 a)
{
	return hash_bytes(&a, sizeof(a), 0);
}

struct pairkey {
	int type;
	istr k, v, ns;
};

static uint64_t anchor_hash(int type, istr k, istr v, istr ns)
{
	uintptr_t x[4] = { (uintptr_t)type, (uintptr_t)k, (uintptr_t)v, (uintptr_t)ns };
	return hash_bytes(x, sizeof(x), 0);
}

static bool anchor_eq(const void *item, const void *key)
{
	const struct anchor *a = item;
	const struct pairkey *k = key;
	return (int)a->type == k->type && a->k == k->k && a->v == k->v && a->ns == k->ns;
}

struct polkey {
	enum policy_kind kind;
	const char *ns, *name;
};

static uint64_t polkey_hash(enum policy_kind kind, const char *ns, const char *name)
{
	return hash_bytes(name, strlen(name), hash_str(ns) + kind);
}

static bool policy_eq(const void *item, const void *key)
{
	const struct policy *p = item;
	const struct polkey *k = key;
	return p->spec->kind == k->kind && !strcmp(p->spec->ns, k->ns) && !strcmp(p->spec->name, k->name);
}

static bool peerset_eq(const void *item, const void *key)
{
	return !strcmp(((const struct ir_peerset *)item)->key, key);
}

/* A group is the policies isolating its pods (npol, pols), or for a meet
 * group the groups it meets (nmeet, meet; npol 0). */
struct groupkey {
	enum dir dir;
	uint32_t npol;
	const struct policy **pols;
	uint32_t nmeet;
	struct ir_group *const *meet;
};

static uint64_t groupkey_hash(const struct groupkey *k)
{
	uint64_t h = hash_bytes(k->pols, k->npol * sizeof(*k->pols), k->dir + 1);
	return k->nmeet ? hash_bytes(k->meet, k->nmeet * sizeof(*k->meet), h) : h;
}

static bool group_eq(const void *item, const void *key)
{
	const struct ir_group *g = item;
	const struct groupkey *k = key;
	return g->dir == k->dir && g->npol == k->npol && g->nmeet == k->nmeet &&
	       !memcmp(g->pols, k->pols, k->npol * sizeof(*k->pols)) &&
	       (!k->nmeet || !memcmp(g->meet, k->meet, k->nmeet * sizeof(*k->meet)));
}

/* ---------- namespaces ---------- */

const struct labelset *ns_labels(const struct ns *n)
{
	return n->spec ? &n->spec->labels : &n->implied;
}

struct ns *engine_ns_find(const struct engine *e, const char *name)
{
	return htab_find(&e->nss, hash_str(name), ns_eq, name);
}

static struct ns *ns_get(struct engine *e, istr name)
{
	struct ns *n = engine_ns_find(e, name);
	if (n)
		return n;
	n = xcalloc(1, sizeof(*n));
	n->name = istr_ref(name);
	labelset_set(&n->implied, NS_NAME_LABEL, name);
	list_init(&n->pods);
	htab_insert(&e->nss, hash_str(name), n);
	return n;
}

/* Forget a namespace that nothing refers to any more. */
static void ns_gc(struct engine *e, struct ns *n)
{
	if (n->spec || !list_empty(&n->pods) || n->policies.n)
		return;
	htab_remove(&e->nss, hash_str(n->name), ns_eq, n->name);
	labelset_free(&n->implied);
	vec_free(&n->policies);
	istr_put(n->name);
	free(n);
}

/* ---------- anchors and terms ---------- */

static void lnode_add(struct anchor *a, struct pod *p)
{
	struct pod_lnode *n = xmalloc(sizeof(*n));
	n->pod = p;
	n->next = p->lnodes;
	p->lnodes = n;
	list_add_tail(&a->pods, &n->node);
}

/* A pair indexed from now on: every active pod labelled with it, once. */
static void anchor_index(struct engine *e, struct anchor *a)
{
	struct pod *p;
	htab_foreach(&e->pods, p) {
		if (!p->indexed)
			continue;
		/* keys and values are interned (istr): one pointer compare
		 * each, no strcmp (this scan is most of a new policy's cost) */
		const struct labelset *l = &p->spec->labels;
		for (uint32_t i = 0; i < l->n; i++)
			if (l->v[i].key == a->k) {
				if (l->v[i].val == a->v)
					lnode_add(a, p);
				break;
			}
	}
}

static void anchor_unindex(struct anchor *a)
{
	struct list *it, *tmp;
	list_foreach_safe(it, tmp, &a->pods) {
		struct pod_lnode *n = container_of(it, struct pod_lnode, node), **pp = &n->pod->lnodes;
		while (*pp != n)
			pp = &(*pp)->next;
		*pp = n->next;
		list_del(it);
		free(n);
	}
}

static void anchor_free(struct engine *e, struct anchor *a)
{
	struct pairkey key = { a->type, a->k, a->v, a->ns };
	htab_remove(&e->anchors, anchor_hash(a->type, a->k, a->v, a->ns), anchor_eq, &key);
	anchor_unindex(a);
	istr_put(a->k);
	istr_put(a->v);
	istr_put(a->ns);
	vec_free(&a->terms);
	free(a);
}

/* A label anchor whose last term went: indexing it again costs a scan of
 * every pod (most of what a new policy costs at 150,000 pods), so the
 * last ANCHOR_IDLE_MAX of them stay indexed while they are small
 * (ANCHOR_IDLE_PODS): a policy deleted and created again, or another
 * naming the same label, finds its pods at once. */
#define ANCHOR_IDLE_MAX 32
#define ANCHOR_IDLE_PODS 2048
static void anchor_idle(struct engine *e, struct anchor *a)
{
	size_t n = 0;
	struct list *it;
	list_foreach(it, &a->pods) if (++n > ANCHOR_IDLE_PODS) break;
	if (a->type != ANCHOR_POD_LABEL || n > ANCHOR_IDLE_PODS) {
		anchor_free(e, a);
		return;
	}
	vec_push(&e->idle, a);
	if (e->idle.n > ANCHOR_IDLE_MAX) { /* the oldest goes */
		anchor_free(e, e->idle.v[0]);
		memmove(e->idle.v, e->idle.v + 1, (e->idle.n - 1) * sizeof(*e->idle.v));
		e->idle.n--;
	}
}

static struct anchor *anchor_get(struct engine *e, int type, istr k, istr v, istr ns)
{
	struct pairkey key = { type, k, v, ns };
	uint64_t h = anchor_hash(type, k, v, ns);
	struct anchor *a = htab_find(&e->anchors, h, anchor_eq, &key);
	if (a && !a->terms.n) { /* idle: in use again, as indexed */
		for (size_t i = 0; i < e->idle.n; i++)
			if (e->idle.v[i] == a) {
				memmove(e->idle.v + i, e->idle.v + i + 1, (e->idle.n - i - 1) * sizeof(*e->idle.v));
				e->idle.n--;
				break;
			}
	}
	if (!a) {
		a = xcalloc(1, sizeof(*a));
		a->type = type;
		a->k = istr_ref(k);
		a->v = istr_ref(v);
		a->ns = istr_ref(ns);
		list_init(&a->pods);
		htab_insert(&e->anchors, h, a);
		if (type == ANCHOR_POD_LABEL)
			anchor_index(e, a);
	}
	return a;
}

static struct anchor *anchor_find(const struct engine *e, int type, istr k, istr v, istr ns)
{
	struct pairkey key = { type, k, v, ns };
	return htab_find(&e->anchors, anchor_hash(type, k, v, ns), anchor_eq, &key);
}

/* A requirement "key in (one value)" is the most selective handle. */
static const struct sel_req *selector_anchor_req(const struct selector *s)
{
	for (uint32_t i = 0; i < s->n; i++)
		if (s->req[i].op == SEL_IN && s->req[i].nvals == 1)
			return &s->req[i];
	return NULL;
}

static void term_anchor(struct engine *e, struct term *t)
{
	const struct sel_req *r = selector_anchor_req(&t->podsel);
	if (r && t->ns)
		t->anchor = anchor_get(e, ANCHOR_NS_POD_LABEL, r->key, r->vals[0], t->ns);
	else if (r)
		t->anchor = anchor_get(e, ANCHOR_POD_LABEL, r->key, r->vals[0], NULL);
	else if (t->ns)
		t->anchor = anchor_get(e, ANCHOR_NS_NAME, t->ns, NULL, NULL);
	else if ((r = selector_anchor_req(&t->nssel)))
		t->anchor = anchor_get(e, ANCHOR_NS_LABEL, r->key, r->vals[0], NULL);
	if (t->anchor)
		vec_push(&t->anchor->terms, t);
	else
		vec_push(&e->unanchored, t);
}

static void term_unanchor(struct engine *e, struct term *t)
{
	if (!t->anchor) {
		vec_remove(&e->unanchored, t);
		return;
	}
	struct anchor *a = t->anchor;
	vec_remove(&a->terms, t);
	if (!a->terms.n)
		anchor_idle(e, a);
}

/* Pods of namespace ns (NULL: of namespaces matching nssel) matching
 * podsel: a term, or a pod peer of a policy (struct peer). */
static bool pods_match(istr ns, const struct selector *nssel, const struct selector *podsel, const struct view *v)
{
	if (!v->pl || (ns ? ns != v->ns : !v->nsl || !selector_matches(nssel, v->nsl)))
		return false;
	return selector_matches(podsel, v->pl);
}

static bool term_matches1(const struct term *t, const struct view *v)
{
	return pods_match(t->ns, &t->nssel, &t->podsel, v);
}

/* Whether rule r's pod peers match v (the membership of its peer set). */
static bool rule_pods_match(const struct rule *r, const struct view *v)
{
	for (uint32_t i = 0; i < r->npeers; i++)
		if (r->peers[i].kind == PEER_PODS && pods_match(r->peers[i].ns, &r->peers[i].nssel, &r->peers[i].podsel, v))
			return true;
	return false;
}

/* The view of a provisional pod's candidate c, as if it had an address. */
static struct view cand_view(const struct engine *e, const struct pod_spec *c)
{
	const struct ns *n = engine_ns_find(e, c->ns);
	return (struct view){ true, c->ns, n ? ns_view_labels(n) : NULL, pod_view_labels(c), NULL };
}

static bool term_matches(const struct term *t, const struct view *v)
{
	if (!term_matches1(t, v))
		return false;
	for (uint32_t i = 0; v->meet && i < v->meet->n; i++) { /* every candidate (engine.h) */
		struct view cv = cand_view(v->meet->e, v->meet->cands[i]);
		if (!term_matches1(t, &cv))
			return false;
	}
	return true;
}

static bool term_match(struct engine *e, const struct term *t, const struct view *v)
{
	e->stats.term_evals++;
	return term_matches(t, v);
}

static bool peerset_match(struct engine *e, const struct ir_peerset *ps, const struct view *v)
{
	if (!v->active)
		return false;
	for (size_t i = 0; i < ps->terms.n; i++)
		if (term_match(e, ps->terms.v[i], v))
			return true;
	return false;
}

static void mark_ps(struct engine *e, struct ir_peerset *ps)
{
	if (!ps->dirty) {
		ps->dirty = true;
		vec_push(&e->dirty_ps, ps);
	}
}

static void touched_clear(struct ir_peerset *ps)
{
	free(ps->touched);
	ps->touched = NULL;
	ps->ntouched = ps->ctouched = 0;
}

/* Anything about ps may have changed: to be listed again whole. */
static void mark_ps_full(struct engine *e, struct ir_peerset *ps)
{
	mark_ps(e, ps);
	ps->full = true;
	touched_clear(ps);
}

/* The membership of the addresses of old and now (pod specs, either may
 * be NULL) in ps may have changed. Past an eighth of its members, listing
 * it again is as cheap: full. */
static void mark_ps_touched(struct engine *e, struct ir_peerset *ps, const struct pod_spec *old,
			    const struct pod_spec *now)
{
	mark_ps(e, ps);
	if (ps->full)
		return;
	const struct pod_spec *sp[2] = { old, now };
	for (int k = 0; k < 2; k++)
		for (uint32_t i = 0; sp[k] && i < sp[k]->naddr; i++) {
			if (ps->ntouched == ps->ctouched) {
				ps->ctouched = ps->ctouched ? ps->ctouched * 2 : 4;
				ps->touched = xrealloc(ps->touched, ps->ctouched * sizeof(*ps->touched));
			}
			ps->touched[ps->ntouched++] = sp[k]->addr[i];
		}
	if (ps->ntouched > 64 && ps->ntouched > ptrset_count(&ps->members) / 8)
		mark_ps_full(e, ps);
}

void engine_peerset_rendered(struct ir_peerset *ps)
{
	ps->full = false;
	touched_clear(ps);
}

void engine_peersets_rendered(struct engine *e)
{
	struct ir_peerset *ps;
	htab_foreach(&e->peersets, ps) engine_peerset_rendered(ps);
}

static void mark_group(struct engine *e, struct ir_group *g)
{
	if (!g->dirty) {
		g->dirty = true;
		vec_push(&e->dirty_groups, g);
	}
}

static void collect_anchor(struct engine *e, struct anchor *a, struct vec *out)
{
	if (!a)
		return;
	for (size_t i = 0; i < a->terms.n; i++) {
		struct ir_peerset *ps = ((struct term *)a->terms.v[i])->ps;
		if (ps->epoch != e->epoch) {
			ps->epoch = e->epoch;
			vec_push(out, ps);
		}
	}
}

/* Peer sets whose terms might match view v: those anchored on one of its
 * labels, its namespace or its namespace's labels. */
static void collect_candidates(struct engine *e, const struct view *v, struct vec *out)
{
	if (!v->active)
		return;
	for (uint32_t i = 0; v->pl && i < v->pl->n; i++) {
		istr k = v->pl->v[i].key, val = v->pl->v[i].val;
		collect_anchor(e, anchor_find(e, ANCHOR_POD_LABEL, k, val, NULL), out);
		collect_anchor(e, anchor_find(e, ANCHOR_NS_POD_LABEL, k, val, v->ns), out);
	}
	collect_anchor(e, anchor_find(e, ANCHOR_NS_NAME, v->ns, NULL, NULL), out);
	for (uint32_t i = 0; v->nsl && i < v->nsl->n; i++)
		collect_anchor(e, anchor_find(e, ANCHOR_NS_LABEL, v->nsl->v[i].key, v->nsl->v[i].val, NULL), out);
}

static bool addrs_equal(const struct pod_spec *a, const struct pod_spec *b)
{
	if (a->naddr != b->naddr)
		return false;
	for (uint32_t i = 0; i < a->naddr; i++)
		if (!ip_eq(a->addr[i], b->addr[i]))
			return false;
	return true;
}

/* Pass 2 for one pod: move it in or out of every peer set whose match
 * may differ between the old and the new view. */
static void pod_reevaluate(struct engine *e, struct pod *p, const struct pod_spec *old_spec, const struct view *old,
			   const struct view *new, bool addr_changed)
{
	struct vec cand = { 0 };
	e->epoch++;
	collect_candidates(e, old, &cand);
	collect_candidates(e, new, &cand);
	if (old->active || new->active)
		for (size_t i = 0; i < e->unanchored.n; i++) {
			struct ir_peerset *ps = ((struct term *)e->unanchored.v[i])->ps;
			if (ps->epoch != e->epoch) {
				ps->epoch = e->epoch;
				vec_push(&cand, ps);
			}
		}
	for (size_t i = 0; i < cand.n; i++) {
		struct ir_peerset *ps = cand.v[i];
		bool was = ptrset_has(&ps->members, p);
		bool now = peerset_match(e, ps, new);
		if (was && !now)
			ptrset_del(&ps->members, p);
		else if (!was && now)
			ptrset_add(&ps->members, p);
		if (was != now || (now && addr_changed))
			mark_ps_touched(e, ps, old_spec, p->spec);
	}
	vec_free(&cand);
}

/* ---------- peer sets ---------- */

/* A peer set's identity: the canonical text of its peers. The hash of it
 * only picks a bucket of e->peersets; strcmp decides. The text is
 * injective because every part is either a validated name (namespaces,
 * label keys and values, hosts: none holds a space, ',', '(', ')', '=' or
 * ';') or a formatted address range. */
static void peer_key(const struct peer *pe, struct sbuf *b)
{
	char buf[2 * IP_STRLEN + 2];
	switch (pe->kind) {
	case PEER_PODS:
		if (pe->ns)
			sbuf_addf(b, "ns=%s ", pe->ns);
		else {
			sbuf_add(b, "nssel=");
			selector_format(&pe->nssel, b);
			sbuf_add(b, " ");
		}
		sbuf_add(b, "pods=");
		selector_format(&pe->podsel, b);
		sbuf_add(b, "; ");
		break;
	case PEER_CIDR:
		sbuf_add(b, "cidr=");
		for (size_t i = 0; i < pe->ranges.n; i++) {
			range_format(&pe->ranges.r[i], buf, sizeof(buf));
			sbuf_addf(b, "%s%s", i ? "," : "", buf);
		}
		sbuf_add(b, "; ");
		break;
	case PEER_HOST:
		sbuf_addf(b, "host=%s; ", pe->text);
		break;
	case PEER_ENTITY:
		sbuf_addf(b, "entity=%s; ", entity_name((enum entity)pe->entity));
		break;
	}
}

/* ranges = own and the current ranges of every entity of the set */
static void entities_fresh(const struct engine *ce);

static void peerset_ranges(const struct engine *e, struct ir_peerset *ps)
{
	entities_fresh(e);
	range_set_free(&ps->ranges);
	range_set_copy(&ps->ranges, &ps->own);
	for (int b = 0; b < 3; b++)
		if (ps->entities & (1u << b))
			range_set_union(&ps->ranges, &e->ent[b]);
}

static void peerset_fill(struct engine *e, struct ir_peerset *ps, struct term *t);

/* The canonical key of rule r's peers (peer_key). */
static char *rule_peers_key(const struct rule *r)
{
	struct sbuf key = { 0 };
	for (uint32_t i = 0; i < r->npeers; i++)
		peer_key(&r->peers[i], &key);
	if (!key.s)
		sbuf_add(&key, "none; ");
	return sbuf_steal(&key);
}

/* A peer set of rule r's peers, in no table and not live (its terms
 * unanchored, no members: ir_peerset_has_pod matches them); takes key. */
static struct ir_peerset *peerset_make(const struct engine *e, const struct rule *r, char *key)
{
	struct ir_peerset *ps = xcalloc(1, sizeof(*ps));
	ps->key = key;
	ps->refs = 1;
	for (uint32_t i = 0; i < r->npeers; i++) {
		const struct peer *pe = &r->peers[i];
		if (pe->kind == PEER_CIDR) {
			range_set_union(&ps->own, &pe->ranges); /* one pass: adding range by range was quadratic */
		} else if (pe->kind == PEER_ENTITY) {
			ps->entities |= pe->entity;
		} else if (pe->kind == PEER_HOST) {
			if (!ps->host) /* one host per rule (decode.c: an external entry is a rule) */
				ps->host = istr_get(pe->text);
		} else if (pe->kind == PEER_PODS) {
			struct term *t = xcalloc(1, sizeof(*t));
			t->ps = ps;
			t->ns = istr_ref(pe->ns);
			selector_copy(&t->nssel, &pe->nssel);
			selector_copy(&t->podsel, &pe->podsel);
			vec_push(&ps->terms, t); /* anchored and filled once live */
		}
	}
	peerset_ranges(e, ps); /* marked when it becomes live */
	return ps;
}

/* Frees a peer set that is in no table (its terms unanchored). */
static void peerset_destroy(struct ir_peerset *ps)
{
	if (!ps)
		return;
	for (size_t i = 0; i < ps->terms.n; i++) {
		struct term *t = ps->terms.v[i];
		istr_put(t->ns);
		selector_free(&t->nssel);
		selector_free(&t->podsel);
		free(t);
	}
	vec_free(&ps->terms);
	ptrset_free(&ps->members);
	touched_clear(ps);
	range_set_free(&ps->ranges);
	range_set_free(&ps->own);
	fqdn_set_clear(&ps->learned);
	istr_put(ps->host);
	free(ps->key);
	free(ps);
}

/* The shared peer set of rule r's peers (a reference): only rules of live
 * policies have them (policy_rules_make), so a node holds the few hundred
 * its groups use, not one for every peer of every policy in the cluster. */
static struct ir_peerset *peerset_get(struct engine *e, const struct rule *r)
{
	char *key = rule_peers_key(r);
	uint64_t h = hash_str(key);
	struct ir_peerset *ps = htab_find(&e->peersets, h, peerset_eq, key);
	if (ps) {
		free(key);
		ps->refs++;
		return ps;
	}
	ps = peerset_make(e, r, key);
	ps->id = ++e->next_peerset;
	htab_insert(&e->peersets, h, ps);
	e->stats.peerset_builds++;
	return ps;
}

static void fill_from_list(struct engine *e, struct ir_peerset *ps, struct term *t, struct list *head,
			   size_t off)
{
	struct list *it;
	list_foreach(it, head) {
		struct pod *p = off ? container_of(it, struct pod_lnode, node)->pod : container_of(it, struct pod, ns_node);
		if (!p->active)
			continue;
		struct view v = { true, p->spec->ns, ns_view_labels(p->ns), pod_view_labels(p->spec), p->meet };
		if (term_match(e, t, &v))
			ptrset_add(&ps->members, p);
	}
}

/* Adds the pods matching term t, reaching them through the indexes. */
static void peerset_fill(struct engine *e, struct ir_peerset *ps, struct term *t)
{
	struct ns *n;
	if (t->anchor && t->anchor->type == ANCHOR_POD_LABEL) {
		fill_from_list(e, ps, t, &t->anchor->pods, 1);
		return;
	}
	if (t->ns) {
		if ((n = engine_ns_find(e, t->ns)))
			fill_from_list(e, ps, t, &n->pods, 0);
		return;
	}
	htab_foreach(&e->nss, n) {
		if (ns_view_labels(n) && selector_matches(&t->nssel, ns_view_labels(n)))
			fill_from_list(e, ps, t, &n->pods, 0);
	}
}

/* A rule of a live policy uses ps: the first one fills it from the indexes
 * and anchors its terms, so that pod changes keep it up to date. */
static void peerset_live(struct engine *e, struct ir_peerset *ps)
{
	if (!ps || ps->live++)
		return;
	e->stats.peerset_builds++;
	for (size_t i = 0; i < ps->terms.n; i++) {
		struct term *t = ps->terms.v[i];
		term_anchor(e, t);
		peerset_fill(e, ps, t);
	}
	mark_ps_full(e, ps);
}

/* The last rule of a live policy using ps is gone: forget its members. */
static void peerset_unlive(struct engine *e, struct ir_peerset *ps)
{
	if (!ps || --ps->live)
		return;
	for (size_t i = 0; i < ps->terms.n; i++) {
		struct term *t = ps->terms.v[i];
		term_unanchor(e, t);
		t->anchor = NULL;
	}
	ptrset_free(&ps->members);
}

static void peerset_put(struct engine *e, struct ir_peerset *ps)
{
	if (!ps || --ps->refs)
		return;
	htab_remove(&e->peersets, hash_str(ps->key), peerset_eq, ps->key);
	for (size_t i = 0; ps->live && i < ps->terms.n; i++)
		term_unanchor(e, ps->terms.v[i]);
	if (ps->dirty)
		vec_remove(&e->dirty_ps, ps);
	peerset_destroy(ps);
}

bool ir_peerset_has(const struct engine *e, const struct ir_peerset *ps, ip128 a)
{
	entities_fresh(e);
	if (range_set_contains(&ps->ranges, a))
		return true;
	if (ps->host && fqdn_set_live(&ps->learned, a, fqdn_now_ms()))
		return true;
	struct pod *p = engine_pod_by_addr(e, a);
	return p && ir_peerset_has_pod(e, ps, p);
}

bool ir_peerset_has_pod(const struct engine *e, const struct ir_peerset *ps, const struct pod *p)
{
	if (ps->live)
		return ptrset_has(&ps->members, p);
	if (!p->active)
		return false;
	/* not kept: the same match the live passes make */
	struct view v = { true, p->spec->ns, ns_view_labels(p->ns), pod_view_labels(p->spec), p->meet };
	for (size_t i = 0; i < ps->terms.n; i++)
		if (term_matches(ps->terms.v[i], &v))
			return true;
	return false;
}

bool ir_peerset_had(const struct engine *e, const struct ir_peerset *ps, ip128 a)
{
	return (ps->host && fqdn_set_find(&ps->learned, a)) || ir_peerset_has(e, ps, a);
}

void engine_host_peersets(const struct engine *e, struct vec *v)
{
	struct ir_peerset *ps;
	htab_foreach(&e->peersets, ps) if (ps->host) vec_push(v, ps);
	vec_sort(v, peerset_cmp);
}

static int spec_port_resolve(const struct port_match *pm, const struct pod_spec *s)
{
	for (uint32_t i = 0; i < s->nports; i++) {
		const struct cport *c = &s->ports[i];
		if (c->name == pm->name && c->proto == pm->proto)
			return c->port;
	}
	return -1;
}

int ir_port_resolve(const struct port_match *pm, const struct pod *dst)
{
	if (!dst)
		return -1;
	int port = spec_port_resolve(pm, dst->spec);
	/* a provisional pod: only a port every candidate names alike */
	for (uint32_t i = 0; port >= 0 && dst->meet && i < dst->meet->n; i++)
		if (spec_port_resolve(pm, dst->meet->cands[i]) != port)
			port = -1;
	return port;
}

/* ---------- groups ---------- */

static int policy_cmp(const void *a, const void *b)
{
	const struct policy *x = *(const struct policy *const *)a, *y = *(const struct policy *const *)b;
	if (x->spec->kind != y->spec->kind)
		return (int)x->spec->kind - (int)y->spec->kind;
	return strcmp(x->spec->name, y->spec->name);
}

/* The policies that isolate pod p in direction d. A pod we could not read
 * has only the quarantine: we cannot know which policies select it, so
 * it is isolated and allowed nothing (fail closed). */
static void spec_select_policies(const struct engine *e, const struct ns *n, const struct pod_spec *s, enum dir d,
				 struct vec *out)
{
	if (s->unreadable || !n) { /* (no namespace: a provisional pod's candidate gone since) */
		vec_push(out, (void *)&e->quarantine);
		return;
	}
	for (size_t i = 0; i < n->policies.n; i++) {
		struct policy *pol = n->policies.v[i];
		if (pol->spec->isolates[d] && policy_spec_selects(pol->spec, &s->labels))
			vec_push(out, pol);
	}
}

static void pod_select_policies(const struct engine *e, const struct pod *p, enum dir d, struct vec *out)
{
	spec_select_policies(e, p->ns, p->spec, d, out);
}

bool engine_pods_equivalent(const struct engine *e, const struct pod *a, const struct pod *b)
{
	const struct pod_spec *x = a->spec, *y = b->spec;
	if (a->ns != b->ns || x->unreadable || y->unreadable || x->nports != y->nports)
		return false;
	for (uint32_t i = 0; i < x->nports; i++) /* named ports resolve the same */
		if (x->ports[i].name != y->ports[i].name || x->ports[i].proto != y->ports[i].proto ||
		    x->ports[i].port != y->ports[i].port)
			return false;
	for (int d = 0; d < DIR_COUNT; d++) { /* the same group: the same policies isolate them */
		struct vec pa = { 0 }, pb = { 0 };
		pod_select_policies(e, a, (enum dir)d, &pa);
		pod_select_policies(e, b, (enum dir)d, &pb);
		bool same = pa.n == pb.n && (!pa.n || !memcmp(pa.v, pb.v, pa.n * sizeof(*pa.v)));
		vec_free(&pa);
		vec_free(&pb);
		if (!same)
			return false;
	}
	/* the same membership in every peer set, as if both had an address
	 * (the live passes' match): the live ones, and those of the rules of
	 * every other policy (the twin's own group may make one live, and its
	 * peer sets are made then) */
	struct view va = { true, x->ns, ns_view_labels(a->ns), pod_view_labels(x), NULL };
	struct view vb = { true, y->ns, ns_view_labels(b->ns), pod_view_labels(y), NULL };
	struct ir_peerset *ps;
	htab_foreach(&e->peersets, ps) {
		bool ma = false, mb = false;
		for (size_t i = 0; i < ps->terms.n && !ma; i++)
			ma = term_matches(ps->terms.v[i], &va);
		for (size_t i = 0; i < ps->terms.n && !mb; i++)
			mb = term_matches(ps->terms.v[i], &vb);
		if (ma != mb)
			return false;
	}
	const struct policy *pol;
	htab_foreach(&e->policies, pol) {
		const struct policy_spec *s = pol->spec;
		if (pol->ngroups || pol->idle || !s->valid) /* rules: its sets are above; invalid: none */
			continue;
		for (int d = 0; d < DIR_COUNT; d++)
			for (uint32_t i = 0; i < s->nrules[d]; i++)
				if (rule_pods_match(&s->rules[d][i], &va) != rule_pods_match(&s->rules[d][i], &vb))
					return false;
	}
	return true;
}

/* The rules of a policy no group of this node holds, in direction d, each
 * with a peer set of its own (not shared, not live), for a transient
 * group: pushed to rules and to owned (engine_group_transient_free). */
static void policy_rules_transient(const struct engine *e, const struct policy *pol, enum dir d, struct vec *rules,
				   struct vec *owned)
{
	const struct policy_spec *s = pol->spec;
	for (uint32_t i = 0; s->valid && i < s->nrules[d]; i++) {
		struct ir_rule *r = xcalloc(1, sizeof(*r));
		r->pol = pol;
		r->dir = d;
		r->index = i;
		r->spec = &s->rules[d][i];
		r->peers = r->spec->any_peer ? NULL : peerset_make(e, r->spec, rule_peers_key(r->spec));
		vec_push(rules, r);
		vec_push(owned, r);
	}
}

/* owned NULL: every policy of g is live (has its rules). */
static void group_build_rules(const struct engine *e, struct ir_group *g, struct vec *owned)
{
	bool access = false;
	g->rules.n = 0;
	for (uint32_t i = 0; i < g->npol; i++) {
		const struct policy *pol = g->pols[i];
		if (owned && !pol->ngroups && !pol->idle)
			policy_rules_transient(e, pol, g->dir, &g->rules, owned);
		for (uint32_t j = 0; j < pol->nrules[g->dir]; j++)
			vec_push(&g->rules, &pol->rules[g->dir][j]);
		access |= pol->spec->kind == KIND_ACCESS;
	}
	if (g->dir == DIR_EGRESS && access && e->cfg.dns_default)
		vec_push(&g->rules, (void *)&e->dns_rule);
}

/* A transient group owns the rules it made for policies that are not live. */
struct transient {
	struct ir_group g;
	struct vec owned; /* struct ir_rule* */
};

struct ir_group *engine_group_transient(const struct engine *e, const struct pod *p, enum dir d)
{
	struct vec pols = { 0 };
	if (!p->active)
		return NULL;
	pod_select_policies(e, p, d, &pols);
	if (!pols.n) {
		vec_free(&pols);
		return NULL;
	}
	vec_sort(&pols, policy_cmp);
	struct transient *t = xcalloc(1, sizeof(*t));
	t->g.dir = d;
	t->g.npol = (uint32_t)pols.n;
	t->g.pols = (const struct policy **)pols.v;
	group_build_rules(e, &t->g, &t->owned);
	return &t->g;
}

void engine_group_transient_free(struct ir_group *g)
{
	if (!g)
		return;
	struct transient *t = container_of(g, struct transient, g);
	for (size_t i = 0; i < t->owned.n; i++) {
		struct ir_rule *r = t->owned.v[i];
		peerset_destroy(r->peers);
		free(r);
	}
	vec_free(&t->owned);
	vec_free(&g->rules);
	free(g->pols);
	free(t);
}

/* A policy is live while a group of this node holds it: only then has it
 * rules, their peer sets shared and kept filled (peerset_live). */
static void policy_rules_make(struct engine *e, struct policy *pol)
{
	const struct policy_spec *s = pol->spec;
	for (int d = 0; d < DIR_COUNT; d++) {
		pol->rules[d] = NULL;
		pol->nrules[d] = 0;
	}
	if (!s->valid) /* an invalid policy isolates, and allows nothing */
		return;
	for (int d = 0; d < DIR_COUNT; d++) {
		pol->nrules[d] = s->nrules[d];
		pol->rules[d] = s->nrules[d] ? xcalloc(s->nrules[d], sizeof(struct ir_rule)) : NULL;
		for (uint32_t i = 0; i < s->nrules[d]; i++) {
			struct ir_rule *r = &pol->rules[d][i];
			r->pol = pol;
			r->dir = (enum dir)d;
			r->index = i;
			r->spec = &s->rules[d][i];
			r->peers = r->spec->any_peer ? NULL : peerset_get(e, r->spec);
			peerset_live(e, r->peers);
		}
	}
}

static void rules_release(struct engine *e, struct ir_rule *rules, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		peerset_unlive(e, rules[i].peers);
		peerset_put(e, rules[i].peers);
	}
	free(rules);
}

static void policy_rules_drop(struct engine *e, struct policy *pol);

/* The rules of the policies no group took back since they went idle:
 * a group that leaves and another that takes the policy again within
 * one transaction (prov_reconcile gives every pod its own spec back, then
 * twins again; a policy's last pod replaced) keep its peer sets, their
 * ids (the kernel's set names) and what the DNS proxy learned for them. */
static void policies_idle_drop(struct engine *e)
{
	while (e->idle_pols.n)
		policy_rules_drop(e, e->idle_pols.v[e->idle_pols.n - 1]);
}

static void policy_rules_drop(struct engine *e, struct policy *pol)
{
	if (pol->idle) {
		pol->idle = false;
		vec_remove(&e->idle_pols, pol);
	}
	for (int d = 0; d < DIR_COUNT; d++) {
		rules_release(e, pol->rules[d], pol->nrules[d]);
		pol->rules[d] = NULL;
		pol->nrules[d] = 0;
	}
}

static struct ir_group *group_get(struct engine *e, struct groupkey *k)
{
	uint64_t h = groupkey_hash(k);
	struct ir_group *g = htab_find(&e->groups, h, group_eq, k);
	if (g)
		return g;
	g = xcalloc(1, sizeof(*g));
	g->id = ++e->next_group;
	g->dir = k->dir;
	g->npol = k->npol;
	g->pols = xmalloc((k->npol ? k->npol : 1) * sizeof(*g->pols));
	if (k->npol)
		memcpy(g->pols, k->pols, k->npol * sizeof(*g->pols));
	for (uint32_t i = 0; i < g->npol; i++) {
		struct policy *pol = (struct policy *)g->pols[i];
		if (pol->ngroups++)
			continue;
		if (pol->idle) { /* left earlier in this transaction: its rules kept */
			pol->idle = false;
			vec_remove(&e->idle_pols, pol);
		} else {
			policy_rules_make(e, pol);
		}
	}
	/* a meet group holds the groups it meets (as their pods do) */
	g->nmeet = k->nmeet;
	if (k->nmeet) {
		g->meet = xmalloc(k->nmeet * sizeof(*g->meet));
		memcpy(g->meet, k->meet, k->nmeet * sizeof(*g->meet));
	}
	for (uint32_t i = 0; i < g->nmeet; i++) {
		g->meet[i]->npods++;
		g->meet[i]->meet_refs++;
		mark_group(e, g->meet[i]); /* its return variant (dp) */
	}
	group_build_rules(e, g, NULL);
	htab_insert(&e->groups, h, g);
	mark_group(e, g);
	return g;
}

static void group_leave(struct engine *e, struct ir_group *g)
{
	if (--g->npods)
		return;
	struct groupkey k = { g->dir, g->npol, g->pols, g->nmeet, g->meet };
	htab_remove(&e->groups, groupkey_hash(&k), group_eq, &k);
	if (g->dirty)
		vec_remove(&e->dirty_groups, g);
	for (uint32_t i = 0; i < g->npol; i++) {
		struct policy *pol = (struct policy *)g->pols[i];
		if (!--pol->ngroups && !pol->idle) { /* dropped when the transaction ends (policies_idle_drop) */
			pol->idle = true;
			vec_push(&e->idle_pols, pol);
		}
	}
	for (uint32_t i = 0; i < g->nmeet; i++) {
		g->meet[i]->meet_refs--;
		mark_group(e, g->meet[i]);
		group_leave(e, g->meet[i]);
	}
	vec_free(&g->rules);
	free(g->meet);
	free(g->pols);
	free(g);
}

static int group_id_cmp(const void *a, const void *b)
{
	const struct ir_group *x = *(const struct ir_group *const *)a, *y = *(const struct ir_group *const *)b;
	return x->id < y->id ? -1 : x->id > y->id;
}

/* The group of a provisional pod in direction d: each candidate's policies
 * as if it had the address; the distinct non-empty sets of them are the
 * groups every flow must pass (none: not isolated; one: that group). The
 * returned group has no new reference (pod_regroup takes it). */
static struct ir_group *meet_group(struct engine *e, const struct pod_meet *m, enum dir d)
{
	struct vec subs = { 0 };
	for (uint32_t i = 0; i < m->n; i++) {
		const struct pod_spec *c = m->cands[i];
		struct vec pols = { 0 };
		spec_select_policies(e, engine_ns_find(e, c->ns), c, d, &pols);
		vec_sort(&pols, policy_cmp);
		if (pols.n) {
			struct groupkey k = { d, (uint32_t)pols.n, (const struct policy **)pols.v, 0, NULL };
			struct ir_group *g = group_get(e, &k);
			bool seen = false;
			for (size_t j = 0; j < subs.n && !seen; j++)
				seen = subs.v[j] == g;
			if (!seen)
				vec_push(&subs, g);
		}
		vec_free(&pols);
	}
	struct ir_group *g = subs.n == 1 ? subs.v[0] : NULL;
	if (subs.n > 1) {
		vec_sort(&subs, group_id_cmp);
		struct groupkey k = { d, 0, NULL, (uint32_t)subs.n, (struct ir_group *const *)subs.v };
		g = group_get(e, &k);
	}
	/* a group just made for a candidate and not kept (its pods: none) */
	for (size_t j = 0; j < subs.n; j++) {
		struct ir_group *s = subs.v[j];
		if (s != g && !s->npods) {
			s->npods = 1;
			group_leave(e, s);
		}
	}
	vec_free(&subs);
	return g;
}

/* Pass 3 for one pod: the set of policies selecting it, per direction. */
static void pod_regroup(struct engine *e, struct pod *p)
{
	bool want = p->active && p->local;
	if (want)
		ptrset_add(&e->local, p);
	else
		ptrset_del(&e->local, p);
	for (int d = 0; d < DIR_COUNT; d++) {
		struct vec pols = { 0 };
		struct ir_group *g = NULL;
		if (want && p->meet) { /* a provisional pod: the meet of its candidates' groups */
			g = meet_group(e, p->meet, (enum dir)d);
		} else if (want) {
			e->stats.group_evals++;
			pod_select_policies(e, p, (enum dir)d, &pols);
			vec_sort(&pols, policy_cmp);
			struct groupkey k = { (enum dir)d, (uint32_t)pols.n, (const struct policy **)pols.v, 0, NULL };
			if (pols.n)
				g = group_get(e, &k);
		}
		if (g != p->group[d]) {
			if (g) {
				g->npods++;
				mark_group(e, g);
			}
			if (p->group[d]) {
				mark_group(e, p->group[d]);
				group_leave(e, p->group[d]);
			}
			p->group[d] = g;
		}
		vec_free(&pols);
	}
}

/* Pass 3 for a policy change: only the local pods its old or new target
 * selects can change group; the others keep theirs. */
static void ns_regroup_targets(struct engine *e, struct ns *n, const struct policy_spec *a,
			       const struct policy_spec *b)
{
	struct list *it;
	list_foreach(it, &n->pods) {
		struct pod *p = container_of(it, struct pod, ns_node);
		if (p->local && ((a && policy_spec_selects(a, &p->spec->labels)) ||
				 (b && policy_spec_selects(b, &p->spec->labels))))
			pod_regroup(e, p);
	}
}

/* Pass 3 for a policy change, for the provisional pods: a meet group's
 * groups are those of its candidates, whose labels and namespaces may
 * be other than the pod's own (ns_regroup_targets does not see them);
 * a policy gone must leave no group holding it. They are few. */
static void meets_regroup(struct engine *e)
{
	struct pod *p;
	htab_foreach(&e->meets.h, p) pod_regroup(e, p);
}

/* ---------- pods ---------- */

struct pod *engine_pod_find(const struct engine *e, const char *ns, const char *name)
{
	struct podkey k = { ns, name };
	return htab_find(&e->pods, podkey_hash(ns, name), pod_eq, &k);
}

struct pod *engine_pod_by_addr(const struct engine *e, ip128 a)
{
	void *it = htab_find(&e->addrs, addr_hash(a), addr_eq, &a);
	return it && !is_conflict(it) ? it : NULL;
}

size_t engine_addr_claims(const struct engine *e, ip128 a, struct pod *const **pods)
{
	void *const *slot = htab_find_slot(&e->addrs, addr_hash(a), addr_eq, &a);
	struct conflict *c = slot && is_conflict(*slot) ? conflict_of(*slot) : NULL;
	if (pods) /* the owner: the index's own slot (valid until the engine changes) */
		*pods = c ? (struct pod *const *)c->pods.v : slot ? (struct pod *const *)slot : NULL;
	return c ? c->pods.n : slot ? 1 : 0;
}

bool engine_addr_quarantined(const struct engine *e, ip128 a)
{
	return engine_addr_claims(e, a, NULL) > 1;
}

/* Another claimant's address changed owner (one claimant <-> several):
 * the peer sets it belongs to must be rendered again. */
static void claim_refresh(struct engine *e, struct pod *q)
{
	struct view v = { q->active, q->spec->ns, ns_view_labels(q->ns), pod_view_labels(q->spec), q->meet };
	pod_reevaluate(e, q, q->spec, &v, &v, true);
}

static void entities_refresh(struct engine *e);

/* A pod address came or went: world leaves out the pod addresses outside
 * the known pod ranges. World is computed again when it is next read
 * (entities_fresh), once for any number of them. */
static void stray_note(struct engine *e, ip128 a, bool add)
{
	if (!e->world_known[!ip_is_v4(a)] || range_set_contains(&e->pod_ranges, a))
		return;
	if (add)
		range_set_add(&e->strays, a, a);
	else
		range_set_sub(&e->strays, a, a);
	e->strays_changed = true;
}

/* Before anything reads the entities' ranges. The engine's own caches
 * only: callers with a const engine may call it. */
static void entities_fresh(const struct engine *ce)
{
	struct engine *e = (struct engine *)ce;
	if (e->strays_changed)
		entities_refresh(e);
}

/* Pod q owns address a in the index (no entry for a yet). */
static void addr_own(struct engine *e, struct pod *q, ip128 a, uint64_t h)
{
	q->owns |= addr_bit(q, a);
	htab_insert(&e->addrs, h, q);
}

/* q no longer owns a (its entry is removed while its bit still finds it). */
static void addr_disown(struct engine *e, struct pod *q, ip128 a, uint64_t h)
{
	htab_remove(&e->addrs, h, addr_eq, &a);
	q->owns &= (uint8_t)~addr_bit(q, a);
}

static void addr_claim(struct engine *e, struct pod *p, ip128 a)
{
	uint64_t h = addr_hash(a);
	void *it = htab_find(&e->addrs, h, addr_eq, &a);
	if (!it) {
		addr_own(e, p, a, h);
		stray_note(e, a, true);
		return;
	}
	struct conflict *c = is_conflict(it) ? conflict_of(it) : NULL;
	if (!c) { /* the owner loses it to the quarantine */
		struct pod *owner = it;
		c = xcalloc(1, sizeof(*c));
		c->a = a;
		vec_push(&c->pods, owner);
		addr_disown(e, owner, a, h);
		htab_insert(&e->addrs, h, conflict_item(c));
		claim_refresh(e, owner);
	}
	vec_push(&c->pods, p);
}

static void addr_release(struct engine *e, struct pod *p, ip128 a)
{
	uint64_t h = addr_hash(a);
	void *it = htab_find(&e->addrs, h, addr_eq, &a);
	if (it == p) {
		addr_disown(e, p, a, h);
		stray_note(e, a, false);
		return;
	}
	struct conflict *c = it && is_conflict(it) ? conflict_of(it) : NULL;
	if (!c || !vec_remove(&c->pods, p) || c->pods.n > 1)
		return;
	struct pod *q = c->pods.v[0]; /* the one left owns it again */
	htab_remove(&e->addrs, h, addr_eq, &a);
	vec_free(&c->pods);
	free(c);
	addr_own(e, q, a, h);
	claim_refresh(e, q);
}

static bool spec_active(const struct pod_spec *s)
{
	return s->naddr > 0 && !s->host_network && s->phase != PHASE_SUCCEEDED && s->phase != PHASE_FAILED;
}

static void pod_index(struct engine *e, struct pod *p)
{
	const struct pod_spec *s = p->spec;
	if (!p->active)
		return;
	p->indexed = true;
	for (uint32_t i = 0; i < s->labels.n; i++) {
		struct anchor *a = anchor_find(e, ANCHOR_POD_LABEL, s->labels.v[i].key, s->labels.v[i].val, NULL);
		if (a)
			lnode_add(a, p);
	}
	for (uint32_t i = 0; i < s->naddr; i++)
		addr_claim(e, p, s->addr[i]);
}

static void pod_unindex(struct engine *e, struct pod *p)
{
	const struct pod_spec *s = p->spec;
	if (!p->indexed)
		return;
	p->indexed = false;
	while (p->lnodes) {
		struct pod_lnode *n = p->lnodes;
		p->lnodes = n->next;
		list_del(&n->node);
		free(n);
	}
	for (uint32_t i = 0; i < s->naddr; i++)
		addr_release(e, p, s->addr[i]);
}

static bool pod_is_local(const struct engine *e, const struct pod_spec *s)
{
	return !e->cfg.node || (s->node && !strcmp(s->node, e->cfg.node));
}

static void pod_upsert(struct engine *e, struct pod_spec *spec, struct pod_meet *meet)
{
	struct pod *p = engine_pod_find(e, spec->ns, spec->name);
	struct pod_spec *old = NULL;
	struct pod_meet *old_meet = NULL;
	struct view ov = { 0 }, nv;
	bool addr_changed = true;
	if (!p) {
		p = xcalloc(1, sizeof(*p));
		p->ns = ns_get(e, spec->ns);
		list_add_tail(&p->ns->pods, &p->ns_node);
		p->spec = spec;
		htab_insert(&e->pods, podkey_hash(spec->ns, spec->name), p);
	} else {
		old = p->spec;
		old_meet = p->meet;
		ov = (struct view){ p->active, old->ns, ns_view_labels(p->ns), pod_view_labels(old), old_meet };
		addr_changed = !addrs_equal(old, spec);
		pod_unindex(e, p);
		p->spec = spec;
	}
	p->meet = meet;
	if (meet)
		ptrset_add(&e->meets, p);
	else
		ptrset_del(&e->meets, p);
	e->unread_pods += spec->unreadable;
	e->unread_pods -= old && old->unreadable;
	p->active = spec_active(spec);
	p->local = pod_is_local(e, spec);
	if (p->local)
		ptrset_add(&e->here, p);
	else
		ptrset_del(&e->here, p);
	pod_index(e, p);
	nv = (struct view){ p->active, spec->ns, ns_view_labels(p->ns), pod_view_labels(spec), meet };
	pod_reevaluate(e, p, old, &ov, &nv, addr_changed || meet || old_meet);
	pod_regroup(e, p);
	if (addr_changed || meet || old_meet)
		for (int d = 0; d < DIR_COUNT; d++)
			if (p->group[d])
				mark_group(e, p->group[d]);
	pod_spec_free(old);
	meet_free(old_meet);
}

void engine_pod_upsert(struct engine *e, struct pod_spec *spec)
{
	pod_upsert(e, spec, NULL);
}

void engine_pod_upsert_meet(struct engine *e, struct pod_spec *spec, struct pod_spec *const *cands, size_t n)
{
	struct pod_meet *m = xcalloc(1, sizeof(*m));
	m->e = e;
	m->n = (uint32_t)n;
	m->cands = xcalloc(n ? n : 1, sizeof(*m->cands));
	for (size_t i = 0; i < n; i++) {
		m->cands[i] = cands[i];
		cands[i]->refs++;
	}
	pod_upsert(e, spec, m);
}

void engine_pod_delete(struct engine *e, const char *ns, const char *name)
{
	struct pod *p = engine_pod_find(e, ns, name);
	if (!p)
		return;
	struct view ov = { p->active, p->spec->ns, ns_view_labels(p->ns), pod_view_labels(p->spec), p->meet };
	struct view nv = { false, p->spec->ns, ns_view_labels(p->ns), pod_view_labels(p->spec), p->meet };
	e->unread_pods -= p->spec->unreadable;
	pod_reevaluate(e, p, p->spec, &ov, &nv, false);
	p->active = false;
	pod_regroup(e, p);
	pod_unindex(e, p);
	ptrset_del(&e->here, p);
	ptrset_del(&e->meets, p);
	struct podkey k = { ns, name };
	htab_remove(&e->pods, podkey_hash(ns, name), pod_eq, &k);
	list_del(&p->ns_node);
	struct ns *n = p->ns;
	pod_spec_free(p->spec);
	meet_free(p->meet);
	free(p);
	ns_gc(e, n);
}

void engine_pods(const struct engine *e, struct vec *v)
{
	struct pod *p;
	htab_foreach(&e->pods, p) vec_push(v, p);
	vec_sort(v, pod_cmp);
}

void engine_local_pods(const struct engine *e, struct vec *v)
{
	struct pod *p;
	htab_foreach(&e->local.h, p) vec_push(v, p);
	vec_sort(v, pod_cmp);
}

void engine_node_pods(const struct engine *e, struct vec *v)
{
	struct pod *p;
	htab_foreach(&e->here.h, p) vec_push(v, p);
	vec_sort(v, pod_cmp);
}

size_t engine_pod_count(const struct engine *e)
{
	return e->pods.n;
}

size_t engine_policy_count(const struct engine *e, enum policy_kind kind, bool valid)
{
	return e->npol[kind][valid];
}

size_t engine_ns_count(const struct engine *e)
{
	return e->nss.n;
}

void engine_unreadable_counts(const struct engine *e, struct engine_unreadable *out)
{
	out->namespaces = e->unread_ns;
	out->pods = e->unread_pods;
	out->nodes = e->unread_nodes;
	for (int k = 0; k < POLICY_KINDS; k++)
		out->policies[k] = e->unread_pol[k];
}

/* ---------- namespaces (public) ---------- */

void engine_ns_upsert(struct engine *e, struct ns_spec *spec)
{
	struct ns *n = ns_get(e, spec->name);
	struct labelset oldl;
	struct ns_spec *old = n->spec;
	bool old_unreadable = old && old->unreadable;
	e->unread_ns += spec->unreadable;
	e->unread_ns -= old_unreadable;
	labelset_copy(&oldl, ns_labels(n));
	n->spec = spec;
	/* namespace labels feed namespaceSelectors: re-evaluate its pods */
	struct list *it;
	list_foreach(it, &n->pods) {
		struct pod *p = container_of(it, struct pod, ns_node);
		struct view ov = { p->active, n->name, old_unreadable ? NULL : &oldl, pod_view_labels(p->spec), p->meet };
		struct view nv = { p->active, n->name, ns_view_labels(n), pod_view_labels(p->spec), p->meet };
		pod_reevaluate(e, p, p->spec, &ov, &nv, false);
	}
	labelset_free(&oldl);
	ns_spec_free(old);
}

void engine_ns_delete(struct engine *e, const char *name)
{
	struct ns *n = engine_ns_find(e, name);
	if (!n || !n->spec)
		return;
	/* Back to the implied labels until its pods are gone too. */
	struct ns_spec *old = n->spec;
	struct list *it;
	e->unread_ns -= old->unreadable;
	n->spec = NULL;
	list_foreach(it, &n->pods) {
		struct pod *p = container_of(it, struct pod, ns_node);
		struct view ov = { p->active, n->name, old->unreadable ? NULL : &old->labels, pod_view_labels(p->spec),
				   p->meet };
		struct view nv = { p->active, n->name, &n->implied, pod_view_labels(p->spec), p->meet };
		pod_reevaluate(e, p, p->spec, &ov, &nv, false);
	}
	ns_spec_free(old);
	ns_gc(e, n);
}

/* ---------- policies ---------- */

struct policy *engine_policy_find(const struct engine *e, enum policy_kind kind, const char *ns,
				  const char *name)
{
	struct polkey k = { kind, ns, name };
	return htab_find(&e->policies, polkey_hash(kind, ns, name), policy_eq, &k);
}

static void policy_groups_refresh(struct engine *e, struct policy *pol)
{
	struct ir_group *g;
	htab_foreach(&e->groups, g) {
		for (uint32_t i = 0; i < g->npol; i++)
			if (g->pols[i] == pol) {
				group_build_rules(e, g, NULL);
				mark_group(e, g);
				break;
			}
	}
}

void engine_policy_upsert(struct engine *e, struct policy_spec *spec)
{
	struct policy *pol = engine_policy_find(e, spec->kind, spec->ns, spec->name);
	e->npol[spec->kind][spec->valid]++;
	e->unread_pol[spec->kind] += spec->unreadable;
	if (pol) {
		e->npol[pol->spec->kind][pol->spec->valid]--;
		e->unread_pol[pol->spec->kind] -= pol->spec->unreadable;
	}
	if (!pol) {
		pol = xcalloc(1, sizeof(*pol));
		pol->spec = spec;
		pol->ns = ns_get(e, spec->ns);
		vec_push(&pol->ns->policies, pol);
		htab_insert(&e->policies, polkey_hash(spec->kind, spec->ns, spec->name), pol);
	} else {
		struct policy_spec *old = pol->spec;
		struct ir_rule *oldrules[DIR_COUNT] = { pol->rules[0], pol->rules[1] };
		uint32_t oldn[DIR_COUNT] = { pol->nrules[0], pol->nrules[1] };
		pol->spec = spec;
		if (pol->ngroups || pol->idle) {
			/* the new rules before the old ones are released, so that
			 * peer sets the two share are kept, not rebuilt */
			policy_rules_make(e, pol);
			for (int d = 0; d < DIR_COUNT; d++)
				rules_release(e, oldrules[d], oldn[d]);
		}
		policy_groups_refresh(e, pol);
		ns_regroup_targets(e, pol->ns, old, spec);
		meets_regroup(e);
		policy_spec_free(old);
		return;
	}
	ns_regroup_targets(e, pol->ns, spec, NULL);
	meets_regroup(e);
}

void engine_policy_delete(struct engine *e, enum policy_kind kind, const char *ns, const char *name)
{
	struct policy *pol = engine_policy_find(e, kind, ns, name);
	if (!pol)
		return;
	struct ns *n = pol->ns;
	e->npol[pol->spec->kind][pol->spec->valid]--;
	e->unread_pol[pol->spec->kind] -= pol->spec->unreadable;
	vec_remove(&n->policies, pol);
	ns_regroup_targets(e, n, pol->spec, NULL); /* no group refers to pol after this */
	meets_regroup(e);
	struct polkey k = { kind, ns, name };
	htab_remove(&e->policies, polkey_hash(kind, ns, name), policy_eq, &k);
	policy_rules_drop(e, pol); /* idle ones: no group holds it */
	policy_spec_free(pol->spec);
	free(pol);
	ns_gc(e, n);
}

static int policy_full_cmp(const void *a, const void *b)
{
	const struct policy *x = *(const struct policy *const *)a, *y = *(const struct policy *const *)b;
	int c = strcmp(x->spec->ns, y->spec->ns);
	return c ? c : policy_cmp(a, b);
}

void engine_policies(const struct engine *e, struct vec *v)
{
	struct policy *p;
	htab_foreach(&e->policies, p) vec_push(v, p);
	vec_sort(v, policy_full_cmp);
}

static int ns_cmp(const void *a, const void *b)
{
	return strcmp((*(const struct ns *const *)a)->name, (*(const struct ns *const *)b)->name);
}

void engine_namespaces(const struct engine *e, struct vec *v)
{
	struct ns *n;
	htab_foreach(&e->nss, n) vec_push(v, n);
	vec_sort(v, ns_cmp);
}

static int pod_cmp(const void *a, const void *b)
{
	const struct pod *x = *(const struct pod *const *)a, *y = *(const struct pod *const *)b;
	int c = strcmp(x->spec->ns, y->spec->ns);
	return c ? c : strcmp(x->spec->name, y->spec->name);
}

static int group_cmp(const void *a, const void *b)
{
	const struct ir_group *x = *(const struct ir_group *const *)a, *y = *(const struct ir_group *const *)b;
	return x->id < y->id ? -1 : x->id > y->id;
}

static int peerset_cmp(const void *a, const void *b)
{
	const struct ir_peerset *x = *(const struct ir_peerset *const *)a;
	const struct ir_peerset *y = *(const struct ir_peerset *const *)b;
	return x->id < y->id ? -1 : x->id > y->id;
}

void engine_groups(const struct engine *e, struct vec *v)
{
	struct ir_group *g;
	htab_foreach(&e->groups, g) vec_push(v, g);
	vec_sort(v, group_cmp);
}

/* The rules of idle policies (few, usually none) that use ps. */
static uint32_t idle_uses(const struct engine *e, const struct ir_peerset *ps)
{
	uint32_t n = 0;
	for (size_t i = 0; i < e->idle_pols.n; i++) {
		const struct policy *pol = e->idle_pols.v[i];
		for (int d = 0; d < DIR_COUNT; d++)
			for (uint32_t j = 0; j < pol->nrules[d]; j++)
				n += pol->rules[d][j].peers == ps;
	}
	return n;
}

/* Those only idle policies use are left out: they go when the
 * transaction ends, and an IR kept incrementally is the IR a fresh
 * compile makes (ir_dump.c). */
void engine_peersets(const struct engine *e, struct vec *v)
{
	struct ir_peerset *ps;
	entities_fresh(e);
	htab_foreach(&e->peersets, ps) if (!e->idle_pols.n || idle_uses(e, ps) < ps->live) vec_push(v, ps);
	vec_sort(v, peerset_cmp);
}

void engine_take_dirty(struct engine *e, struct vec *peersets, struct vec *groups)
{
	policies_idle_drop(e);
	entities_fresh(e);
	for (size_t i = 0; i < e->dirty_ps.n; i++) {
		((struct ir_peerset *)e->dirty_ps.v[i])->dirty = false;
		if (peersets)
			vec_push(peersets, e->dirty_ps.v[i]);
	}
	for (size_t i = 0; i < e->dirty_groups.n; i++) {
		((struct ir_group *)e->dirty_groups.v[i])->dirty = false;
		if (groups)
			vec_push(groups, e->dirty_groups.v[i]);
	}
	e->dirty_ps.n = e->dirty_groups.n = 0;
}

/* ---------- entities ---------- */

static bool node_eq(const void *item, const void *key)
{
	return !strcmp(((const struct node_spec *)item)->name, key);
}

/* range_set_add_cidr() carves the IPv4-mapped block out of the whole
 * set for a prefix in IPv6 notation: add through a set of its own. */
static void add_cidr(struct range_set *out, const char *text, ip128 lo, ip128 hi)
{
	struct range_set one = { 0 };
	range_set_add_cidr(&one, text, lo, hi);
	range_set_union(out, &one);
	range_set_free(&one);
}

/* A comma list of addresses or prefixes; what does not read is skipped
 * (the agent's configuration checked it). */
static void ranges_from_list(const char *list, struct range_set *out)
{
	char *dup = xstrdup(list ? list : ""), *save = NULL;
	for (char *t = strtok_r(dup, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		ip128 lo, hi;
		bool hb;
		if (strchr(t, '/') ? cidr_parse(t, &lo, &hi, &hb) == 0 : (ip_parse(t, &lo) == 0 && (hi = lo, 1)))
			add_cidr(out, t, lo, hi);
	}
	free(dup);
}

static bool range_set_equal(const struct range_set *a, const struct range_set *b)
{
	return a->n == b->n && (!a->n || !memcmp(a->r, b->r, a->n * sizeof(*a->r)));
}

/* Every entity's ranges from the nodes and the settings; the peer sets
 * whose ranges change are marked dirty (the renderer rewrites their
 * elements, nothing else). */
static void entities_refresh(struct engine *e)
{
	struct range_set nodes = { 0 }, pods = { 0 }, world = { 0 }, api = { 0 };
	e->strays_changed = false;
	struct node_spec *n;
	range_set_copy(&pods, &e->cfg_pod_cidrs);
	e->unread_nodes = 0;
	htab_foreach(&e->nodes, n) {
		for (uint32_t i = 0; i < n->naddr; i++)
			range_set_add(&nodes, n->addr[i], n->addr[i]);
		range_set_union(&pods, &n->podcidrs);
		e->unread_nodes += n->unreadable;
	}
	e->world_known[0] = e->world_known[1] = false;
	for (size_t i = 0; i < pods.n; i++)
		e->world_known[!ip_is_v4(pods.r[i].lo)] = true;
	/* a Node that could not be read may hide a pod range or an address:
	 * world is then unknown (matches nothing) rather than too wide */
	if (e->unread_nodes)
		e->world_known[0] = e->world_known[1] = false;
	if (!range_set_equal(&pods, &e->pod_ranges)) { /* the strays, again */
		range_set_free(&e->pod_ranges);
		range_set_copy(&e->pod_ranges, &pods);
		range_set_free(&e->strays);
		void *it;
		htab_foreach(&e->addrs, it) {
			if (is_conflict(it)) {
				ip128 a = conflict_of(it)->a;
				if (!range_set_contains(&pods, a))
					range_set_add(&e->strays, a, a);
				continue;
			}
			const struct pod *q = it; /* once per address it owns: each added every time */
			for (uint32_t i = 0; i < q->spec->naddr; i++)
				if ((q->owns >> i & 1) && !range_set_contains(&pods, q->spec->addr[i]))
					range_set_add(&e->strays, q->spec->addr[i], q->spec->addr[i]);
		}
	}
	ip128 lo, hi;
	bool hb;
	if (e->world_known[0] && cidr_parse("0.0.0.0/0", &lo, &hi, &hb) == 0)
		range_set_add(&world, lo, hi);
	if (e->world_known[1] && cidr_parse("::/0", &lo, &hi, &hb) == 0)
		add_cidr(&world, "::/0", lo, hi);
	for (size_t i = 0; i < pods.n; i++)
		range_set_sub(&world, pods.r[i].lo, pods.r[i].hi);
	for (size_t i = 0; i < nodes.n; i++)
		range_set_sub(&world, nodes.r[i].lo, nodes.r[i].hi);
	for (size_t i = 0; i < e->strays.n; i++)
		range_set_sub(&world, e->strays.r[i].lo, e->strays.r[i].hi);
	range_set_copy(&api, &e->cfg_apiserver);
	range_set_union(&api, &e->learned_apiserver);
	htab_foreach(&e->apislices, n) {
		for (uint32_t i = 0; i < n->naddr; i++)
			range_set_add(&api, n->addr[i], n->addr[i]);
	}
	struct range_set *nv[3] = { &nodes, &world, &api };
	bool changed[3];
	for (int b = 0; b < 3; b++) {
		changed[b] = !range_set_equal(&e->ent[b], nv[b]);
		range_set_free(&e->ent[b]);
		e->ent[b] = *nv[b];
	}
	range_set_free(&pods);
	struct ir_peerset *ps;
	htab_foreach(&e->peersets, ps) {
		bool touch = false;
		for (int b = 0; b < 3; b++)
			touch |= (ps->entities & (1u << b)) && changed[b];
		if (touch) {
			peerset_ranges(e, ps);
			mark_ps_full(e, ps);
		}
	}
}

void engine_node_upsert(struct engine *e, struct node_spec *spec)
{
	uint64_t h = hash_str(spec->name);
	struct htab *t = spec->apiserver ? &e->apislices : &e->nodes;
	struct node_spec *old = htab_remove(t, h, node_eq, spec->name);
	htab_insert(t, h, spec);
	/* a Node's status is written again and again (conditions,
	 * heartbeats) with its addresses and ranges unchanged: nothing to do */
	bool same = old && old->naddr == spec->naddr && old->unreadable == spec->unreadable &&
		    (!spec->naddr || !memcmp(old->addr, spec->addr, spec->naddr * sizeof(*spec->addr))) &&
		    range_set_equal(&old->podcidrs, &spec->podcidrs);
	node_spec_free(old);
	if (!same)
		entities_refresh(e);
}

void engine_node_delete(struct engine *e, const char *name)
{
	struct node_spec *old = htab_remove(&e->nodes, hash_str(name), node_eq, name);
	if (!old) {
		engine_apiserver_slice_delete(e, name); /* the files source names both alike */
		return;
	}
	node_spec_free(old);
	entities_refresh(e);
}

void engine_apiserver_slice_delete(struct engine *e, const char *name)
{
	struct node_spec *old = htab_remove(&e->apislices, hash_str(name), node_eq, name);
	if (!old)
		return;
	node_spec_free(old);
	entities_refresh(e);
}

void engine_apiserver_set(struct engine *e, const struct range_set *s)
{
	range_set_free(&e->learned_apiserver);
	range_set_copy(&e->learned_apiserver, s);
	entities_refresh(e);
}

const struct node_spec *engine_node_by_addr(const struct engine *e, ip128 a)
{
	struct node_spec *n;
	htab_foreach(&e->nodes, n) {
		for (uint32_t i = 0; i < n->naddr; i++)
			if (ip_eq(n->addr[i], a))
				return n;
	}
	return NULL;
}

static int node_cmp(const void *a, const void *b)
{
	return strcmp((*(const struct node_spec *const *)a)->name, (*(const struct node_spec *const *)b)->name);
}

void engine_nodes(const struct engine *e, struct vec *v)
{
	struct node_spec *n;
	htab_foreach(&e->nodes, n) vec_push(v, n);
	vec_sort(v, node_cmp);
}

const struct range_set *engine_entity_ranges(const struct engine *e, enum entity ent)
{
	entities_fresh(e);
	return &e->ent[ent_idx(ent)];
}

bool engine_world_known(const struct engine *e, bool v6)
{
	entities_fresh(e);
	return e->world_known[v6];
}

/* ---------- life cycle ---------- */

struct engine *engine_new(const struct engine_config *cfg)
{
	struct engine *e = xcalloc(1, sizeof(*e));
	e->cfg = *cfg;
	e->cfg.node = cfg->node ? xstrdup(cfg->node) : NULL;
	e->cfg.app_label = xstrdup(cfg->app_label ? cfg->app_label : APP_LABELS_DEFAULT);
	e->app_label = istr_get(e->cfg.app_label);
	e->cfg.pod_cidrs = xstrdup(cfg->pod_cidrs ? cfg->pod_cidrs : "");
	e->cfg.apiserver = xstrdup(cfg->apiserver ? cfg->apiserver : "");
	ranges_from_list(e->cfg.pod_cidrs, &e->cfg_pod_cidrs);
	ranges_from_list(e->cfg.apiserver, &e->cfg_apiserver);
	entities_refresh(e);
	/* 53/UDP and 53/TCP to pods k8s-app=kube-dns in kube-system */
	struct rule *r = &e->dns_rule_spec;
	const char *dns = "kube-dns";
	r->npeers = 1;
	r->peers = xcalloc(1, sizeof(*r->peers));
	r->peers[0].kind = PEER_PODS;
	r->peers[0].ns = istr_get("kube-system");
	selector_add(&r->peers[0].podsel, "k8s-app", SEL_IN, &dns, 1);
	r->nports = 2;
	r->ports = xcalloc(2, sizeof(*r->ports));
	r->ports[0] = (struct port_match){ PROTO_UDP, 53, 53, NULL };
	r->ports[1] = (struct port_match){ PROTO_TCP, 53, 53, NULL };
	r->path = istr_get("cluster default: DNS");
	e->dns_rule.dir = DIR_EGRESS;
	e->dns_rule.spec = r;
	e->dns_rule.what = "cluster default: DNS";
	if (e->cfg.dns_default) {
		e->dns_rule.peers = peerset_get(e, r);
		peerset_live(e, e->dns_rule.peers); /* every AccessPolicy group may use it */
	}
	struct policy_spec *q = &e->quarantine_spec;
	q->kind = KIND_QUARANTINE;
	q->ns = istr_get("*");
	q->name = istr_get("unreadable-pods");
	q->isolates[DIR_INGRESS] = q->isolates[DIR_EGRESS] = true;
	q->unreadable = true;
	q->error = xstrdup("a pod that could not be read is isolated and allowed nothing");
	e->quarantine.spec = q;
	engine_take_dirty(e, NULL, NULL);
	return e;
}

const struct engine_config *engine_config(const struct engine *e)
{
	return &e->cfg;
}

const struct engine_stats *engine_stats(const struct engine *e)
{
	return &e->stats;
}

void engine_free(struct engine *e)
{
	if (!e)
		return;
	struct vec v = { 0 };
	engine_policies(e, &v);
	for (size_t i = 0; i < v.n; i++) {
		struct policy *p = v.v[i];
		engine_policy_delete(e, p->spec->kind, p->spec->ns, p->spec->name);
	}
	v.n = 0;
	engine_pods(e, &v);
	for (size_t i = 0; i < v.n; i++) {
		struct pod *p = v.v[i];
		engine_pod_delete(e, p->spec->ns, p->spec->name);
	}
	vec_free(&v);
	policies_idle_drop(e); /* the quarantine's */
	vec_free(&e->idle_pols);
	peerset_unlive(e, e->dns_rule.peers);
	peerset_put(e, e->dns_rule.peers);
	rule_free(&e->dns_rule_spec);
	istr_put(e->quarantine_spec.ns);
	istr_put(e->quarantine_spec.name);
	free(e->quarantine_spec.error);
	struct ns *n;
	htab_foreach(&e->nss, n) {
		ns_spec_free(n->spec);
		labelset_free(&n->implied);
		vec_free(&n->policies);
		istr_put(n->name);
		free(n);
	}
	htab_free(&e->nss);
	htab_free(&e->pods);
	htab_free(&e->addrs); /* empty: every pod was deleted above */
	for (size_t i = 0; i < e->idle.n; i++)
		anchor_free(e, e->idle.v[i]);
	vec_free(&e->idle);
	htab_free(&e->anchors);
	htab_free(&e->policies);
	htab_free(&e->peersets);
	htab_free(&e->groups);
	vec_free(&e->unanchored);
	vec_free(&e->dirty_ps);
	vec_free(&e->dirty_groups);
	ptrset_free(&e->local);
	ptrset_free(&e->here);
	ptrset_free(&e->meets);
	struct node_spec *nd;
	htab_foreach(&e->nodes, nd) node_spec_free(nd);
	htab_free(&e->nodes);
	htab_foreach(&e->apislices, nd) node_spec_free(nd);
	htab_free(&e->apislices);
	range_set_free(&e->cfg_pod_cidrs);
	range_set_free(&e->cfg_apiserver);
	range_set_free(&e->learned_apiserver);
	range_set_free(&e->pod_ranges);
	range_set_free(&e->strays);
	for (int b = 0; b < 3; b++)
		range_set_free(&e->ent[b]);
	free((char *)e->cfg.pod_cidrs);
	free((char *)e->cfg.apiserver);
	istr_put(e->app_label);
	free((char *)e->cfg.node);
	free((char *)e->cfg.app_label);
	free(e);
}
