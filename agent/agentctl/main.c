/* agentctl's entry point. The same binary is the kubectl plugin when it runs as
 * kubectl-corral (a link), and answers kubectl's completion requests as
 * kubectl_complete-corral. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

static const char *base(const char *p)
{
	const char *s = strrchr(p, '/');
	return s ? s + 1 : p;
}

/* Flags written before the command (kubectl's habit: "-n team explain a
 * b") move after it: argv becomes COMMAND FLAGS... ARGS... */
static int find_command(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (a[0] != '-' || !a[1])
			return i;
		if (ctl_flag_needs_next(a))
			i++; /* its value */
	}
	return -1;
}

int main(int argc, char **argv)
{
	struct ctl_opts o = { 0 };
	const char *me = base(argv[0]);
	if (!strcmp(me, "kubectl_complete-corral")) /* kubectl corral <TAB> */
		return ctl_complete(argc - 1, argv + 1);
	o.plugin = !strcmp(me, "kubectl-corral");
	if (o.plugin)
		ctl_prog = "kubectl corral";
	if (argc > 1 && !strcmp(argv[1], "__complete"))
		return ctl_complete(argc - 2, argv + 2);
	if (argc > 1 && !strcmp(argv[1], "--version"))
		return cmd_version(&o);
	/* a leading --socket PATH holds for every command (as it always has) */
	while (argc > 2 && !strcmp(argv[1], "--socket")) {
		ctl_socket = argv[2];
		argv[2] = argv[0];
		argv += 2;
		argc -= 2;
	}
	int k = find_command(argc, argv);
	if (k < 0) {
		bool help = argc > 1 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"));
		ctl_usage(help ? stdout : stderr);
		return help ? 0 : 2;
	}
	const struct ctl_cmd *c = ctl_cmd_find(argv[k]);
	if (!c) {
		fprintf(stderr, "%s: unknown command \"%s\"\n\n", ctl_prog, argv[k]);
		ctl_usage(stderr);
		return 2;
	}
	/* COMMAND, then the flags given before it, then the rest */
	char **av = xcalloc((size_t)argc + 1, sizeof(char *));
	int n = 0;
	av[n++] = argv[k];
	for (int i = 1; i < argc; i++)
		if (i != k)
			av[n++] = argv[i];
	int rc = ctl_parse(c, n, av, &o);
	if (!rc && !o.help) {
		if (o.socket)
			ctl_socket = o.socket;
		rc = c->fn(&o);
	}
	free(o.args);
	free(av);
	return rc;
}
