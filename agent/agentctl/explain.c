#include <jansson.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

struct explain_args {
	const char *from, *src, *dst, *app_label;
	int port, proto;
	bool json;
};

static int parse_args(int argc, char **argv, struct explain_args *a)
{
	a->app_label = "app";
	for (int i = 1; i < argc; i++) {
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(argv[i], "--from") && v)
			a->from = argv[++i];
		else if (!strcmp(argv[i], "--port") && v) {
			if ((a->port = parse_port_arg(argv[++i])) < 0) {
				fprintf(stderr, "agentctl explain: --port %s: not a port number 1-65535\n", v);
				return -1;
			}
		} else if (!strcmp(argv[i], "--protocol") && v) {
			if ((a->proto = parse_protocol_arg(argv[++i])) < 0) {
				fprintf(stderr, "agentctl explain: --protocol %s: must be TCP, UDP or SCTP\n", v);
				return -1;
			}
		} else if (!strcmp(argv[i], "-o") && v)
			a->json = !strcmp(argv[++i], "json");
		else if (!strcmp(argv[i], "--app-label") && v)
			a->app_label = argv[++i];
		else if (argv[i][0] == '-' && argv[i][1]) {
			fprintf(stderr, "agentctl explain: unknown option %s\n", argv[i]);
			return -1;
		} else if (!a->src)
			a->src = argv[i];
		else if (!a->dst)
			a->dst = argv[i];
		else {
			fprintf(stderr, "agentctl explain: unexpected argument %s\n", argv[i]);
			return -1;
		}
	}
	if (!a->from || !a->src || !a->dst) {
		fprintf(stderr, "usage: agentctl explain --from DIR SRC DST [--port N] [--protocol TCP|UDP|SCTP] [-o json]\n"
				"(the live agent form, without --from, comes with the agent)\n");
		return -1;
	}
	return 0;
}

static int resolve(struct engine *e, const char *spec, struct endpoint *ep)
{
	char *note = NULL;
	int r = offline_resolve(e, spec, ep, &note);
	if (r == -EINVAL)
		fprintf(stderr, "agentctl explain: \"%s\" is neither ns/pod, ns/app nor an IP address\n", spec);
	else if (r == -ENOENT)
		fprintf(stderr, "agentctl explain: no pod or application \"%s\"\n", spec);
	if (note)
		fprintf(stderr, "agentctl explain: %s\n", note);
	free(note);
	return r;
}

/* Without --port: the destination's first declared port, else 80/TCP. */
static void default_port(const struct endpoint *dst, struct explain_args *a)
{
	if (a->port)
		return;
	if (dst->pod && dst->pod->spec->nports) {
		const struct cport *c = &dst->pod->spec->ports[0];
		for (uint32_t i = 0; i < dst->pod->spec->nports; i++)
			if (!a->proto || dst->pod->spec->ports[i].proto == a->proto) {
				c = &dst->pod->spec->ports[i];
				break;
			}
		a->port = c->port;
		if (!a->proto)
			a->proto = c->proto;
		return;
	}
	a->port = 80;
}

static json_t *side_json(const struct engine *e, const struct endpoint *src, const struct endpoint *dst, enum dir d,
			 const struct dir_verdict *v, const struct explain_args *a)
{
	json_t *o = json_pack("{s:s, s:b, s:b, s:b}", "direction", dir_name(d), "enforced", v->enforced, "isolated",
			      v->group != NULL, "allowed", v->allowed);
	if (!v->group)
		return o;
	json_t *pols = json_array(), *rules = json_array();
	for (uint32_t i = 0; i < v->group->npol; i++) {
		const struct policy_spec *ps = v->group->pols[i]->spec;
		json_array_append_new(pols, json_pack("{s:s, s:s, s:s, s:b, s:s?}", "kind", policy_kind_name(ps->kind),
						      "namespace", ps->ns, "name", ps->name, "valid", ps->valid,
						      "error", ps->error));
	}
	for (uint32_t i = 0; i < v->nchecks; i++) {
		char *desc = explain_rule(v->checks[i].rule);
		json_array_append_new(rules, json_pack("{s:s, s:b, s:b}", "rule", desc, "peer_matches",
						       v->checks[i].peer_ok, "port_matches", v->checks[i].port_ok));
		free(desc);
	}
	json_object_set_new(o, "policies", pols);
	json_object_set_new(o, "rules", rules);
	if (v->by) {
		char *desc = explain_rule(v->by);
		json_object_set_new(o, "allowed_by", json_string(desc));
		free(desc);
	}
	char *fix = explain_fix(e, src, dst, d, v, a->proto, a->port);
	if (fix)
		json_object_set_new(o, "fix", json_string(fix));
	free(fix);
	return o;
}

static void side_text(const struct engine *e, const struct endpoint *src, const struct endpoint *dst, enum dir d,
		      const struct dir_verdict *v, const struct explain_args *a)
{
	const struct endpoint *self = d == DIR_EGRESS ? src : dst;
	char *who = explain_endpoint(self);
	printf("\n%s at %s: ", dir_name(d), who);
	free(who);
	if (!v->enforced) {
		printf("not a pod the policies apply to: allowed\n");
		return;
	}
	if (!v->group) {
		printf("not isolated (no policy selects it for %s): allowed\n", dir_name(d));
		return;
	}
	printf("isolated by");
	for (uint32_t i = 0; i < v->group->npol; i++) {
		const struct policy_spec *ps = v->group->pols[i]->spec;
		printf("%s %s %s/%s%s", i ? "," : "", policy_kind_name(ps->kind), ps->ns, ps->name,
		       ps->valid ? "" : " (INVALID: allows nothing)");
	}
	printf("\n");
	for (uint32_t i = 0; i < v->nchecks; i++) {
		char *desc = explain_rule(v->checks[i].rule);
		printf("  %s %s\n      -> %s\n", v->checks[i].rule == v->by ? "*" : "-", desc,
		       explain_miss(&v->checks[i]));
		free(desc);
	}
	if (!v->nchecks)
		printf("  (no rules: every %s flow is dropped)\n", dir_name(d));
	if (v->allowed) {
		char *desc = explain_rule(v->by);
		printf("  ALLOWED by %s\n", desc);
		free(desc);
		return;
	}
	printf("  DENIED: no rule allows it\n");
	char *fix = explain_fix(e, src, dst, d, v, a->proto, a->port);
	if (fix) {
		printf("  to allow it, %s", fix);
		free(fix);
	}
}

int cmd_explain(int argc, char **argv)
{
	struct explain_args a = { 0 };
	struct endpoint src, dst;
	struct verdict v;
	if (parse_args(argc, argv, &a) < 0)
		return 2;
	struct engine *e = offline_load(a.from, NULL, a.app_label, a.json);
	if (!e)
		return 2;
	if (resolve(e, a.src, &src) < 0 || resolve(e, a.dst, &dst) < 0) {
		engine_free(e);
		return 2;
	}
	default_port(&dst, &a);
	if (!a.proto)
		a.proto = PROTO_TCP;
	policy_eval(e, &src, &dst, a.proto, a.port, &v);
	char *s = explain_endpoint(&src), *d = explain_endpoint(&dst);
	if (a.json) {
		json_t *o = json_pack("{s:b, s:s, s:s, s:s, s:i, s:b}", "allowed", v.allowed, "source", s, "destination",
				      d, "protocol", proto_name(a.proto), "port", a.port, "loopback", v.loopback);
		json_object_set_new(o, "egress", side_json(e, &src, &dst, DIR_EGRESS, &v.side[DIR_EGRESS], &a));
		json_object_set_new(o, "ingress", side_json(e, &src, &dst, DIR_INGRESS, &v.side[DIR_INGRESS], &a));
		json_dumpf(o, stdout, JSON_INDENT(2));
		putchar('\n');
		json_decref(o);
	} else {
		printf("%s\n%s -> %s %s/%d\n", v.allowed ? "ALLOWED" : "DENIED", s, d, proto_name(a.proto), a.port);
		if (v.loopback)
			printf("\na pod talking to itself never crosses the node's forward path: always allowed\n");
		else {
			side_text(e, &src, &dst, DIR_EGRESS, &v.side[DIR_EGRESS], &a);
			side_text(e, &src, &dst, DIR_INGRESS, &v.side[DIR_INGRESS], &a);
		}
	}
	free(s);
	free(d);
	verdict_free(&v);
	engine_free(e);
	return 0;
}
