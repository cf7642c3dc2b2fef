#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

int cmd_check(int argc, char **argv)
{
	struct manifest_set set = { 0 };
	struct decode_opts o = { DECODE_STRICT, true, "app", "default" };
	bool json = false;
	int npaths = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-o") && i + 1 < argc) {
			json = !strcmp(argv[++i], "json");
		} else if (!strcmp(argv[i], "--app-label") && i + 1 < argc) {
			o.app_label = argv[++i];
		} else {
			manifest_load_path(&set, argv[i], &o);
			npaths++;
		}
	}
	manifest_resolve_duplicates(&set); /* a kind/ns/name in two files is an error naming both */
	if (!npaths) {
		fprintf(stderr, "usage: agentctl check FILE|DIR... [-o json]\n");
		manifest_set_free(&set);
		return 2;
	}
	if (json) {
		json_t *arr = json_array();
		for (size_t i = 0; i < set.diags.v.n; i++) {
			struct diag *d = set.diags.v.v[i];
			json_array_append_new(arr, json_pack("{s:s, s:s?, s:s?, s:s?, s:s, s:s}", "file", d->file, "kind",
							     d->kind, "object", d->obj, "path", d->path, "severity",
							     d->warning ? "warning" : "error", "message", d->msg));
		}
		json_t *out = json_pack("{s:b, s:I, s:I, s:o}", "ok", set.diags.errors == 0, "objects",
					(json_int_t)set.objects, "files", (json_int_t)set.files, "diagnostics", arr);
		json_dumpf(out, stdout, JSON_INDENT(2));
		putchar('\n');
		json_decref(out);
	} else {
		print_diags(stdout, &set.diags);
		printf("%zu objects in %zu files: %zu errors, %zu warnings\n", set.objects, set.files, set.diags.errors,
		       set.diags.warnings);
	}
	int rc = set.diags.errors ? 1 : 0;
	manifest_set_free(&set);
	return rc;
}
