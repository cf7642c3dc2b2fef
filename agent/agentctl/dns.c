/* agentctl dns: what DNS-aware egress learned (names, addresses, how long
 * each has left) and which groups of pods go through the DNS proxy. */
#include <string.h>

#include "ctl.h"

int cmd_dns(int argc, char **argv)
{
	bool json = false;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-o") && i + 1 < argc)
			json = !strcmp(argv[++i], "json");
		else {
			fprintf(stderr, "usage: agentctl [--socket PATH] dns [-o json]\n");
			return 2;
		}
	}
	return ctl_simple(json_pack("{s:s}", "cmd", "dns"), json);
}
