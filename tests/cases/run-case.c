/* Runs one upstream-style NetworkPolicy case (a file in tests/cases) through
 * the same evaluator as explain.
 *
 * The model is the upstream e2e one: namespaces x, y, z (label ns=NAME),
 * pods a, b, c in each (label pod=NAME), serving 80 and 81 over TCP, UDP
 * and SCTP on container ports named serve-PORT-PROTO. Addresses:
 * 10.1.N.P and fd00::N:P (N, P counted from 1), so cases may name them in
 * ipBlocks. Each step applies or deletes objects, then checks truth
 * tables. After every step the incrementally maintained IR must equal the
 * IR compiled from scratch from the same objects.
 *
 * With --kernel SCRIPT the same case also runs through the kernel: a
 * cluster of network namespaces (SCRIPT builds it), one engine and data
 * plane per node, every step applied incrementally over netlink, and each
 * truth table observed with real TCP, UDP and SCTP packets; the
 * evaluator behind explain must agree with what the packets did.
 *
 * With --const-hash every hash is one constant (every table one bucket),
 * to prove that equality, never a hash, decides identity.
 *
 * With --fixes, after every step, explain's suggestion for every denied
 * flow must round-trip (roundtrip.h); --fixes DIR does the same for a
 * folder of manifests (deploy/examples), probing every declared port.
 *
 * With --write-steps DIR, the objects after each step are written to
 * DIR/step-N/objects.json (a List; step-base: before the first step), and
 * the probes of the step to DIR/probes-N.json, for tools that take
 * folders (agentctl diff). */
#include <jansson.h>
#include <stdio.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>

#include "agent/dataplane/dataplane.h"
#include "kube/manifest.h"
#include "tests/dataplane/kcluster.h"
#include "kube/yaml.h"
#include "policy/eval.h"
#include "policy/util-private.h"
#include "tests/cases/roundtrip.h"

static const char *nss[] = { "x", "y", "z" };
static const char *podn[] = { "a", "b", "c" };
#define NPODS 9

struct store {
	struct vec keys;  /* char* kind/ns/name */
	struct vec docs;  /* json_t* */
};

static char *obj_key(json_t *o)
{
	json_t *m = json_object_get(o, "metadata");
	const char *ns = json_string_value(json_object_get(m, "namespace"));
	return xasprintf("%s/%s/%s", json_string_value(json_object_get(o, "kind")), ns ? ns : "default",
			 json_string_value(json_object_get(m, "name")));
}

static void store_put(struct store *s, json_t *o)
{
	char *k = obj_key(o);
	for (size_t i = 0; i < s->keys.n; i++)
		if (!strcmp(s->keys.v[i], k)) {
			json_decref(s->docs.v[i]);
			s->docs.v[i] = json_incref(o);
			free(k);
			return;
		}
	vec_push(&s->keys, k);
	vec_push(&s->docs, json_incref(o));
}

static void store_del(struct store *s, const char *k)
{
	for (size_t i = 0; i < s->keys.n; i++)
		if (!strcmp(s->keys.v[i], k)) {
			free(s->keys.v[i]);
			json_decref(s->docs.v[i]);
			s->keys.v[i] = s->keys.v[--s->keys.n];
			s->docs.v[i] = s->docs.v[--s->docs.n];
			return;
		}
}

static json_t *base_pod(int n, int p)
{
	static const char *protos[] = { "TCP", "UDP", "SCTP" }, *lower[] = { "tcp", "udp", "sctp" };
	json_t *conts = json_array();
	for (int port = 80; port <= 81; port++)
		for (int k = 0; k < 3; k++) {
			char name[32];
			snprintf(name, sizeof(name), "serve-%d-%s", port, lower[k]);
			json_array_append_new(conts, json_pack("{s:s, s:[{s:s, s:i, s:s}]}", "name", name, "ports",
							       "name", name, "containerPort", port, "protocol",
							       protos[k]));
		}
	char v4[32], v6[32];
	snprintf(v4, sizeof(v4), "10.1.%d.%d", n + 1, p + 1);
	snprintf(v6, sizeof(v6), "fd00::%d:%d", n + 1, p + 1);
	return json_pack("{s:s, s:s, s:{s:s, s:s, s:{s:s}}, s:{s:s, s:o}, s:{s:s, s:[{s:s},{s:s}]}}", "apiVersion",
			 "v1", "kind", "Pod", "metadata", "name", podn[p], "namespace", nss[n], "labels", "pod", podn[p],
			 "spec", "nodeName", (n * 3 + p) % 2 ? "node-2" : "node-1", "containers", conts, "status",
			 "phase", "Running", "podIPs", "ip", v4, "ip", v6);
}

static void load_base(struct store *s)
{
	for (int n = 0; n < 3; n++) {
		json_t *o = json_pack("{s:s, s:s, s:{s:s, s:{s:s}}}", "apiVersion", "v1", "kind", "Namespace", "metadata",
				      "name", nss[n], "labels", "ns", nss[n]);
		store_put(s, o);
		json_decref(o);
		for (int p = 0; p < 3; p++) {
			o = base_pod(n, p);
			store_put(s, o);
			json_decref(o);
		}
	}
}

static const struct decode_opts opts = { DECODE_STRICT, false, "app", "default" };
static struct kcluster kc;
static bool kernel;
static struct engine *node_eng[KC_NODES];
static struct dp *dps[KC_NODES];
static struct nft_sock *socks[KC_NODES];

static int apply_doc(struct engine *e, json_t *o, const char *file)
{
	struct diags d = { 0 };
	struct decoded dec;
	int rc = kube_decode(o, file, &opts, &d, &dec);
	for (size_t i = 0; i < d.v.n; i++) {
		char *m = diag_format(d.v.v[i]);
		fprintf(stderr, "  decode: %s\n", m);
		free(m);
	}
	diags_free(&d);
	if (rc < 0)
		return rc;
	if (dec.type == OBJ_NAMESPACE)
		engine_ns_upsert(e, dec.ns);
	else if (dec.type == OBJ_POD)
		engine_pod_upsert(e, dec.pod);
	else if (dec.type == OBJ_POLICY)
		engine_policy_upsert(e, dec.pol);
	return 0;
}

/* The probes of a step: each (protocol, port, family) it expects. */
static size_t step_probes(json_t *ex, struct probe *pr, size_t max)
{
	size_t n = 0, k;
	json_t *x;
	json_t *list = json_is_object(ex) ? json_pack("[O]", ex) : json_incref(ex);
	json_array_foreach(list, k, x) {
		int proto = proto_parse(json_string_value(json_object_get(x, "protocol")) ?: "TCP");
		if (n < max && proto > 0)
			pr[n++] = (struct probe){ proto, (int)json_integer_value(json_object_get(x, "port")),
						  json_is_true(json_object_get(x, "ipv6")) };
	}
	json_decref(list);
	return n;
}

static int fixes_step(struct store *s, json_t *ex, const char *file, size_t step)
{
	struct probe pr[16];
	struct rt_stats st = { 0 };
	size_t n = step_probes(ex, pr, ARRAY_SIZE(pr));
	char *what = xasprintf("%s step %zu", file, step);
	int failed = roundtrip_check(&s->docs, pr, n, what, &st);
	printf("  step %zu: %zu denied flows, %zu suggestions round-trip%s\n", step, st.denied, st.fixed,
	       st.skipped ? " (quarantined flows skipped)" : "");
	free(what);
	return failed;
}

/* Every manifest below dir as documents; the probes: every port a pod
 * declares (80/TCP if none), over IPv4 and IPv6. */
static int fixes_dir(const char *dir)
{
	struct vec files = { 0 }, docs = { 0 };
	struct probe pr[64];
	size_t npr = 0;
	int failed = 0;
	struct manifest_limits lim = { 0 };
	manifest_limits_default(&lim);
	manifest_files(dir, &lim, &files, NULL, NULL);
	for (size_t i = 0; i < files.n; i++) {
		const struct manifest_file *mf = files.v[i];
		size_t len;
		char *err = NULL, *text = manifest_read_file(mf->path, lim.max_file_bytes, &len, &err);
		if (!text || kube_yaml_parse(text, len, &docs, &err) < 0) {
			fprintf(stderr, "%s: %s\n", mf->path, err);
			failed++;
		}
		free(err);
		free(text);
	}
	manifest_files_free(&files);
	struct manifest_set set = { 0 };
	struct decode_opts o = { DECODE_AGENT, true, "app", "default" };
	manifest_load_path(&set, dir, &o);
	for (size_t i = 0; i < set.pods.n; i++) {
		const struct pod_spec *p = set.pods.v[i];
		for (uint32_t j = 0; j < p->nports; j++) {
			struct probe x = { p->ports[j].proto, p->ports[j].port, false };
			size_t k = 0;
			while (k < npr && (pr[k].proto != x.proto || pr[k].port != x.port))
				k++;
			if (k == npr && npr < ARRAY_SIZE(pr))
				pr[npr++] = x;
		}
	}
	manifest_set_free(&set);
	if (!npr)
		pr[npr++] = (struct probe){ PROTO_TCP, 80, false };
	for (size_t k = 0, n = npr; k < n && npr < ARRAY_SIZE(pr); k++) /* and over IPv6 */
		pr[npr++] = (struct probe){ pr[k].proto, pr[k].port, true };
	struct rt_stats st = { 0 };
	failed += roundtrip_check(&docs, pr, npr, dir, &st);
	printf("%s: %zu probes, %zu denied flows, %zu suggestions round-trip%s: %s\n", dir, npr, st.denied, st.fixed,
	       st.skipped ? " (quarantined flows skipped)" : "", failed ? "FAILED" : "ok");
	for (size_t i = 0; i < docs.n; i++)
		json_decref(docs.v[i]);
	vec_free(&docs);
	return failed ? 1 : 0;
}

static int write_step(const char *dir, const char *step, const struct store *s, json_t *ex)
{
	char *sub = xasprintf("%s/step-%s", dir, step), *objs = xasprintf("%s/objects.json", sub),
	     *probes = xasprintf("%s/probes-%s.json", dir, step);
	json_t *items = json_array(), *list = json_array(), *x;
	size_t k;
	for (size_t i = 0; i < s->docs.n; i++)
		json_array_append(items, s->docs.v[i]);
	json_t *doc = json_pack("{s:s, s:s, s:o}", "apiVersion", "v1", "kind", "List", "items", items);
	json_t *exl = json_is_object(ex) ? json_pack("[O]", ex) : json_incref(ex);
	json_array_foreach(exl, k, x) json_array_append_new(list, json_pack("{s:O?, s:O, s:b}", "protocol",
		json_object_get(x, "protocol"), "port", json_object_get(x, "port"), "ipv6",
		json_is_true(json_object_get(x, "ipv6"))));
	int rc = mkdir(sub, 0755) < 0 || json_dump_file(doc, objs, JSON_INDENT(1)) < 0 ||
			 json_dump_file(list, probes, JSON_INDENT(1)) < 0 ? -1 : 0;
	if (rc < 0)
		fprintf(stderr, "cannot write %s\n", sub);
	json_decref(doc);
	json_decref(list);
	json_decref(exl);
	free(sub);
	free(objs);
	free(probes);
	return rc;
}

static struct engine *fresh(struct store *s, const char *file, const char *node)
{
	struct engine_config cfg = { node, "app", true, NULL, NULL };
	struct engine *e = engine_new(&cfg);
	/* namespaces, pods, then policies, as the loader does */
	for (int pass = 0; pass < 3; pass++)
		for (size_t i = 0; i < s->docs.n; i++) {
			const char *k = json_string_value(json_object_get(s->docs.v[i], "kind"));
			int want = !strcmp(k, "Namespace") ? 0 : !strcmp(k, "Pod") ? 1 : 2;
			if (want == pass)
				apply_doc(e, s->docs.v[i], file);
		}
	return e;
}

static bool glob_match(const char *pat, const char *ns, const char *pod)
{
	char pns[64], ppod[64];
	if (!strcmp(pat, "*"))
		return true;
	if (sscanf(pat, "%63[^/]/%63s", pns, ppod) != 2)
		return false;
	return (!strcmp(pns, "*") || !strcmp(pns, ns)) && (!strcmp(ppod, "*") || !strcmp(ppod, pod));
}

/* expected[from][to] from "default" and "set" entries, or a "table". */
static int build_expected(json_t *ex, bool want[NPODS][NPODS])
{
	bool def = !json_is_false(json_object_get(ex, "default"));
	for (int i = 0; i < NPODS; i++)
		for (int j = 0; j < NPODS; j++)
			want[i][j] = def;
	json_t *table = json_object_get(ex, "table"), *set = json_object_get(ex, "set"), *x;
	size_t k;
	if (json_is_string(table)) {
		const char *t = json_string_value(table);
		int n = 0;
		for (; *t; t++)
			if (*t == '.' || *t == 'X') {
				if (n >= NPODS * NPODS)
					return -1;
				want[n / NPODS][n % NPODS] = *t == '.';
				n++;
			}
		if (n != NPODS * NPODS)
			return -1;
	}
	json_array_foreach(set, k, x) {
		const char *from = json_string_value(json_object_get(x, "from"));
		const char *to = json_string_value(json_object_get(x, "to"));
		bool allowed = json_is_true(json_object_get(x, "allowed"));
		for (int i = 0; i < NPODS; i++)
			for (int j = 0; j < NPODS; j++)
				if ((!from || glob_match(from, nss[i / 3], podn[i % 3])) &&
				    (!to || glob_match(to, nss[j / 3], podn[j % 3])))
					want[i][j] = allowed;
	}
	return 0;
}

static void print_table(const char *title, bool m[NPODS][NPODS], bool other[NPODS][NPODS])
{
	fprintf(stderr, "  %s\n       ", title);
	for (int j = 0; j < NPODS; j++)
		fprintf(stderr, " %s/%s", nss[j / 3], podn[j % 3]);
	fprintf(stderr, "\n");
	for (int i = 0; i < NPODS; i++) {
		fprintf(stderr, "    %s/%s", nss[i / 3], podn[i % 3]);
		for (int j = 0; j < NPODS; j++)
			fprintf(stderr, "   %c%c", m[i][j] ? '.' : 'X', i != j && other[i][j] != m[i][j] ? '!' : ' ');
		fprintf(stderr, "\n");
	}
}

static int check(struct engine *e, json_t *ex, int step)
{
	bool want[NPODS][NPODS], got[NPODS][NPODS];
	int proto = proto_parse(json_string_value(json_object_get(ex, "protocol")) ?: "TCP");
	int port = (int)json_integer_value(json_object_get(ex, "port"));
	int bad = 0;
	bool v6 = json_is_true(json_object_get(ex, "ipv6"));
	if (build_expected(ex, want) < 0 || proto < 0 || !port) {
		fprintf(stderr, "step %d: malformed expectation\n", step);
		return 1;
	}
	bool seen[KC_PODS][KC_PODS];
	if (kernel)
		kc_probe(&kc, proto, port, v6, kc_probe_timeout(), seen);
	for (int i = 0; i < NPODS; i++)
		for (int j = 0; j < NPODS; j++) {
			struct pod *s = engine_pod_find(e, nss[i / 3], podn[i % 3]);
			struct pod *d = engine_pod_find(e, nss[j / 3], podn[j % 3]);
			if (!s || !d) {
				fprintf(stderr, "step %d: pod missing from the model\n", step);
				return 1;
			}
			struct endpoint src = { s, s->spec->addr[v6 && s->spec->naddr > 1] };
			struct endpoint dst = { d, d->spec->addr[v6 && d->spec->naddr > 1] };
			struct verdict v;
			policy_eval(e, &src, &dst, proto, port, &v);
			got[i][j] = v.allowed;
			verdict_free(&v);
			if (kernel && i != j && seen[i][j] != v.allowed) {
				fprintf(stderr, "step %d: %s/%d%s %s/%s -> %s/%s: kernel %s, explain says %s\n", step,
					proto_name(proto), port, v6 ? " IPv6" : "", nss[i / 3], podn[i % 3], nss[j / 3],
					podn[j % 3], seen[i][j] ? "allowed" : "dropped", v.allowed ? "allowed" : "dropped");
				got[i][j] = seen[i][j];
			}
			if (i != j && got[i][j] != want[i][j]) /* loopback ignored, as upstream */
				bad++;
		}
	if (bad) {
		fprintf(stderr, "step %d: %s/%d%s: %d pairs differ (! marks them)%s\n", step, proto_name(proto), port,
			v6 ? " IPv6" : "", bad, kernel ? ", observed with packets" : "");
		print_table("expected", want, got);
		print_table("observed", got, want);
	}
	return bad ? 1 : 0;
}

/* Every engine sees every change: the offline one (explain) and, with
 * --kernel, one per node. */
static void each_delete(struct engine *e, const char *kind, const char *ns, const char *name)
{
	struct engine *all[1 + KC_NODES] = { e, node_eng[0], node_eng[1] };
	for (int k = 0; k < 1 + KC_NODES; k++) {
		if (!all[k])
			continue;
		if (!strcmp(kind, "Pod"))
			engine_pod_delete(all[k], ns, name);
		else if (!strcmp(kind, "Namespace"))
			engine_ns_delete(all[k], name);
		else
			engine_policy_delete(all[k], strcmp(kind, "AccessPolicy") ? KIND_NETPOL : KIND_ACCESS, ns, name);
	}
}

static int each_apply(struct engine *e, json_t *x, const char *file)
{
	int rc = apply_doc(e, x, file);
	for (int k = 0; k < KC_NODES; k++)
		if (node_eng[k])
			apply_doc(node_eng[k], x, file);
	return rc;
}

static int sync_nodes(int step)
{
	int failed = 0;
	for (int k = 0; kernel && k < KC_NODES; k++) {
		struct dp_stats st;
		char *err = NULL;
		if (dp_sync(dps[k], node_eng[k], socks[k], false, &st, &err) < 0) {
			fprintf(stderr, "step %d: node-%d: %s\n", step, k + 1, err);
			failed++;
		} else {
			printf("  step %d node-%d: %s, %u messages, +%llu/-%llu elements, %u chains written\n", step, k + 1,
			       st.full ? "full" : "diff", st.msgs, (unsigned long long)st.elems_added,
			       (unsigned long long)st.elems_deleted, st.chains_written);
		}
		free(err);
	}
	return failed;
}

static bool const_hash;

static int kernel_up(const char *script, const char *file, struct store *s)
{
	const char *base = strrchr(file, '/') ? strrchr(file, '/') + 1 : file;
	char prefix[16];
	/* one prefix per case and variant: ctest runs them side by side */
	snprintf(prefix, sizeof(prefix), "crc%s%.2s", const_hash ? "h" : "", base);
	if (kc_up(&kc, script, prefix) < 0)
		return -1;
	for (int k = 0; k < KC_NODES; k++) {
		char node[16];
		snprintf(node, sizeof(node), "node-%d", k + 1);
		node_eng[k] = fresh(s, file, node);
		dps[k] = dp_new(NULL);
		if (!(socks[k] = kc_nft_open(&kc, k)))
			return -1;
	}
	return sync_nodes(-1) ? -1 : 0;
}

static void kernel_down(void)
{
	for (int k = 0; k < KC_NODES; k++) {
		engine_free(node_eng[k]);
		dp_free(dps[k]);
		nft_sock_close(socks[k]);
	}
	kc_down(&kc);
}

int main(int argc, char **argv)
{
	struct vec docs = { 0 };
	struct store s = { 0 };
	char *err = NULL;
	int failed = 0;
	const char *script = NULL, *steps_dir = NULL;
	bool fixes = false;
	if (argc > 1 && !strcmp(argv[1], "--const-hash")) {
		util_test_hash_constant();
		const_hash = true;
		argv++, argc--;
	}
	if (argc > 2 && !strcmp(argv[1], "--write-steps")) {
		steps_dir = argv[2];
		argv += 2, argc -= 2;
	}
	if (argc > 1 && !strcmp(argv[1], "--fixes")) {
		fixes = true;
		argv++, argc--;
		struct stat sb;
		if (argc == 2 && stat(argv[1], &sb) == 0 && S_ISDIR(sb.st_mode))
			return fixes_dir(argv[1]);
	}
	if (argc == 4 && !strcmp(argv[1], "--kernel")) {
		kernel = true;
		script = argv[2];
		argv += 2;
		argc -= 2;
	}
	if (argc != 2) {
		fprintf(stderr, "usage: run-case [--const-hash] [--write-steps DIR] [--fixes] [--kernel CLUSTER-SCRIPT] FILE|DIR\n");
		return 2;
	}
	FILE *f = fopen(argv[1], "rb");
	if (!f) {
		perror(argv[1]);
		return 2;
	}
	static char buf[1 << 20];
	size_t len = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	if (kube_yaml_parse(buf, len, &docs, &err) < 0 || docs.n != 1) {
		fprintf(stderr, "%s: %s\n", argv[1], err ? err : "expected one document");
		return 2;
	}
	json_t *c = docs.v[0], *steps = json_object_get(c, "steps"), *step;
	size_t i;
	printf("case: %s%s\n", json_string_value(json_object_get(c, "name")), kernel ? " (kernel, real packets)" : "");
	load_base(&s);
	struct engine *e = fresh(&s, argv[1], NULL);
	if (kernel && kernel_up(script, argv[1], &s) < 0) {
		fprintf(stderr, "cannot set up the namespace cluster\n");
		kernel_down();
		return 1;
	}
	if (steps_dir && write_step(steps_dir, "base", &s, json_object_get(json_array_get(steps, 0), "expect")) < 0)
		failed++;
	json_array_foreach(steps, i, step) {
		json_t *x, *ex = json_object_get(step, "expect");
		size_t k;
		/* deletes first, then applies: a step may replace an object */
		json_array_foreach(json_object_get(step, "delete"), k, x) {
			const char *key = json_string_value(x);
			char kind[64], ns[64], name[128];
			if (sscanf(key, "%63[^/]/%63[^/]/%127s", kind, ns, name) != 3)
				continue;
			each_delete(e, kind, ns, name);
			store_del(&s, key);
		}
		json_array_foreach(json_object_get(step, "apply"), k, x) {
			if (each_apply(e, x, argv[1]) < 0)
				failed++;
			store_put(&s, x);
		}
		failed += sync_nodes((int)i);
		struct engine *full = fresh(&s, argv[1], NULL);
		char *a = engine_ir_dump(e), *b = engine_ir_dump(full);
		if (strcmp(a, b)) {
			fprintf(stderr, "step %zu: incremental IR differs from a fresh compile\n--- incremental\n%s--- fresh\n%s",
				i, a, b);
			failed++;
		}
		free(a);
		free(b);
		engine_free(full);
		if (json_is_object(ex))
			failed += check(e, ex, (int)i);
		json_array_foreach(ex, k, x)
			failed += check(e, x, (int)i);
		if (fixes)
			failed += fixes_step(&s, ex, argv[1], i);
		char name[32];
		snprintf(name, sizeof(name), "%zu", i);
		if (steps_dir && write_step(steps_dir, name, &s, ex) < 0)
			failed++;
	}
	printf("%s: %s\n", json_string_value(json_object_get(c, "name")), failed ? "FAILED" : "ok");
	if (kernel)
		kernel_down();
	engine_free(e);
	for (size_t k = 0; k < s.docs.n; k++) {
		json_decref(s.docs.v[k]);
		free(s.keys.v[k]);
	}
	vec_free(&s.docs);
	vec_free(&s.keys);
	json_decref(c);
	vec_free(&docs);
	return failed ? 1 : 0;
}
