#include "explain.h"

#include <stdlib.h>
#include <string.h>

char *explain_endpoint(const struct endpoint *ep)
{
	char a[IP_STRLEN];
	ip_format(ep->addr, a, sizeof(a));
	if (ep->pod)
		return xasprintf("%s/%s (%s)", ep->pod->spec->ns, ep->pod->spec->name, a);
	return xstrdup(a);
}

static void describe_peers(const struct rule *r, enum dir d, struct sbuf *b)
{
	sbuf_add(b, d == DIR_INGRESS ? "from " : "to ");
	if (r->any_peer) {
		sbuf_add(b, "anywhere");
		return;
	}
	if (!r->npeers)
		sbuf_add(b, "nothing");
	for (uint32_t i = 0; i < r->npeers; i++) {
		const struct peer *pe = &r->peers[i];
		if (i)
			sbuf_add(b, " or ");
		if (pe->kind == PEER_CIDR)
			sbuf_addf(b, "%s", pe->text ? pe->text : "ranges");
		else if (pe->kind == PEER_HOST)
			sbuf_addf(b, "host %s (not enforced yet)", pe->text);
		else {
			sbuf_add(b, "pods ");
			selector_format(&pe->podsel, b);
			if (pe->ns)
				sbuf_addf(b, " in namespace %s", pe->ns);
			else {
				sbuf_add(b, " in namespaces ");
				selector_format(&pe->nssel, b);
			}
		}
	}
}

static void describe_ports(const struct rule *r, struct sbuf *b)
{
	if (r->any_port) {
		sbuf_add(b, "any port");
		return;
	}
	for (uint32_t i = 0; i < r->nports; i++) {
		const struct port_match *pm = &r->ports[i];
		sbuf_addf(b, "%s%s ", i ? ", " : "", proto_name(pm->proto));
		if (pm->name)
			sbuf_addf(b, "%s (named)", pm->name);
		else if (!pm->lo)
			sbuf_add(b, "all ports");
		else if (pm->lo == pm->hi)
			sbuf_addf(b, "%u", pm->lo);
		else
			sbuf_addf(b, "%u-%u", pm->lo, pm->hi);
	}
}

char *explain_rule(const struct ir_rule *r)
{
	struct sbuf b = { 0 };
	if (r->pol)
		sbuf_addf(&b, "%s %s/%s %s: ", policy_kind_name(r->pol->spec->kind), r->pol->spec->ns,
			  r->pol->spec->name, r->spec->path);
	else
		sbuf_addf(&b, "%s: ", r->what);
	describe_peers(r->spec, r->dir, &b);
	sbuf_add(&b, "; ");
	describe_ports(r->spec, &b);
	return sbuf_steal(&b);
}

const char *explain_miss(const struct rule_check *c)
{
	if (c->peer_ok && c->port_ok)
		return "matches";
	if (!c->peer_ok && !c->port_ok)
		return "neither the peer nor the port matches";
	return c->peer_ok ? "the peer matches, the port does not" : "the port matches, the peer does not";
}

static void port_yaml(struct sbuf *b, int proto, int port)
{
	sbuf_addf(b, "[{port: %d, protocol: %s}]", port, proto_name(proto));
}

/* AccessPolicy fix: the rule to add at the caller (egress) or callee. */
static void fix_access(const struct engine *e, const struct policy *pol, const struct endpoint *peer, enum dir d,
		       int proto, int port, struct sbuf *b)
{
	const char *key = engine_config(e)->app_label;
	istr app = peer->pod ? labelset_get(&peer->pod->spec->labels, key) : NULL;
	sbuf_addf(b, "add to AccessPolicy %s/%s (application %s), under spec.%s:\n", pol->spec->ns, pol->spec->name,
		  pol->spec->app, d == DIR_INGRESS ? "inbound.rules" : "outbound");
	if (!peer->pod) {
		char a[IP_STRLEN];
		ip_format(peer->addr, a, sizeof(a));
		if (d == DIR_INGRESS) {
			sbuf_addf(b, "  (inbound rules name applications; to admit %s add a NetworkPolicy "
				     "ingress rule with ipBlock %s%s)\n", a, a, ip_is_v4(peer->addr) ? "/32" : "/128");
			return;
		}
		sbuf_add(b, "  external:\n");
		if (ip_is_v4(peer->addr))
			sbuf_addf(b, "    - ipv4: %s\n", a);
		else
			sbuf_addf(b, "    - cidr: %s/128\n", a);
		sbuf_add(b, "      ports: ");
		port_yaml(b, proto, port);
		sbuf_add(b, "\n");
		return;
	}
	if (d == DIR_EGRESS)
		sbuf_add(b, "  rules:\n");
	sbuf_addf(b, "    - application: %s\n", app ? app : "\"*\"");
	if (strcmp(peer->pod->spec->ns, pol->spec->ns))
		sbuf_addf(b, "      namespace: %s\n", peer->pod->spec->ns);
	sbuf_add(b, "      ports: ");
	port_yaml(b, proto, port);
	sbuf_add(b, "\n");
	if (!app)
		sbuf_addf(b, "  (%s/%s has no %s label: \"*\" admits every pod of its namespace; label it to be "
			     "precise)\n", peer->pod->spec->ns, peer->pod->spec->name, key);
}

static void peer_yaml(const struct engine *e, const struct policy *pol, const struct endpoint *peer,
		      const char *indent, struct sbuf *b)
{
	char a[IP_STRLEN];
	if (!peer->pod) {
		ip_format(peer->addr, a, sizeof(a));
		sbuf_addf(b, "%s- ipBlock: {cidr: %s%s}\n", indent, a, ip_is_v4(peer->addr) ? "/32" : "/128");
		return;
	}
	const struct pod_spec *ps = peer->pod->spec;
	istr app = labelset_get(&ps->labels, engine_config(e)->app_label);
	const char *first = "- ";
	if (strcmp(ps->ns, pol->spec->ns)) {
		sbuf_addf(b, "%s- namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: %s}}\n", indent, ps->ns);
		first = "  ";
	}
	sbuf_addf(b, "%s%spodSelector: {matchLabels: {", indent, first);
	if (app)
		sbuf_addf(b, "%s: %s", engine_config(e)->app_label, app);
	else
		for (uint32_t i = 0; i < ps->labels.n; i++)
			sbuf_addf(b, "%s%s: %s", i ? ", " : "", ps->labels.v[i].key, ps->labels.v[i].val);
	sbuf_add(b, "}}\n");
}

static void fix_netpol(const struct engine *e, const struct dir_verdict *v, const struct endpoint *peer,
		       enum dir d, int proto, int port, struct sbuf *b)
{
	const char *pk = d == DIR_INGRESS ? "from" : "to";
	/* smallest first: widen the ports of a rule whose peer matches */
	for (uint32_t i = 0; i < v->nchecks; i++) {
		const struct rule_check *c = &v->checks[i];
		if (c->peer_ok && !c->port_ok && c->rule->pol && c->rule->pol->spec->kind == KIND_NETPOL) {
			sbuf_addf(b, "add to the ports of NetworkPolicy %s/%s %s:\n    - {port: %d, protocol: %s}\n",
				  c->rule->pol->spec->ns, c->rule->pol->spec->name, c->rule->spec->path, port,
				  proto_name(proto));
			return;
		}
	}
	for (uint32_t i = 0; i < v->nchecks; i++) {
		const struct rule_check *c = &v->checks[i];
		if (!c->peer_ok && c->port_ok && c->rule->pol && c->rule->pol->spec->kind == KIND_NETPOL) {
			sbuf_addf(b, "add to the %s list of NetworkPolicy %s/%s %s:\n", pk, c->rule->pol->spec->ns,
				  c->rule->pol->spec->name, c->rule->spec->path);
			peer_yaml(e, c->rule->pol, peer, "    ", b);
			return;
		}
	}
	const struct policy *pol = v->group->pols[0];
	sbuf_addf(b, "add to NetworkPolicy %s/%s, under spec.%s:\n", pol->spec->ns, pol->spec->name,
		  d == DIR_INGRESS ? "ingress" : "egress");
	sbuf_addf(b, "    - %s:\n", pk);
	peer_yaml(e, pol, peer, "        ", b);
	sbuf_add(b, "      ports: ");
	port_yaml(b, proto, port);
	sbuf_add(b, "\n");
}

char *explain_fix(const struct engine *e, const struct endpoint *src, const struct endpoint *dst, enum dir d,
		  const struct dir_verdict *v, int proto, int port)
{
	struct sbuf b = { 0 };
	const struct endpoint *self = d == DIR_EGRESS ? src : dst, *peer = d == DIR_EGRESS ? dst : src;
	if (v->allowed || !v->group)
		return NULL;
	if (self->pod->spec->unreadable) /* quarantined: no rule can help */
		return xasprintf("make Pod %s/%s readable (%s): corral isolates a pod it cannot read and allows it "
				 "nothing\n", self->pod->spec->ns, self->pod->spec->name, self->pod->spec->error);
	for (uint32_t i = 0; i < v->group->npol; i++) {
		const struct policy_spec *ps = v->group->pols[i]->spec;
		if (ps->unreadable)
			sbuf_addf(&b, "note: %s %s/%s could not be read and allows nothing (fail closed) until it can be: %s\n",
				  policy_kind_name(ps->kind), ps->ns, ps->name, ps->error);
		else if (!ps->valid)
			sbuf_addf(&b, "note: %s %s/%s is invalid and allows nothing until fixed: %s\n",
				  policy_kind_name(ps->kind), ps->ns, ps->name, ps->error);
	}
	/* An application's own AccessPolicy is where its intent lives. */
	const char *key = engine_config(e)->app_label;
	istr app = labelset_get(&self->pod->spec->labels, key);
	for (uint32_t i = 0; i < v->group->npol; i++) {
		const struct policy *pol = v->group->pols[i];
		if (pol->spec->kind == KIND_ACCESS && pol->spec->valid && pol->spec->app == app) {
			fix_access(e, pol, peer, d, proto, port, &b);
			return sbuf_steal(&b);
		}
	}
	for (uint32_t i = 0; i < v->group->npol; i++)
		if (v->group->pols[i]->spec->kind == KIND_NETPOL) {
			fix_netpol(e, v, peer, d, proto, port, &b);
			return sbuf_steal(&b);
		}
	fix_access(e, v->group->pols[0], peer, d, proto, port, &b);
	return sbuf_steal(&b);
}
