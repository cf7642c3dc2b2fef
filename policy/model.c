#include "model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *dir_name(enum dir d)
{
	return d == DIR_INGRESS ? "ingress" : "egress";
}

const char *proto_name(int p)
{
	switch (p) {
	case PROTO_TCP:
		return "TCP";
	case PROTO_UDP:
		return "UDP";
	case PROTO_SCTP:
		return "SCTP";
	default:
		return "any";
	}
}

int proto_parse(const char *s)
{
	if (!strcmp(s, "TCP"))
		return PROTO_TCP;
	if (!strcmp(s, "UDP"))
		return PROTO_UDP;
	if (!strcmp(s, "SCTP"))
		return PROTO_SCTP;
	return -1;
}

const char *entity_name(enum entity e)
{
	switch (e) {
	case ENT_NODES:
		return "nodes";
	case ENT_WORLD:
		return "world";
	case ENT_APISERVER:
		return "kube-apiserver";
	}
	return "?";
}

int entity_parse(const char *s)
{
	static const enum entity all[] = { ENT_NODES, ENT_WORLD, ENT_APISERVER };
	for (size_t i = 0; i < ARRAY_SIZE(all); i++)
		if (!strcmp(s, entity_name(all[i])))
			return (int)all[i];
	return -1;
}

uint32_t app_keys_split(const char *list, char *buf, size_t buflen, const char **keys)
{
	uint32_t n = 0;
	const char *src = list && *list ? list : APP_LABELS_DEFAULT;
	if (!buflen)
		return 0;
	size_t l = strnlen(src, buflen - 1); /* cut where snprintf cut (it cost 650 instructions a call) */
	memcpy(buf, src, l);
	buf[l] = 0;
	for (char *p = buf; p && *p && n < APP_KEYS_MAX;) {
		char *comma = strchr(p, ',');
		if (comma)
			*comma = 0;
		if (*p)
			keys[n++] = p;
		p = comma ? comma + 1 : NULL;
	}
	return n;
}

istr app_of(const char *list, const struct labelset *l, const char **key)
{
	char buf[512];
	const char *keys[APP_KEYS_MAX];
	uint32_t n = app_keys_split(list, buf, sizeof(buf), keys);
	for (uint32_t i = 0; i < n; i++) {
		istr v = labelset_get(l, keys[i]);
		if (v) {
			if (key) /* the label's own interned key: buf is gone on return */
				for (uint32_t j = 0; j < l->n; j++)
					if (!strcmp(l->v[j].key, keys[i]))
						*key = l->v[j].key;
			return v;
		}
	}
	if (key)
		*key = NULL;
	return NULL;
}

uint32_t app_selectors(const char *list, const char *app, struct selector *out)
{
	char buf[512];
	const char *keys[APP_KEYS_MAX];
	uint32_t n = app_keys_split(list, buf, sizeof(buf), keys);
	for (uint32_t i = 0; i < n; i++) {
		memset(&out[i], 0, sizeof(out[i]));
		for (uint32_t j = 0; j < i; j++)
			selector_add(&out[i], keys[j], SEL_DOES_NOT_EXIST, NULL, 0);
		selector_add(&out[i], keys[i], SEL_IN, &app, 1);
		selector_normalize(&out[i]);
	}
	return n;
}

bool policy_spec_selects(const struct policy_spec *p, const struct labelset *l)
{
	if (selector_matches(&p->target, l))
		return true;
	for (uint32_t i = 0; i < p->nalt; i++)
		if (selector_matches(&p->alt[i], l))
			return true;
	return false;
}

void node_spec_free(struct node_spec *n)
{
	if (!n)
		return;
	if (n->refs) {
		n->refs--;
		return;
	}
	istr_put(n->name);
	free(n->addr);
	range_set_free(&n->podcidrs);
	istr_put(n->source);
	free(n->error);
	free(n);
}

const char *policy_kind_name(enum policy_kind k)
{
	return k == KIND_NETPOL ? "NetworkPolicy" : k == KIND_ACCESS ? "AccessPolicy" : "Quarantine";
}

istr labelset_get(const struct labelset *l, const char *key)
{
	uint32_t lo = 0, hi = l->n;
	while (lo < hi) {
		uint32_t mid = (lo + hi) / 2;
		int c = strcmp(l->v[mid].key, key);
		if (c == 0)
			return l->v[mid].val;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

void labelset_set(struct labelset *l, const char *key, const char *val)
{
	uint32_t i = 0;
	while (i < l->n && strcmp(l->v[i].key, key) < 0)
		i++;
	if (i < l->n && !strcmp(l->v[i].key, key)) {
		istr_put(l->v[i].val);
		l->v[i].val = istr_get(val);
		return;
	}
	l->v = xrealloc(l->v, (l->n + 1) * sizeof(*l->v));
	memmove(&l->v[i + 1], &l->v[i], (l->n - i) * sizeof(*l->v));
	l->v[i].key = istr_get(key);
	l->v[i].val = istr_get(val);
	l->n++;
}

void labelset_free(struct labelset *l)
{
	for (uint32_t i = 0; i < l->n; i++) {
		istr_put(l->v[i].key);
		istr_put(l->v[i].val);
	}
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

void labelset_copy(struct labelset *dst, const struct labelset *src)
{
	dst->n = src->n;
	dst->v = src->n ? xmalloc(src->n * sizeof(*src->v)) : NULL;
	for (uint32_t i = 0; i < src->n; i++) {
		dst->v[i].key = istr_ref(src->v[i].key);
		dst->v[i].val = istr_ref(src->v[i].val);
	}
}

static bool req_has(const struct sel_req *r, istr v)
{
	for (uint32_t i = 0; i < r->nvals; i++)
		if (r->vals[i] == v) /* interned: pointer equality */
			return true;
	return false;
}

bool selector_matches(const struct selector *s, const struct labelset *l)
{
	for (uint32_t i = 0; i < s->n; i++) {
		const struct sel_req *r = &s->req[i];
		istr v = labelset_get(l, r->key);
		switch (r->op) {
		case SEL_IN:
			if (!v || !req_has(r, v))
				return false;
			break;
		case SEL_NOT_IN: /* a pod without the key matches NotIn */
			if (v && req_has(r, v))
				return false;
			break;
		case SEL_EXISTS:
			if (!v)
				return false;
			break;
		case SEL_DOES_NOT_EXIST:
			if (v)
				return false;
			break;
		}
	}
	return true;
}

static int istr_cmp(const void *a, const void *b)
{
	return strcmp(*(const istr *)a, *(const istr *)b);
}

/* One block for req and the values (references move). */
static void selector_pack(struct selector *s)
{
	if (s->packed || !s->n)
		return;
	size_t nv = 0;
	for (uint32_t i = 0; i < s->n; i++)
		nv += s->req[i].nvals;
	struct sel_req *req = xmalloc(s->n * sizeof(*req) + nv * sizeof(istr));
	istr *v = (istr *)(req + s->n);
	for (uint32_t i = 0; i < s->n; i++) {
		req[i] = s->req[i];
		if (req[i].nvals)
			memcpy(v, s->req[i].vals, req[i].nvals * sizeof(istr));
		req[i].vals = req[i].nvals ? v : NULL;
		v += req[i].nvals;
		free(s->req[i].vals);
	}
	free(s->req);
	s->req = req;
	s->packed = true;
}

/* Each values array its own block again, for selector_add. */
static void selector_unpack(struct selector *s)
{
	if (!s->packed)
		return;
	struct sel_req *req = xmalloc(s->n * sizeof(*req));
	for (uint32_t i = 0; i < s->n; i++) {
		req[i] = s->req[i];
		req[i].vals = req[i].nvals ? xmalloc(req[i].nvals * sizeof(istr)) : NULL;
		if (req[i].nvals)
			memcpy(req[i].vals, s->req[i].vals, req[i].nvals * sizeof(istr));
	}
	free(s->req);
	s->req = req;
	s->packed = false;
}

_Static_assert(sizeof(struct sel_req) % _Alignof(istr) == 0, "values follow the requirements, aligned");

void selector_add(struct selector *s, const char *key, enum sel_op op, const char **vals, uint32_t nvals)
{
	selector_unpack(s);
	s->req = xrealloc(s->req, (s->n + 1) * sizeof(*s->req));
	struct sel_req *r = &s->req[s->n++];
	r->key = istr_get(key);
	r->op = op;
	r->nvals = nvals;
	r->vals = nvals ? xmalloc(nvals * sizeof(istr)) : NULL;
	for (uint32_t i = 0; i < nvals; i++)
		r->vals[i] = istr_get(vals[i]);
	if (nvals > 1)
		qsort(r->vals, nvals, sizeof(istr), istr_cmp);
}

static int req_cmp(const void *a, const void *b)
{
	const struct sel_req *x = a, *y = b;
	int c = strcmp(x->key, y->key);
	if (c)
		return c;
	if (x->op != y->op)
		return (int)x->op - (int)y->op;
	if (x->nvals != y->nvals)
		return x->nvals < y->nvals ? -1 : 1;
	for (uint32_t i = 0; i < x->nvals; i++)
		if ((c = strcmp(x->vals[i], y->vals[i])))
			return c;
	return 0;
}

void selector_normalize(struct selector *s)
{
	if (s->n > 1)
		qsort(s->req, s->n, sizeof(*s->req), req_cmp);
	selector_pack(s);
}

void selector_free(struct selector *s)
{
	for (uint32_t i = 0; i < s->n; i++) {
		istr_put(s->req[i].key);
		for (uint32_t j = 0; j < s->req[i].nvals; j++)
			istr_put(s->req[i].vals[j]);
		if (!s->packed)
			free(s->req[i].vals);
	}
	free(s->req);
	s->req = NULL;
	s->n = 0;
	s->packed = false;
}

void selector_copy(struct selector *dst, const struct selector *src)
{
	memset(dst, 0, sizeof(*dst));
	for (uint32_t i = 0; i < src->n; i++)
		selector_add(dst, src->req[i].key, src->req[i].op, (const char **)src->req[i].vals,
			     src->req[i].nvals);
	selector_pack(dst);
}

void selector_format(const struct selector *s, struct sbuf *out)
{
	if (!s->n) {
		sbuf_add(out, "{}");
		return;
	}
	for (uint32_t i = 0; i < s->n; i++) {
		const struct sel_req *r = &s->req[i];
		if (i)
			sbuf_add(out, ",");
		switch (r->op) {
		case SEL_IN:
		case SEL_NOT_IN:
			if (r->op == SEL_IN && r->nvals == 1) {
				sbuf_addf(out, "%s=%s", r->key, r->vals[0]);
				break;
			}
			sbuf_addf(out, "%s %s (", r->key, r->op == SEL_IN ? "in" : "notin");
			for (uint32_t j = 0; j < r->nvals; j++)
				sbuf_addf(out, "%s%s", j ? "," : "", r->vals[j]);
			sbuf_add(out, ")");
			break;
		case SEL_EXISTS:
			sbuf_add(out, r->key);
			break;
		case SEL_DOES_NOT_EXIST:
			sbuf_addf(out, "!%s", r->key);
			break;
		}
	}
}

void pod_spec_free(struct pod_spec *p)
{
	if (!p)
		return;
	if (p->refs) { /* another owner keeps it */
		p->refs--;
		return;
	}
	istr_put(p->ns);
	istr_put(p->node);
	for (uint32_t i = 0; i < p->labels.n; i++) {
		istr_put(p->labels.v[i].key);
		istr_put(p->labels.v[i].val);
	}
	for (uint32_t i = 0; i < p->nports; i++)
		istr_put(p->ports[i].name);
	if (!p->packed) {
		free(p->labels.v);
		free(p->ports);
		free((char *)p->name);
	}
	istr_put(p->source);
	free(p->workload);
	free(p->error);
	free(p);
}

_Static_assert(sizeof(struct pod_spec) % _Alignof(struct label) == 0 &&
		       sizeof(struct label) % _Alignof(struct cport) == 0,
	       "labels and ports follow the spec in its block, aligned");

struct pod_spec *pod_spec_pack(struct pod_spec *p)
{
	if (p->packed)
		return p;
	struct pod_spec *q = pod_spec_packed_copy(p);
	free(p->labels.v);
	free(p->ports);
	free((char *)p->name);
	free(p);
	return q;
}

struct pod_spec *pod_spec_packed_copy(const struct pod_spec *p)
{
	size_t nl = p->labels.n * sizeof(*p->labels.v), np = p->nports * sizeof(*p->ports);
	size_t nn = strlen(p->name ? p->name : "") + 1;
	struct pod_spec *q = xmalloc(sizeof(*q) + nl + np + nn);
	*q = *p; /* the references move to q */
	q->labels.v = nl ? (struct label *)(q + 1) : NULL;
	q->ports = np ? (struct cport *)((char *)(q + 1) + nl) : NULL;
	if (nl)
		memcpy(q->labels.v, p->labels.v, nl);
	if (np)
		memcpy(q->ports, p->ports, np);
	char *name = (char *)(q + 1) + nl + np;
	memcpy(name, p->name ? p->name : "", nn);
	q->name = name;
	q->packed = true;
	return q;
}

void ns_spec_free(struct ns_spec *n)
{
	if (!n)
		return;
	if (n->refs) { /* another owner keeps it */
		n->refs--;
		return;
	}
	istr_put(n->name);
	labelset_free(&n->labels);
	istr_put(n->source);
	free(n->error);
	free(n);
}

void rule_free(struct rule *r)
{
	for (uint32_t i = 0; i < r->npeers; i++) {
		struct peer *p = &r->peers[i];
		if (p->kind == PEER_PODS) {
			istr_put(p->ns);
			selector_free(&p->nssel);
			selector_free(&p->podsel);
		} else if (p->kind == PEER_CIDR) {
			range_set_free(&p->ranges);
			for (uint32_t j = 0; j < p->nexcept; j++)
				free(p->except[j]);
			free(p->except);
		}
		free(p->text);
	}
	free(r->peers);
	for (uint32_t i = 0; i < r->nports; i++)
		istr_put(r->ports[i].name);
	free(r->ports);
	istr_put(r->path);
	istr_put(r->ap_app);
	istr_put(r->ap_ns);
	memset(r, 0, sizeof(*r));
}

void policy_spec_free(struct policy_spec *p)
{
	if (!p)
		return;
	if (p->refs) { /* another owner keeps it */
		p->refs--;
		return;
	}
	istr_put(p->ns);
	istr_put(p->name);
	selector_free(&p->target);
	for (uint32_t i = 0; i < p->nalt; i++)
		selector_free(&p->alt[i]);
	free(p->alt);
	for (int d = 0; d < DIR_COUNT; d++) {
		for (uint32_t i = 0; i < p->nrules[d]; i++)
			rule_free(&p->rules[d][i]);
		free(p->rules[d]);
	}
	istr_put(p->app);
	free(p->error);
	istr_put(p->source);
	free(p);
}

enum pod_phase pod_phase_parse(const char *s, size_t n)
{
	static const struct {
		const char *name;
		enum pod_phase v;
	} phases[] = {
		{ "Pending", PHASE_PENDING }, { "Running", PHASE_RUNNING }, { "Succeeded", PHASE_SUCCEEDED },
		{ "Failed", PHASE_FAILED },   { "Unknown", PHASE_UNKNOWN },
	};
	for (size_t i = 0; i < sizeof(phases) / sizeof(*phases); i++)
		if (strlen(phases[i].name) == n && !memcmp(s, phases[i].name, n))
			return phases[i].v;
	return PHASE_RUNNING;
}
