#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "agent/report/report.h"
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
	manifest_resolve_duplicates(&set);
	if (!quiet)
		print_diags(stderr, &set.diags);
	else if (set.unreadable) /* even -o json: what is missing is said */
		fprintf(stderr, "agentctl: %zu manifest files could not be read and are left out (agentctl check %s "
				"names them)\n",
			set.unreadable, dir);
	manifest_assign_addresses(&set);
	struct engine *e = engine_new(&cfg);
	manifest_apply(&set, e);
	manifest_set_free(&set);
	return e;
}

int offline_resolve(struct engine *e, const char *spec, struct endpoint *out, char **note)
{
	return report_resolve(e, spec, out, note);
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
