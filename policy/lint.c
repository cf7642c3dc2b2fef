#include "lint.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

/* A selector that selects nothing is a silent fail-open: the policy meant
 * to isolate a database isolates nothing (application: Postgres where the
 * pods say postgres), or a rule meant to admit a caller admits nobody.
 * These passes find them among the pods in view and suggest the label
 * value that was probably meant. */

static size_t edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	if (la > 64 || lb > 64)
		return 99;
	size_t row[65];
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t diag = row[0];
		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t up = row[j];
			size_t cost = tolower((unsigned char)a[i - 1]) == tolower((unsigned char)b[j - 1]) ? 0 : 1;
			size_t best = diag + cost;
			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	return row[lb];
}

/* The value of key among the pods of n (all namespaces if n is NULL) that
 * is closest to want (case aside, at most 2 edits), or NULL. */
static istr closest_value(const struct engine *e, const struct ns *n, istr key, const char *want)
{
	struct vec pods = { 0 };
	istr best = NULL;
	size_t bestd = 3;
	engine_pods(e, &pods);
	for (size_t i = 0; i < pods.n; i++) {
		const struct pod *p = pods.v[i];
		if ((n && p->ns != n) || !p->active)
			continue;
		istr v = labelset_get(&p->spec->labels, key);
		size_t d = v ? edit_distance(v, want) : 99;
		if (v && d < bestd && strcmp(v, want)) {
			best = v;
			bestd = d;
		}
	}
	vec_free(&pods);
	return best;
}

/* The first requirement "key in (value)" of s, for the hint. */
static const struct sel_req *single_value(const struct selector *s)
{
	for (uint32_t i = 0; i < s->n; i++)
		if (s->req[i].op == SEL_IN && s->req[i].nvals == 1)
			return &s->req[i];
	return NULL;
}

static char *hint(const struct engine *e, const struct ns *n, const struct selector *s)
{
	const struct sel_req *r = single_value(s);
	istr v = r ? closest_value(e, n, r->key, r->vals[0]) : NULL;
	return v ? xasprintf("; did you mean %s=%s?", r->key, v) : xstrdup("");
}

static bool pod_selected(const struct pod *p, const struct policy_spec *ps)
{
	return p->active && !p->spec->unreadable && policy_spec_selects(ps, &p->spec->labels);
}

bool policy_selects_nothing(const struct engine *e, const struct policy *pol)
{
	struct list *it;
	(void)e;
	list_foreach(it, &pol->ns->pods) {
		const struct pod *p = container_of(it, struct pod, ns_node);
		/* a pod still waiting for its address counts: the policy is
		 * meant for it (a new pod's provisional verdict uses it) */
		bool waiting = !p->spec->naddr && !p->spec->host_network && p->spec->phase != PHASE_SUCCEEDED &&
			       p->spec->phase != PHASE_FAILED && !p->spec->unreadable &&
			       policy_spec_selects(pol->spec, &p->spec->labels);
		if (waiting || pod_selected(p, pol->spec))
			return false;
	}
	return true;
}

static bool peer_matches_labels(const struct peer *pe, const struct pod *p)
{
	if (p->spec->unreadable)
		return false;
	if (pe->ns ? strcmp(pe->ns, p->spec->ns) : !selector_matches(&pe->nssel, ns_labels(p->ns)))
		return false;
	return selector_matches(&pe->podsel, &p->spec->labels);
}

/* A host-network pod the rule's peers name (it has its node's address,
 * which no pod peer matches), or NULL. */
static const struct pod *host_network_peer(const struct rule *r, const struct vec *pods)
{
	for (uint32_t i = 0; i < r->npeers; i++)
		for (size_t k = 0; r->peers[i].kind == PEER_PODS && k < pods->n; k++) {
			const struct pod *p = pods->v[k];
			if (p->spec->host_network && peer_matches_labels(&r->peers[i], p))
				return p;
		}
	return NULL;
}

static bool peer_matches_pod(const struct peer *pe, const struct pod *p)
{
	if (!p->active || p->spec->unreadable)
		return false;
	if (pe->ns ? strcmp(pe->ns, p->spec->ns) : !selector_matches(&pe->nssel, ns_labels(p->ns)))
		return false;
	return selector_matches(&pe->podsel, &p->spec->labels);
}

/* Whether any pod in view is a peer of rule r (a rule with ranges or no
 * peer list always counts as selecting something). */
static bool rule_selects_some(const struct rule *r, const struct vec *pods)
{
	if (r->any_peer)
		return true;
	for (uint32_t i = 0; i < r->npeers; i++) {
		if (r->peers[i].kind != PEER_PODS)
			return true;
		for (size_t k = 0; k < pods->n; k++)
			if (peer_matches_pod(&r->peers[i], pods->v[k]))
				return true;
	}
	return !r->npeers;
}

static void lint_target(const struct engine *e, const struct policy *pol, struct diags *d)
{
	const struct policy_spec *ps = pol->spec;
	char *h = hint(e, pol->ns, &ps->target);
	char *obj = xasprintf("%s/%s", ps->ns, ps->name);
	const char *path = ps->kind == KIND_ACCESS ? "spec.application" : "spec.podSelector";
	diags_add(d, true, ps->source ? ps->source : "", policy_kind_name(ps->kind), obj, path,
		  "selects no pod of namespace %s among the pods in view: it isolates nothing%s", ps->ns, h);
	free(obj);
	free(h);
}

/* An entity that holds no address in view: nodes without Node objects,
 * world without a known pod range, kube-apiserver without addresses. */
static void lint_entity(const struct engine *e, const struct policy_spec *ps, const struct rule *r, struct diags *d)
{
	static const char *const why[] = { "no Node in view has an address",
					   "no pod range is known (Node spec.podCIDRs, or the agent setting podCidrs)",
					   "no API server address is known (the agent setting apiServerAddresses)" };
	const struct peer *pe = &r->peers[0];
	if (r->npeers != 1 || pe->kind != PEER_ENTITY || !pe->entity ||
	    engine_entity_ranges(e, (enum entity)pe->entity)->n)
		return;
	int w = pe->entity == ENT_NODES ? 0 : pe->entity == ENT_WORLD ? 1 : 2;
	char *obj = xasprintf("%s/%s", ps->ns, ps->name);
	diags_add(d, true, ps->source ? ps->source : "", policy_kind_name(ps->kind), obj, r->path,
		  "entity %s holds no address here: %s; it allows nothing until then (fail closed)",
		  entity_name((enum entity)pe->entity), why[w]);
	free(obj);
}

static void lint_rules(const struct engine *e, const struct policy *pol, const struct vec *pods, struct diags *d)
{
	const struct policy_spec *ps = pol->spec;
	for (int dir = 0; dir < DIR_COUNT; dir++)
		for (uint32_t i = 0; i < ps->nrules[dir]; i++) {
			const struct rule *r = &ps->rules[dir][i];
			lint_entity(e, ps, r, d);
			if (rule_selects_some(r, pods))
				continue;
			const struct peer *pe = &r->peers[0];
			const struct ns *n = pe->ns ? engine_ns_find(e, pe->ns) : NULL;
			const struct pod *hn = host_network_peer(r, pods);
			char *h = !hn ? hint(e, n, &pe->podsel)
				  : ps->kind == KIND_ACCESS
				      ? xasprintf("; %s/%s matches but is a host-network pod (its node's address): name "
						  "it with `entity: nodes` under spec.%s.external",
						  hn->spec->ns, hn->spec->name, dir == DIR_INGRESS ? "inbound" : "outbound")
				      : xasprintf("; %s/%s matches but is a host-network pod (its node's address): name "
						  "that address in an ipBlock", hn->spec->ns, hn->spec->name);
			char *obj = xasprintf("%s/%s", ps->ns, ps->name);
			diags_add(d, true, ps->source ? ps->source : "", policy_kind_name(ps->kind), obj, r->path,
				  "no pod in view is a %s of this rule: it allows nothing%s",
				  dir == DIR_INGRESS ? "caller" : "destination", h);
			free(obj);
			free(h);
		}
}

size_t policy_lint(const struct engine *e, struct diags *d)
{
	struct vec pods = { 0 }, pols = { 0 };
	size_t before = d->warnings;
	engine_pods(e, &pods);
	if (!pods.n) { /* no pod in view: nothing to say about selectors */
		vec_free(&pods);
		return 0;
	}
	engine_policies(e, &pols);
	for (size_t i = 0; i < pols.n; i++) {
		const struct policy *pol = pols.v[i];
		if (pol->spec->unreadable)
			continue; /* reported as such */
		if (policy_selects_nothing(e, pol))
			lint_target(e, pol, d);
		if (pol->spec->valid)
			lint_rules(e, pol, &pods, d);
	}
	vec_free(&pols);
	vec_free(&pods);
	return d->warnings - before;
}
