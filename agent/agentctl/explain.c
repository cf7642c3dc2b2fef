/* agentctl explain: why a flow is allowed or dropped; exit 1 when it is
 * dropped (as `kubectl auth can-i` answers no), so that scripts can ask. */
#include <jansson.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "agent/report/report.h"
#include "ctl.h"

static int resolve(struct engine *e, const char *spec, struct endpoint *ep)
{
	char *note = NULL;
	int r = offline_resolve(e, spec, ep, &note);
	if (r == -EINVAL)
		fprintf(stderr, "%s explain: \"%s\" is neither ns/pod, ns/app nor an IP address\n", ctl_prog, spec);
	else if (r == -ENOENT)
		fprintf(stderr, "%s explain: no pod or application \"%s\"\n", ctl_prog, spec);
	if (note)
		fprintf(stderr, "%s explain: %s\n", ctl_prog, note);
	free(note);
	return r;
}

/* Asks the running agent. */
static int live(struct ctl_opts *o, const char *src, const char *dst)
{
	json_t *req = json_pack("{s:s, s:s, s:s, s:i}", "cmd", "explain", "src", src, "dst", dst, "port", o->port);
	if (o->proto)
		json_object_set_new(req, "protocol", json_string(proto_name(o->proto)));
	return ctl_simple(req, o->fmt);
}

static int offline(struct ctl_opts *o, struct engine *e, const char *srcs, const char *dsts)
{
	struct endpoint src, dst;
	struct verdict v;
	int proto = o->proto, port = o->port;
	if (resolve(e, srcs, &src) < 0 || resolve(e, dsts, &dst) < 0)
		return 2;
	report_default_port(&dst, &proto, &port);
	if (!proto)
		proto = PROTO_TCP;
	policy_eval(e, &src, &dst, proto, port, &v);
	if (o->fmt != FMT_TEXT)
		ctl_print_doc(stdout, report_explain_json(e, &src, &dst, proto, port, &v, NULL), o->fmt);
	else
		report_explain_text(stdout, e, &src, &dst, proto, port, &v, NULL);
	int rc = v.allowed ? 0 : 1;
	verdict_free(&v);
	return rc;
}

int cmd_explain(struct ctl_opts *o)
{
	struct ctl_cluster *c = NULL;
	int rc = 2;
	if (ctl_use_cluster(o) && !(c = ctl_cluster_read(o)))
		return 2;
	const char *dflt = c ? ctl_cluster_namespace(c) : o->from ? "default" : NULL;
	char *src = ctl_qualify(o, o->args[0], dflt), *dst = ctl_qualify(o, o->args[1], dflt);
	if (!c && !o->from) {
		rc = live(o, src, dst);
	} else {
		struct engine *e = ctl_engine(o, c, o->from, NULL, o->fmt != FMT_TEXT);
		if (e)
			rc = offline(o, e, src, dst);
		engine_free(e);
	}
	free(src);
	free(dst);
	ctl_cluster_free(c);
	return rc;
}
