/* How a verdict is shown: the text people read and the JSON machines
 * read, for agentctl (offline) and the agent (live) alike. */
#define _GNU_SOURCE
#include "agent/report/report.h"

#include <errno.h>

#include <stdlib.h>
#include <string.h>

#include "policy/explain.h"
#include "policy/lint.h"

static const char *self_node(const struct endpoint *ep)
{
	return ep->pod && ep->pod->spec->node ? ep->pod->spec->node : "another node";
}

/* "a/api-old, a/zz-new": the live pods that claim a quarantined address */
static char *claimants(const struct engine *e, ip128 a)
{
	struct pod *const *by;
	size_t n = engine_addr_claims(e, a, &by);
	struct sbuf b = { 0 };
	for (size_t i = 0; i < n; i++)
		sbuf_addf(&b, "%s%s/%s", i ? ", " : "", by[i]->spec->ns, by[i]->spec->name);
	return sbuf_steal(&b);
}

static const char quarantine_why[] =
	"every flow from or to it is dropped (on the node of each claimant) until only one of them claims it";

static json_t *side_json(const struct engine *e, const struct endpoint *src, const struct endpoint *dst, enum dir d,
			 const struct dir_verdict *v, int proto, int port, const char *where)
{
	json_t *o = json_pack("{s:s, s:b, s:b, s:b}", "direction", dir_name(d), "enforced", v->enforced, "isolated",
			      v->group != NULL, "allowed", v->allowed);
	if (v->quarantined) {
		struct pod *const *by;
		size_t n = engine_addr_claims(e, (d == DIR_EGRESS ? src : dst)->addr, &by);
		json_t *who = json_array();
		for (size_t i = 0; i < n; i++)
			json_array_append_new(who, json_sprintf("%s/%s", by[i]->spec->ns, by[i]->spec->name));
		json_object_set_new(o, "quarantined", json_true());
		json_object_set_new(o, "claimed_by", who);
		json_object_set_new(o, "reason", json_string(quarantine_why));
		return o;
	}
	if (v->remote)
		json_object_set_new(o, "node", json_string(self_node(d == DIR_EGRESS ? src : dst)));
	const struct endpoint *self = d == DIR_EGRESS ? src : dst;
	if (self->pod && self->pod->spec->unreadable)
		json_object_set_new(o, "quarantined", json_string(self->pod->spec->error ? self->pod->spec->error : "?"));
	if (where)
		json_object_set_new(o, "kernel", json_string(where));
	if (!v->group)
		return o;
	json_t *pols = json_array(), *rules = json_array();
	for (uint32_t i = 0; i < v->group->npol; i++) {
		const struct policy_spec *ps = v->group->pols[i]->spec;
		json_array_append_new(pols, json_pack("{s:s, s:s, s:s, s:b, s:b, s:s?}", "kind", policy_kind_name(ps->kind),
						      "namespace", ps->ns, "name", ps->name, "valid", ps->valid,
						      "unreadable", ps->unreadable, "error", ps->error));
	}
	ip128 peer = (d == DIR_EGRESS ? dst : src)->addr;
	for (uint32_t i = 0; i < v->nchecks; i++) {
		char *desc = explain_rule(v->checks[i].rule);
		const char *except = NULL;
		char *why = v->checks[i].peer_ok ? NULL : explain_excluded(v->checks[i].rule, peer, &except);
		json_array_append_new(rules, json_pack("{s:s, s:b, s:b, s:s?, s:s?}", "rule", desc, "peer_matches",
						       v->checks[i].peer_ok, "port_matches", v->checks[i].port_ok,
						       "excluded_by", except, "peer_note", why));
		free(why);
		free(desc);
	}
	json_object_set_new(o, "policies", pols);
	json_object_set_new(o, "rules", rules);
	if (v->by) {
		char *desc = explain_rule(v->by);
		json_object_set_new(o, "allowed_by", json_string(desc));
		free(desc);
	}
	struct fix *fix = explain_fix_edit(e, src, dst, d, v, proto, port);
	if (fix) {
		char *all = xasprintf("%s%s", fix->note, fix->text);
		json_object_set_new(o, "fix", json_string(all));
		free(all);
	}
	if (fix && fix->action != FIX_NOTE)
		json_object_set_new(o, "fix_edit",
				    json_pack("{s:s, s:s, s:s, s:s, s:s?, s:s?, s:s}", "action",
					      fix->action == FIX_APPEND ? "append" : "create", "kind",
					      policy_kind_name(fix->kind), "namespace", fix->ns, "name", fix->name, "path",
					      fix->path, "rule", fix->rule, "yaml", fix->yaml));
	fix_free(fix);
	return o;
}

static void side_text(FILE *out, const struct engine *e, const struct endpoint *src, const struct endpoint *dst, enum dir d,
		      const struct dir_verdict *v, int proto, int port, const char *where)
{
	const struct endpoint *self = d == DIR_EGRESS ? src : dst;
	char *who = explain_endpoint(self);
	fprintf(out, "\n%s at %s: ", dir_name(d), who);
	free(who);
	if (v->quarantined) {
		char a[IP_STRLEN], *by = claimants(e, self->addr);
		ip_format(self->addr, a, sizeof(a));
		fprintf(out, "quarantined: %s is claimed by several live pods (%s);\n  %s\n", a, by, quarantine_why);
		fprintf(out, "  DENIED: no policy change can allow it; delete the stale pod or give one of them "
			     "another address\n");
		free(by);
		return;
	}
	if (!v->enforced) {
		fprintf(out, "not a pod the policies apply to: allowed\n");
		return;
	}
	if (!v->group) {
		fprintf(out, "not isolated (no policy selects it for %s): allowed\n", dir_name(d));
		/* a policy meant for it may have a selector that selects nothing */
		for (size_t i = 0; self->pod && i < self->pod->ns->policies.n; i++) {
			const struct policy *pol = self->pod->ns->policies.v[i];
			if (!pol->spec->unreadable && policy_selects_nothing(e, pol))
				fprintf(out, "  note: %s %s/%s in this namespace selects no pod (it isolates nothing): "
					     "was it meant for this one? (agentctl check suggests the label)\n",
					policy_kind_name(pol->spec->kind), pol->spec->ns, pol->spec->name);
		}
		return;
	}
	if (self->pod && self->pod->spec->unreadable) {
		char *why = report_pod_problem(self->pod->spec);
		fprintf(out, "quarantined: %s\n", why);
		free(why);
	} else {
		fprintf(out, "isolated by");
		for (uint32_t i = 0; i < v->group->npol; i++) {
			const struct policy_spec *ps = v->group->pols[i]->spec;
			fprintf(out, "%s %s %s/%s%s", i ? "," : "", policy_kind_name(ps->kind), ps->ns, ps->name,
				ps->unreadable ? " (COULD NOT BE READ: enforced fail-closed, allows nothing)"
				: ps->valid    ? ""
					       : " (INVALID: allows nothing)");
		}
		fprintf(out, "\n");
		for (uint32_t i = 0; i < v->group->npol; i++)
			if (v->group->pols[i]->spec->unreadable) {
				char *why = report_policy_problem(v->group->pols[i]->spec);
				fprintf(out, "  %s\n", why);
				free(why);
			}
	}
	const struct endpoint *other = d == DIR_EGRESS ? dst : src;
	if (other->pod && other->pod->spec->unreadable)
		fprintf(out, "  note: %s/%s could not be read, so no pod selector matches it (fail closed)\n",
			other->pod->spec->ns, other->pod->spec->name);
	else if (other->pod && other->pod->ns->spec && other->pod->ns->spec->unreadable)
		fprintf(out, "  note: namespace %s could not be read, so no namespace selector matches it (fail closed)\n",
			other->pod->spec->ns);
	if (v->remote)
		fprintf(out, "  (enforced on %s by its agent; evaluated here from the same objects)\n", self_node(self));
	if (where)
		fprintf(out, "  kernel: %s\n", where);
	ip128 peer = (d == DIR_EGRESS ? dst : src)->addr;
	for (uint32_t i = 0; i < v->nchecks; i++) {
		char *desc = explain_rule(v->checks[i].rule);
		char *why = v->checks[i].peer_ok ? NULL : explain_excluded(v->checks[i].rule, peer, NULL);
		fprintf(out, "  %s %s\n      -> %s%s%s%s\n", v->checks[i].rule == v->by ? "*" : "-", desc,
			explain_miss(&v->checks[i]), why ? " (" : "", why ? why : "", why ? ")" : "");
		free(why);
		free(desc);
	}
	if (!v->nchecks)
		fprintf(out, "  (no rules: every %s flow is dropped)\n", dir_name(d));
	if (v->allowed) {
		char *desc = explain_rule(v->by);
		fprintf(out, "  ALLOWED by %s\n", desc);
		free(desc);
		return;
	}
	fprintf(out, "  DENIED: no rule allows it\n");
	struct fix *fix = explain_fix_edit(e, src, dst, d, v, proto, port);
	if (!fix)
		return;
	for (const char *p = fix->note; *p;) { /* notes first, each line indented */
		size_t n = strcspn(p, "\n");
		fprintf(out, "  %.*s\n", (int)n, p);
		p += n + (p[n] == '\n');
	}
	if (*fix->text)
		fprintf(out, "  to allow it, %s", fix->text);
	fix_free(fix);
}

json_t *report_explain_json(const struct engine *e, const struct endpoint *src, const struct endpoint *dst, int proto,
			    int port, const struct verdict *v, const char *const where[DIR_COUNT])
{
	char *s = explain_endpoint(src), *d = explain_endpoint(dst);
	json_t *o = json_pack("{s:b, s:s, s:s, s:s, s:i, s:b}", "allowed", v->allowed, "source", s, "destination", d,
			      "protocol", proto_name(proto), "port", port, "loopback", v->loopback);
	json_object_set_new(o, "egress", side_json(e, src, dst, DIR_EGRESS, &v->side[DIR_EGRESS], proto, port,
						   where ? where[DIR_EGRESS] : NULL));
	json_object_set_new(o, "ingress", side_json(e, src, dst, DIR_INGRESS, &v->side[DIR_INGRESS], proto, port,
						    where ? where[DIR_INGRESS] : NULL));
	free(s);
	free(d);
	return o;
}

void report_explain_text(FILE *out, const struct engine *e, const struct endpoint *src, const struct endpoint *dst,
			 int proto, int port, const struct verdict *v, const char *const where[DIR_COUNT])
{
	char *s = explain_endpoint(src), *d = explain_endpoint(dst);
	fprintf(out, "%s\n%s -> %s %s/%d\n", v->allowed ? "ALLOWED" : "DENIED", s, d, proto_name(proto), port);
	if (v->loopback)
		fprintf(out, "\na pod talking to itself never crosses the node's forward path: always allowed\n");
	else {
		side_text(out, e, src, dst, DIR_EGRESS, &v->side[DIR_EGRESS], proto, port, where ? where[DIR_EGRESS] : NULL);
		side_text(out, e, src, dst, DIR_INGRESS, &v->side[DIR_INGRESS], proto, port,
			  where ? where[DIR_INGRESS] : NULL);
	}
	free(s);
	free(d);
}

void report_default_port(const struct endpoint *dst, int *proto, int *port)
{
	if (*port)
		return;
	if (dst->pod && dst->pod->spec->nports) {
		const struct cport *c = &dst->pod->spec->ports[0];
		for (uint32_t i = 0; i < dst->pod->spec->nports; i++)
			if (!*proto || dst->pod->spec->ports[i].proto == *proto) {
				c = &dst->pod->spec->ports[i];
				break;
			}
		*port = c->port;
		if (!*proto)
			*proto = c->proto;
		return;
	}
	*port = 80;
}

int report_resolve(const struct engine *e, const char *spec, struct endpoint *out, char **note)
{
	const char *slash = strchr(spec, '/');
	*note = NULL;
	memset(out, 0, sizeof(*out));
	if (!slash || strchr(spec, ':')) {
		if (ip_parse(spec, &out->addr) < 0)
			return -EINVAL;
		out->pod = engine_pod_by_addr(e, out->addr);
		return 0;
	}
	char *ns = strndup(spec, (size_t)(slash - spec));
	const char *name = slash + 1;
	struct pod *p = engine_pod_find(e, ns, name);
	if (!p) {
		/* not a pod name: the pods of application NAME */
		struct vec pods = { 0 };
		size_t count = 0;
		engine_pods(e, &pods);
		for (size_t i = 0; i < pods.n; i++) {
			struct pod *q = pods.v[i];
			istr app = app_of(engine_config(e)->app_label, &q->spec->labels, NULL);
			if (!strcmp(q->spec->ns, ns) && app && !strcmp(app, name) && q->active) {
				if (!p)
					p = q;
				count++;
			}
		}
		vec_free(&pods);
		if (p && count > 1)
			*note = xasprintf("application %s has %zu pods in %s; using %s/%s", name, count, ns, ns,
					  p->spec->name);
	}
	free(ns);
	if (!p)
		return -ENOENT;
	if (!p->spec->naddr) {
		*note = xasprintf("%s has no address (hostNetwork or not running): policies do not apply to it",
				  spec);
		return -EADDRNOTAVAIL;
	}
	out->pod = p;
	out->addr = p->spec->addr[0];
	return 0;
}


/* ---------- objects that could not be read ---------- */

char *report_policy_name(const struct policy_spec *ps)
{
	if (ps->kind == KIND_QUARANTINE)
		return xstrdup("quarantine (a pod that could not be read)");
	return xasprintf("%s %s/%s%s", policy_kind_name(ps->kind), ps->ns, ps->name,
			 ps->unreadable ? " (could not be read)" : ps->valid ? "" : " (invalid)");
}

char *report_policy_problem(const struct policy_spec *ps)
{
	if (!ps->unreadable)
		return xasprintf("%s %s/%s is invalid (isolates its pods, allows nothing): %s",
				 policy_kind_name(ps->kind), ps->ns, ps->name, ps->error ? ps->error : "?");
	struct sbuf t = { 0 };
	if (ps->target.n) {
		sbuf_add(&t, "pods ");
		selector_format(&ps->target, &t);
		for (uint32_t i = 0; i < ps->nalt; i++) { /* the later keys of the application label */
			sbuf_add(&t, " or ");
			selector_format(&ps->alt[i], &t);
		}
		sbuf_addf(&t, " of namespace %s", ps->ns);
	} else {
		sbuf_addf(&t, "every pod of namespace %s", ps->ns);
	}
	const char *dirs = ps->isolates[DIR_INGRESS] && ps->isolates[DIR_EGRESS] ? "ingress and egress"
			   : ps->isolates[DIR_INGRESS]				  ? "ingress"
										  : "egress";
	char *out = xasprintf("%s %s/%s could not be read; enforced fail-closed (isolates %s for %s, allows "
			      "nothing): %s", policy_kind_name(ps->kind), ps->ns, ps->name, t.s, dirs,
			      ps->error ? ps->error : "?");
	sbuf_free(&t);
	return out;
}

char *report_pod_problem(const struct pod_spec *p)
{
	return xasprintf("Pod %s/%s could not be read; enforced fail-closed (no peer selector matches it; on its node "
			 "it is isolated both ways and allowed nothing): %s", p->ns, p->name, p->error ? p->error : "?");
}

char *report_ns_problem(const struct ns_spec *n)
{
	return xasprintf("Namespace %s could not be read; enforced fail-closed (no namespace selector matches it): %s",
			 n->name, n->error ? n->error : "?");
}

static void push_owned(json_t *arr, char *s)
{
	json_array_append_new(arr, json_string(s));
	free(s);
}

void report_problems(const struct engine *e, json_t *arr)
{
	struct engine_unreadable u;
	struct vec v = { 0 };
	engine_unreadable_counts(e, &u);
	size_t invalid = 0;
	for (int k = 0; k < POLICY_KINDS; k++)
		invalid += engine_policy_count(e, (enum policy_kind)k, false);
	if (invalid) { /* (a sorted list of every policy: only when one is in question) */
		engine_policies(e, &v);
		for (size_t i = 0; i < v.n; i++) {
			const struct policy_spec *ps = ((const struct policy *)v.v[i])->spec;
			if (!ps->valid)
				push_owned(arr, report_policy_problem(ps));
		}
		v.n = 0;
	}
	if (u.namespaces) {
		engine_namespaces(e, &v);
		for (size_t i = 0; i < v.n; i++) {
			const struct ns *n = v.v[i];
			if (n->spec && n->spec->unreadable)
				push_owned(arr, report_ns_problem(n->spec));
		}
		v.n = 0;
	}
	if (u.nodes) {
		engine_nodes(e, &v);
		for (size_t i = 0; i < v.n; i++) {
			const struct node_spec *n = v.v[i];
			if (n->unreadable)
				push_owned(arr, xasprintf("Node %s could not be read; enforced fail-closed (the world entity "
							  "matches nothing while a Node is unreadable, the addresses read "
							  "count as a node's): %s",
							  n->name, n->error ? n->error : "?"));
		}
		v.n = 0;
	}
	if (u.pods) {
		engine_pods(e, &v);
		for (size_t i = 0; i < v.n; i++) {
			const struct pod *p = v.v[i];
			if (p->spec->unreadable)
				push_owned(arr, report_pod_problem(p->spec));
		}
	}
	vec_free(&v);
}
