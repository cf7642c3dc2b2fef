#include <stdio.h>
#include <string.h>

#include "ctl.h"

static const struct {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *help;
} commands[] = {
	{ "check", cmd_check, "check FILE|DIR...  validate manifests; exit 1 on errors" },
	{ "explain", cmd_explain, "explain [--from DIR] SRC DST [--port N] [--protocol P] [-o json]" },
	{ "matrix", cmd_matrix, "matrix --from DIR [--port N] [--protocol P] [-o json]" },
	{ "dump", cmd_dump, "dump [--from DIR [--node NAME]]  the nftables ruleset as nft text (live, or rendered)" },
	{ "status", cmd_status, "status [-o json]                what the running agent holds and did last" },
	{ "drops", cmd_drops, "drops [--follow] [--explain] [-o json]  flows the kernel dropped" },
	{ "dns", cmd_dns, "dns [-o json]                   host names, learned addresses and their expiry" },
};

static void usage(FILE *f)
{
	fprintf(f, "usage: agentctl [--socket PATH] COMMAND [ARGS]\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %s\n", commands[i].help);
	fprintf(f, "\nSRC and DST are ns/pod, ns/app (pods labelled app=NAME) or an IP address;\n"
		   "a live explain also takes a host name as DST (the address the pod's DNS gave).\n"
		   "Without --from, commands ask the running agent (--socket, $CORRAL_SOCKET,\n"
		   "default /run/corral/agent.sock).\n");
}

int main(int argc, char **argv)
{
	while (argc > 2 && !strcmp(argv[1], "--socket")) {
		ctl_socket = argv[2];
		argv += 2;
		argc -= 2;
	}
	if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(argv[1], commands[i].name))
			return commands[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "agentctl: unknown command \"%s\"\n\n", argv[1]);
	usage(stderr);
	return 2;
}
