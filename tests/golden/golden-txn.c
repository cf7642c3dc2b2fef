/* Golden test of the plan stage (pfctl regress style, root-free): a file of
 * steps, each the whole desired state of a small cluster, applied to the
 * engine incrementally (only the objects that changed, as the agent does);
 * after each step the transaction the data plane plans is printed, one
 * operation a line, and the whole compared with the expected .txn file
 * (a unified diff on mismatch; CORRAL_UPDATE_GOLDEN=1 rewrites it).
 *   golden-txn STEPS.yaml EXPECTED.txn
 * Steps are separated by lines "#=== NAME". The node is n1. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/dataplane/dataplane.h"
#include "kube/manifest.h"
#include "kube/yaml.h"

static char *obj_key(json_t *o)
{
	json_t *md = json_object_get(o, "metadata");
	const char *ns = json_string_value(json_object_get(md, "namespace"));
	return xasprintf("%s %s/%s", json_string_value(json_object_get(o, "kind")), ns ? ns : "",
			 json_string_value(json_object_get(md, "name")));
}

/* The step's objects by key (kind ns/name). */
static json_t *step_objects(const char *text, size_t len)
{
	struct vec docs = { 0 };
	char *err = NULL;
	json_t *m = json_object();
	if (kube_yaml_parse(text, len, &docs, &err) < 0) {
		fprintf(stderr, "golden-txn: %s\n", err);
		exit(2);
	}
	for (size_t i = 0; i < docs.n; i++) {
		char *k = obj_key(docs.v[i]);
		json_object_set_new(m, k, docs.v[i]);
		free(k);
	}
	vec_free(&docs);
	return m;
}

static void apply_one(struct engine *e, json_t *o)
{
	struct manifest_set set = { 0 };
	struct decode_opts opts = { DECODE_AGENT, false, "app", "default" };
	char *text = json_dumps(o, JSON_COMPACT);
	manifest_load_buffer(&set, "step", text, strlen(text), &opts);
	if (set.diags.errors) {
		fprintf(stderr, "golden-txn: %s does not decode\n", text);
		exit(2);
	}
	manifest_apply(&set, e);
	manifest_set_free(&set);
	free(text);
}

static void delete_one(struct engine *e, json_t *o)
{
	json_t *md = json_object_get(o, "metadata");
	const char *kind = json_string_value(json_object_get(o, "kind"));
	const char *ns = json_string_value(json_object_get(md, "namespace"));
	const char *name = json_string_value(json_object_get(md, "name"));
	if (!strcmp(kind, "Pod"))
		engine_pod_delete(e, ns, name);
	else if (!strcmp(kind, "Namespace"))
		engine_ns_delete(e, name);
	else if (!strcmp(kind, "Node"))
		engine_node_delete(e, name);
	else
		engine_policy_delete(e, strcmp(kind, "AccessPolicy") ? KIND_NETPOL : KIND_ACCESS, ns, name);
}

/* Only what changed between two steps goes to the engine. */
static void apply_step(struct engine *e, json_t *old, json_t *new)
{
	const char *k;
	json_t *o;
	json_object_foreach(old, k, o) if (!json_object_get(new, k)) delete_one(e, o);
	json_object_foreach(new, k, o) if (!json_equal(o, json_object_get(old, k))) apply_one(e, o);
}

static char *read_all(const char *path, size_t *len)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return NULL;
	struct sbuf b = { 0 };
	char buf[4096];
	size_t n;
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		sbuf_addn(&b, buf, n);
	fclose(f);
	*len = b.n;
	return b.s ? b.s : xstrdup("");
}

static int compare(const char *expected_path, const char *got)
{
	size_t n;
	char *want = read_all(expected_path, &n);
	if (want && !strcmp(want, got)) {
		free(want);
		return 0;
	}
	free(want);
	char tmp[] = "/tmp/golden-txn-XXXXXX";
	int fd = mkstemp(tmp);
	if (fd < 0 || write(fd, got, strlen(got)) < 0)
		return 1;
	close(fd);
	char *cmd = xasprintf("diff -u '%s' '%s' >&2", expected_path, tmp);
	fprintf(stderr, "golden-txn: the planned transactions differ from %s:\n", expected_path);
	if (system(cmd)) {
	}
	free(cmd);
	unlink(tmp);
	return 1;
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: golden-txn STEPS.yaml EXPECTED.txn\n");
		return 2;
	}
	size_t len;
	char *text = read_all(argv[1], &len);
	if (!text) {
		perror(argv[1]);
		return 2;
	}
	struct engine_config cfg = { "n1", "app", true, NULL, NULL };
	struct engine *e = engine_new(&cfg);
	struct dp *dp = dp_new(NULL);
	struct sbuf got = { 0 };
	json_t *prev = json_object();
	char *p = strstr(text, "#=== ");
	for (int step = 0; p; step++) {
		char *nl = strchr(p, '\n'), *next = nl ? strstr(nl, "\n#=== ") : NULL;
		size_t body_len = next ? (size_t)(next + 1 - nl) : strlen(nl ? nl : "");
		sbuf_addf(&got, "%.*s\n", (int)(nl ? nl - p : (long)strlen(p)), p);
		json_t *cur = step_objects(nl ? nl : "", body_len);
		apply_step(e, prev, cur);
		json_decref(prev);
		prev = cur;
		dp_sync_dry(dp, e, step == 0, &got);
		p = next ? next + 1 : NULL;
	}
	json_decref(prev);
	dp_free(dp);
	engine_free(e);
	free(text);
	int rc;
	if (getenv("CORRAL_UPDATE_GOLDEN")) {
		FILE *f = fopen(argv[2], "w");
		fputs(got.s, f);
		fclose(f);
		rc = 0;
	} else {
		rc = compare(argv[2], got.s);
	}
	sbuf_free(&got);
	return rc;
}
