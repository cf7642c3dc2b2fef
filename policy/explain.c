#include "explain.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

char *explain_endpoint(const struct endpoint *ep)
{
	char a[IP_STRLEN];
	ip_format(ep->addr, a, sizeof(a));
	if (ep->pod)
		return xasprintf("%s/%s (%s)", ep->pod->spec->ns, ep->pod->spec->name, a);
	return xstrdup(a);
}

/* ---------- YAML scalars ---------- */

static bool letter(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool plain_char(char c)
{
	return letter(c) || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '/' || c == '-';
}

/* Plain only when no YAML reader could take it for anything but this
 * string: it starts with a letter (or is digits with a '/', a CIDR), holds
 * only label characters, and is none of the words YAML 1.1 or 1.2 reads as
 * a boolean, a null or a number. Everything else is double-quoted. */
void yaml_scalar(struct sbuf *b, const char *s)
{
	static const char *const special[] = { "y",  "n",   "yes",  "no",  "true", "false",
					       "on", "off", "null", "nan", "inf",  "infinity" };
	bool plain = letter(s[0]) || (s[0] >= '0' && s[0] <= '9' && strchr(s, '/'));
	for (const char *p = s; plain && *p; p++)
		plain = plain_char(*p);
	for (size_t i = 0; plain && i < ARRAY_SIZE(special); i++)
		plain = strcasecmp(s, special[i]) != 0;
	if (plain) {
		sbuf_add(b, s);
		return;
	}
	sbuf_add(b, "\"");
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			sbuf_addf(b, "\\%c", *p);
		else if (*p < 0x20 || *p == 0x7f)
			sbuf_addf(b, "\\x%02x", *p);
		else
			sbuf_addn(b, p, 1);
	}
	sbuf_add(b, "\"");
}

/* ---------- rules in words ---------- */

#define EXCEPTS_SHOWN 8

static void describe_cidr(const struct peer *pe, struct sbuf *b)
{
	sbuf_addf(b, "%s", pe->text ? pe->text : "ranges");
	for (uint32_t j = 0; j < pe->nexcept && j < EXCEPTS_SHOWN; j++)
		sbuf_addf(b, "%s%s", j ? ", " : " except ", pe->except[j]);
	if (pe->nexcept > EXCEPTS_SHOWN)
		sbuf_addf(b, " and %u more", pe->nexcept - EXCEPTS_SHOWN);
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
			describe_cidr(pe, b);
		else if (pe->kind == PEER_HOST)
			sbuf_addf(b, "host %s", pe->text);
		else if (pe->kind == PEER_ENTITY)
			sbuf_addf(b, "entity %s", pe->text ? pe->text : entity_name((enum entity)pe->entity));
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

static bool in_cidr(const char *text, ip128 a)
{
	ip128 lo, hi;
	bool hb;
	return cidr_parse(text, &lo, &hi, &hb) == 0 && ip_cmp(a, lo) >= 0 && ip_cmp(a, hi) <= 0;
}

char *explain_excluded(const struct ir_rule *r, ip128 a, const char **except)
{
	char s[IP_STRLEN];
	ip_format(a, s, sizeof(s));
	for (uint32_t i = 0; i < r->spec->npeers; i++) {
		const struct peer *pe = &r->spec->peers[i];
		if (pe->kind != PEER_CIDR || !pe->text || !in_cidr(pe->text, a) || range_set_contains(&pe->ranges, a))
			continue;
		for (uint32_t j = 0; j < pe->nexcept; j++)
			if (in_cidr(pe->except[j], a)) {
				if (except)
					*except = pe->except[j];
				return xasprintf("%s is inside %s but excluded by its except %s", s, pe->text,
						 pe->except[j]);
			}
		if (ip_is_v4(a) && strchr(pe->text, ':'))
			return xasprintf("%s is an IPv4 address: the IPv6 block %s never matches it", s, pe->text);
	}
	return NULL;
}

/* ---------- suggestions ---------- */

struct fctx {
	const struct engine *e;
	const struct endpoint *self, *peer;
	enum dir d;
	int proto, port;
	bool peer_addr; /* name the peer by its address (not a live pod selectors match) */
};

static struct fix *fix_new(enum fix_action a, const struct policy *pol)
{
	struct fix *f = xcalloc(1, sizeof(*f));
	f->action = a;
	if (pol) {
		f->kind = pol->spec->kind;
		f->ns = xstrdup(pol->spec->ns);
		f->name = xstrdup(pol->spec->name);
	}
	return f;
}

void fix_free(struct fix *f)
{
	if (!f)
		return;
	free(f->ns);
	free(f->name);
	free(f->path);
	free(f->rule);
	free(f->yaml);
	free(f->note);
	free(f->text);
	free(f);
}

/* Every line of yaml, indented by n spaces. */
static void indent(struct sbuf *b, const char *yaml, int n)
{
	for (const char *p = yaml; *p;) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) + 1 : strlen(p);
		sbuf_addf(b, "%*s", n, "");
		sbuf_addn(b, p, len);
		p += len;
	}
}

static void ports_yaml(const struct fctx *c, struct sbuf *b)
{
	sbuf_addf(b, "[{port: %d, protocol: %s}]", c->port, proto_name(c->proto));
}

static void addr_cidr(const struct fctx *c, struct sbuf *b)
{
	char a[IP_STRLEN + 8];
	ip_format(c->peer->addr, a, sizeof(a) - 8);
	strcat(a, ip_is_v4(c->peer->addr) ? "/32" : "/128");
	yaml_scalar(b, a);
}

/* {key: value, ...}: the app label if the pod has one, else all labels */
static void pod_labels_yaml(const struct fctx *c, struct sbuf *b)
{
	const struct labelset *l = &c->peer->pod->spec->labels;
	const char *key = NULL;
	bool app = app_of(engine_config(c->e)->app_label, l, &key) != NULL, first = true;
	sbuf_add(b, "{");
	for (uint32_t i = 0; i < l->n; i++) {
		if (app && strcmp(l->v[i].key, key))
			continue;
		if (!first)
			sbuf_add(b, ", ");
		first = false;
		yaml_scalar(b, l->v[i].key);
		sbuf_add(b, ": ");
		yaml_scalar(b, l->v[i].val);
	}
	sbuf_add(b, "}");
}

/* One NetworkPolicy peer, as a list item. */
static void np_peer_item(const struct fctx *c, const char *own_ns, struct sbuf *b)
{
	if (c->peer_addr) {
		sbuf_add(b, "- ipBlock: {cidr: ");
		addr_cidr(c, b);
		sbuf_add(b, "}\n");
		return;
	}
	const char *ns = c->peer->pod->spec->ns;
	if (strcmp(ns, own_ns)) {
		sbuf_add(b, "- namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: ");
		yaml_scalar(b, ns);
		sbuf_add(b, "}}\n  podSelector: {matchLabels: ");
	} else {
		sbuf_add(b, "- podSelector: {matchLabels: ");
	}
	pod_labels_yaml(c, b);
	sbuf_add(b, "}\n");
}

/* One new NetworkPolicy rule, as a list item. */
static void np_rule_item(const struct fctx *c, const char *own_ns, struct sbuf *b)
{
	struct sbuf peer = { 0 };
	np_peer_item(c, own_ns, &peer);
	sbuf_addf(b, "- %s:\n", c->d == DIR_INGRESS ? "from" : "to");
	indent(b, peer.s, 2);
	sbuf_add(b, "  ports: ");
	ports_yaml(c, b);
	sbuf_add(b, "\n");
	sbuf_free(&peer);
}

static void port_item(const struct fctx *c, struct sbuf *b)
{
	sbuf_addf(b, "- {port: %d, protocol: %s}\n", c->port, proto_name(c->proto));
}

static struct fix *fix_append(const struct policy *pol, char *path, const char *rule, struct sbuf *yaml,
			      struct sbuf *text)
{
	struct fix *f = fix_new(FIX_APPEND, pol);
	f->path = path;
	f->rule = rule ? xstrdup(rule) : NULL;
	f->yaml = sbuf_steal(yaml);
	indent(text, f->yaml, 4);
	return f;
}

/* Widen the ports of a rule whose peer matches: the smallest change. */
static struct fix *widen_ports(const struct fctx *c, const struct dir_verdict *v, enum policy_kind kind,
			       const struct policy *only, struct sbuf *text)
{
	for (uint32_t i = 0; i < v->nchecks; i++) {
		const struct rule_check *k = &v->checks[i];
		const struct policy *pol = k->rule->pol;
		if (!k->peer_ok || k->port_ok || !pol || !pol->spec->valid || pol->spec->kind != kind ||
		    (only && pol != only))
			continue;
		struct sbuf y = { 0 };
		port_item(c, &y);
		sbuf_addf(text, "add to the ports of %s %s/%s %s:\n", policy_kind_name(kind), pol->spec->ns,
			  pol->spec->name, k->rule->spec->path);
		return fix_append(pol, xasprintf("%s.ports", k->rule->spec->path), k->rule->spec->path, &y, text);
	}
	return NULL;
}

/* The target selector as YAML: {matchLabels: {...}, matchExpressions: [...]} */
static void selector_yaml(const struct selector *s, struct sbuf *b)
{
	static const char *const op[] = { "In", "NotIn", "Exists", "DoesNotExist" };
	bool ml = false, me = false;
	sbuf_add(b, "{");
	for (uint32_t i = 0; i < s->n; i++) {
		const struct sel_req *r = &s->req[i];
		if (r->op != SEL_IN || r->nvals != 1)
			continue;
		sbuf_add(b, ml ? ", " : "matchLabels: {");
		ml = true;
		yaml_scalar(b, r->key);
		sbuf_add(b, ": ");
		yaml_scalar(b, r->vals[0]);
	}
	if (ml)
		sbuf_add(b, "}");
	for (uint32_t i = 0; i < s->n; i++) {
		const struct sel_req *r = &s->req[i];
		if (r->op == SEL_IN && r->nvals == 1)
			continue;
		sbuf_add(b, me ? ", " : ml ? ", matchExpressions: [" : "matchExpressions: [");
		me = true;
		sbuf_add(b, "{key: ");
		yaml_scalar(b, r->key);
		sbuf_addf(b, ", operator: %s", op[r->op]);
		for (uint32_t j = 0; j < r->nvals; j++) {
			sbuf_add(b, j ? ", " : ", values: [");
			yaml_scalar(b, r->vals[j]);
		}
		sbuf_add(b, r->nvals ? "]}" : "}");
	}
	if (me)
		sbuf_add(b, "]");
	sbuf_add(b, "}");
}

/* A new NetworkPolicy that selects exactly the pods pol selects (they are
 * isolated in this direction already, so it isolates nothing new) and
 * allows the flow: for when no valid policy of the pod can take a rule
 * (all are invalid, or an AccessPolicy cannot name an address). */
static struct fix *fix_create(const struct fctx *c, const struct policy *pol, const char *why, struct sbuf *text)
{
	const char *dname = c->d == DIR_INGRESS ? "ingress" : "egress";
	char *name = xasprintf("%.200s-allow-%s", pol->spec->name, dname);
	for (int k = 2; engine_policy_find(c->e, KIND_NETPOL, pol->spec->ns, name); k++) {
		free(name);
		name = xasprintf("%.200s-allow-%s-%d", pol->spec->name, dname, k);
	}
	struct sbuf y = { 0 };
	sbuf_add(&y, "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: ");
	yaml_scalar(&y, name);
	sbuf_add(&y, ", namespace: ");
	yaml_scalar(&y, pol->spec->ns);
	sbuf_add(&y, "}\nspec:\n  podSelector: ");
	/* the one of the policy's selectors that selects this pod (an
	 * application read through a later key of the label list) */
	const struct selector *sel = &pol->spec->target;
	for (uint32_t i = 0; i < pol->spec->nalt && !selector_matches(sel, &c->self->pod->spec->labels); i++)
		sel = &pol->spec->alt[i];
	selector_yaml(sel, &y);
	sbuf_addf(&y, "\n  policyTypes: [%s]\n  %s:\n", c->d == DIR_INGRESS ? "Ingress" : "Egress", dname);
	struct sbuf rule = { 0 };
	np_rule_item(c, pol->spec->ns, &rule);
	indent(&y, rule.s, 2);
	sbuf_free(&rule);
	sbuf_addf(text, "create this NetworkPolicy (%s; it selects the same pods as %s %s/%s, which are isolated "
			"for %s already):\n", why, policy_kind_name(pol->spec->kind), pol->spec->ns, pol->spec->name,
		  dname);
	struct fix *f = fix_new(FIX_CREATE, NULL);
	f->kind = KIND_NETPOL;
	f->ns = xstrdup(pol->spec->ns);
	f->name = name;
	f->yaml = sbuf_steal(&y);
	indent(text, f->yaml, 4);
	return f;
}

static struct fix *fix_netpol(const struct fctx *c, const struct dir_verdict *v, const struct policy *np,
			      struct sbuf *text)
{
	const char *pk = c->d == DIR_INGRESS ? "from" : "to";
	struct fix *f = widen_ports(c, v, KIND_NETPOL, NULL, text);
	if (f)
		return f;
	/* then the peers of a rule whose port matches */
	for (uint32_t i = 0; i < v->nchecks; i++) {
		const struct rule_check *k = &v->checks[i];
		const struct policy *pol = k->rule->pol;
		if (k->peer_ok || !k->port_ok || !pol || !pol->spec->valid || pol->spec->kind != KIND_NETPOL)
			continue;
		struct sbuf y = { 0 };
		np_peer_item(c, pol->spec->ns, &y);
		sbuf_addf(text, "add to the %s list of NetworkPolicy %s/%s %s:\n", pk, pol->spec->ns, pol->spec->name,
			  k->rule->spec->path);
		return fix_append(pol, xasprintf("%s.%s", k->rule->spec->path, pk), k->rule->spec->path, &y, text);
	}
	struct sbuf y = { 0 };
	const char *list = c->d == DIR_INGRESS ? "ingress" : "egress";
	np_rule_item(c, np->spec->ns, &y);
	sbuf_addf(text, "add to NetworkPolicy %s/%s, under spec.%s:\n", np->spec->ns, np->spec->name, list);
	return fix_append(np, xasprintf("spec.%s", list), NULL, &y, text);
}

/* An external entry naming the peer's address: the nodes entity when the
 * address is a known Node's (a host-network pod, the kubelet, a NodePort
 * client SNATed to the node), else the address itself (a host-network
 * pod whose Node is not known: the entity would not hold it yet). */
static void external_item(const struct fctx *c, struct sbuf *y)
{
	if (engine_node_by_addr(c->e, c->peer->addr)) {
		sbuf_add(y, "- entity: nodes");
	} else if (ip_is_v4(c->peer->addr)) {
		char a[IP_STRLEN];
		ip_format(c->peer->addr, a, sizeof(a));
		sbuf_add(y, "- ipv4: ");
		yaml_scalar(y, a);
	} else {
		sbuf_add(y, "- cidr: ");
		addr_cidr(c, y);
	}
	sbuf_add(y, "\n  ports: ");
	ports_yaml(c, y);
	sbuf_add(y, "\n");
}

/* AccessPolicy: a rule at the caller (outbound) or the callee (inbound). */
static struct fix *fix_access(const struct fctx *c, const struct dir_verdict *v, const struct policy *ap,
			      struct sbuf *text)
{
	const char *keys = engine_config(c->e)->app_label, *key = NULL, *self_key = NULL;
	struct fix *f = widen_ports(c, v, KIND_ACCESS, ap, text);
	if (f)
		return f;
	struct sbuf y = { 0 };
	app_of(keys, &c->self->pod->spec->labels, &self_key);
	sbuf_addf(text, "add to AccessPolicy %s/%s (application %s", ap->spec->ns, ap->spec->name, ap->spec->app);
	if (self_key)
		sbuf_addf(text, ", read from the label %s of %s/%s", self_key, c->self->pod->spec->ns,
			  c->self->pod->spec->name);
	sbuf_addf(text, "), under spec.%s:\n", c->d == DIR_INGRESS ? "inbound" : "outbound");
	const char *dname = c->d == DIR_INGRESS ? "inbound" : "outbound";
	if (c->peer_addr) {
		external_item(c, &y);
		sbuf_add(text, "  external:\n");
		return fix_append(ap, xasprintf("spec.%s.external", dname), NULL, &y, text);
	}
	const struct pod_spec *ps = c->peer->pod->spec;
	istr app = app_of(keys, &ps->labels, &key);
	sbuf_add(&y, "- application: ");
	yaml_scalar(&y, app ? app : "*");
	if (strcmp(ps->ns, ap->spec->ns)) {
		sbuf_add(&y, "\n  namespace: ");
		yaml_scalar(&y, ps->ns);
	}
	sbuf_add(&y, "\n  ports: ");
	ports_yaml(c, &y);
	sbuf_add(&y, "\n");
	sbuf_add(text, "  rules:\n");
	f = fix_append(ap, xasprintf("spec.%s.rules", dname), NULL, &y, text);
	if (app && key)
		sbuf_addf(text, "  (%s/%s is application %s by its label %s)\n", ps->ns, ps->name, app, key);
	if (!app)
		sbuf_addf(text, "  (%s/%s has none of the labels %s: \"*\" admits every pod of its namespace; label it "
				"to be precise)\n", ps->ns, ps->name, keys);
	return f;
}

/* How the peer can be named, or why no change on this side can help. */
static bool peer_nameable(const struct fctx *c, bool *by_addr, struct sbuf *text)
{
	const struct endpoint *p = c->peer;
	char a[IP_STRLEN];
	ip_format(p->addr, a, sizeof(a));
	*by_addr = !p->pod;
	if (engine_addr_quarantined(c->e, p->addr)) {
		sbuf_addf(text, "no change here can allow it: the peer's address %s is claimed by several live pods "
				"(quarantined)\n", a);
		return false;
	}
	if (p->pod && p->pod->spec->unreadable) {
		sbuf_addf(text, "no change here can allow it: %s/%s could not be read, so no selector matches it "
				"(fail closed): %s\n", p->pod->spec->ns, p->pod->spec->name, p->pod->spec->error);
		return false;
	}
	if (!p->pod || p->pod->active)
		return true;
	if (p->pod->spec->host_network) {
		sbuf_addf(text, "note: %s/%s is a host-network pod: it has its node's address %s, which pod "
				"selectors and application rules never match; name its node instead (the nodes entity "
				"of an AccessPolicy, or the address):\n", p->pod->spec->ns, p->pod->spec->name, a);
		*by_addr = true;
		return true;
	}
	sbuf_addf(text, "no change can allow it: %s/%s is not running (policies apply to live pods only)\n",
		  p->pod->spec->ns, p->pod->spec->name);
	return false;
}

static const struct policy *first_valid(const struct ir_group *g, enum policy_kind kind, istr app)
{
	for (uint32_t i = 0; i < g->npol; i++) {
		const struct policy_spec *ps = g->pols[i]->spec;
		if (ps->valid && ps->kind == kind && (kind != KIND_ACCESS || ps->app == app))
			return g->pols[i];
	}
	return NULL;
}

struct fix *explain_fix_edit(const struct engine *e, const struct endpoint *src, const struct endpoint *dst,
			     enum dir d, const struct dir_verdict *v, int proto, int port)
{
	if (v->allowed || !v->group || v->quarantined)
		return NULL;
	struct fctx c = { e, d == DIR_EGRESS ? src : dst, d == DIR_EGRESS ? dst : src, d, proto, port, false };
	struct sbuf text = { 0 }, note = { 0 };
	for (uint32_t i = 0; i < v->group->npol; i++) {
		const struct policy_spec *ps = v->group->pols[i]->spec;
		if (ps->kind == KIND_QUARANTINE)
			continue;
		if (ps->unreadable)
			sbuf_addf(&note, "note: %s %s/%s could not be read and allows nothing (fail closed) until it can "
					 "be: %s\n", policy_kind_name(ps->kind), ps->ns, ps->name, ps->error);
		else if (!ps->valid)
			sbuf_addf(&note, "note: %s %s/%s is invalid and allows nothing until fixed: %s\n",
				  policy_kind_name(ps->kind), ps->ns, ps->name, ps->error);
	}
	struct fix *f;
	if (c.self->pod->spec->unreadable) { /* quarantined: no rule can help */
		sbuf_addf(&note, "make Pod %s/%s readable (%s): corral isolates a pod it cannot read and allows it "
				 "nothing\n", c.self->pod->spec->ns, c.self->pod->spec->name, c.self->pod->spec->error);
		f = fix_new(FIX_NOTE, NULL);
	} else if (!peer_nameable(&c, &c.peer_addr, &note)) {
		f = fix_new(FIX_NOTE, NULL);
	} else {
		/* an application's own AccessPolicy is where its intent lives;
		 * only a valid policy's rules can allow anything */
		istr app = app_of(engine_config(e)->app_label, &c.self->pod->spec->labels, NULL);
		const struct policy *ap = first_valid(v->group, KIND_ACCESS, app);
		const struct policy *np = first_valid(v->group, KIND_NETPOL, NULL);
		if (ap)
			f = fix_access(&c, v, ap, &text);
		else if (np)
			f = fix_netpol(&c, v, np, &text);
		else
			f = fix_create(&c, v->group->pols[0], "no valid policy selects the pod", &text);
	}
	f->note = sbuf_steal(&note);
	f->text = sbuf_steal(&text);
	return f;
}

char *explain_fix(const struct engine *e, const struct endpoint *src, const struct endpoint *dst, enum dir d,
		  const struct dir_verdict *v, int proto, int port)
{
	struct fix *f = explain_fix_edit(e, src, dst, d, v, proto, port);
	char *text = f ? xasprintf("%s%s", f->note, f->text) : NULL;
	fix_free(f);
	return text;
}
