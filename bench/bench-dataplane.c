/* Data-plane benchmarks, one JSON line per figure (medians of --runs).
 *
 *   corral-bench-dp apply [--elements N] [--runs R]
 *     a full ruleset holding N peer-set elements (ranges), applied in a
 *     fresh network namespace by the netlink applier, against `nft -f`
 *     loading the renderer's text of the same ruleset in another fresh
 *     namespace, interleaved (A B, B A, ...); medians with their spread,
 *     and the ratio of each run's pair;
 *   corral-bench-dp connrate CLUSTER-SCRIPT [--policies N] [--conns N] [--runs R]
 *     new TCP connections per second between two pods on one node with
 *     (a) no table, (b) corral's table holding N policies of which 2
 *     select these pods, (c) a naive table with one rule per (pod, peer)
 *     pair and the pods' own rule last, (d) a table that only turns
 *     conntrack on (as kube-proxy does on every real node), (e) corral's
 *     table without the forged-source check. Cases are interleaved: each
 *     run measures every case once, starting with a different one each
 *     run; medians with their spread (_min, _max), and the ratios of each
 *     run's pairs (_paired: median and spread) are reported. With
 *     (a), (b) and (d) it also measures connections from node-1 itself
 *     to the server pod: they cross corral's output chain (the node's
 *     own packets, accepted by a fib lookup of their source) instead of
 *     forward. CORRAL_BENCH_EDIT: a shell command run in node-1 after
 *     (b) and (e) are applied, to measure a variant of the table (a
 *     rule deleted, say; 2026-11-30: deleting the revoked-mark rule
 *     moved (b)/(d) from 0.946 to 0.948 in 21 pairs, within the noise).
 *   corral-bench-dp connloop PREFIX [--conns N]
 *     one run of connrate's measure on a namespace cluster that is already
 *     up (cluster.sh up PREFIX) under whatever ruleset its node holds (a
 *     peer's, bench/peers.sh): a server in PREFIX-x-c on port 8080, N/10
 *     warm-up connections then N from PREFIX-x-a; prints the new TCP
 *     connections per second. The caller swaps rulesets between runs.
 *   corral-bench-dp revoke CLUSTER-SCRIPT BASE-YAML [--flows N] [--runs R]
 *     N tracked UDP flows from x/a to x/c (one per destination port):
 *     the time of a revocation pass when the change leaves them allowed
 *     (read and judge only) and when it stops them all (read, judge and
 *     delete). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agent/dataplane/bridge.h"
#include "agent/dataplane/dataplane.h"
#include "agent/nl/link.h"
#include "agent/nl/nft.h"
#include "agent/dataplane/revoke.h"
#include "kube/manifest.h"
#include "tests/dataplane/kcluster.h"

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void emit(const char *bench, const char *metric, double v, const char *unit)
{
	printf("{\"bench\": \"%s\", \"metric\": \"%s\", \"value\": %.6g, \"unit\": \"%s\"}\n", bench, metric, v, unit);
	fflush(stdout);
}

static int dbl_cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), dbl_cmp);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* The median of n runs and their spread: metric, metric_min, metric_max
 * (sorts v). */
static double emit_spread(const char *bench, const char *metric, double *v, int n, const char *unit)
{
	char m[96];
	double med = median(v, n);
	emit(bench, metric, med, unit);
	snprintf(m, sizeof(m), "%s_min", metric);
	emit(bench, m, v[0], unit);
	snprintf(m, sizeof(m), "%s_max", metric);
	emit(bench, m, v[n - 1], unit);
	return med;
}

/* The ratio a/b of each run's pair (measured next to each other, so the
 * machine's load of the moment cancels), median and spread. */
static void emit_paired(const char *bench, const char *metric, const double *a, const double *b, int n)
{
	double *r = calloc((size_t)n, sizeof(double));
	for (int i = 0; i < n; i++)
		r[i] = a[i] / b[i];
	emit_spread(bench, metric, r, n, "ratio");
	free(r);
}

static struct engine *load_text(const char *text, const char *node)
{
	struct manifest_set set = { 0 };
	struct decode_opts o = { DECODE_AGENT, false, "app", "default" };
	struct engine_config cfg = { node, "app", true, NULL, NULL };
	manifest_load_buffer(&set, "bench", text, strlen(text), &o);
	if (set.diags.errors) {
		char *m = diag_format(set.diags.v.v[0]);
		fprintf(stderr, "bench: generated manifests do not decode: %s\n", m);
		free(m);
		exit(1);
	}
	struct engine *e = engine_new(&cfg);
	manifest_apply(&set, e);
	manifest_set_free(&set);
	return e;
}

static void item(struct sbuf *b, bool *first, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void item(struct sbuf *b, bool *first, const char *fmt, ...)
{
	va_list ap;
	char *s;
	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		abort();
	va_end(ap);
	sbuf_add(b, *first ? "" : ",\n");
	sbuf_add(b, s);
	free(s);
	*first = false;
}

/* ---------- apply ---------- */

/* 10 local pods, each selected by one policy admitting one tenth of the
 * peer pods; peers' addresses step by 2 so that no two merge. */
static char *apply_cluster(int elements)
{
	struct sbuf b = { 0 };
	bool first = true;
	sbuf_add(&b, "{\"apiVersion\": \"v1\", \"kind\": \"List\", \"items\": [\n");
	item(&b, &first, "{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"name\":\"peers\"}}");
	for (int k = 0; k < 10; k++) {
		item(&b, &first,
		     "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"t%d\",\"namespace\":\"bench\","
		     "\"labels\":{\"app\":\"t%d\"}},\"spec\":{\"nodeName\":\"n1\"},\"status\":{\"phase\":\"Running\","
		     "\"podIPs\":[{\"ip\":\"10.254.0.%d\"}]}}",
		     k, k, k + 1);
		item(&b, &first,
		     "{\"apiVersion\":\"networking.k8s.io/v1\",\"kind\":\"NetworkPolicy\",\"metadata\":{\"name\":\"p%d\","
		     "\"namespace\":\"bench\"},\"spec\":{\"podSelector\":{\"matchLabels\":{\"app\":\"t%d\"}},\"ingress\":"
		     "[{\"from\":[{\"namespaceSelector\":{\"matchLabels\":{\"kubernetes.io/metadata.name\":\"peers\"}},"
		     "\"podSelector\":{\"matchLabels\":{\"slice\":\"%d\"}}}],\"ports\":[{\"port\":80}]}]}}",
		     k, k, k);
	}
	for (int i = 0; i < elements; i++)
		item(&b, &first,
		     "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"q%d\",\"namespace\":\"peers\","
		     "\"labels\":{\"slice\":\"%d\"}},\"spec\":{\"nodeName\":\"n2\"},\"status\":{\"phase\":\"Running\","
		     "\"podIPs\":[{\"ip\":\"10.%d.%d.%d\"}]}}",
		     i, i % 10, 16 + i / 32768, (i / 128) % 256, (i % 128) * 2);
	sbuf_add(&b, "]}\n");
	return sbuf_steal(&b);
}

static int fresh_ns(const char *name)
{
	char cmd[256], path[256];
	snprintf(cmd, sizeof(cmd), "ip netns del %s 2>/dev/null; ip netns add %s", name, name);
	if (system(cmd) != 0)
		return -1;
	snprintf(path, sizeof(path), "/run/netns/%s", name);
	return open(path, O_RDONLY | O_CLOEXEC);
}

static void del_ns(const char *name)
{
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "ip netns del %s 2>/dev/null", name);
	if (system(cmd)) {
	}
}

static double nft_f(int nsfd, const char *file)
{
	double t0 = now_ms();
	pid_t pid = fork();
	if (pid == 0) {
		if (setns(nsfd, CLONE_NEWNET) < 0)
			_exit(127);
		execlp("nft", "nft", "-f", file, (char *)NULL);
		_exit(127);
	}
	int st;
	waitpid(pid, &st, 0);
	if (!WIFEXITED(st) || WEXITSTATUS(st)) {
		fprintf(stderr, "bench: nft -f failed\n");
		exit(1);
	}
	return now_ms() - t0;
}

static int cmd_apply(int argc, char **argv)
{
	int elements = 100000, runs = 5;
	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--elements"))
			elements = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--runs"))
			runs = atoi(argv[i + 1]);
	}
	char *text = apply_cluster(elements);
	struct engine *e = load_text(text, "n1");
	free(text);
	struct dp *dp = dp_new(NULL);
	struct ruleset *rs = dp_render(dp, e);
	char *nft = ruleset_format(rs);
	ruleset_free(rs);
	char file[] = "/tmp/corral-bench-XXXXXX";
	int fd = mkstemp(file);
	if (fd < 0 || write(fd, nft, strlen(nft)) != (ssize_t)strlen(nft))
		return 1;
	close(fd);
	free(nft);
	int self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	double *ours = calloc((size_t)runs, sizeof(double)), *cli = calloc((size_t)runs, sizeof(double));
	double *render = calloc((size_t)runs, sizeof(double)), *enc = calloc((size_t)runs, sizeof(double));
	double *kern = calloc((size_t)runs, sizeof(double));
	uint64_t total = 0;
	for (int r = 0; r < runs; r++) {
		if (r % 2) { /* A B, B A, ...: neither always goes first */
			int ns = fresh_ns("crbench-nft");
			cli[r] = nft_f(ns, file);
			close(ns);
			del_ns("crbench-nft");
		}
		int ns = fresh_ns("crbench-apply");
		if (ns < 0 || setns(ns, CLONE_NEWNET) < 0)
			return 1;
		struct nft_sock *s = nft_sock_open();
		struct dp_stats st;
		char *err = NULL;
		engine_take_dirty(e, NULL, NULL);
		if (!s || dp_sync(dp, e, s, true, &st, &err) < 0) {
			fprintf(stderr, "bench: apply failed: %s\n", err ? err : strerror(errno));
			return 1;
		}
		ours[r] = st.apply_ms;
		render[r] = st.render_ms;
		enc[r] = st.encode_ms;
		kern[r] = st.kernel_ms;
		total = st.elems_total;
		nft_sock_close(s);
		if (setns(self, CLONE_NEWNET) < 0)
			return 1;
		close(ns);
		del_ns("crbench-apply");
		if (!(r % 2)) {
			ns = fresh_ns("crbench-nft");
			cli[r] = nft_f(ns, file);
			close(ns);
			del_ns("crbench-nft");
		}
	}
	unlink(file);
	emit("apply", "runs", runs, "runs");
	emit("apply", "elements", (double)total, "elements");
	emit_paired("apply", "speedup_vs_nft_f_paired", cli, ours, runs); /* before the medians sort them */
	emit("apply", "render_ms", median(render, runs), "ms");
	double a = emit_spread("apply", "netlink_apply_ms", ours, runs, "ms");
	emit("apply", "netlink_encode_ms", median(enc, runs), "ms");
	emit("apply", "netlink_kernel_ms", median(kern, runs), "ms");
	emit("apply", "netlink_elements_per_s", (double)total / (a / 1e3), "elements/s");
	double b = emit_spread("apply", "nft_f_ms", cli, runs, "ms");
	emit("apply", "speedup_vs_nft_f", b / a, "x");
	free(ours);
	free(cli);
	free(render);
	free(enc);
	free(kern);
	dp_free(dp);
	engine_free(e);
	return 0;
}

/* ---------- connection rate ---------- */

struct server {
	int fd;
	volatile int stop;
};

static void *serve(void *arg)
{
	struct server *s = arg;
	while (!s->stop) {
		int c = accept(s->fd, NULL, NULL);
		if (c >= 0)
			close(c);
	}
	return NULL;
}

struct clientrun {
	int n;
	double ms;
	int failed;
};

static int client_loop(void *arg)
{
	struct clientrun *cr = arg;
	struct sockaddr_in dst = { .sin_family = AF_INET, .sin_port = htons(8080),
				   .sin_addr.s_addr = htonl(0x0a010103) }; /* x/c */
	struct linger lg = { 1, 0 };
	double t0 = now_ms();
	for (int i = 0; i < cr->n; i++) {
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (connect(fd, (struct sockaddr *)&dst, sizeof(dst)) < 0)
			cr->failed++;
		/* reset instead of TIME_WAIT: thousands of runs, no port exhaustion */
		setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		close(fd);
	}
	cr->ms = now_ms() - t0;
	return 0;
}

static int mklisten(void *arg)
{
	int one = 1;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(8080) };
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 4096) < 0)
		return -1;
	*(int *)arg = fd;
	return 0;
}

/* corral's view of node-1: the real client x/a and server x/c selected by
 * two policies, and n more policies each isolating a filler pod of its own
 * (so the table really holds n group chains and n dispatch entries), with
 * peers drawn from 100 applications and a shared monitoring peer. */
static char *connrate_cluster(const char *base_yaml, int n)
{
	struct sbuf b = { 0 };
	FILE *f = fopen(base_yaml, "r");
	char buf[4096];
	size_t r;
	while (f && (r = fread(buf, 1, sizeof(buf) - 1, f)) > 0) {
		buf[r] = 0;
		sbuf_add(&b, buf);
	}
	if (f)
		fclose(f);
	sbuf_add(&b, "---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: server, namespace: x}\n"
		     "spec:\n  podSelector: {matchLabels: {pod: c}}\n  ingress: [{from: [{podSelector: {matchLabels: {pod: a}}}], "
		     "ports: [{port: 8080}]}]\n"
		     "---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: client, namespace: x}\n"
		     "spec:\n  podSelector: {matchLabels: {pod: a}}\n  policyTypes: [Egress]\n"
		     "  egress: [{to: [{podSelector: {matchLabels: {pod: c}}}], ports: [{port: 8080}]}]\n---\n");
	bool first = true;
	sbuf_add(&b, "{\"apiVersion\": \"v1\", \"kind\": \"List\", \"items\": [\n");
	for (int k = 0; k < n; k++) {
		item(&b, &first,
		     "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"f%d\",\"namespace\":\"filler\","
		     "\"labels\":{\"app\":\"f%d\"}},\"spec\":{\"nodeName\":\"node-1\"},\"status\":{\"phase\":\"Running\","
		     "\"podIPs\":[{\"ip\":\"10.50.%d.%d\"}]}}",
		     k, k, k / 250, k % 250 + 1);
		item(&b, &first,
		     "{\"apiVersion\":\"networking.k8s.io/v1\",\"kind\":\"NetworkPolicy\",\"metadata\":{\"name\":\"f%d\","
		     "\"namespace\":\"filler\"},\"spec\":{\"podSelector\":{\"matchLabels\":{\"app\":\"f%d\"}},\"ingress\":"
		     "[{\"from\":[{\"podSelector\":{\"matchLabels\":{\"app\":\"f%d\"}}}],\"ports\":[{\"port\":80}]},"
		     "{\"from\":[{\"podSelector\":{\"matchLabels\":{\"role\":\"monitor\"}}}]}]}}",
		     k, k, k % 100);
	}
	sbuf_add(&b, "]}\n");
	return sbuf_steal(&b);
}

static char *naive_table(int n)
{
	struct sbuf b = { 0 };
	sbuf_add(&b, "table inet naive {\n\tchain forward {\n\t\ttype filter hook forward priority filter; policy accept;\n"
		     "\t\tct state established,related accept\n");
	for (int k = 0; k < n; k++)
		sbuf_addf(&b, "\t\tip saddr 10.50.%d.%d ip daddr 10.50.%d.%d tcp dport 80 accept\n", (k % 100) / 250,
			  k % 100 % 250 + 1, k / 250, k % 250 + 1);
	sbuf_add(&b, "\t\tip saddr 10.1.1.1 ip daddr 10.1.1.3 tcp dport 8080 accept\n\t\tip daddr 10.1.1.3 drop\n\t}\n}\n");
	return sbuf_steal(&b);
}

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
	va_list ap;
	char *s;
	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		abort();
	va_end(ap);
	int rc = system(s);
	free(s);
	return rc;
}

static int open_watch(void *arg)
{
	char *err = NULL;
	struct link_watch **w = arg;
	*w = link_watch_open(&err);
	free(err);
	return *w ? 0 : -1;
}

/* The bridged shape (CORRAL_CLUSTER_SHAPE=bridged): table bridge corral
 * beside inet corral, its ports and addresses learned as the agent learns
 * them. */
static int bridge_table(struct kcluster *kc, struct engine *e, struct nft_sock *s, struct link_watch *lw)
{
	size_t n, no;
	const struct link_port *lp = link_watch_ports(lw, &n);
	const struct link_other *lo = link_watch_bridge_others(lw, &no);
	struct dp_bind b;
	struct dp_config dc = { 0 };
	struct dp_bridge *br = dp_bridge_new(&dc);
	char *err = NULL;
	(void)kc;
	dp_bind_ports(&b, e, lp, n, lo, no);
	int rc = dp_bridge_sync(br, s, b.ports, b.n, NULL, &err);
	if (rc < 0)
		fprintf(stderr, "bench: bridge table: %s\n", err);
	free(err);
	dp_bind_free(&b);
	dp_bridge_free(br); /* the table stays in the kernel */
	return rc;
}

static int cmd_connrate(int argc, char **argv)
{
	int policies = 20000, conns = 10000, runs = 5;
	if (argc < 3) {
		fprintf(stderr, "usage: corral-bench-dp connrate CLUSTER-SCRIPT BASE-YAML [--policies N] [--conns N] [--runs R]\n");
		return 2;
	}
	for (int i = 3; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--policies"))
			policies = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--conns"))
			conns = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--runs"))
			runs = atoi(argv[i + 1]);
	}
	struct kcluster kc;
	if (kc_up(&kc, argv[1], "crcr") < 0)
		return 1;
	char *text = connrate_cluster(argv[2], policies);
	struct engine *e = load_text(text, "node-1");
	free(text);
	struct dp *dp = dp_new(NULL);
	struct dp_config nocheck = { .no_source_check = true };
	struct dp *dp_nocheck = dp_new(&nocheck); /* the table without the forged-source check */
	struct nft_sock *s = kc_nft_open(&kc, 0);
	char naive[] = "/tmp/corral-naive-XXXXXX";
	char *nt = naive_table(policies);
	int fd = mkstemp(naive);
	if (fd < 0 || write(fd, nt, strlen(nt)) != (ssize_t)strlen(nt))
		return 1;
	close(fd);
	free(nt);
	struct server srv = { -1, 0 };
	pthread_t th;
	if (kc_in_ns(&kc, kc.pod_ns[2], mklisten, &srv.fd) < 0)
		return 1;
	pthread_create(&th, NULL, serve, &srv);
	/* bridged: a sixth case, inet corral and table bridge corral */
	const char *shape = getenv("CORRAL_CLUSTER_SHAPE");
	bool bridged = shape && !strcmp(shape, "bridged");
	struct link_watch *lw = NULL;
	if (bridged) {
		if (kc_in_ns(&kc, kc.node_ns[0], open_watch, &lw) < 0)
			return 1;
		for (int i = 0; i < 20; i++) { /* the pods' addresses read from their namespaces */
			link_watch_dispatch(lw);
			usleep(50 * 1000);
		}
	}
	enum { CASES = 6 };
	int ncases = bridged ? CASES : CASES - 1;
	double *rate[CASES], *node_rate[CASES];
	static const char *const names[] = { "no_table", "corral_table", "naive_table", "conntrack_only",
					     "corral_table_no_source_check", "corral_and_bridge_tables" };
	char ctonly[] = "/tmp/corral-ct-XXXXXX";
	const char *ct = "table inet base {\n\tchain forward {\n\t\ttype filter hook forward priority filter; policy accept;\n"
			 "\t\tct state established,related accept\n\t}\n}\n";
	fd = mkstemp(ctonly);
	if (fd < 0 || write(fd, ct, strlen(ct)) != (ssize_t)strlen(ct))
		return 1;
	close(fd);
	for (int c = 0; c < CASES; c++) {
		rate[c] = calloc((size_t)runs, sizeof(double));
		node_rate[c] = calloc((size_t)runs, sizeof(double));
	}
	double apply_ms = 0, kern_ms = 0, render_ms = 0;
	for (int r = 0; r < runs; r++)
		for (int k = 0; k < ncases; k++) { /* interleaved: each run measures every case once */
			int c = (k + r) % ncases;  /* starting with a different case each run */
			sh("ip netns exec %s-n1 nft flush ruleset", kc.prefix);
			if (c == 1 || c == 4 || c == 5) {
				struct dp_stats st;
				char *err = NULL;
				if (dp_sync(c == 4 ? dp_nocheck : dp, e, s, true, &st, &err) < 0) {
					fprintf(stderr, "bench: %s\n", err);
					return 1;
				}
				if (c == 5 && bridge_table(&kc, e, s, lw) < 0)
					return 1;
				/* CORRAL_BENCH_EDIT: a shell command run in node-1 after
				 * corral's table is in (an experiment on its shape:
				 * "nft delete rule inet corral forward handle 5") */
				if ((c == 1 || c == 4) && getenv("CORRAL_BENCH_EDIT") &&
				    sh("ip netns exec %s-n1 sh -c '%s'", kc.prefix, getenv("CORRAL_BENCH_EDIT")))
					return 1;
				if (c == 1) {
					apply_ms = st.apply_ms;
					kern_ms = st.kernel_ms;
					render_ms = st.render_ms;
				}
			} else if (c >= 2 && c <= 3 && sh("ip netns exec %s-n1 nft -f %s", kc.prefix, c == 2 ? naive : ctonly)) {
				return 1;
			}
			struct clientrun warm = { conns / 10, 0, 0 }, cr = { conns, 0, 0 };
			kc_in_ns(&kc, kc.pod_ns[0], client_loop, &warm);
			kc_in_ns(&kc, kc.pod_ns[0], client_loop, &cr);
			if (cr.failed) {
				fprintf(stderr, "bench: %d of %d connections failed (%s)\n", cr.failed, conns, names[c]);
				return 1;
			}
			rate[c][r] = conns / (cr.ms / 1e3);
			if (c == 0 || c == 1 || c == 3) { /* the node's own connections: output, not forward */
				struct clientrun nwarm = { conns / 10, 0, 0 }, ncr = { conns, 0, 0 };
				kc_in_ns(&kc, kc.node_ns[0], client_loop, &nwarm);
				kc_in_ns(&kc, kc.node_ns[0], client_loop, &ncr);
				if (ncr.failed) {
					fprintf(stderr, "bench: %d of %d node connections failed (%s)\n", ncr.failed, conns,
						names[c]);
					return 1;
				}
				node_rate[c][r] = conns / (ncr.ms / 1e3);
			}
		}
	srv.stop = 1;
	shutdown(srv.fd, SHUT_RDWR);
	pthread_join(th, NULL);
	close(srv.fd);
	unlink(naive);
	unlink(ctonly);
	double m[CASES], nm[CASES] = { 0 };
	emit("connrate", "runs", runs, "runs");
	/* each run's ratio, its cases measured next to each other */
	emit_paired("connrate", "corral_vs_no_table_paired", rate[1], rate[0], runs);
	emit_paired("connrate", "corral_vs_conntrack_only_paired", rate[1], rate[3], runs);
	emit_paired("connrate", "corral_vs_corral_no_source_check_paired", rate[1], rate[4], runs);
	emit_paired("connrate", "node_to_pod_corral_vs_conntrack_only_paired", node_rate[1], node_rate[3], runs);
	if (bridged)
		emit_paired("connrate", "corral_and_bridge_vs_corral_paired", rate[5], rate[1], runs);
	for (int c = 0; c < ncases; c++) {
		char metric[64];
		snprintf(metric, sizeof(metric), "conn_per_s_%s", names[c]);
		m[c] = emit_spread("connrate", metric, rate[c], runs, "conn/s");
		free(rate[c]);
		if (c == 0 || c == 1 || c == 3) {
			nm[c] = median(node_rate[c], runs);
			snprintf(metric, sizeof(metric), "conn_per_s_node_to_pod_%s", names[c]);
			emit("connrate", metric, nm[c], "conn/s");
		}
		free(node_rate[c]);
	}
	emit("connrate", "policies", policies, "policies");
	emit("connrate", "corral_render_ms", render_ms, "ms");
	emit("connrate", "corral_apply_ms", apply_ms, "ms");
	emit("connrate", "corral_apply_kernel_ms", kern_ms, "ms");
	emit("connrate", "corral_vs_no_table", m[1] / m[0], "ratio");
	emit("connrate", "corral_vs_conntrack_only", m[1] / m[3], "ratio");
	emit("connrate", "naive_vs_no_table", m[2] / m[0], "ratio");
	emit("connrate", "corral_vs_corral_no_source_check", m[1] / m[4], "ratio");
	emit("connrate", "node_to_pod_corral_vs_conntrack_only", nm[1] / nm[3], "ratio");
	if (bridged) {
		emit("connrate", "corral_and_bridge_vs_corral", m[5] / m[1], "ratio");
		emit("connrate", "corral_and_bridge_vs_conntrack_only", m[5] / m[3], "ratio");
	}
	for (int c = ncases; c < CASES; c++) {
		free(rate[c]);
		free(node_rate[c]);
	}
	link_watch_close(lw);
	nft_sock_close(s);
	dp_free(dp_nocheck);
	dp_free(dp);
	engine_free(e);
	kc_down(&kc);
	return 0;
}

/* ---------- revoke ---------- */

struct udpburst {
	int n;
	struct sockaddr_in dst;
};

/* n datagrams from one socket to n destination ports: n tracked flows */
static int udp_burst(void *arg)
{
	struct udpburst *u = arg;
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	for (int k = 0; k < u->n; k++) {
		u->dst.sin_port = htons((uint16_t)(1024 + k));
		if (sendto(fd, "x", 1, 0, (struct sockaddr *)&u->dst, sizeof(u->dst)) < 0)
			k--; /* the queue is full: try again */
	}
	close(fd);
	return 0;
}

static int cmd_revoke(int argc, char **argv)
{
	int flows = 10000, runs = 5;
	if (argc < 3) {
		fprintf(stderr, "usage: corral-bench-dp revoke CLUSTER-SCRIPT BASE-YAML [--flows N] [--runs R]\n");
		return 2;
	}
	for (int i = 3; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--flows"))
			flows = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--runs"))
			runs = atoi(argv[i + 1]);
	}
	if (flows < 1 || flows > 60000 || runs < 1)
		return 2;
	struct kcluster kc;
	if (kc_up(&kc, argv[1], "crbrv") < 0)
		return 1;
	struct sbuf b = { 0 };
	FILE *f = fopen(argv[2], "r");
	char buf[4096];
	size_t got;
	while (f && (got = fread(buf, 1, sizeof(buf) - 1, f)) > 0) {
		buf[got] = 0;
		sbuf_add(&b, buf);
	}
	if (f)
		fclose(f);
	/* x/c admits UDP from anyone; after the change, nothing */
	const char *pol = "---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: udp, namespace: x}\n"
			  "spec:\n  podSelector: {matchLabels: {pod: c}}\n  ingress: %s\n";
	char *open = xasprintf(pol, "[{ports: [{protocol: UDP}]}]"), *closed = xasprintf(pol, "[]");
	char *t1 = xasprintf("%s%s", b.s ? b.s : "", open), *t2 = xasprintf("%s%s", b.s ? b.s : "", closed);
	struct engine *allow = load_text(t1, "node-1"), *deny = load_text(t2, "node-1");
	free(open);
	free(closed);
	free(t1);
	free(t2);
	free(sbuf_steal(&b));
	struct dp *dp = dp_new(NULL);
	struct nft_sock *s = kc_nft_open(&kc, 0);
	struct ct_sock *ct = NULL;
	struct route_sock *rt = NULL;
	if (setns(kc.node_ns[0], CLONE_NEWNET) < 0 || !(ct = ct_sock_open()) || !(rt = route_sock_open()) ||
	    setns(kc.self_ns, CLONE_NEWNET) < 0)
		return 1;
	char *err = NULL;
	struct dp_stats st;
	if (dp_sync(dp, allow, s, true, &st, &err) < 0) {
		fprintf(stderr, "bench: %s\n", err);
		return 1;
	}
	double *keep = calloc((size_t)runs, sizeof(double)), *drop = calloc((size_t)runs, sizeof(double));
	struct udpburst u = { flows, { .sin_family = AF_INET } };
	inet_pton(AF_INET, "10.1.1.3", &u.dst.sin_addr);
	for (int r = 0; r < runs; r++) {
		struct revoke_stats a, z;
		/* each run from an empty table: the last run's flows stay
		 * tracked, marked (the pass no longer deletes them), and the
		 * next "allow" pass would restore them */
		if (sh("ip netns exec %s-n1 conntrack -F >/dev/null 2>&1", kc.prefix) != 0)
			fprintf(stderr, "bench: conntrack -F failed (is conntrack installed?)\n");
		kc_in_ns(&kc, kc.pod_ns[0], udp_burst, &u);
		if (revoke_flows(allow, ct, rt, DP_REVOKED_MARK, NULL, NULL, &a) < 0 ||
		    revoke_flows(deny, ct, rt, DP_REVOKED_MARK, NULL, NULL, &z) < 0)
			return 1;
		fprintf(stderr, "run %d: %zu tracked, %zu kept in %.2f ms; %zu revoked in %.2f ms (read %.2f, mark %.2f)\n",
			r, a.tracked, a.considered, a.ms, z.revoked, z.ms, z.dump_ms, z.mark_ms);
		if (a.considered < (size_t)flows || z.revoked < (size_t)flows) {
			fprintf(stderr, "bench: expected %d flows\n", flows);
			return 1;
		}
		keep[r] = a.ms;
		drop[r] = z.ms;
	}
	emit("revoke", "flows", flows, "flows");
	emit("revoke", "pass_all_kept_ms", median(keep, runs), "ms");
	emit("revoke", "pass_all_revoked_ms", median(drop, runs), "ms");
	emit("revoke", "revoked_per_s", flows / (median(drop, runs) / 1e3), "flows/s");
	free(keep);
	free(drop);
	ct_sock_close(ct);
	route_sock_close(rt);
	nft_sock_close(s);
	dp_free(dp);
	engine_free(allow);
	engine_free(deny);
	kc_down(&kc);
	return 0;
}

/* setns into /run/netns/NAME (this thread), run fn, come back to self */
static int in_named_ns(const char *name, int self, int (*fn)(void *), void *arg)
{
	char path[256];
	snprintf(path, sizeof(path), "/run/netns/%s", name);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || setns(fd, CLONE_NEWNET) < 0) {
		fprintf(stderr, "bench: %s: %s\n", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	int r = fn(arg);
	if (setns(self, CLONE_NEWNET) < 0)
		abort(); /* never go on in the wrong namespace */
	return r;
}

static int cmd_connloop(int argc, char **argv)
{
	int conns = 10000;
	if (argc < 2) {
		fprintf(stderr, "usage: corral-bench-dp connloop PREFIX [--conns N]\n");
		return 2;
	}
	for (int i = 2; i + 1 < argc; i += 2)
		if (!strcmp(argv[i], "--conns"))
			conns = atoi(argv[i + 1]);
	char a[128], c[128];
	snprintf(a, sizeof(a), "%s-x-a", argv[1]);
	snprintf(c, sizeof(c), "%s-x-c", argv[1]);
	int self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	struct server srv = { -1, 0 };
	pthread_t th;
	if (self < 0 || in_named_ns(c, self, mklisten, &srv.fd) < 0)
		return 1;
	pthread_create(&th, NULL, serve, &srv);
	struct clientrun warm = { conns / 10, 0, 0 }, cr = { conns, 0, 0 };
	if (in_named_ns(a, self, client_loop, &warm) < 0 || in_named_ns(a, self, client_loop, &cr) < 0)
		return 1;
	srv.stop = 1;
	shutdown(srv.fd, SHUT_RDWR);
	pthread_join(th, NULL);
	close(srv.fd);
	close(self);
	if (cr.failed) {
		fprintf(stderr, "bench: %d of %d connections failed\n", cr.failed, conns);
		return 1;
	}
	printf("%.0f\n", conns / (cr.ms / 1e3));
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], "connloop"))
		return cmd_connloop(argc - 1, argv + 1);
	if (argc >= 2 && !strcmp(argv[1], "apply"))
		return cmd_apply(argc - 1, argv + 1);
	if (argc >= 2 && !strcmp(argv[1], "connrate"))
		return cmd_connrate(argc - 1, argv + 1);
	if (argc >= 2 && !strcmp(argv[1], "revoke"))
		return cmd_revoke(argc - 1, argv + 1);
	fprintf(stderr, "usage: corral-bench-dp apply|connrate|connloop|revoke ...\n");
	return 2;
}
