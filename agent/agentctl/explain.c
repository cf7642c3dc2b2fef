#include <jansson.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "agent/report/report.h"
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
	if (!a->src || !a->dst) {
		fprintf(stderr, "usage: agentctl explain [--from DIR] SRC DST [--port N] [--protocol TCP|UDP|SCTP] [-o json]\n"
				"(without --from it asks the running agent)\n");
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

int cmd_explain(int argc, char **argv)
{
	struct explain_args a = { 0 };
	struct endpoint src, dst;
	struct verdict v;
	if (parse_args(argc, argv, &a) < 0)
		return 2;
	if (!a.from) {
		json_t *req = json_pack("{s:s, s:s, s:s, s:i}", "cmd", "explain", "src", a.src, "dst", a.dst, "port", a.port);
		if (a.proto)
			json_object_set_new(req, "protocol", json_string(proto_name(a.proto)));
		return ctl_simple(req, a.json);
	}
	struct engine *e = offline_load(a.from, NULL, a.app_label, a.json);
	if (!e)
		return 2;
	if (resolve(e, a.src, &src) < 0 || resolve(e, a.dst, &dst) < 0) {
		engine_free(e);
		return 2;
	}
	report_default_port(&dst, &a.proto, &a.port);
	if (!a.proto)
		a.proto = PROTO_TCP;
	policy_eval(e, &src, &dst, a.proto, a.port, &v);
	if (a.json) {
		json_t *o = report_explain_json(e, &src, &dst, a.proto, a.port, &v, NULL);
		json_dumpf(o, stdout, JSON_INDENT(2));
		putchar('\n');
		json_decref(o);
	} else {
		report_explain_text(stdout, e, &src, &dst, a.proto, a.port, &v, NULL);
	}
	verdict_free(&v);
	engine_free(e);
	return 0;
}
