/* agentctl check: validate manifests (files, folders, standard input) and,
 * with the cluster, the objects the cluster holds, before anything is
 * applied. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "policy/lint.h"

int ctl_load_stdin(struct manifest_set *set, const struct decode_opts *o)
{
	struct sbuf b = { 0 };
	char chunk[65536];
	size_t n;
	manifest_limits_default(&set->lim);
	while ((n = fread(chunk, 1, sizeof(chunk), stdin)) > 0) {
		if (b.n + n > set->lim.max_file_bytes) {
			diags_add(&set->diags, false, "-", NULL, NULL, NULL,
				  "standard input: more than the limit of %zu bytes per file: refused",
				  set->lim.max_file_bytes);
			set->unreadable++;
			sbuf_free(&b);
			return -1;
		}
		sbuf_addn(&b, chunk, n);
	}
	int rc = manifest_load_buffer(set, "-", b.s ? b.s : "", b.n, o);
	sbuf_free(&b);
	return rc;
}

static json_t *diag_json(const struct diag *d)
{
	return json_pack("{s:s, s:s?, s:s?, s:s?, s:s, s:s}", "file", d->file, "kind", d->kind, "object", d->obj,
			 "path", d->path, "severity", d->warning ? "warning" : "error", "message", d->msg);
}

int cmd_check(struct ctl_opts *o)
{
	struct manifest_set set = { 0 };
	struct decode_opts d = { DECODE_STRICT, true, o->app_label ? o->app_label : APP_LABELS_DEFAULT, "default" };
	struct ctl_cluster *c = NULL;
	if (!o->nargs && !ctl_use_cluster(o)) {
		fprintf(stderr, "usage: %s check FILE|DIR|-... [flags], or the cluster (--kubeconfig, --context, "
				"--cluster)  (%s check --help)\n", ctl_prog, ctl_prog);
		return 2;
	}
	if (ctl_use_cluster(o) && !(c = ctl_cluster_read(o)))
		return 2;
	for (int i = 0; i < o->nargs; i++) {
		if (!strcmp(o->args[i], "-"))
			ctl_load_stdin(&set, &d);
		else
			manifest_load_path(&set, o->args[i], &d);
	}
	manifest_resolve_duplicates(&set); /* a kind/ns/name in two files is an error naming both */
	/* with pods in view (from the files or the cluster): selectors that
	 * select nothing, a silent fail-open */
	struct diags lint = { 0 };
	struct engine *e = NULL;
	if (c)
		e = ctl_engine(o, c, o->nargs == 1 && strcmp(o->args[0], "-") ? o->args[0] : NULL, NULL, true);
	else if (set.pods.n) {
		struct engine_config cfg = { NULL, d.app_label, true, o->pod_cidrs, o->apiserver };
		e = engine_new(&cfg);
		manifest_assign_addresses(&set);
		manifest_apply(&set, e);
	}
	if (e)
		policy_lint(e, &lint);
	engine_free(e);
	const struct diags *dd[3] = { &set.diags, c ? ctl_cluster_diags(c) : NULL, &lint };
	size_t errors = set.diags.errors + (dd[1] ? dd[1]->errors : 0);
	size_t warnings = set.diags.warnings + (dd[1] ? dd[1]->warnings : 0) + lint.warnings;
	size_t objects = set.objects + (c ? ctl_cluster_objects(c) : 0);
	if (o->fmt != FMT_TEXT) {
		json_t *arr = json_array();
		for (int k = 0; k < 3; k++)
			for (size_t i = 0; dd[k] && i < dd[k]->v.n; i++)
				json_array_append_new(arr, diag_json(dd[k]->v.v[i]));
		json_t *out = json_pack("{s:b, s:I, s:I, s:o}", "ok", errors == 0, "objects", (json_int_t)objects,
					"files", (json_int_t)set.files, "diagnostics", arr);
		ctl_print_doc(stdout, out, o->fmt);
	} else {
		for (int k = 0; k < 3; k++)
			if (dd[k])
				print_diags(stdout, dd[k]);
		printf("%zu objects in %zu files%s: %zu errors, %zu warnings\n", objects, set.files,
		       c ? " and the cluster" : "", errors, warnings);
	}
	manifest_set_free(&set);
	diags_free(&lint);
	ctl_cluster_free(c);
	return errors ? 1 : 0;
}
