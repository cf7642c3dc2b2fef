/* agentctl drops: flows the kernel dropped, named by pod and by the
 * policies that isolated the dropping pod; --explain adds why. */
#include <string.h>

#include "ctl.h"

struct opts {
	enum ctl_fmt fmt;
	bool explain;
};

static int print_drop(json_t *o, void *arg)
{
	struct opts *op = arg;
	if (json_is_true(json_object_get(o, "end")))
		return -1;
	if (op->fmt == FMT_JSON) { /* one line each: a stream */
		json_dumpf(o, stdout, JSON_COMPACT);
		putchar('\n');
	} else if (op->fmt == FMT_YAML) { /* one document each */
		fputs("---\n", stdout);
		ctl_yaml_write(stdout, o);
	} else {
		printf("%s\n", json_string_value(json_object_get(o, "text")) ?: "?");
		const char *ex = json_string_value(json_object_get(o, "explain"));
		if (op->explain && ex) {
			/* indented under the drop */
			for (const char *p = ex; *p;) {
				const char *nl = strchr(p, '\n');
				int n = nl ? (int)(nl - p) : (int)strlen(p);
				printf("    %.*s\n", n, p);
				p += n + (nl != NULL);
			}
		}
	}
	fflush(stdout);
	return 0;
}

int cmd_drops(struct ctl_opts *o)
{
	struct opts op = { o->fmt, o->explain };
	json_t *req = json_pack("{s:s, s:b, s:b}", "cmd", "drops", "follow", o->follow, "explain", o->explain);
	int rc = ctl_request(req, print_drop, &op);
	json_decref(req);
	return rc;
}
