#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

void print_diags(FILE *f, const struct diags *d)
{
	for (size_t i = 0; i < d->v.n; i++) {
		char *s = diag_format(d->v.v[i]);
		fprintf(f, "%s\n", s);
		free(s);
	}
}

struct engine *offline_load(const char *dir, const char *node, const char *app_label, bool quiet)
{
	struct manifest_set set = { 0 };
	struct decode_opts o = { DECODE_AGENT, true, app_label, "default" };
	struct engine_config cfg = { node, app_label, true };
	if (manifest_load_path(&set, dir, &o) < 0) {
		print_diags(stderr, &set.diags);
		manifest_set_free(&set);
		return NULL;
	}
	if (!quiet)
		print_diags(stderr, &set.diags);
	manifest_assign_addresses(&set);
	struct engine *e = engine_new(&cfg);
	manifest_apply(&set, e);
	manifest_set_free(&set);
	return e;
}

int offline_resolve(struct engine *e, const char *spec, struct endpoint *out, char **note)
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
			istr app = labelset_get(&q->spec->labels, engine_config(e)->app_label);
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

int parse_protocol_arg(const char *s)
{
	char up[8] = { 0 };
	for (size_t i = 0; s[i] && i < sizeof(up) - 1; i++)
		up[i] = (char)(s[i] >= 'a' && s[i] <= 'z' ? s[i] - 32 : s[i]);
	return strlen(s) < sizeof(up) ? proto_parse(up) : -1;
}

int parse_port_arg(const char *s)
{
	char *end;
	long v = strtol(s, &end, 10);
	return (*s && !*end && v >= 1 && v <= 65535) ? (int)v : -1;
}
