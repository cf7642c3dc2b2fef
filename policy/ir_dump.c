/* The IR as deterministic text, for golden tests and for people. */
#include "engine.h"

#include <stdlib.h>
#include <string.h>

static void dump_ports(const struct rule *r, struct sbuf *b)
{
	if (r->any_port) {
		sbuf_add(b, "any port");
		return;
	}
	for (uint32_t i = 0; i < r->nports; i++) {
		const struct port_match *pm = &r->ports[i];
		sbuf_addf(b, "%s%s ", i ? ", " : "", proto_name(pm->proto));
		if (pm->name)
			sbuf_addf(b, "named:%s", pm->name);
		else if (!pm->lo)
			sbuf_add(b, "all");
		else if (pm->lo == pm->hi)
			sbuf_addf(b, "%u", pm->lo);
		else
			sbuf_addf(b, "%u-%u", pm->lo, pm->hi);
	}
}

/* Addresses claimed by several live pods are marked: they are in no peer
 * set and dropped (engine.h). */
static void dump_pod_addrs(const struct engine *e, const struct pod *p, struct sbuf *b)
{
	char a[IP_STRLEN];
	for (uint32_t i = 0; i < p->spec->naddr; i++) {
		ip_format(p->spec->addr[i], a, sizeof(a));
		sbuf_addf(b, "%s%s%s", i ? "," : "", a,
			  p->active && engine_addr_quarantined(e, p->spec->addr[i]) ? "(quarantined)" : "");
	}
}

static void dump_peerset(const struct engine *e, const struct ir_peerset *ps, const struct vec *pods,
			 struct sbuf *b)
{
	char buf[2 * IP_STRLEN + 2];
	sbuf_addf(b, "peerset %s\n", ps->key);
	if (ps->ranges.n) {
		sbuf_add(b, "  ranges:");
		for (size_t i = 0; i < ps->ranges.n; i++) {
			range_format(&ps->ranges.r[i], buf, sizeof(buf));
			sbuf_addf(b, " %s", buf);
		}
		sbuf_add(b, "\n");
	}
	sbuf_add(b, "  pods:");
	size_t n = 0;
	for (size_t i = 0; i < pods->n; i++) {
		const struct pod *p = pods->v[i];
		if (!ir_peerset_has_pod(e, ps, p))
			continue;
		sbuf_addf(b, " %s/%s=", p->spec->ns, p->spec->name);
		dump_pod_addrs(e, p, b);
		n++;
	}
	sbuf_add(b, n ? "\n" : " (none)\n");
}

static void dump_group(const struct engine *e, const struct ir_group *g, const struct vec *pods, struct sbuf *b)
{
	sbuf_addf(b, "group %s:", dir_name(g->dir));
	for (uint32_t i = 0; i < g->npol; i++)
		sbuf_addf(b, "%s %s %s/%s", i ? "," : "", policy_kind_name(g->pols[i]->spec->kind),
			  g->pols[i]->spec->ns, g->pols[i]->spec->name);
	sbuf_add(b, "\n  pods:");
	for (size_t i = 0; i < pods->n; i++) {
		const struct pod *p = pods->v[i];
		if (p->group[g->dir] != g)
			continue;
		sbuf_addf(b, " %s/%s=", p->spec->ns, p->spec->name);
		dump_pod_addrs(e, p, b);
	}
	sbuf_add(b, "\n");
	for (size_t i = 0; i < g->rules.n; i++) {
		const struct ir_rule *r = g->rules.v[i];
		if (r->pol)
			sbuf_addf(b, "  allow %s %s/%s %s: ", policy_kind_name(r->pol->spec->kind),
				  r->pol->spec->ns, r->pol->spec->name, r->spec->path);
		else
			sbuf_addf(b, "  allow %s: ", r->what);
		if (r->peers)
			sbuf_addf(b, "peers {%s}", r->peers->key);
		else
			sbuf_add(b, "any peer");
		sbuf_add(b, ", ");
		dump_ports(r->spec, b);
		sbuf_add(b, "\n");
	}
	sbuf_add(b, "  else drop\n");
}

/* IDs depend on the order of events; the dump does not, so that an
 * incrementally maintained IR can be compared with a fresh compile. */
static int group_order(const void *a, const void *b)
{
	const struct ir_group *x = *(const struct ir_group *const *)a, *y = *(const struct ir_group *const *)b;
	if (x->dir != y->dir)
		return (int)x->dir - (int)y->dir;
	for (uint32_t i = 0; i < x->npol && i < y->npol; i++) {
		const struct policy_spec *p = x->pols[i]->spec, *q = y->pols[i]->spec;
		int c = p->kind != q->kind ? (int)p->kind - (int)q->kind : strcmp(p->ns, q->ns);
		if (!c)
			c = strcmp(p->name, q->name);
		if (c)
			return c;
	}
	return (int)x->npol - (int)y->npol;
}

static int peerset_order(const void *a, const void *b)
{
	return strcmp((*(const struct ir_peerset *const *)a)->key, (*(const struct ir_peerset *const *)b)->key);
}

char *engine_ir_dump(const struct engine *e)
{
	struct vec pods = { 0 }, groups = { 0 }, pss = { 0 };
	struct sbuf b = { 0 };
	engine_pods(e, &pods);
	engine_groups(e, &groups);
	engine_peersets(e, &pss);
	vec_sort(&groups, group_order);
	vec_sort(&pss, peerset_order);
	for (size_t i = 0; i < groups.n; i++)
		dump_group(e, groups.v[i], &pods, &b);
	for (size_t i = 0; i < pss.n; i++)
		dump_peerset(e, pss.v[i], &pods, &b);
	vec_free(&pods);
	vec_free(&groups);
	vec_free(&pss);
	return sbuf_steal(&b);
}
