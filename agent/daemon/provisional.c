/* Provisional verdicts for local addresses the API has not reported yet
 * (provisional.h). */
#include "agent/daemon/provisional.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct entry {
	char port[16];
	ip128 addr[2];
	size_t naddr;
	bool deny;
	bool meet;                /* the twin meets every candidate (several kinds) */
	istr ns, name;            /* twin: the pod standing for the address */
	struct pod_spec *twin;    /* what the engine holds for it meanwhile, and
				     a reference of ours: compared by address, it
				     must not be freed and reused meanwhile */
	struct pod_spec *orig;    /* its own spec, a reference of ours */
	struct timespec since;    /* CLOCK_MONOTONIC */
	char *why;
};

struct prov {
	struct vec entries; /* struct entry* */
	uint64_t resolved;
	double resolved_seconds;
	bool api;             /* the pods come from the API: a twin needs a read */
	bool want_read;       /* an entry is newer than the last read */
	bool have_read;
	struct timespec read_at; /* when the last read was asked for (CLOCK_MONOTONIC) */
	struct pod_spec **read;  /* what it answered: the pods of this node */
	size_t nread;
	uint64_t reads;
};

struct prov *prov_new(bool api)
{
	struct prov *pv = xcalloc(1, sizeof(struct prov));
	pv->api = api;
	return pv;
}

static void read_free(struct prov *pv)
{
	for (size_t i = 0; i < pv->nread; i++)
		pod_spec_free(pv->read[i]);
	free(pv->read);
	pv->read = NULL;
	pv->nread = 0;
}

void prov_node_pods(struct prov *pv, const struct timespec *asked, struct pod_spec **pods, size_t n)
{
	if (pv->have_read && (asked->tv_sec < pv->read_at.tv_sec ||
			      (asked->tv_sec == pv->read_at.tv_sec && asked->tv_nsec < pv->read_at.tv_nsec))) {
		/* older than the one held: of no use */
		for (size_t i = 0; i < n; i++)
			pod_spec_free(pods[i]);
		free(pods);
		return;
	}
	read_free(pv);
	pv->read = pods;
	pv->nread = n;
	pv->read_at = *asked;
	pv->have_read = true;
	pv->reads++;
}

bool prov_wants_read(const struct prov *pv)
{
	return pv->want_read;
}

static void entry_free(struct entry *en)
{
	istr_put(en->ns);
	istr_put(en->name);
	free(en->why);
	free(en);
}

/* The twin's pod gets its own spec back (if the source did not already
 * replace the twin, or delete the pod). */
static void untwin(struct entry *en, struct engine *e)
{
	if (!en->orig)
		return;
	struct pod *p = engine_pod_find(e, en->ns, en->name);
	if (p && p->spec == en->twin)
		engine_pod_upsert(e, en->orig); /* our reference goes to the engine */
	else
		pod_spec_free(en->orig);
	pod_spec_free(en->twin); /* ours */
	en->orig = en->twin = NULL;
}

void prov_free(struct prov *pv, struct engine *e)
{
	if (!pv)
		return;
	for (size_t i = 0; i < pv->entries.n; i++) {
		untwin(pv->entries.v[i], e);
		entry_free(pv->entries.v[i]);
	}
	vec_free(&pv->entries);
	read_free(pv);
	free(pv);
}

static struct pod_spec *twin_of(const struct pod_spec *o, const ip128 *addr, size_t n)
{
	struct pod_spec *s = xcalloc(1, sizeof(*s));
	s->ns = istr_ref(o->ns);
	s->name = xstrdup(o->name); /* not interned (model.h) */
	s->node = istr_ref(o->node);
	labelset_copy(&s->labels, &o->labels);
	s->naddr = (uint32_t)n;
	memcpy(s->addr, addr, n * sizeof(*addr));
	s->phase = o->phase;
	s->nports = o->nports;
	s->ports = xcalloc(o->nports ? o->nports : 1, sizeof(*s->ports));
	for (uint32_t i = 0; i < o->nports; i++) {
		s->ports[i] = o->ports[i];
		s->ports[i].name = istr_ref(o->ports[i].name);
	}
	s->source = istr_ref(o->source);
	s->workload = o->workload ? xstrdup(o->workload) : NULL;
	return s;
}

/* Every selector and named port treats a and b the same. */
static bool alike(const struct pod_spec *a, const struct pod_spec *b)
{
	if (a->ns != b->ns || a->labels.n != b->labels.n || a->nports != b->nports)
		return false;
	for (uint32_t i = 0; i < a->labels.n; i++)
		if (a->labels.v[i].key != b->labels.v[i].key || a->labels.v[i].val != b->labels.v[i].val)
			return false;
	for (uint32_t i = 0; i < a->nports; i++)
		if (a->ports[i].name != b->ports[i].name || a->ports[i].proto != b->ports[i].proto ||
		    a->ports[i].port != b->ports[i].port)
			return false;
	return true;
}

/* A pod waiting for an address (its node aside). */
static bool waiting(const struct pod_spec *s)
{
	return !s->naddr && !s->host_network && s->phase != PHASE_SUCCEEDED && s->phase != PHASE_FAILED;
}

static bool candidate(const struct pod *p)
{
	return p->local && waiting(p->spec) && !p->spec->unreadable;
}

static bool ts_before(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec < b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

static int pod_cmp(const void *a, const void *b)
{
	const struct pod *x = *(const struct pod *const *)a, *y = *(const struct pod *const *)b;
	int c = strcmp(x->spec->ns, y->spec->ns);
	return c ? c : strcmp(x->spec->name, y->spec->name);
}

/* The candidates (struct pod*, sorted) into cands, or a reason to deny
 * every new address (malloc'd). From the folder: the pods of this node
 * waiting for an address. From the API: the waiting pods of the last read
 * of this node's pods, each as the engine knows it (provisional.h). */
static char *candidates(struct prov *pv, struct engine *e, struct vec *cands)
{
	if (!pv->api) { /* the folder: the agent's view is the source itself */
		struct vec here = { 0 };
		char *why = NULL;
		engine_node_pods(e, &here);
		for (size_t k = 0; k < here.n && !why; k++) {
			const struct pod *p = here.v[k];
			if (candidate(p))
				vec_push(cands, here.v[k]);
			else if (p->local && waiting(p->spec) && p->spec->unreadable)
				/* the address may be its, and what it may do is not
				 * known (it is quarantined once it has one) */
				why = xasprintf("%s/%s waits for an address here and could not be read: denied both ways",
						p->spec->ns, p->spec->name);
		}
		vec_free(&here);
		return why;
	}
	for (size_t i = 0; i < pv->nread; i++) {
		const struct pod_spec *r = pv->read[i];
		if (!waiting(r))
			continue;
		struct pod *p = engine_pod_find(e, r->ns, r->name);
		if (r->unreadable || !p || !candidate(p) || !alike(p->spec, r))
			return xasprintf("%s/%s waits for an address in the API, %s: denied both ways", r->ns, r->name,
					 r->unreadable ? "unreadable"
					 : !p	       ? "not yet known to the pod watch"
						       : "not as the pod watch has it yet");
		vec_push(cands, p);
	}
	vec_sort(cands, pod_cmp); /* as the folder's: the same twin for the same pods */
	return NULL;
}

/* From the API, an entry's addresses a (n), first seen at since: a reason
 * to deny them whatever the candidates (malloc'd), or NULL. */
static char *unread(struct prov *pv, const struct timespec *since, const ip128 *a, size_t n)
{
	if (!pv->api)
		return NULL;
	if (!pv->have_read || ts_before(&pv->read_at, since)) {
		pv->want_read = true;
		return xstrdup("waiting for a read of this node's pods from the API newer than the address (the pod "
			       "watch may be behind): denied both ways");
	}
	for (size_t i = 0; i < pv->nread; i++) {
		const struct pod_spec *r = pv->read[i];
		for (uint32_t j = 0; j < r->naddr; j++)
			for (size_t k = 0; k < n; k++)
				if (ip_eq(r->addr[j], a[k]))
					return xasprintf("the API gives it to %s/%s, which the pod watch has not brought "
							 "yet: denied both ways",
							 r->ns, r->name);
	}
	return NULL;
}

static ip128 link_ip(const struct link_addr *a)
{
	return ip_from_bytes(a->a, a->family == 4);
}

static double since_s(const struct timespec *t, const struct timespec *now)
{
	return (double)(now->tv_sec - t->tv_sec) + (double)(now->tv_nsec - t->tv_nsec) / 1e9;
}

/* The entry the interface had (its time runs on; its addresses may have
 * grown: the IPv6 one often comes after the IPv4 one). */
static struct entry *old_entry(struct vec *old, const char *port, const ip128 *a, size_t n)
{
	for (size_t i = 0; i < old->n; i++) {
		struct entry *en = old->v[i];
		if (en && !strcmp(en->port, port)) {
			old->v[i] = NULL;
			memcpy(en->addr, a, n * sizeof(*a));
			en->naddr = n;
			return en;
		}
	}
	return NULL;
}

void prov_reconcile(struct prov *pv, struct engine *e, const struct link_port *ports, size_t nports,
		    bool deny_unexplained, ip128 **denied, size_t *ndenied)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	/* 1. every pod its own spec: what the API says, and nothing else */
	for (size_t i = 0; i < pv->entries.n; i++)
		untwin(pv->entries.v[i], e);
	struct vec old = pv->entries;
	memset(&pv->entries, 0, sizeof(pv->entries));
	*denied = NULL;
	*ndenied = 0;

	/* 2. the pod interfaces whose addresses no pod claims */
	struct vec cands = { 0 };
	bool have_cands = false;
	char *bad = NULL;
	int kinds = 1; /* 1: every candidate alike; 2: the same verdicts here; 0: neither */
	size_t used = 0;
	pv->want_read = false;
	for (size_t i = 0; i < nports; i++) {
		const struct link_port *lp = &ports[i];
		ip128 a[2];
		size_t n = 0;
		bool claimed = false, fam[2] = { false, false };
		for (size_t j = 0; j < lp->naddr; j++) {
			const struct link_addr *la = &lp->addr[j];
			if (la->family == 6 && la->a[0] == 0xfe && (la->a[1] & 0xc0) == 0x80)
				continue; /* link-local: no pod's podIP */
			ip128 x = link_ip(la);
			struct pod *const *cl;
			size_t ncl = engine_addr_claims(e, x, &cl);
			bool here = false;
			for (size_t k = 0; k < ncl; k++)
				here = here || cl[k]->local;
			if (here) /* a pod elsewhere holding it (moved, terminating) explains nothing here */
				claimed = true;
			else if (!fam[la->family == 6])
				fam[la->family == 6] = true, a[n++] = x;
		}
		if (claimed || !n)
			continue; /* a pod's (what else it has is no pod's: README) */
		struct entry *en = old_entry(&old, lp->name, a, n);
		if (!en) {
			en = xcalloc(1, sizeof(*en));
			snprintf(en->port, sizeof(en->port), "%s", lp->name);
			memcpy(en->addr, a, n * sizeof(*a));
			en->naddr = n;
			en->since = now;
		}
		istr_put(en->ns);
		istr_put(en->name);
		free(en->why);
		en->ns = en->name = NULL;
		en->deny = en->meet = false;
		if (!have_cands) { /* before any twin of this pass */
			bad = candidates(pv, e, &cands);
			have_cands = true;
			for (size_t k = 1; k < cands.n && kinds; k++) {
				const struct pod *c0 = cands.v[0], *ck = cands.v[k];
				if (!alike(c0->spec, ck->spec))
					kinds = engine_pods_equivalent(e, c0, ck) ? 2 : 0;
			}
		}
		/* the later of the interface and the entry: a read asked for
		 * after it has every pod bound here before the CNI made it */
		char *no = unread(pv, ts_before(&en->since, &lp->since) ? &lp->since : &en->since, a, n);
		if (!no && bad)
			no = xstrdup(bad);
		if (no) {
			en->deny = true;
			en->why = no;
		} else if (!cands.n) {
			en->deny = deny_unexplained;
			en->why = xasprintf("no pod on this node waits for an address: %s",
					    deny_unexplained ? "denied both ways (denyUnexplainedAddresses)"
							     : "left alone (denyUnexplainedAddresses: false)");
		} else if (used == cands.n) {
			en->deny = true;
			en->why = xasprintf("more new interfaces than the %zu pods waiting for an address: denied both ways",
					    cands.n);
		} else {
			/* the twin of one candidate (each interface its own: a
			 * twin holds one pod's name); of several kinds, it also
			 * meets every candidate (engine_pod_upsert_meet) */
			struct pod *p = cands.v[used++];
			en->ns = istr_ref(p->spec->ns);
			en->name = istr_get(p->spec->name);
			en->orig = p->spec;
			en->orig->refs++; /* ours, while the engine holds the twin */
			en->twin = twin_of(p->spec, a, n);
			en->twin->refs++; /* ours, beside the engine's */
			if (kinds) {
				engine_pod_upsert(e, en->twin);
				en->why = xasprintf("taken for %s/%s: %s", en->ns, en->name,
						    cands.n == 1 ? "the only pod waiting for an address on this node"
						    : kinds == 1 ? "every pod waiting for an address on this node is alike"
								 : "every pod waiting for an address on this node gets the same "
								   "verdicts here (the same policies, peer sets and ports)");
			} else {
				struct pod_spec **specs = xcalloc(cands.n, sizeof(*specs));
				struct sbuf names = { 0 };
				for (size_t k = 0; k < cands.n; k++) {
					specs[k] = ((struct pod *)cands.v[k])->spec;
					if (k < 4)
						sbuf_addf(&names, "%s%s/%s", k ? ", " : "", specs[k]->ns, specs[k]->name);
				}
				engine_pod_upsert_meet(e, en->twin, specs, cands.n);
				free(specs);
				en->meet = true;
				en->why = xasprintf("may be any of the %zu pods of different kinds waiting for an address on "
						    "this node (%s%s): allowed only what every one of them is allowed (the "
						    "intersection of their verdicts, held under the name %s/%s) until the API "
						    "reports it",
						    cands.n, names.s ? names.s : "", cands.n > 4 ? ", ..." : "", en->ns, en->name);
				sbuf_free(&names);
			}
		}
		if (en->deny) {
			*denied = xrealloc(*denied, (*ndenied + n) * sizeof(**denied));
			memcpy(*denied + *ndenied, a, n * sizeof(*a));
			*ndenied += n;
		}
		vec_push(&pv->entries, en);
	}
	vec_free(&cands);
	free(bad);
	/* 3. entries gone: explained by the API now (counted), or the
	 * interface went */
	for (size_t i = 0; i < old.n; i++) {
		struct entry *en = old.v[i];
		if (!en)
			continue;
		bool explained = false;
		for (size_t j = 0; j < en->naddr; j++)
			explained |= engine_addr_claims(e, en->addr[j], NULL) > 0;
		if (explained) {
			pv->resolved++;
			pv->resolved_seconds += since_s(&en->since, &now);
		}
		entry_free(en);
	}
	vec_free(&old);
}

void prov_stats(const struct prov *pv, struct prov_stats *st)
{
	st->entries = 0;
	for (size_t i = 0; i < pv->entries.n; i++)
		st->entries += ((const struct entry *)pv->entries.v[i])->naddr;
	st->resolved = pv->resolved;
	st->resolved_seconds = pv->resolved_seconds;
}

const char *prov_why(const struct prov *pv, ip128 a)
{
	for (size_t i = 0; pv && i < pv->entries.n; i++) {
		const struct entry *en = pv->entries.v[i];
		for (size_t j = 0; j < en->naddr; j++)
			if (ip_eq(en->addr[j], a))
				return en->why;
	}
	return NULL;
}

json_t *prov_status(const struct prov *pv, struct sbuf *text)
{
	json_t *arr = json_array();
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	for (size_t i = 0; i < pv->entries.n; i++) {
		const struct entry *en = pv->entries.v[i];
		char a[2][IP_STRLEN] = { "", "" };
		for (size_t j = 0; j < en->naddr; j++)
			ip_format(en->addr[j], a[j], sizeof(a[j]));
		json_t *addrs = json_array();
		for (size_t j = 0; j < en->naddr; j++)
			json_array_append_new(addrs, json_string(a[j]));
		json_array_append_new(arr, json_pack("{s:s, s:o, s:s, s:s?, s:f, s:s}", "interface", en->port, "addresses",
						     addrs, "verdict", en->deny ? "deny" : en->meet ? "intersection" : en->ns ? "twin" : "none",
						     "pod", NULL, "seconds", since_s(&en->since, &now), "why", en->why));
		if (en->ns) /* the twin's pod (for an intersection, the name it is held under) */
			json_object_set_new(json_array_get(arr, json_array_size(arr) - 1), "pod",
					    json_sprintf("%s/%s", en->ns, en->name));
		sbuf_addf(text, "  provisional %s%s%s on %s for %.1f s: %s\n", a[0], en->naddr > 1 ? ", " : "",
			  en->naddr > 1 ? a[1] : "", en->port, since_s(&en->since, &now), en->why);
	}
	return arr;
}
