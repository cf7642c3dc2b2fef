/* explain's suggestions must round-trip (roundtrip.h). The manifests are
 * loaded the way agentctl loads them offline (the same YAML reader and
 * decoder read the suggestion back), so a suggestion that does not parse,
 * reads back as another value, names the wrong policy or selects nothing
 * fails here. */
#define _GNU_SOURCE
#include "roundtrip.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kube/manifest.h"
#include "kube/yaml.h"
#include "policy/explain.h"

#define MAX_REPORTS 20

static const struct decode_opts opts = { DECODE_AGENT, true, "app", "default" };

struct world {
	struct engine *e;
	size_t errors;
	char *diags;
	struct vec pods; /* live and host-network pods, by namespace and name; then
			    NULL for each address outside the cluster */
};

/* Peers outside the cluster, one per family. */
static const char *const outside[] = { "203.0.113.9", "2001:db8::9" };

static void world_load(struct world *w, const struct vec *docs)
{
	struct sbuf b = { 0 }, d = { 0 };
	struct manifest_set set = { 0 };
	struct engine_config cfg = { NULL, "app", true, NULL, NULL };
	struct vec all = { 0 };
	for (size_t i = 0; i < docs->n; i++) {
		char *s = json_dumps(docs->v[i], JSON_COMPACT);
		sbuf_addf(&b, "---\n%s\n", s);
		free(s);
	}
	manifest_load_buffer(&set, "roundtrip", b.s ? b.s : "", b.n, &opts);
	for (size_t i = 0; i < set.diags.v.n; i++) {
		char *m = diag_format(set.diags.v.v[i]);
		sbuf_addf(&d, "    %s\n", m);
		free(m);
	}
	memset(w, 0, sizeof(*w));
	w->errors = set.diags.errors;
	w->diags = sbuf_steal(&d);
	manifest_assign_addresses(&set);
	w->e = engine_new(&cfg);
	manifest_apply(&set, w->e);
	manifest_set_free(&set);
	engine_pods(w->e, &all);
	for (size_t i = 0; i < all.n; i++) {
		struct pod *p = all.v[i];
		if (p->active || (p->spec->host_network && p->spec->naddr))
			vec_push(&w->pods, p);
	}
	for (size_t i = 0; i < ARRAY_SIZE(outside); i++)
		vec_push(&w->pods, NULL);
	vec_free(&all);
	sbuf_free(&b);
}

static void world_free(struct world *w)
{
	vec_free(&w->pods);
	engine_free(w->e);
	free(w->diags);
}

static bool endpoint_of(const struct world *w, size_t i, bool v6, struct endpoint *ep)
{
	struct pod *p = w->pods.v[i];
	if (!p) {
		size_t k = i - (w->pods.n - ARRAY_SIZE(outside));
		ip_parse(outside[k], &ep->addr);
		ep->pod = NULL;
		return ip_is_v4(ep->addr) != v6;
	}
	for (uint32_t a = 0; a < p->spec->naddr; a++)
		if (ip_is_v4(p->spec->addr[a]) != v6) {
			*ep = (struct endpoint){ p, p->spec->addr[a] };
			return true;
		}
	return false;
}

static bool eval_flow(const struct world *w, size_t i, size_t j, const struct probe *pr, struct endpoint ep[2],
		      struct verdict *v)
{
	if (!endpoint_of(w, i, pr->v6, &ep[0]) || !endpoint_of(w, j, pr->v6, &ep[1]))
		return false;
	policy_eval(w->e, &ep[0], &ep[1], pr->proto, pr->port, v);
	return true;
}

/* ---------- applying a suggestion to the manifests ---------- */

/* A rule a suggestion adds or widens; rule NULL: any rule of the policy.
 * What it may newly allow: the suggested port only (a new rule, or ports
 * widened), the suggested peer only (a new rule, or peers widened). */
struct named {
	enum policy_kind kind;
	char *ns, *name, *rule;
	bool only_port, only_peer;
	struct probe probe;         /* the flow the suggestion was for */
	const struct endpoint *peer; /* its peer on the suggestion's side */
};

static json_t *find_policy(struct vec *docs, enum policy_kind kind, const char *ns, const char *name)
{
	for (size_t i = 0; i < docs->n; i++) {
		json_t *o = docs->v[i], *m = json_object_get(o, "metadata");
		const char *k = json_string_value(json_object_get(o, "kind"));
		const char *n = json_string_value(json_object_get(m, "namespace"));
		const char *nm = json_string_value(json_object_get(m, "name"));
		if (k && !strcmp(k, policy_kind_name(kind)) && !strcmp(n ? n : "default", ns) && nm && !strcmp(nm, name))
			return o;
	}
	return NULL;
}

/* The array at path ("spec.ingress[0].from"), created when absent. */
static json_t *path_array(json_t *obj, const char *path)
{
	char *p = xstrdup(path), *tok = p;
	json_t *cur = obj;
	while (cur && tok) {
		char *dot = strchr(tok, '.'), *br;
		if (dot)
			*dot = 0;
		long idx = (br = strchr(tok, '[')) ? strtol(br + 1, NULL, 10) : -1;
		if (br)
			*br = 0;
		json_t *next = json_object_get(cur, tok);
		if (!next || json_is_null(next)) {
			next = dot || idx >= 0 ? json_object() : json_array();
			json_object_set_new(cur, tok, next);
		}
		cur = idx >= 0 ? json_array_get(next, (size_t)idx) : next;
		tok = dot ? dot + 1 : NULL;
	}
	free(p);
	return json_is_array(cur) ? cur : NULL;
}

static json_t *parse_one(const char *yaml, char **err)
{
	struct vec v = { 0 };
	json_t *o = NULL;
	if (kube_yaml_parse(yaml, strlen(yaml), &v, err) == 0 && v.n == 1)
		o = json_incref(v.v[0]);
	else if (!*err)
		*err = xasprintf("%zu documents", v.n);
	for (size_t i = 0; i < v.n; i++)
		json_decref(v.v[i]);
	vec_free(&v);
	return o;
}

static int apply_fix(const struct fix *f, struct vec *docs, struct named *out, char **err)
{
	json_t *add = parse_one(f->yaml, err);
	memset(out, 0, sizeof(*out));
	if (!add)
		return -1;
	out->kind = f->kind;
	out->ns = xstrdup(f->ns);
	out->name = xstrdup(f->name);
	out->only_port = out->only_peer = true;
	if (f->action == FIX_CREATE) {
		if (!json_is_object(add)) {
			*err = xstrdup("the new object is not a mapping");
			json_decref(add);
			return -1;
		}
		vec_push(docs, add);
		return 0;
	}
	json_t *pol = find_policy(docs, f->kind, f->ns, f->name);
	json_t *arr = pol ? path_array(pol, f->path) : NULL;
	if (!arr || !json_is_array(add)) {
		*err = xasprintf(!pol ? "no such policy" : !arr ? "no list at %s" : "the items are not a list", f->path);
		json_decref(add);
		return -1;
	}
	out->rule = f->rule ? xstrdup(f->rule) : xasprintf("%s[%zu]", f->path, json_array_size(arr));
	size_t l = strlen(f->path);
	bool ports = l > 6 && !strcmp(f->path + l - 6, ".ports");
	bool peers = (l > 5 && !strcmp(f->path + l - 5, ".from")) || (l > 3 && !strcmp(f->path + l - 3, ".to"));
	out->only_port = !peers;
	out->only_peer = !ports;
	json_array_extend(arr, add);
	json_decref(add);
	return 0;
}

/* The suggestion named by rule r, or NULL. */
static const struct named *by_named(const struct ir_rule *r, const struct named *n, size_t nn)
{
	for (size_t i = 0; r && r->pol && i < nn; i++) {
		const struct policy_spec *ps = r->pol->spec;
		if (ps->kind == n[i].kind && !strcmp(ps->ns, n[i].ns) && !strcmp(ps->name, n[i].name) &&
		    (!n[i].rule || !strcmp(r->spec->path, n[i].rule)))
			return &n[i];
	}
	return NULL;
}

static bool label_eq(const struct labelset *l, const char *key, const char *val)
{
	istr v = labelset_get(l, key);
	return v && !strcmp(v, val);
}

/* Whether q is a peer the suggestion named by naming p: the same address
 * (a host-network pod or an address outside), or a live pod of p's
 * namespace with p's application (an AccessPolicy's "*" when p has none)
 * or, for a NetworkPolicy, every label p has. */
static bool same_peer(const struct named *n, const struct endpoint *q)
{
	const struct endpoint *p = n->peer;
	if (!p->pod || !p->pod->active)
		return ip_eq(p->addr, q->addr);
	if (!q->pod || !q->pod->active || strcmp(p->pod->spec->ns, q->pod->spec->ns))
		return false;
	const struct labelset *pl = &p->pod->spec->labels, *ql = &q->pod->spec->labels;
	istr app = labelset_get(pl, "app");
	if (app)
		return label_eq(ql, "app", app);
	if (n->kind == KIND_ACCESS)
		return true;
	for (uint32_t i = 0; i < pl->n; i++)
		if (!label_eq(ql, pl->v[i].key, pl->v[i].val))
			return false;
	return true;
}

/* ---------- the property ---------- */

struct ctx {
	const struct vec *docs;
	const struct probe *pr;
	size_t npr;
	const char *what;
	struct world w0;
	int8_t *before; /* [i][j][k]: -1 no such flow, else bit 0 egress allowed, bit 1 ingress allowed */
	int reports;
};

#define FLOW(c, i, j, k) ((c)->before[((i) * (c)->w0.pods.n + (j)) * (c)->npr + (k)])

static char *flow_name(const struct ctx *c, const struct world *w, size_t i, size_t j, size_t k)
{
	struct endpoint ep[2];
	endpoint_of(w, i, c->pr[k].v6, &ep[0]);
	endpoint_of(w, j, c->pr[k].v6, &ep[1]);
	char *s = explain_endpoint(&ep[0]), *d = explain_endpoint(&ep[1]);
	char *out = xasprintf("%s -> %s %s/%d%s", s, d, proto_name(c->pr[k].proto), c->pr[k].port,
			      c->pr[k].v6 ? " IPv6" : "");
	free(s);
	free(d);
	return out;
}

static int report(struct ctx *c, const char *flow, const struct fix *const fx[2], const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int report(struct ctx *c, const char *flow, const struct fix *const fx[2], const char *fmt, ...)
{
	if (c->reports++ >= MAX_REPORTS)
		return 1;
	va_list ap;
	fprintf(stderr, "%s: %s: ", c->what, flow);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	for (int d = 0; d < 2; d++)
		if (fx[d])
			fprintf(stderr, "  suggested for %s:\n%s%s", dir_name((enum dir)d), fx[d]->note, fx[d]->text);
	return 1;
}

/* Every flow denied before and allowed after must be allowed, on each
 * side that changed, by a rule the suggestions named. */
static int check_others(struct ctx *c, const struct world *w1, const struct named *nm, size_t nn, const char *flow,
			const struct fix *const fx[2])
{
	size_t n = c->w0.pods.n;
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < n; j++)
			for (size_t k = 0; k < c->npr; k++) {
				int8_t b = i == j ? -1 : FLOW(c, i, j, k);
				if (b < 0 || b == 3)
					continue;
				struct endpoint ep[2];
				struct verdict v;
				if (!eval_flow(w1, i, j, &c->pr[k], ep, &v))
					continue;
				int bad = -1;
				const char *why = NULL;
				for (int d = 0; d < 2 && v.allowed && bad < 0; d++) {
					bool was = b >> (d == DIR_INGRESS) & 1;
					const struct named *m = by_named(v.side[d].by, nm, nn);
					const struct probe *pr = &c->pr[k];
					if (was || !v.side[d].allowed)
						continue;
					if (!m)
						why = "a rule the suggestion did not name";
					else if (m->only_port && (pr->proto != m->probe.proto || pr->port != m->probe.port))
						why = "another port than the one suggested";
					else if (m->only_peer && !same_peer(m, &ep[d == DIR_EGRESS]))
						why = "another peer than the one suggested";
					bad = why ? d : -1;
				}
				if (bad >= 0) {
					char *other = flow_name(c, w1, i, j, k);
					char *r = v.side[bad].by ? explain_rule(v.side[bad].by) : xstrdup("not isolated");
					verdict_free(&v);
					report(c, flow, fx, "the change also allows %s, %s (%s: %s)", other, why,
					       dir_name((enum dir)bad), r);
					free(other);
					free(r);
					return 1;
				}
				verdict_free(&v);
			}
	return 0;
}

static int one_flow(struct ctx *c, size_t i, size_t j, size_t k, struct rt_stats *st)
{
	struct endpoint ep[2];
	struct verdict v;
	struct fix *fx[2] = { NULL, NULL };
	struct named nm[2];
	size_t nn = 0;
	int failed = 0;
	eval_flow(&c->w0, i, j, &c->pr[k], ep, &v);
	char *flow = flow_name(c, &c->w0, i, j, k);
	if (v.side[DIR_EGRESS].quarantined || v.side[DIR_INGRESS].quarantined) {
		st->skipped++;
		goto out;
	}
	st->denied++;
	struct vec docs = { 0 };
	for (size_t x = 0; x < c->docs->n; x++)
		vec_push(&docs, json_deep_copy(c->docs->v[x]));
	for (int d = 0; d < 2 && !failed; d++) {
		char *err = NULL;
		if (v.side[d].allowed)
			continue;
		fx[d] = explain_fix_edit(c->w0.e, &ep[0], &ep[1], (enum dir)d, &v.side[d], c->pr[k].proto, c->pr[k].port);
		if (!fx[d] || fx[d]->action == FIX_NOTE) {
			failed = report(c, flow, (const struct fix *const *)fx, "denied at %s with no change suggested",
					dir_name((enum dir)d));
			continue;
		}
		int rc = apply_fix(fx[d], &docs, &nm[nn], &err);
		nm[nn].probe = c->pr[k];
		nm[nn++].peer = &ep[d == DIR_EGRESS];
		if (rc < 0)
			failed = report(c, flow, (const struct fix *const *)fx, "cannot apply the %s suggestion: %s",
					dir_name((enum dir)d), err);
		free(err);
	}
	if (!failed) {
		struct world w1;
		struct endpoint ep1[2];
		struct verdict v1;
		world_load(&w1, &docs);
		if (w1.errors > c->w0.errors || w1.pods.n != c->w0.pods.n)
			failed = report(c, flow, (const struct fix *const *)fx, "the change does not load cleanly:\n%s",
					w1.diags);
		else if (!eval_flow(&w1, i, j, &c->pr[k], ep1, &v1))
			failed = report(c, flow, (const struct fix *const *)fx, "the pods changed");
		else {
			for (int d = 0; d < 2 && !failed; d++)
				if (!v.side[d].allowed && !(v1.side[d].allowed && by_named(v1.side[d].by, nm, nn)))
					failed = report(c, flow, (const struct fix *const *)fx,
							"still denied at %s after the change", dir_name((enum dir)d));
			verdict_free(&v1);
			if (!failed)
				failed = check_others(c, &w1, nm, nn, flow, (const struct fix *const *)fx);
		}
		world_free(&w1);
	}
	if (!failed)
		st->fixed++;
	for (size_t x = 0; x < docs.n; x++)
		json_decref(docs.v[x]);
	vec_free(&docs);
	for (size_t x = 0; x < nn; x++) {
		free(nm[x].ns);
		free(nm[x].name);
		free(nm[x].rule);
	}
	fix_free(fx[0]);
	fix_free(fx[1]);
out:
	verdict_free(&v);
	free(flow);
	return failed;
}

int roundtrip_check(const struct vec *docs, const struct probe *probes, size_t nprobes, const char *what,
		    struct rt_stats *st)
{
	struct ctx c = { .docs = docs, .pr = probes, .npr = nprobes, .what = what };
	int failed = 0;
	world_load(&c.w0, docs);
	size_t n = c.w0.pods.n;
	c.before = xcalloc(n * n * nprobes + 1, 1);
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < n; j++)
			for (size_t k = 0; k < nprobes; k++) {
				struct endpoint ep[2];
				struct verdict v;
				FLOW(&c, i, j, k) = -1;
				if (i == j || !eval_flow(&c.w0, i, j, &probes[k], ep, &v))
					continue;
				FLOW(&c, i, j, k) = (int8_t)(v.side[DIR_EGRESS].allowed | v.side[DIR_INGRESS].allowed << 1);
				verdict_free(&v);
			}
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < n; j++)
			for (size_t k = 0; k < nprobes; k++)
				if (FLOW(&c, i, j, k) >= 0 && FLOW(&c, i, j, k) != 3)
					failed += one_flow(&c, i, j, k, st);
	free(c.before);
	world_free(&c.w0);
	return failed;
}
