/* agentctl's commands, one row each (wireguard-tools' style): name,
 * arguments, what it does, its flags and output formats, and the rest of
 * its --help. */
#include <stdio.h>

#include "corral-version.h"
#include "ctl.h"

const char *ctl_prog = "agentctl";

#define SOURCE_FLAGS { CF_FROM, NULL }, { CF_KUBECONFIG, NULL }, { CF_CONTEXT, NULL }, { CF_CLUSTER, NULL }
#define PORT_FLAGS { CF_PORT, NULL }, { CF_PROTOCOL, NULL }
#define ENTITY_FLAGS { CF_POD_CIDRS, NULL }, { CF_APISERVER, NULL }

const struct ctl_cmd ctl_commands[] = {
	{ "check", "[FILE|DIR|-]...",
	  "Validate manifests before they are applied: every problem named by file, object, field and reason. "
	  "With the cluster, its objects are checked too (those corral cannot read are enforced fail-closed).",
	  cmd_check, 0, -1, FMT_TEXT | FMT_JSON | FMT_YAML,
	  { { CF_KUBECONFIG, NULL }, { CF_CONTEXT, NULL }, { CF_CLUSTER, NULL }, { CF_APP_LABEL, NULL }, ENTITY_FLAGS,
	    { CF_OUTPUT, NULL }, { CF_HELP, NULL } },
	  "FILE or DIR \"-\" reads manifests from standard input.\n"
	  "Exit status: 0 no errors (warnings allowed), 1 errors found, 2 nothing to check or an input that "
	  "cannot be read." },
	{ "explain", "SRC DST",
	  "Why traffic from SRC to DST is allowed or dropped: per direction, which policies isolate each pod, "
	  "which rule allows the flow or why none does, and the smallest change that would allow it.",
	  cmd_explain, 2, 2, FMT_TEXT | FMT_JSON | FMT_YAML,
	  { SOURCE_FLAGS, { CF_NAMESPACE, NULL },
	    { CF_PORT, "destination port (default: the destination's first declared port, else 80)" },
	    { CF_PROTOCOL, NULL }, { CF_OUTPUT, NULL }, { CF_APP_LABEL, NULL }, ENTITY_FLAGS, { CF_SOCKET, NULL }, { CF_HELP, NULL } },
	  "SRC and DST are ns/pod, ns/app (the pods of an application), a name in the namespace of -n, or an IP "
	  "address; the running agent also takes a host name as DST (the address the pod's DNS gave). Without "
	  "--from or the cluster, the running agent answers (and names the chain and counter in the kernel).\n"
	  "Exit status: 0 ALLOWED, 1 DENIED, 2 the flow could not be explained (unknown pod, no agent, bad input)." },
	{ "matrix", "",
	  "Who can talk to whom on one port: rows are sources, columns destinations, every address family the two "
	  "pods share.",
	  cmd_matrix, 0, 0, FMT_TEXT | FMT_JSON | FMT_YAML | FMT_MD | FMT_CSV | FMT_DOT | FMT_SVG,
	  { SOURCE_FLAGS, { CF_NAMESPACE, "only the pods of namespace NS (default: every namespace)" },
	    { CF_PORT, "destination port (default 80; for dot and svg, each destination's declared ports)" },
	    { CF_PROTOCOL, NULL }, { CF_OUTPUT, NULL }, { CF_APP_LABEL, NULL }, ENTITY_FLAGS, { CF_HELP, NULL } },
	  "Cells: . allowed, X denied, 4 or 6 allowed over IPv4 or IPv6 only, - no address family in common. "
	  "dot and svg draw the allowed flows as a graph grouped by namespace, each edge labelled with its "
	  "ports (svg needs Graphviz's dot).\n"
	  "Exit status: 0, or 2 when there is no pod to show." },
	{ "diff", "",
	  "What a change does to connectivity: every pod pair and port whose verdict differs between two sets of "
	  "objects, with the policies that caused it; pods on one side only are absent on the other.",
	  cmd_diff, 0, 0, FMT_TEXT | FMT_JSON | FMT_YAML | FMT_MD | FMT_CSV | FMT_DOT | FMT_SVG,
	  { { CF_FROM, "the side before: a folder of manifests (with the cluster: applied on top of it; omitted: "
		       "the cluster as it is)" },
	    { CF_TO, "the side after, likewise" }, { CF_KUBECONFIG, NULL }, { CF_CONTEXT, NULL }, { CF_CLUSTER, NULL },
	    { CF_NAMESPACE, "only pairs with a pod of namespace NS (default: every namespace)" },
	    { CF_PORT, "only this port (default: every port, as ranges)" },
	    { CF_PROTOCOL, "only this protocol (default: TCP, UDP and SCTP)" }, { CF_OUTPUT, NULL },
	    { CF_FAIL_ON, NULL }, { CF_APP_LABEL, NULL }, ENTITY_FLAGS, { CF_HELP, NULL } },
	  "Review a change before it is applied:\n"
	  "  agentctl diff --kubeconfig ~/.kube/config --to pr/manifests/ --fail-on added\n"
	  "Exit status: 0, 1 when --fail-on matches a change, 2 when a side cannot be read." },
	{ "dump", "",
	  "The nftables ruleset as nft text: the running agent's, or rendered from --from or the cluster for one "
	  "node.",
	  cmd_dump, 0, 0, FMT_TEXT,
	  { SOURCE_FLAGS, { CF_NODE, NULL }, { CF_TABLE, NULL }, { CF_APP_LABEL, NULL }, ENTITY_FLAGS, { CF_SOCKET, NULL },
	    { CF_HELP, NULL } },
	  "Exit status: 0, 2 when no pod is on --node (a misspelt node) or the source cannot be read." },
	{ "status", "", "What the running agent holds and did last: sync, objects, errors.", cmd_status, 0, 0,
	  FMT_TEXT | FMT_JSON | FMT_YAML, { { CF_OUTPUT, NULL }, { CF_SOCKET, NULL }, { CF_HELP, NULL } }, NULL },
	{ "drops", "", "Flows the kernel dropped on this node, named by pod and by the policies that isolated them.",
	  cmd_drops, 0, 0, FMT_TEXT | FMT_JSON | FMT_YAML,
	  { { CF_FOLLOW, NULL }, { CF_EXPLAIN, NULL }, { CF_OUTPUT, NULL }, { CF_SOCKET, NULL }, { CF_HELP, NULL } },
	  NULL },
	{ "dns", "", "What DNS-aware egress learned on this node: host names, their addresses and expiry, and the "
		     "groups of pods whose DNS goes through the agent.",
	  cmd_dns, 0, 0, FMT_TEXT | FMT_JSON | FMT_YAML, { { CF_OUTPUT, NULL }, { CF_SOCKET, NULL }, { CF_HELP, NULL } },
	  NULL },
	{ "version", "", "Print the version.", cmd_version, 0, 0, FMT_TEXT, { { CF_HELP, NULL } }, NULL },
	{ "help", "[COMMAND]", "Help on a command.", cmd_help, 0, 1, FMT_TEXT, { { CF_HELP, NULL } }, NULL },
};
const size_t ctl_ncommands = sizeof(ctl_commands) / sizeof(ctl_commands[0]);

int cmd_version(struct ctl_opts *o)
{
	printf("%s %s\n", o->plugin ? "kubectl-corral" : "agentctl", CORRAL_VERSION);
	return 0;
}

int cmd_help(struct ctl_opts *o)
{
	const struct ctl_cmd *c = o->nargs ? ctl_cmd_find(o->args[0]) : NULL;
	if (o->nargs && !c) {
		fprintf(stderr, "%s: unknown command \"%s\"\n", ctl_prog, o->args[0]);
		return 2;
	}
	if (c)
		ctl_cmd_help(stdout, c);
	else
		ctl_usage(stdout);
	return 0;
}

