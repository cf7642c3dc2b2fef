/* agentctl drops: flows the kernel dropped, named by pod and by the
 * policies that isolated the dropping pod; --explain adds why. */
#include <string.h>

#include "ctl.h"

struct opts {
	bool json, explain;
};

static int print_drop(json_t *o, void *arg)
{
	struct opts *op = arg;
	if (json_is_true(json_object_get(o, "end")))
		return -1;
	if (op->json) {
		json_dumpf(o, stdout, JSON_COMPACT);
		putchar('\n');
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

int cmd_drops(int argc, char **argv)
{
	struct opts op = { false, false };
	bool follow = false;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-o") && i + 1 < argc)
			op.json = !strcmp(argv[++i], "json");
		else if (!strcmp(argv[i], "--follow") || !strcmp(argv[i], "-f"))
			follow = true;
		else if (!strcmp(argv[i], "--explain"))
			op.explain = true;
		else {
			fprintf(stderr, "usage: agentctl [--socket PATH] drops [--follow] [--explain] [-o json]\n");
			return 2;
		}
	}
	json_t *req = json_pack("{s:s, s:b, s:b}", "cmd", "drops", "follow", follow, "explain", op.explain);
	int rc = ctl_request(req, print_drop, &op);
	json_decref(req);
	return rc;
}
