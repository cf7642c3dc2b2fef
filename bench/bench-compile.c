/* Compile benchmark: full compile of a synthetic cluster for one node,
 * then the cost of single events. One JSON line per figure.
 *   corral-bench [--size small|medium|large] [--seed N] [--events N] [--render 1]
 *     (--render 1: the ruleset of the compiled IR rendered once, timed; with
 *     bench/callgrind.sh, the instructions of compile, render and events)
 *   corral-bench --size S [--seed N] --write FILE   (the cluster as a manifest)
 *   corral-bench --excepts N   (one ipBlock with N excepts: decode and compile)
 * CORRAL_BENCH_TRACE=1 (with --render 1): a line on stderr for each pod
 * event's sync: its time, the peer sets it made dirty (members, ranges,
 * whether marked full, addresses touched) and the elements it wrote;
 * first a count of the live peer sets that are interval sets, and of
 * those that mix pods with ranges. CORRAL_BENCH_SYNC_EVENTS=N: N pod
 * events timed with their sync (default the smaller of --events and 200).
 * CORRAL_BENCH_MIXED=1: before those events, a NetworkPolicy of ns-0 (a
 * namespace with a pod on node-0) admitting an ipBlock with an except and
 * app=app-3 from every namespace: one peer set mixing ranges with about
 * an eighth of the pods, as a cluster that writes both in one rule has.
 * CORRAL_BENCH_MERGED=1: such a peer set rendered as one interval set
 * merging pods and ranges, as before they were two sets (dp_split_mixed),
 * to compare in one build. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gen.h"
#include "agent/dataplane/dp-private.h"
#include "kube/decode.h"
#include "policy/eval.h"

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static long status_kb(const char *field)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long v = -1;
	size_t n = strlen(field);
	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, field, n))
			v = strtol(line + n + 1, NULL, 10);
	if (f)
		fclose(f);
	return v;
}

static void emit(const char *size, const char *metric, double v, const char *unit)
{
	printf("{\"bench\": \"compile\", \"size\": \"%s\", \"metric\": \"%s\", \"value\": %.4g, \"unit\": \"%s\"}\n",
	       size, metric, v, unit);
	fflush(stdout);
}

/* CORRAL_BENCH_TRACE: the live peer sets, as the render will see them */
static void trace_peersets(const struct engine *e)
{
	struct vec all = { 0 };
	size_t interval = 0, mixed = 0, full = 0;
	engine_peersets(e, &all);
	for (size_t i = 0; i < all.n; i++) {
		const struct ir_peerset *ps = all.v[i];
		bool iv = ps->ranges.n || ps->entities;
		interval += iv;
		mixed += iv && ptrset_count(&ps->members);
		full += ps->full;
	}
	fprintf(stderr, "peer sets %zu: interval sets %zu, of which with member pods %zu; marked full %zu\n", all.n,
		interval, mixed, full);
	vec_free(&all);
}

/* CORRAL_BENCH_TRACE: the dirty peer sets of one event, before its sync */
static void trace_dirty(const struct engine *e, int k)
{
	struct vec all = { 0 };
	engine_peersets(e, &all);
	fprintf(stderr, "event %d:", k);
	for (size_t i = 0; i < all.n; i++) {
		const struct ir_peerset *ps = all.v[i];
		if (ps->dirty)
			fprintf(stderr, " p%u[members %zu ranges %zu%s touched %u]", ps->id, ptrset_count(&ps->members),
				ps->ranges.n, ps->full ? " full" : "", ps->ntouched);
	}
	vec_free(&all);
}

static int dbl_cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* One NetworkPolicy whose ipBlock 10.0.0.0/8 has n /28 excepts, written in
 * a scrambled order (as a generated list would be), decoded then compiled. */
static int bench_excepts(int n)
{
	json_t *ex = json_array();
	for (uint32_t i = 0; i < (uint32_t)n; i++) {
		uint32_t s = (i * 2654435761u) & 0xfffff; /* odd multiplier: distinct below 2^20 */
		char c[32];
		snprintf(c, sizeof(c), "10.%u.%u.%u/28", s >> 12 & 255, s >> 4 & 255, (s & 15) << 4);
		json_array_append_new(ex, json_string(c));
	}
	json_t *o = json_pack("{s:s, s:s, s:{s:s, s:s}, s:{s:{}, s:[{s:[{s:{s:s, s:o}}]}]}}", "apiVersion",
			      "networking.k8s.io/v1", "kind", "NetworkPolicy", "metadata", "name", "big", "namespace", "x",
			      "spec", "podSelector", "egress", "to", "ipBlock", "cidr", "10.0.0.0/8", "except", ex);
	struct decode_opts opts = { DECODE_AGENT, false, "app", "default" };
	struct diags d = { 0 };
	struct decoded dec;
	double t0 = now_ms();
	int rc = kube_decode(o, "bench", &opts, &d, &dec);
	double t1 = now_ms();
	json_decref(o);
	if (rc < 0 || d.errors) {
		fprintf(stderr, "corral-bench: the ipBlock did not decode\n");
		return 1;
	}
	size_t ranges = dec.pol->rules[DIR_EGRESS][0].peers[0].ranges.n;
	struct engine_config cfg = { NULL, "app", true, NULL, NULL };
	struct engine *e = engine_new(&cfg);
	double t2 = now_ms();
	engine_policy_upsert(e, dec.pol);
	double t3 = now_ms();
	char size[32];
	snprintf(size, sizeof(size), "excepts-%d", n);
	emit(size, "ipblock_decode_ms", t1 - t0, "ms");
	emit(size, "ipblock_compile_ms", t3 - t2, "ms");
	emit(size, "ipblock_ranges", (double)ranges, "count");
	engine_free(e);
	diags_free(&d);
	return 0;
}

int main(int argc, char **argv)
{
	const char *size = "small";
	uint64_t seed = 42;
	int events = 1000, render = 0;
	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--size"))
			size = argv[i + 1];
		else if (!strcmp(argv[i], "--seed"))
			seed = strtoull(argv[i + 1], NULL, 10);
		else if (!strcmp(argv[i], "--events"))
			events = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--render"))
			render = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--excepts"))
			return bench_excepts(atoi(argv[i + 1]));
		else if (!strcmp(argv[i], "--write")) {
			/* the cluster as a manifest file, for the agent benchmarks */
			const struct gen_size *w = gen_size_find(size);
			return w && gen_cluster_write(w, seed, argv[i + 1]) == 0 ? 0 : 1;
		}
	}
	const struct gen_size *sz = gen_size_find(size);
	if (!sz) {
		fprintf(stderr, "corral-bench: unknown size %s (small, medium, large)\n", size);
		return 2;
	}
	struct manifest_set set = { 0 };
	gen_cluster(sz, seed, &set);
	if (set.diags.errors) {
		fprintf(stderr, "corral-bench: the generator made invalid objects\n");
		return 1;
	}
	long rss0 = status_kb("VmRSS:");
	struct engine_config cfg = { "node-0", "app", true, NULL, NULL };
	struct engine *e = engine_new(&cfg);
	double t0 = now_ms();
	manifest_apply(&set, e);
	double t1 = now_ms();
	long rss1 = status_kb("VmRSS:");
	struct vec groups = { 0 }, pss = { 0 };
	engine_groups(e, &groups);
	engine_peersets(e, &pss);
	emit(size, "full_compile_ms", t1 - t0, "ms");
	emit(size, "engine_rss_mb", (rss1 - rss0) / 1024.0, "MB");
	emit(size, "groups", (double)groups.n, "count");
	emit(size, "peer_sets", (double)pss.n, "count");
	size_t live = 0;
	for (size_t i = 0; i < pss.n; i++)
		live += ((const struct ir_peerset *)pss.v[i])->live > 0;
	emit(size, "peer_sets_live", (double)live, "count");
	if (render) { /* the whole ruleset, as the first full sync renders it */
		struct dp *dp = dp_new(NULL);
		double r0 = now_ms();
		struct ruleset *rs = dp_render(dp, e);
		emit(size, "render_ms", now_ms() - r0, "ms");
		ruleset_free(rs);
		dp_free(dp);
	}
	engine_take_dirty(e, NULL, NULL);

	/* one pod label change (app label flips and back), timed each */
	double *lat = xcalloc((size_t)(events > 0 ? events : 1), sizeof(double));
	uint64_t r = seed * 7 + 1;
	uint64_t evals0 = engine_stats(e)->term_evals;
	for (int k = 0; k < events; k++) {
		r ^= r << 13, r ^= r >> 7, r ^= r << 17;
		int i = (int)(r % (uint64_t)sz->pods);
		struct pod_spec *p = gen_pod(sz, seed, i, (int)((r >> 20) % 8));
		double a = now_ms();
		engine_pod_upsert(e, p);
		engine_take_dirty(e, NULL, NULL);
		lat[k] = now_ms() - a;
	}
	qsort(lat, (size_t)events, sizeof(double), dbl_cmp);
	emit(size, "pod_label_change_median_us", lat[events / 2] * 1e3, "us");
	emit(size, "pod_label_change_p99_us", lat[events * 99 / 100] * 1e3, "us");
	emit(size, "pod_label_change_term_evals", (double)(engine_stats(e)->term_evals - evals0) / events, "per event");
	if (render) { /* what the agent's transaction after one pod event costs
			 before the kernel: render (reusing what is not dirty)
			 and the plan against the previous ruleset */
		struct dp *dp = dp_new(NULL);
		struct dp_stats st;
		char *err = NULL;
		if (getenv("CORRAL_BENCH_MERGED") && atoi(getenv("CORRAL_BENCH_MERGED")))
			dp_split_mixed = false;
		if (getenv("CORRAL_BENCH_MIXED") && atoi(getenv("CORRAL_BENCH_MIXED"))) {
			static const char y[] = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
						"metadata: {name: bench-mixed, namespace: ns-0}\nspec:\n"
						"  podSelector: {}\n  ingress:\n"
						"  - from:\n"
						"    - ipBlock: {cidr: 192.168.0.0/16, except: [192.168.1.0/24]}\n"
						"    - {namespaceSelector: {}, podSelector: {matchLabels: {app: app-3}}}\n";
			struct manifest_set ms = { 0 };
			struct decode_opts o = { DECODE_AGENT, false, "app", "default" };
			manifest_load_buffer(&ms, "bench-mixed.yaml", y, strlen(y), &o);
			if (ms.diags.errors) {
				fprintf(stderr, "corral-bench: the mixed policy did not decode\n");
				return 1;
			}
			manifest_apply(&ms, e);
			manifest_set_free(&ms);
		}
		bool trace = getenv("CORRAL_BENCH_TRACE") && atoi(getenv("CORRAL_BENCH_TRACE"));
		if (trace)
			trace_peersets(e);
		dp_sync(dp, e, NULL, true, &st, &err);
		free(err);
		int n = events < 200 ? events : 200;
		if (getenv("CORRAL_BENCH_SYNC_EVENTS"))
			n = atoi(getenv("CORRAL_BENCH_SYNC_EVENTS"));
		double *sl = xcalloc((size_t)(n > 0 ? n : 1), sizeof(double));
		uint64_t added = 0;
		for (int k = 0; k < n; k++) {
			r ^= r << 13, r ^= r >> 7, r ^= r << 17;
			int i = (int)(r % (uint64_t)sz->pods);
			engine_pod_upsert(e, gen_pod(sz, seed, i, (int)((r >> 20) % 8)));
			if (trace)
				trace_dirty(e, k);
			dp_sync(dp, e, NULL, false, &st, &err);
			free(err);
			sl[k] = st.render_ms;
			if (trace)
				fprintf(stderr, " => %.3f ms, elements +%lu -%lu\n", st.render_ms,
					(unsigned long)st.elems_added, (unsigned long)st.elems_deleted);
			added += st.elems_added + st.elems_deleted;
		}
		qsort(sl, (size_t)n, sizeof(double), dbl_cmp);
		emit(size, "sync_after_pod_event_median_ms", sl[n / 2], "ms");
		emit(size, "sync_after_pod_event_p99_ms", sl[n * 99 / 100], "ms");
		emit(size, "sync_after_pod_event_elements", (double)added / n, "per event");
		/* a policy created (as bench-agent-kube.sh's: this node's pods of
		 * a team admit role=client from every namespace) and deleted:
		 * the engine's work and the sync, timed together */
		int np = getenv("CORRAL_BENCH_POLICY_EVENTS") ? atoi(getenv("CORRAL_BENCH_POLICY_EVENTS")) : 21;
		np = np > 0 ? np : 1;
		double *pl = xcalloc((size_t)np, sizeof(double));
		for (int k = 0; k < np; k++) {
			char *y = xasprintf("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
					    "metadata: {name: bench-%d, namespace: ns-0}\nspec:\n"
					    "  podSelector: {matchLabels: {team: team-0}}\n  ingress:\n"
					    "  - from: [{namespaceSelector: {}, podSelector: {matchLabels: {role: client}}}]\n",
					    k);
			struct manifest_set ps = { 0 };
			struct decode_opts o = { DECODE_AGENT, false, "app", "default" };
			manifest_load_buffer(&ps, "bench.yaml", y, strlen(y), &o);
			double a = now_ms();
			manifest_apply(&ps, e);
			dp_sync(dp, e, NULL, false, &st, &err);
			free(err);
			pl[k] = now_ms() - a;
			manifest_set_free(&ps);
			char name[32];
			snprintf(name, sizeof(name), "bench-%d", k);
			engine_policy_delete(e, KIND_NETPOL, "ns-0", name);
			dp_sync(dp, e, NULL, false, &st, &err);
			free(err);
			free(y);
		}
		/* the first names a label no policy used (role=client): every pod
		 * is scanned for it; the others find it indexed (anchor_idle) */
		emit(size, "policy_created_first_engine_and_sync_ms", pl[0], "ms");
		qsort(pl, (size_t)np, sizeof(double), dbl_cmp);
		emit(size, "policy_created_engine_and_sync_median_ms", pl[np / 2], "ms");
		free(pl);
		free(sl);
		dp_free(dp);
	}

	/* explain on the loaded cluster */
	struct vec pods = { 0 };
	engine_pods(e, &pods);
	double a = now_ms();
	for (int k = 0; k < 1000; k++) {
		struct pod *s = pods.v[(size_t)k * 7919 % pods.n], *d = pods.v[(size_t)k * 104729 % pods.n];
		struct endpoint src = { s, s->spec->addr[0] }, dst = { d, d->spec->addr[0] };
		struct verdict v;
		policy_eval(e, &src, &dst, PROTO_TCP, 8080, &v);
		verdict_free(&v);
	}
	emit(size, "eval_us", (now_ms() - a) * 1e3 / 1000, "us");
	emit(size, "peak_rss_mb", status_kb("VmHWM:") / 1024.0, "MB");
	free(lat);
	vec_free(&pods);
	vec_free(&groups);
	vec_free(&pss);
	engine_free(e);
	manifest_set_free(&set);
	return 0;
}
