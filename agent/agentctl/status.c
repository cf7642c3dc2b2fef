/* agentctl status: what the running agent holds and did last. */
#include <string.h>

#include "ctl.h"

int cmd_status(int argc, char **argv)
{
	bool json = false;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-o") && i + 1 < argc)
			json = !strcmp(argv[++i], "json");
		else {
			fprintf(stderr, "usage: agentctl [--socket PATH] status [-o json]\n");
			return 2;
		}
	}
	return ctl_simple(json_pack("{s:s}", "cmd", "status"), json);
}
