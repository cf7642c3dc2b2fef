/* agentctl dump: the nftables ruleset as nft text: the running agent's, or
 * rendered from manifests or the cluster for one node's view (--node;
 * without it every pod counts as local). */
#include <stdlib.h>
#include <string.h>

#include "agent/dataplane/dataplane.h"
#include "ctl.h"

static int str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Whether a pod is on node; if none is, says which nodes have pods. */
static bool node_known(const struct engine *e, const char *node)
{
	struct vec pods = { 0 }, nodes = { 0 };
	bool found = false;
	engine_pods(e, &pods);
	for (size_t i = 0; i < pods.n && !found; i++) {
		istr n = ((struct pod *)pods.v[i])->spec->node;
		if (!n)
			continue;
		found = !strcmp(n, node);
		size_t k = 0;
		while (k < nodes.n && strcmp(nodes.v[k], n))
			k++;
		if (k == nodes.n)
			vec_push(&nodes, (void *)n);
	}
	if (!found) {
		vec_sort(&nodes, str_cmp);
		fprintf(stderr, "%s dump: no pod is on node \"%s\"", ctl_prog, node);
		for (size_t k = 0; k < nodes.n; k++)
			fprintf(stderr, "%s%s", k ? ", " : " (nodes with pods: ", (const char *)nodes.v[k]);
		fprintf(stderr, "%s\n", nodes.n ? ")" : "; no pod names a node");
	}
	vec_free(&pods);
	vec_free(&nodes);
	return found;
}

int cmd_dump(struct ctl_opts *o)
{
	struct ctl_cluster *c = NULL;
	struct dp_config cfg = { .table = o->table };
	if (!o->from && !ctl_use_cluster(o)) { /* the running agent's applied ruleset */
		if (o->node)
			fprintf(stderr, "%s dump: --node needs --from or the cluster; the agent shows its own node\n",
				ctl_prog);
		return o->node ? 2 : ctl_simple(json_pack("{s:s}", "cmd", "dump"), FMT_TEXT);
	}
	if (ctl_use_cluster(o) && !(c = ctl_cluster_read(o)))
		return 2;
	struct engine *e = ctl_engine(o, c, o->from, o->node, true);
	int rc = 2;
	if (e && (!o->node || node_known(e, o->node))) {
		struct dp *dp = dp_new(&cfg);
		struct ruleset *rs = dp_render(dp, e);
		char *text = ruleset_format(rs);
		fputs(text, stdout);
		free(text);
		ruleset_free(rs);
		dp_free(dp);
		rc = 0;
	}
	engine_free(e);
	ctl_cluster_free(c);
	return rc;
}
