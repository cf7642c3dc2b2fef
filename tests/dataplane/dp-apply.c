/* dp-apply DIR NODE: compiles a manifests folder for one node ("-": every
 * pod counts as local) and applies
 * it to the current network namespace through the netlink applier, then
 * prints the transaction's figures. A helper for the data-plane tests. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/dataplane/dataplane.h"
#include "agent/nl/nft.h"
#include "kube/manifest.h"

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: dp-apply DIR NODE\n");
		return 2;
	}
	struct manifest_set set = { 0 };
	struct decode_opts o = { DECODE_AGENT, false, "app", "default" };
	struct engine_config cfg = { strcmp(argv[2], "-") ? argv[2] : NULL, "app", true, NULL, NULL };
	if (manifest_load_path(&set, argv[1], &o) < 0) {
		fprintf(stderr, "dp-apply: cannot load %s\n", argv[1]);
		return 2;
	}
	manifest_assign_addresses(&set);
	struct engine *e = engine_new(&cfg);
	manifest_apply(&set, e);
	manifest_set_free(&set);
	struct nft_sock *s = nft_sock_open();
	if (!s) {
		perror("dp-apply: netlink");
		return 1;
	}
	struct dp *dp = dp_new(NULL);
	struct dp_stats st;
	char *err = NULL;
	int rc = dp_sync(dp, e, s, false, &st, &err);
	if (rc < 0)
		fprintf(stderr, "dp-apply: %s\n", err);
	else
		printf("full=%d msgs=%u elements=%llu sets=%u chains=%u apply_ms=%.3f\n", st.full, st.msgs,
		       (unsigned long long)st.elems_added, st.sets_added, st.chains_written, st.apply_ms);
	free(err);
	dp_free(dp);
	nft_sock_close(s);
	engine_free(e);
	return rc < 0 ? 1 : 0;
}
