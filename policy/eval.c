#include "eval.h"

#include <stdlib.h>
#include <string.h>

bool ir_rule_ports_ok(const struct ir_rule *r, const struct pod *dst, int proto, int port)
{
	const struct rule *s = r->spec;
	if (s->any_port)
		return true;
	for (uint32_t i = 0; i < s->nports; i++) {
		const struct port_match *pm = &s->ports[i];
		if (pm->proto != proto)
			continue;
		if (pm->name) {
			if (ir_port_resolve(pm, dst) == port)
				return true;
		} else if (!pm->lo || (port >= pm->lo && port <= pm->hi)) {
			return true;
		}
	}
	return false;
}

static void eval_side(const struct engine *e, const struct pod *self, ip128 self_addr, ip128 peer,
		      const struct pod *dst, enum dir d, int proto, int port, bool established, struct dir_verdict *v)
{
	memset(v, 0, sizeof(*v));
	if (engine_addr_quarantined(e, self_addr)) {
		v->enforced = v->quarantined = true;
		return;
	}
	v->enforced = self && self->active;
	v->remote = v->enforced && !self->local;
	v->allowed = true;
	if (v->remote)
		v->own = engine_group_transient(e, self, d);
	const struct ir_group *g = v->remote ? v->own : v->enforced ? self->group[d] : NULL;
	if (!g)
		return;
	/* a meet group (a provisional address): every group it meets must
	 * allow; the first that does not is the one shown (else the last) */
	for (uint32_t k = 0; k < (g->nmeet ? g->nmeet : 1); k++) {
		const struct ir_group *s = g->nmeet ? g->meet[k] : g;
		free(v->checks);
		v->group = s;
		v->allowed = false;
		v->by = NULL;
		v->nchecks = (uint32_t)s->rules.n;
		v->checks = xcalloc(s->rules.n ? s->rules.n : 1, sizeof(*v->checks));
		for (size_t i = 0; i < s->rules.n; i++) {
			const struct ir_rule *r = s->rules.v[i];
			struct rule_check *c = &v->checks[i];
			c->rule = r;
			c->peer_ok = !r->peers ||
				     (established ? ir_peerset_had(e, r->peers, peer) : ir_peerset_has(e, r->peers, peer));
			c->port_ok = ir_rule_ports_ok(r, dst, proto, port);
			if (c->peer_ok && c->port_ok && !v->allowed) {
				v->allowed = true;
				v->by = r;
			}
		}
		if (!v->allowed)
			break;
	}
}

static void eval_flow(const struct engine *e, const struct endpoint *src, const struct endpoint *dst, int proto,
		      int port, bool established, struct verdict *v)
{
	memset(v, 0, sizeof(*v));
	if (src->pod && src->pod == dst->pod) {
		v->loopback = true;
		v->allowed = true;
		v->side[DIR_EGRESS].allowed = v->side[DIR_INGRESS].allowed = true;
		return;
	}
	eval_side(e, src->pod, src->addr, dst->addr, dst->pod, DIR_EGRESS, proto, port, established,
		  &v->side[DIR_EGRESS]);
	eval_side(e, dst->pod, dst->addr, src->addr, dst->pod, DIR_INGRESS, proto, port, established,
		  &v->side[DIR_INGRESS]);
	v->allowed = v->side[DIR_EGRESS].allowed && v->side[DIR_INGRESS].allowed;
}

void policy_eval(const struct engine *e, const struct endpoint *src, const struct endpoint *dst, int proto,
		 int port, struct verdict *v)
{
	eval_flow(e, src, dst, proto, port, false, v);
}

void policy_eval_established(const struct engine *e, const struct endpoint *src, const struct endpoint *dst,
			     int proto, int port, struct verdict *v)
{
	eval_flow(e, src, dst, proto, port, true, v);
}

void verdict_free(struct verdict *v)
{
	for (int d = 0; d < DIR_COUNT; d++) {
		free(v->side[d].checks);
		v->side[d].checks = NULL;
		engine_group_transient_free(v->side[d].own);
		v->side[d].own = NULL;
	}
}
