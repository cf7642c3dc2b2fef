/* agentctl diff: what a change does to connectivity. Two sets of objects
 * (folders, the cluster, or folders on top of the cluster) are evaluated
 * pair by pair and port by port, and every verdict that differs is
 * reported with the policies that caused it.
 *
 * Every port, exactly: a verdict can change only where some rule's port
 * entry begins or ends (a numeric port or range, a named port resolved on
 * a pod, the cluster DNS default), so the ports 1-65535 of each protocol
 * are cut at those points into ranges over which nothing can differ, and
 * each range is evaluated once, at its first port. */
#define _GNU_SOURCE
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "agent/report/report.h"
#include "ctl.h"

struct side {
	struct engine *e;
	char *name;       /* the source, in words */
	struct htab pods; /* struct pod* by "ns/name" */
};

struct change {
	char *src, *dst;
	int proto, lo, hi;
	const char *before, *after; /* verdict words */
	bool opened, closed;        /* a family allowed after and not before; the reverse */
	char *reason;
	json_t *policies; /* names */
};

struct diff {
	struct side s[2]; /* before, after */
	struct vec keys;  /* every pod of either side, "ns/name" sorted */
	struct vec changes;
	struct vec added, removed; /* pod keys on one side only */
	const char *ns;
};

static bool pod_eq(const void *item, const void *key)
{
	const struct pod *p = item;
	const char *k = key, *slash = strchr(k, '/');
	return strlen(p->spec->ns) == (size_t)(slash - k) && !strncmp(p->spec->ns, k, (size_t)(slash - k)) &&
	       !strcmp(p->spec->name, slash + 1);
}

static struct pod *side_pod(const struct side *s, const char *key)
{
	return htab_find(&s->pods, hash_str(key), pod_eq, key);
}

static int str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void index_pods(struct diff *d)
{
	for (int k = 0; k < 2; k++) {
		struct vec pods = { 0 };
		ctl_pods(d->s[k].e, NULL, &pods);
		for (size_t i = 0; i < pods.n; i++) {
			struct pod *p = pods.v[i];
			char *key = xasprintf("%s/%s", p->spec->ns, p->spec->name);
			htab_insert(&d->s[k].pods, hash_str(key), p);
			if (k == 1 && side_pod(&d->s[0], key))
				free(key);
			else
				vec_push(&d->keys, key);
		}
		vec_free(&pods);
	}
	vec_sort(&d->keys, str_cmp);
	for (size_t i = 0; i < d->keys.n; i++) {
		bool b = side_pod(&d->s[0], d->keys.v[i]), a = side_pod(&d->s[1], d->keys.v[i]);
		if (a != b)
			vec_push(a ? &d->added : &d->removed, d->keys.v[i]);
	}
}

/* ---------- the ports that matter ---------- */

struct cuts {
	uint32_t *v;
	size_t n, cap;
};

static void cut(struct cuts *c, uint32_t p)
{
	if (p < 1 || p > 65535)
		return;
	if (c->n == c->cap) {
		c->cap = c->cap ? c->cap * 2 : 16;
		c->v = xrealloc(c->v, c->cap * sizeof(*c->v));
	}
	c->v[c->n++] = p;
}

static int u32_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

/* Where a port entry of proto begins and ends, on every pod for a named one. */
static void rule_cuts(const struct engine *e, const struct rule *r, int proto, struct cuts *c)
{
	for (uint32_t k = 0; r && k < r->nports; k++) {
		const struct port_match *pm = &r->ports[k];
		if (pm->proto != proto)
			continue;
		if (pm->name) {
			struct vec pods = { 0 };
			engine_pods(e, &pods);
			for (size_t i = 0; i < pods.n; i++) {
				int n = ir_port_resolve(pm, pods.v[i]);
				if (n > 0) {
					cut(c, (uint32_t)n);
					cut(c, (uint32_t)n + 1);
				}
			}
			vec_free(&pods);
		} else if (pm->lo) {
			cut(c, pm->lo);
			cut(c, (uint32_t)pm->hi + 1);
		}
	}
}

/* The first port of each range of proto over which no verdict of either
 * side can change. */
static void port_ranges(const struct diff *d, int proto, struct cuts *c)
{
	cut(c, 1);
	for (int k = 0; k < 2; k++) {
		struct vec groups = { 0 };
		engine_groups(d->s[k].e, &groups);
		for (size_t i = 0; i < groups.n; i++) {
			const struct ir_group *g = groups.v[i];
			for (size_t j = 0; j < g->rules.n; j++)
				rule_cuts(d->s[k].e, ((const struct ir_rule *)g->rules.v[j])->spec, proto, c);
		}
		vec_free(&groups);
	}
	qsort(c->v, c->n, sizeof(*c->v), u32_cmp);
	size_t w = 0;
	for (size_t i = 0; i < c->n; i++)
		if (!w || c->v[w - 1] != c->v[i])
			c->v[w++] = c->v[i];
	c->n = w;
}

/* ---------- verdicts and why ---------- */

static const char *word(char cell)
{
	return !cell ? "absent" : cell == '.' ? "allowed" : cell == '4' ? "ipv4-only" : cell == '6' ? "ipv6-only"
											: "denied";
}

static char *policy_key(const struct policy_spec *ps)
{
	return xasprintf("%s %s/%s", policy_kind_name(ps->kind), ps->ns, ps->name);
}

static void add_policy(json_t *arr, const struct policy_spec *ps)
{
	char *k = policy_key(ps);
	size_t i;
	json_t *x;
	json_array_foreach(arr, i, x) if (!strcmp(json_string_value(x), k)) {
		free(k);
		return;
	}
	json_array_append_new(arr, json_string(k));
	free(k);
}

static void group_policies(const struct ir_group *g, json_t *pols, struct sbuf *why)
{
	for (uint32_t i = 0; g && i < g->npol; i++) {
		char *n = report_policy_name(g->pols[i]->spec);
		sbuf_addf(why, "%s%s", i ? ", " : "", n);
		free(n);
		if (g->pols[i]->spec->kind != KIND_QUARANTINE)
			add_policy(pols, g->pols[i]->spec);
	}
}

/* One direction whose verdict changed: why it is what it is after. */
static void side_why(const struct dir_verdict *b, const struct dir_verdict *a, enum dir d, const char *who,
		     json_t *pols, struct sbuf *why)
{
	if (why->n)
		sbuf_add(why, "; ");
	sbuf_addf(why, "%s of %s: ", dir_name(d), who);
	if (a->quarantined) {
		sbuf_add(why, "its address is quarantined (claimed by several pods)");
	} else if (a->allowed && !a->group) {
		sbuf_add(why, "no longer isolated (was: ");
		group_policies(b ? b->group : NULL, pols, why);
		sbuf_add(why, ")");
	} else if (a->allowed && a->by) {
		const struct ir_rule *r = a->by;
		if (r->pol) {
			char *n = report_policy_name(r->pol->spec);
			sbuf_addf(why, "allowed by %s %s", n, r->spec && r->spec->path ? r->spec->path : "");
			free(n);
			add_policy(pols, r->pol->spec);
		} else {
			sbuf_addf(why, "allowed by the cluster default %s", r->what ? r->what : "");
		}
	} else if (!a->allowed) {
		sbuf_add(why, "isolated by ");
		group_policies(a->group, pols, why);
		sbuf_add(why, ", no rule allows it");
	} else {
		sbuf_add(why, "allowed");
	}
}

/* The address of family f of a pod (false: it has none). */
static bool fam_addr(const struct pod *p, int f, ip128 *out)
{
	for (uint32_t i = 0; p && i < p->spec->naddr; i++)
		if (ip_is_v4(p->spec->addr[i]) == !f) {
			*out = p->spec->addr[i];
			return true;
		}
	return false;
}

/* Why a pair's verdict changed, from the verdicts of the first family
 * that changed. */
static void explain_change(const struct diff *d, struct change *c, struct pod *const ps[2], struct pod *const pd[2],
			   const int fb[2], const int fa[2])
{
	struct sbuf why = { 0 };
	c->policies = json_array();
	if (!ps[1] || !pd[1])
		sbuf_addf(&why, "pod %s removed", !ps[1] ? c->src : c->dst);
	else if (!ps[0] || !pd[0])
		sbuf_addf(&why, "pod %s added", !ps[0] ? c->src : c->dst);
	int f = fb[0] != fa[0] ? 0 : 1;
	struct verdict v[2];
	bool have[2] = { false, false };
	for (int k = 0; k < 2; k++) {
		struct endpoint src = { ps[k], { 0, 0 } }, dst = { pd[k], { 0, 0 } };
		if (ps[k] && pd[k] && fam_addr(ps[k], f, &src.addr) && fam_addr(pd[k], f, &dst.addr)) {
			policy_eval(d->s[k].e, &src, &dst, c->proto, c->lo, &v[k]);
			have[k] = true;
		}
	}
	if (have[1]) {
		static const enum dir order[2] = { DIR_EGRESS, DIR_INGRESS };
		for (int i = 0; i < 2; i++) {
			enum dir dd = order[i];
			const struct dir_verdict *b = have[0] ? &v[0].side[dd] : NULL, *a = &v[1].side[dd];
			if (b && b->allowed == a->allowed)
				continue;
			if (!b && a->allowed && !a->group)
				continue; /* a new pod that is simply not isolated */
			side_why(b, a, dd, dd == DIR_EGRESS ? c->src : c->dst, c->policies, &why);
		}
	} else if (have[0]) { /* gone: what allowed it before */
		for (int dd = 0; dd < DIR_COUNT; dd++)
			if (v[0].side[dd].by && v[0].side[dd].by->pol)
				add_policy(c->policies, v[0].side[dd].by->pol->spec);
	}
	for (int k = 0; k < 2; k++)
		if (have[k])
			verdict_free(&v[k]);
	c->reason = sbuf_steal(&why);
	if (!c->reason)
		c->reason = xstrdup("");
}

/* ---------- the walk ---------- */

static bool same_change(const struct change *c, const char *before, const char *after)
{
	return !strcmp(c->before, before) && !strcmp(c->after, after);
}

/* One pair over the ranges of one protocol. */
static void diff_pair(struct diff *d, const char *sk, const char *dk, int proto, const struct cuts *cuts, int only)
{
	struct pod *ps[2] = { side_pod(&d->s[0], sk), side_pod(&d->s[1], sk) };
	struct pod *pd[2] = { side_pod(&d->s[0], dk), side_pod(&d->s[1], dk) };
	struct change *open = NULL;
	size_t n = only ? 1 : cuts->n;
	for (size_t r = 0; r < n; r++) {
		int lo = only ? only : (int)cuts->v[r];
		int hi = only ? only : r + 1 < cuts->n ? (int)cuts->v[r + 1] - 1 : 65535;
		int fam[2][2];
		char cell[2];
		for (int k = 0; k < 2; k++) {
			fam[k][0] = fam[k][1] = -1;
			cell[k] = 0;
			if (ps[k] && pd[k]) {
				ctl_eval_pair(d->s[k].e, ps[k], pd[k], proto, lo, fam[k]);
				cell[k] = ctl_cell(fam[k]);
			}
		}
		const char *b = word(cell[0]), *a = word(cell[1]);
		bool quiet = (!strcmp(b, "denied") || !strcmp(b, "absent")) && (!strcmp(a, "denied") || !strcmp(a, "absent"));
		if (!strcmp(b, a) || quiet) { /* no flow either way is no change */
			open = NULL;
			continue;
		}
		if (open && same_change(open, b, a) && open->hi + 1 == lo) {
			open->hi = hi;
			continue;
		}
		struct change *c = xcalloc(1, sizeof(*c));
		*c = (struct change){ xstrdup(sk), xstrdup(dk), proto, lo, hi, b, a, false, false, NULL, NULL };
		for (int f = 0; f < 2; f++) {
			c->opened |= fam[1][f] == 1 && fam[0][f] != 1;
			c->closed |= fam[0][f] == 1 && fam[1][f] != 1;
		}
		explain_change(d, c, ps, pd, fam[0], fam[1]);
		vec_push(&d->changes, c);
		open = c;
	}
}

static int pod_ns_is(const char *key, const char *ns)
{
	size_t n = strlen(ns);
	return !strncmp(key, ns, n) && key[n] == '/';
}

static void walk(struct diff *d, const struct ctl_opts *o)
{
	static const int protos[] = { PROTO_TCP, PROTO_UDP, PROTO_SCTP };
	for (size_t p = 0; p < ARRAY_SIZE(protos); p++) {
		int proto = protos[p];
		struct cuts cuts = { 0 };
		if (o->port ? proto != (o->proto ? o->proto : PROTO_TCP) : o->proto && proto != o->proto)
			continue;
		if (!o->port)
			port_ranges(d, proto, &cuts);
		for (size_t i = 0; i < d->keys.n; i++)
			for (size_t j = 0; j < d->keys.n; j++) {
				const char *sk = d->keys.v[i], *dk = d->keys.v[j];
				if (i == j || (d->ns && !pod_ns_is(sk, d->ns) && !pod_ns_is(dk, d->ns)))
					continue;
				diff_pair(d, sk, dk, proto, &cuts, o->port);
			}
		free(cuts.v);
	}
}

static int change_cmp(const void *a, const void *b)
{
	const struct change *x = *(struct change *const *)a, *y = *(struct change *const *)b;
	int r = strcmp(x->src, y->src);
	if (!r)
		r = strcmp(x->dst, y->dst);
	if (!r)
		r = (x->proto == PROTO_SCTP ? 200 : x->proto) - (y->proto == PROTO_SCTP ? 200 : y->proto);
	return r ? r : x->lo - y->lo;
}

/* ---------- output ---------- */

static char *ports_text(const struct change *c)
{
	return c->lo == c->hi ? xasprintf("%s %d", proto_name(c->proto), c->lo)
			      : xasprintf("%s %d-%d", proto_name(c->proto), c->lo, c->hi);
}

static const char *scope(const struct ctl_opts *o, char *buf, size_t len)
{
	if (o->port)
		snprintf(buf, len, "%s/%d", proto_name(o->proto ? o->proto : PROTO_TCP), o->port);
	else if (o->proto)
		snprintf(buf, len, "every %s port", proto_name(o->proto));
	else
		snprintf(buf, len, "every port of TCP, UDP and SCTP");
	return buf;
}

static void counts(const struct diff *d, size_t *opened, size_t *closed)
{
	*opened = *closed = 0;
	for (size_t i = 0; i < d->changes.n; i++) {
		const struct change *c = d->changes.v[i];
		*opened += c->opened;
		*closed += c->closed;
	}
}

static void print_text(FILE *f, const struct diff *d, const struct ctl_opts *o)
{
	char sc[64];
	size_t opened, closed, w = 0;
	fprintf(f, "from %s\n  to %s\n(%s%s%s)\n", d->s[0].name, d->s[1].name, scope(o, sc, sizeof(sc)),
		d->ns ? ", pairs with a pod of namespace " : "", d->ns ? d->ns : "");
	for (int k = 0; k < 2; k++) {
		const struct vec *v = k ? &d->removed : &d->added;
		for (size_t i = 0; i < v->n; i++)
			fprintf(f, "%s pod %s %s\n", k ? "-" : "+", (const char *)v->v[i], k ? "removed" : "added");
	}
	for (size_t i = 0; i < d->changes.n; i++) {
		const struct change *c = d->changes.v[i];
		size_t l = strlen(c->src) + strlen(c->dst) + 4;
		w = l > w ? l : w;
	}
	if (d->changes.n)
		fputc('\n', f);
	for (size_t i = 0; i < d->changes.n; i++) {
		const struct change *c = d->changes.v[i];
		char *pair = xasprintf("%s -> %s", c->src, c->dst), *pt = ports_text(c), *ba;
		ba = xasprintf("%s -> %s", c->before, c->after);
		fprintf(f, "%c %-*s  %-15s  %-21s  %s\n", c->opened ? '+' : c->closed ? '-' : '~', (int)w, pair, pt, ba,
			c->reason);
		free(pair);
		free(pt);
		free(ba);
	}
	counts(d, &opened, &closed);
	if (!d->changes.n)
		fprintf(f, "\nno change in connectivity\n");
	else
		fprintf(f, "\n%zu change%s: %zu opening a flow, %zu closing one\n", d->changes.n,
			d->changes.n == 1 ? "" : "s", opened, closed);
}

static json_t *to_json(const struct diff *d)
{
	json_t *arr = json_array(), *added = json_array(), *removed = json_array();
	for (size_t i = 0; i < d->changes.n; i++) {
		const struct change *c = d->changes.v[i];
		json_t *o = json_pack("{s:s, s:s, s:i, s:s, s:s, s:s}", "src", c->src, "dst", c->dst, "port", c->lo,
				      "protocol", proto_name(c->proto), "before", c->before, "after", c->after);
		if (c->hi != c->lo)
			json_object_set_new(o, "end_port", json_integer(c->hi));
		json_object_set(o, "policies", c->policies);
		json_object_set_new(o, "reason", json_string(c->reason));
		json_array_append_new(arr, o);
	}
	for (size_t i = 0; i < d->added.n; i++)
		json_array_append_new(added, json_string(d->added.v[i]));
	for (size_t i = 0; i < d->removed.n; i++)
		json_array_append_new(removed, json_string(d->removed.v[i]));
	return json_pack("{s:o, s:s, s:s, s:o, s:o}", "changes", arr, "from", d->s[0].name, "to", d->s[1].name,
			 "pods_added", added, "pods_removed", removed);
}

static void print_csv(FILE *f, const struct diff *d)
{
	fprintf(f, "source,destination,protocol,port,end_port,before,after,policies,reason\n");
	for (size_t i = 0; i < d->changes.n; i++) {
		const struct change *c = d->changes.v[i];
		struct sbuf p = { 0 };
		size_t k;
		json_t *x;
		json_array_foreach(c->policies, k, x) sbuf_addf(&p, "%s%s", k ? "; " : "", json_string_value(x));
		ctl_csv_field(f, c->src);
		fputc(',', f);
		ctl_csv_field(f, c->dst);
		fprintf(f, ",%s,%d,%d,%s,%s,", proto_name(c->proto), c->lo, c->hi, c->before, c->after);
		ctl_csv_field(f, p.s ? p.s : "");
		fputc(',', f);
		ctl_csv_field(f, c->reason);
		fputc('\n', f);
		sbuf_free(&p);
	}
}

static void print_md(FILE *f, const struct diff *d, const struct ctl_opts *o)
{
	char sc[64];
	fprintf(f, "**Connectivity changes** from `%s` to `%s` (%s)\n\n", d->s[0].name, d->s[1].name,
		scope(o, sc, sizeof(sc)));
	for (int k = 0; k < 2; k++) {
		const struct vec *v = k ? &d->removed : &d->added;
		for (size_t i = 0; i < v->n; i++) {
			fprintf(f, "- pod ");
			ctl_md_cell(f, v->v[i]);
			fprintf(f, " %s\n", k ? "removed" : "added");
		}
	}
	if (d->added.n || d->removed.n)
		fputc('\n', f);
	if (!d->changes.n) {
		fprintf(f, "No change in connectivity.\n");
		return;
	}
	fprintf(f, "| | source | destination | ports | before | after | why |\n|---|---|---|---|---|---|---|\n");
	for (size_t i = 0; i < d->changes.n; i++) {
		const struct change *c = d->changes.v[i];
		char *pt = ports_text(c);
		fprintf(f, "| %s | ", c->opened ? "+" : c->closed ? "-" : "~");
		ctl_md_cell(f, c->src);
		fprintf(f, " | ");
		ctl_md_cell(f, c->dst);
		fprintf(f, " | %s | %s | %s | ", pt, c->before, c->after);
		ctl_md_cell(f, c->reason);
		fprintf(f, " |\n");
		free(pt);
	}
}

/* Changed flows as a graph: opened green, closed red and dashed; pods
 * added or removed outlined the same way. */
static char *print_dot(const struct diff *d, const struct ctl_opts *o)
{
	struct sbuf b = { 0 };
	struct vec pods = { 0 };
	char sc[64];
	char *title = xasprintf("connectivity changes (%s)", scope(o, sc, sizeof(sc)));
	const char **attrs = xcalloc(d->keys.n + 1, sizeof(char *));
	ctl_dot_begin(&b, title);
	free(title);
	for (size_t i = 0; i < d->keys.n; i++) {
		struct pod *a = side_pod(&d->s[1], d->keys.v[i]), *p = a ? a : side_pod(&d->s[0], d->keys.v[i]);
		attrs[pods.n] = !a ? "color=\"#c0392b\", style=\"rounded,dashed\"" : !side_pod(&d->s[0], d->keys.v[i])
			? "color=\"#1e8449\", penwidth=2" : NULL;
		vec_push(&pods, p);
	}
	ctl_dot_pods(&b, &pods, attrs);
	for (int kind = 0; kind < 3; kind++) /* opened, closed, other */
		for (size_t i = 0; i < d->changes.n;) {
			const struct change *c = d->changes.v[i];
			struct sbuf label = { 0 };
			size_t j = i;
			for (; j < d->changes.n; j++) {
				const struct change *x = d->changes.v[j];
				if (strcmp(x->src, c->src) || strcmp(x->dst, c->dst))
					break;
				if ((kind == 0) != x->opened || (kind == 1) != (!x->opened && x->closed))
					continue;
				char *pt = ports_text(x);
				sbuf_addf(&label, "%s%s%s", label.n ? ", " : "", kind == 0 ? "+" : kind == 1 ? "-" : "~", pt);
				free(pt);
			}
			if (label.n)
				ctl_dot_edge(&b, c->src, c->dst, label.s,
					     kind == 0 ? "color=\"#1e8449\", fontcolor=\"#1e8449\""
					     : kind == 1 ? "color=\"#c0392b\", fontcolor=\"#c0392b\", style=dashed"
							 : "color=\"#b9770e\", fontcolor=\"#b9770e\"");
			sbuf_free(&label);
			i = j;
		}
	sbuf_add(&b, "}\n");
	free(attrs);
	vec_free(&pods);
	return sbuf_steal(&b);
}

/* ---------- the command ---------- */

static int load(struct diff *d, const struct ctl_opts *o, struct ctl_cluster *c)
{
	const char *dirs[2] = { o->from, o->to };
	for (int k = 0; k < 2; k++) {
		if (!(d->s[k].e = ctl_engine(o, c, dirs[k], NULL, o->fmt != FMT_TEXT)))
			return -1;
		d->s[k].name = ctl_source_name(c, dirs[k]);
	}
	return 0;
}

static void diff_free(struct diff *d)
{
	for (int k = 0; k < 2; k++) {
		engine_free(d->s[k].e);
		free(d->s[k].name);
		htab_free(&d->s[k].pods);
	}
	for (size_t i = 0; i < d->keys.n; i++)
		free(d->keys.v[i]);
	for (size_t i = 0; i < d->changes.n; i++) {
		struct change *c = d->changes.v[i];
		free(c->src);
		free(c->dst);
		free(c->reason);
		json_decref(c->policies);
		free(c);
	}
	vec_free(&d->keys);
	vec_free(&d->changes);
	vec_free(&d->added);
	vec_free(&d->removed);
}

int cmd_diff(struct ctl_opts *o)
{
	struct ctl_cluster *c = NULL;
	struct diff d = { .ns = o->ns };
	int rc = 2;
	bool cluster = ctl_use_cluster(o);
	if (cluster ? !o->from && !o->to : !o->from || !o->to) {
		fprintf(stderr, "%s diff: %s  (%s diff --help)\n", ctl_prog,
			cluster ? "compare the cluster with what? --from DIR (before) and/or --to DIR (after)"
				: "--from DIR and --to DIR, or the cluster (--kubeconfig, --context, --cluster) as a side",
			ctl_prog);
		return 2;
	}
	if (cluster && !(c = ctl_cluster_read(o)))
		return 2;
	if (load(&d, o, c) < 0)
		goto out;
	index_pods(&d);
	walk(&d, o);
	vec_sort(&d.changes, change_cmp);
	rc = 0;
	if (o->fmt == FMT_DOT || o->fmt == FMT_SVG)
		rc = ctl_graph_out(print_dot(&d, o), o->fmt);
	else if (o->fmt == FMT_JSON || o->fmt == FMT_YAML)
		ctl_print_doc(stdout, to_json(&d), o->fmt);
	else if (o->fmt == FMT_CSV)
		print_csv(stdout, &d);
	else if (o->fmt == FMT_MD)
		print_md(stdout, &d, o);
	else
		print_text(stdout, &d, o);
	size_t opened, closed;
	counts(&d, &opened, &closed);
	if (rc == 0 && (((o->fail_on & FAIL_ON_ADDED) && opened) || ((o->fail_on & FAIL_ON_REMOVED) && closed)))
		rc = 1;
out:
	diff_free(&d);
	ctl_cluster_free(c);
	return rc;
}
