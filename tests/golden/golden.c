/* Golden test: manifests in, IR text (or, with --nft, the nftables
 * ruleset as nft text) out, compared with the expected file beside them.
 * CORRAL_UPDATE_GOLDEN=1 rewrites the expected file. --const-hash makes
 * every hash the same (every table one bucket): the text must not change,
 * since equality, never a hash, decides what is the same object. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/dataplane/dataplane.h"
#include "kube/manifest.h"
#include "policy/util-private.h"

int main(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "--const-hash")) {
		util_test_hash_constant();
		argv++, argc--;
	}
	bool nft = argc > 1 && !strcmp(argv[1], "--nft");
	const char *node = NULL;
	if (nft) {
		argv++, argc--;
		if (argc > 2 && !strcmp(argv[1], "--node")) {
			node = argv[2];
			argv += 2, argc -= 2;
		}
	}
	if (argc != 3) {
		fprintf(stderr, "usage: golden [--const-hash] [--nft [--node NAME]] MANIFESTS EXPECTED\n");
		return 2;
	}
	struct manifest_set set = { 0 };
	struct decode_opts o = { DECODE_AGENT, true, "app", "default" };
	struct engine_config cfg = { node, "app", true, NULL, NULL };
	manifest_load_path(&set, argv[1], &o);
	manifest_assign_addresses(&set);
	struct engine *e = engine_new(&cfg);
	manifest_apply(&set, e);
	struct sbuf got = { 0 };
	for (size_t i = 0; i < set.diags.v.n; i++) {
		struct diag *d = set.diags.v.v[i];
		char *base = strrchr(d->file, '/');
		if (base) { /* the expected file must not depend on the build folder */
			memmove(d->file, base + 1, strlen(base));
		}
		char *m = diag_format(d);
		sbuf_addf(&got, "# %s\n", m);
		free(m);
	}
	char *ir;
	if (nft) {
		struct dp *dp = dp_new(NULL);
		struct ruleset *rs = dp_render(dp, e);
		ir = ruleset_format(rs);
		ruleset_free(rs);
		dp_free(dp);
	} else {
		ir = engine_ir_dump(e);
	}
	sbuf_add(&got, ir);
	free(ir);
	engine_free(e);
	manifest_set_free(&set);
	if (getenv("CORRAL_UPDATE_GOLDEN")) {
		FILE *f = fopen(argv[2], "w");
		fputs(got.s, f);
		fclose(f);
		sbuf_free(&got);
		return 0;
	}
	FILE *f = fopen(argv[2], "r");
	static char want[1 << 20];
	size_t n = f ? fread(want, 1, sizeof(want) - 1, f) : 0;
	if (f)
		fclose(f);
	want[n] = 0;
	int rc = strcmp(want, got.s) != 0;
	if (rc) {
		fprintf(stderr, "%s: IR differs from %s\n--- expected\n%s--- got\n%s", argv[1], argv[2], want, got.s);
	}
	sbuf_free(&got);
	return rc;
}
