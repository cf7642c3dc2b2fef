/* agentctl dump: the nftables ruleset as nft text. Offline (--from DIR),
 * for one node's view (--node NAME; without it every pod counts as local). */
#include <stdlib.h>
#include <string.h>

#include "agent/dataplane/dataplane.h"
#include "ctl.h"

static const char usage[] = "usage: agentctl dump [--from DIR [--node NAME] [--table NAME] [--app-label KEY]]\n";

int cmd_dump(int argc, char **argv)
{
	const char *from = NULL, *node = NULL, *app_label = "app";
	struct dp_config cfg = { 0 };
	for (int i = 1; i < argc; i++) {
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(argv[i], "--from") && v)
			from = argv[++i];
		else if (!strcmp(argv[i], "--node") && v)
			node = argv[++i];
		else if (!strcmp(argv[i], "--table") && v)
			cfg.table = argv[++i];
		else if (!strcmp(argv[i], "--app-label") && v)
			app_label = argv[++i];
		else {
			fprintf(stderr, "agentctl dump: bad argument %s\n%s", argv[i], usage);
			return 2;
		}
	}
	if (!from) /* the running agent's applied ruleset */
		return ctl_simple(json_pack("{s:s}", "cmd", "dump"), false);
	struct engine *e = offline_load(from, node, app_label, true);
	if (!e)
		return 2;
	struct dp *dp = dp_new(&cfg);
	struct ruleset *rs = dp_render(dp, e);
	char *text = ruleset_format(rs);
	fputs(text, stdout);
	free(text);
	ruleset_free(rs);
	dp_free(dp);
	engine_free(e);
	return 0;
}
