/* corral-agent end to end: one agent per node namespace, checked with real
 * packets, the control socket and the metrics endpoint. Objects come from
 * a manifests folder the test edits, or from the Kubernetes API (the same
 * tests, objects created through the API): the fake API server of
 * tests/kube, or a real kube-apiserver (tests/controlplane/run.sh) where
 * the agent authenticates as the corral-agent ServiceAccount of
 * deploy/rbac.yaml with a TokenRequest token, as in a pod.
 *   test-agent CLUSTER-SCRIPT AGENT [FAKE-APISERVER.py | --real RUN.SH REPO] */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "kcluster.h"
#include "kube/yaml.h"

static const char *script, *agent_bin, *apiserver;
static char dir[64];
static pid_t api_pid;
static int api_port;
static struct kcluster kc;
static pid_t agents[KC_NODES];
static const char *extra_args; /* more agent flags for the next start */
static bool real;               /* --real: a real kube-apiserver (apiserver is then "real") */
static const char *run_sh, *repo;
static char cpdir[64], cp_url[128];

enum { XA, XB, XC, YA, YB, YC, ZA, ZB, ZC };

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* ---------- objects through the API ---------- */

static void api_post(const char *path, json_t *body)
{
	char *url, *b = json_dumps(body, JSON_COMPACT);
	assert_true(asprintf(&url, "http://127.0.0.1:%d/_ctl/%s", api_port, path) >= 0);
	CURL *e = curl_easy_init();
	FILE *devnull = fopen("/dev/null", "w");
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_POSTFIELDS, b);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, devnull);
	assert_int_equal(curl_easy_perform(e), CURLE_OK);
	curl_easy_cleanup(e);
	fclose(devnull);
	free(url);
	free(b);
	json_decref(body);
}

static const char *resource_of(const char *kind)
{
	return !strcmp(kind, "Pod") ? "pods" : !strcmp(kind, "Namespace") ? "namespaces"
	       : !strcmp(kind, "NetworkPolicy") ? "networkpolicies" : "accesspolicies";
}

/* ---------- objects through a real API server ---------- */

struct buf {
	char *s;
	size_t n;
};

static size_t buf_add(char *d, size_t size, size_t n, void *arg)
{
	struct buf *b = arg;
	b->s = realloc(b->s, b->n + size * n + 1);
	memcpy(b->s + b->n, d, size * n);
	b->n += size * n;
	b->s[b->n] = 0;
	return size * n;
}

/* One request as cluster admin (client certificate); the status (0: no
 * answer) and the body, parsed (NULL when it is not JSON). */
static json_t *cp_call(const char *method, const char *path, const char *ctype, json_t *body, long *status)
{
	char url[512], cert[128], key[128], ca[128], hdr[128];
	struct buf b = { 0 };
	snprintf(url, sizeof(url), "%s%s", cp_url, path);
	snprintf(cert, sizeof(cert), "%s/pki/admin.crt", cpdir);
	snprintf(key, sizeof(key), "%s/pki/admin.key", cpdir);
	snprintf(ca, sizeof(ca), "%s/ca.crt", cpdir);
	char *data = body ? json_dumps(body, JSON_COMPACT) : NULL;
	struct curl_slist *h = curl_slist_append(NULL, "Accept: application/json");
	if (data) {
		snprintf(hdr, sizeof(hdr), "Content-Type: %s", ctype);
		h = curl_slist_append(h, hdr);
	}
	CURL *e = curl_easy_init();
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(e, CURLOPT_SSLCERT, cert);
	curl_easy_setopt(e, CURLOPT_SSLKEY, key);
	curl_easy_setopt(e, CURLOPT_CAINFO, ca);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(e, CURLOPT_TIMEOUT, 30L);
	if (data)
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, data);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, buf_add);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, &b);
	*status = 0;
	if (curl_easy_perform(e) == CURLE_OK)
		curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, status);
	curl_easy_cleanup(e);
	curl_slist_free_all(h);
	free(data);
	json_t *out = b.s ? json_loads(b.s, 0, NULL) : NULL;
	free(b.s);
	return out;
}

/* cp_call until the server takes it: it may be restarting (no answer, 429
 * while its caches fill, 5xx), a new namespace may not have its default
 * ServiceAccount yet (pods refused), a new CRD may not be served yet (404). */
static json_t *cp_do(const char *method, const char *path, const char *ctype, json_t *body, long *status)
{
	double end = now_ms() + 30000;
	for (;;) {
		json_t *r = cp_call(method, path, ctype, body, status);
		const char *msg = json_string_value(json_object_get(r, "message"));
		bool again = *status == 0 || *status == 429 || *status >= 500 || *status == 409 ||
			     (*status == 404 && strcmp(method, "DELETE") && strcmp(method, "GET")) ||
			     (*status == 403 && msg && strstr(msg, "serviceaccount"));
		if (!again || now_ms() > end)
			return r;
		json_decref(r);
		usleep(100000);
	}
}

static void real_path(char *p, size_t len, const char *res, const char *ns, const char *name)
{
	if (!strcmp(res, "namespaces"))
		snprintf(p, len, "/api/v1/namespaces/%s", name);
	else if (!strcmp(res, "pods"))
		snprintf(p, len, "/api/v1/namespaces/%s/pods/%s", ns, name);
	else if (!strcmp(res, "networkpolicies"))
		snprintf(p, len, "/apis/networking.k8s.io/v1/namespaces/%s/networkpolicies/%s", ns, name);
	else
		snprintf(p, len, "/apis/corral.dev/v1/namespaces/%s/accesspolicies/%s", ns, name);
}

/* Deletes at once: no kubelet will confirm a pod's end (grace period 0, as
 * kubectl delete --force does). */
static void real_delete(const char *res, const char *ns, const char *name)
{
	char p[256];
	long st;
	real_path(p, sizeof(p), res, ns, name);
	json_decref(cp_do("DELETE", p, "application/json", json_pack("{s:s, s:s, s:i}", "apiVersion", "v1", "kind",
								  "DeleteOptions", "gracePeriodSeconds", 0), &st));
	assert_true(st == 200 || st == 202 || st == 404);
	double end = now_ms() + 30000;
	do {
		json_decref(cp_call("GET", p, NULL, NULL, &st));
		if (st == 404)
			return;
		usleep(50000);
	} while (now_ms() < end);
	fail_msg("%s %s/%s still there 30 s after its deletion", res, ns ? ns : "", name);
}

/* Server-side apply (created or updated; labels left out are removed);
 * a pod's status then written through the status subresource, as the
 * kubelet of its node does. A pod moved to another node or address is
 * deleted and created again (both are fixed for a pod's life). Returns
 * the status of the apply; with want_ok, anything but success fails. */
static long real_apply(const char *res, json_t *o, bool want_ok, char **msg)
{
	json_t *md = json_object_get(o, "metadata");
	const char *ns = json_string_value(json_object_get(md, "namespace"));
	const char *name = json_string_value(json_object_get(md, "name"));
	char p[256], q[300];
	long st;
	real_path(p, sizeof(p), res, ns, name);
	json_t *status = json_incref(json_object_get(o, "status"));
	if (!strcmp(res, "pods")) {
		json_object_del(o, "status");
		json_t *spec = json_object_get(o, "spec"), *c;
		size_t i;
		json_array_foreach(json_object_get(spec, "containers"), i, c) if (!json_object_get(c, "image"))
			json_object_set_new(c, "image", json_string("registry.example.com/server:1"));
		json_t *cur = cp_call("GET", p, NULL, NULL, &st);
		if (st == 200 && (!json_equal(json_object_get(json_object_get(cur, "spec"), "nodeName"),
					      json_object_get(spec, "nodeName")) ||
				  !json_equal(json_object_get(json_object_get(cur, "status"), "podIPs"),
					      json_object_get(status, "podIPs"))))
			real_delete(res, ns, name);
		json_decref(cur);
	}
	snprintf(q, sizeof(q), "%s?fieldManager=corral-test&force=true", p);
	json_t *r = cp_do("PATCH", q, "application/apply-patch+yaml", o, &st);
	if (msg)
		*msg = strdup(json_string_value(json_object_get(r, "message")) ?: "");
	if (want_ok && (st < 200 || st > 201))
		fail_msg("apply %s %s/%s: %ld %s", res, ns ? ns : "", name, st,
			 json_string_value(json_object_get(r, "message")) ?: "");
	json_decref(r);
	if (!strcmp(res, "pods") && status && st >= 200 && st <= 201) {
		long s2;
		snprintf(q, sizeof(q), "%s/status", p);
		json_decref(cp_do("PATCH", q, "application/strategic-merge-patch+json", json_pack("{s:O}", "status", status), &s2));
		assert_int_equal(s2, 200);
	}
	json_decref(status);
	json_decref(o);
	return st;
}

/* Every watch of the running agents expires: a write moves etcd past the
 * versions they hold, etcd is compacted there, and the API server
 * restarts (closing every watch; its new watch cache starts after the
 * compaction, so watching again from an older version gets 410). The
 * restart runs in the background: the caller probes meanwhile. */
static pid_t real_expire_watches(void)
{
	static int n;
	char p[128], *cmd;
	long st;
	snprintf(p, sizeof(p), "/api/v1/namespaces/default/configmaps/bump?fieldManager=corral-test&force=true");
	json_decref(cp_do("PATCH", p, "application/apply-patch+yaml",
			  json_pack("{s:s, s:s, s:{s:s}, s:{s:o}}", "apiVersion", "v1", "kind", "ConfigMap", "metadata", "name",
				    "bump", "data", "n", json_sprintf("%d", ++n)), &st));
	assert_true(st == 200 || st == 201);
	assert_true(asprintf(&cmd, "sh %s compact %s >/dev/null && exec sh %s restart %s >/dev/null", run_sh, cpdir,
			     run_sh, cpdir) >= 0);
	pid_t pid = fork();
	if (pid == 0) {
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	free(cmd);
	return pid;
}

/* Whether a background operation (pid; 0: none) still runs; once it
 * has ended (successfully, or the test fails), *pid is 0. */
static bool running(pid_t *pid)
{
	int st;
	if (!*pid || waitpid(*pid, &st, WNOHANG) != *pid)
		return *pid != 0;
	*pid = 0;
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	return false;
}

/* What each "file" holds in API mode: objects (resource, ns, name). */
static json_t *api_files;

static void api_delete(json_t *x)
{
	if (real)
		real_delete(json_string_value(json_object_get(x, "resource")),
			    json_string_value(json_object_get(x, "namespace")), json_string_value(json_object_get(x, "name")));
	else
		api_post("delete", json_incref(x));
}

static void api_put(const char *name, const char *text)
{
	struct vec docs = { 0 };
	char *err = NULL;
	if (!api_files)
		api_files = json_object();
	assert_int_equal(kube_yaml_parse(text, strlen(text), &docs, &err), 0);
	json_t *old = json_object_get(api_files, name), *now = json_array(), *x;
	for (size_t i = 0; i < docs.n; i++) {
		json_t *o = docs.v[i], *md = json_object_get(o, "metadata");
		const char *res = resource_of(json_string_value(json_object_get(o, "kind")));
		json_array_append_new(now, json_pack("{s:s, s:s?, s:s}", "resource", res, "namespace",
						     json_string_value(json_object_get(md, "namespace")), "name",
						     json_string_value(json_object_get(md, "name"))));
		if (real)
			real_apply(res, o, true, NULL);
		else
			api_post("apply", json_pack("{s:s, s:o}", "resource", res, "object", o));
	}
	size_t i;
	json_array_foreach(old, i, x) {
		bool kept = false;
		size_t j;
		json_t *y;
		json_array_foreach(now, j, y) kept |= json_equal(x, y);
		if (!kept)
			api_delete(x);
	}
	json_object_set_new(api_files, name, now);
	vec_free(&docs);
}

static void api_rm(const char *name)
{
	json_t *old = json_object_get(api_files, name), *x;
	size_t i;
	json_array_foreach(old, i, x) api_delete(x);
	json_object_del(api_files, name);
}

/* Files appear whole (write, then rename), as an editor or a config
 * management tool would do it; in API mode the objects go to the API. */
static void put(const char *name, const char *fmt, ...)
{
	char tmp[256], path[256], *s;
	va_list ap;
	va_start(ap, fmt);
	assert_true(vasprintf(&s, fmt, ap) >= 0);
	va_end(ap);
	if (apiserver) {
		api_put(name, s);
		free(s);
		return;
	}
	snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", dir, name);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(tmp, "w");
	assert_non_null(f);
	fputs(s, f);
	fclose(f);
	assert_int_equal(rename(tmp, path), 0);
	free(s);
}

static void rm(const char *name)
{
	char path[256];
	if (apiserver) {
		api_rm(name);
		return;
	}
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	unlink(path);
}

static void put_pod(int i, const char *name, const char *labels, int addr_of)
{
	char file[64], v4[32], v6[32];
	kc_pod_addr(addr_of, false, v4, sizeof(v4));
	kc_pod_addr(addr_of, true, v6, sizeof(v6));
	snprintf(file, sizeof(file), "pod-%c-%s.yaml", "xyz"[i / 3], name);
	put(file,
	    "apiVersion: v1\nkind: Pod\nmetadata: {name: %s, namespace: '%c', labels: {pod: %c%s%s}}\n"
	    "spec: {nodeName: node-%d, containers: [{name: s, ports: [{name: http, containerPort: 80}]}]}\n"
	    "status: {phase: Running, podIPs: [{ip: '%s'}, {ip: '%s'}]}\n",
	    name, "xyz"[i / 3], "abc"[i % 3], labels ? ", " : "", labels ? labels : "", kc_pod_node(addr_of) + 1, v4, v6);
}

static char sockdir[KC_NODES][128]; /* "" : the test folder */

static char *sock_path(int node)
{
	static char p[KC_NODES][160];
	snprintf(p[node], sizeof(p[node]), "%s/n%d.sock", sockdir[node][0] ? sockdir[node] : dir, node + 1);
	return p[node];
}

/* Starts the agent of a node; prefix runs before it (capability and
 * filesystem restrictions). */
static pid_t start_agent(int node, const char *prefix)
{
	char *cmd, *source;
	if (agents[node] > 0) { /* one agent per node */
		kill(agents[node], SIGTERM);
		waitpid(agents[node], NULL, 0);
	}
	if (apiserver)
		assert_true(asprintf(&source, "--source kube --kubeconfig %s/kubeconfig", dir) >= 0);
	else
		assert_true(asprintf(&source, "--source files:%s", dir) >= 0);
	if (prefix)
		assert_true(asprintf(&cmd, "exec ip netns exec %s-n%d %s %s %s --node-name node-%d "
					   "--socket %s --debounce-ms 5 >>%s/agent%d.log 2>&1",
				     kc.prefix, node + 1, prefix, agent_bin, source, node + 1, sock_path(node), dir,
				     node + 1) >= 0);
	else
		assert_true(asprintf(&cmd, "exec %s %s %s --node-name node-%d --netns /run/netns/%s-n%d "
					   "--socket %s %s >>%s/agent%d.log 2>&1",
				     agent_bin, source, extra_args ? extra_args : "", node + 1, kc.prefix, node + 1,
				     sock_path(node),
				     extra_args && strstr(extra_args, "--debounce-ms") ? "" : "--debounce-ms 5", dir,
				     node + 1) >= 0);
	free(source);
	pid_t pid = fork();
	if (pid == 0) {
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	free(cmd);
	agents[node] = pid;
	return pid;
}

static void stop_agent(int node, int sig)
{
	if (agents[node] <= 0)
		return;
	kill(agents[node], sig);
	waitpid(agents[node], NULL, 0);
	agents[node] = 0;
}

static json_t *ask(int node, json_t *req)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	const char *path = sock_path(node);
	if (strlen(path) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "socket path too long: %s\n", path);
		json_decref(req);
		return NULL;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	json_t *out = json_array();
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		json_decref(req);
		json_decref(out);
		return NULL;
	}
	char *line = json_dumps(req, JSON_COMPACT);
	dprintf(fd, "%s\n", line);
	free(line);
	json_decref(req);
	FILE *f = fdopen(fd, "r");
	char *buf = NULL;
	size_t cap = 0;
	while (getline(&buf, &cap, f) > 0) {
		json_t *o = json_loads(buf, 0, NULL);
		if (o)
			json_array_append_new(out, o);
	}
	free(buf);
	fclose(f);
	return out;
}

static bool synced(int node)
{
	json_t *r = ask(node, json_pack("{s:s}", "cmd", "status"));
	bool ok = r && json_is_true(json_object_get(json_object_get(json_array_get(r, 0), "data"), "synced"));
	json_decref(r);
	return ok;
}

static void wait_synced(int node)
{
	double end = now_ms() + 5000;
	while (!synced(node) && now_ms() < end)
		usleep(20000);
	assert_true(synced(node));
}

/* One TCP connection attempt, from pod i to pod j port 80. */
static bool reach(int i, int j, int timeout_ms)
{
	int fd = kc_connect(&kc, i, j, 80, timeout_ms);
	if (fd >= 0)
		close(fd);
	return fd >= 0;
}

/* reach() as wanted (500 ms to connect, 150 when it should not); when
 * not, what the nodes' conntrack tables and drop counters held, for the
 * log. */
static bool reach_or_dump(int i, int j, bool want)
{
	if (reach(i, j, want ? 500 : 150) == want)
		return true;
	fprintf(stderr, "pod %d -> pod %d: %s, not as wanted; conntrack and counters of each node:\n", i, j,
		want ? "dropped" : "allowed");
	for (int k = 0; k < KC_NODES; k++) {
		char *cmd;
		if (asprintf(&cmd, "ip netns exec %s-n%d conntrack -L 2>/dev/null | grep -v 'dport=53 ' >&2; "
				   "ip netns exec %s-n%d nft list table inet corral 2>/dev/null | "
				   "grep -E 'counter packets [1-9]' >&2", kc.prefix, k + 1, kc.prefix, k + 1) >= 0) {
			fprintf(stderr, "-- node-%d\n", k + 1);
			if (system(cmd) < 0)
				perror("system");
			free(cmd);
		}
		/* what the node's agent says of the flow, and its last drops */
		char src[8], dst[8];
		snprintf(src, sizeof(src), "%c/%c", "xyz"[i / 3], "abc"[i % 3]);
		snprintf(dst, sizeof(dst), "%c/%c", "xyz"[j / 3], "abc"[j % 3]);
		json_t *r = ask(k, json_pack("{s:s, s:s, s:s, s:i}", "cmd", "explain", "src", src, "dst", dst, "port", 80));
		char *t = r ? json_dumps(r, JSON_COMPACT) : NULL;
		fprintf(stderr, "explain %s -> %s on node-%d: %s\n", src, dst, k + 1, t ? t : "(no answer)");
		free(t);
		json_decref(r);
		r = ask(k, json_pack("{s:s, s:b, s:b}", "cmd", "drops", "follow", 0, "explain", 0));
		t = r ? json_dumps(r, JSON_COMPACT) : NULL;
		fprintf(stderr, "drops on node-%d: %.3000s\n", k + 1, t ? t : "(no answer)");
		free(t);
		json_decref(r);
	}
	return false;
}

/* Waits until the verdict is the expected one; returns how long it took. */
static double until_ms(int i, int j, bool want, int limit)
{
	double t0 = now_ms();
	while (now_ms() - t0 < limit) {
		if (reach(i, j, want ? 300 : 150) == want)
			return now_ms() - t0;
	}
	fail_msg("pod %d -> pod %d: still %s after %d ms", i, j, want ? "dropped" : "allowed", limit);
	return -1;
}

static double until(int i, int j, bool want)
{
	return until_ms(i, j, want, 5000);
}

static char *metrics(int node)
{
	struct cmd {
		int fd;
	};
	char *cmd;
	static char buf[65536];
	assert_true(asprintf(&cmd, "ip netns exec %s-n%d curl -s http://127.0.0.1:9464/metrics", kc.prefix, node + 1) >= 0);
	FILE *p = popen(cmd, "r");
	size_t n = fread(buf, 1, sizeof(buf) - 1, p);
	buf[n] = 0;
	pclose(p);
	free(cmd);
	return strdup(buf);
}

/* A real control plane of our own (stopped by teardown, or by itself if
 * this process dies first), deploy/crd and deploy/rbac.yaml applied, and
 * a kubeconfig for the agent holding what a pod of the DaemonSet gets: a
 * token of the corral-agent ServiceAccount from the TokenRequest API in a
 * file (re-read by the agent, as the kubelet rotates it) and the CA. */
static void real_up(void)
{
	char *cmd, owner[32], path[128];
	long st;
	snprintf(cpdir, sizeof(cpdir), "/tmp/corral-agent-cp-XXXXXX");
	assert_non_null(mkdtemp(cpdir));
	snprintf(owner, sizeof(owner), "%d", (int)getpid());
	setenv("CORRAL_CP_OWNER", owner, 1);
	double t0 = now_ms();
	assert_true(asprintf(&cmd, "sh %s up %s >%s/cp-up.log 2>&1 || { cat %s/cp-up.log >&2; exit 1; }", run_sh, cpdir,
			     dir, dir) >= 0);
	assert_int_equal(system(cmd), 0);
	free(cmd);
	snprintf(path, sizeof(path), "%s/url", cpdir);
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	assert_non_null(fgets(cp_url, sizeof(cp_url), f));
	fclose(f);
	cp_url[strcspn(cp_url, "\n")] = 0;
	assert_true(asprintf(&cmd, "%s/kubectl apply -f %s/deploy/crd -f %s/deploy/rbac.yaml >/dev/null && %s/kubectl wait "
				   "--for=condition=Established --timeout=60s crd/accesspolicies.corral.dev >/dev/null",
			     cpdir, repo, repo, cpdir) >= 0);
	assert_int_equal(system(cmd), 0);
	free(cmd);
	json_t *tr = cp_do("POST", "/api/v1/namespaces/corral-system/serviceaccounts/corral-agent/token", "application/json",
			   json_pack("{s:s, s:s, s:{s:i}}", "apiVersion", "authentication.k8s.io/v1", "kind", "TokenRequest",
				     "spec", "expirationSeconds", 3600), &st);
	const char *tok = json_string_value(json_object_get(json_object_get(tr, "status"), "token"));
	assert_int_equal(st, 201);
	assert_non_null(tok);
	snprintf(path, sizeof(path), "%s/sa", dir);
	mkdir(path, 0700);
	snprintf(path, sizeof(path), "%s/sa/token", dir);
	f = fopen(path, "w");
	fputs(tok, f);
	fclose(f);
	json_decref(tr);
	assert_true(asprintf(&cmd, "cp %s/ca.crt %s/sa/ca.crt", cpdir, dir) >= 0);
	assert_int_equal(system(cmd), 0);
	free(cmd);
	snprintf(path, sizeof(path), "%s/kubeconfig", dir);
	f = fopen(path, "w");
	fprintf(f, "apiVersion: v1\nkind: Config\ncurrent-context: t\nclusters: [{name: c, cluster: {server: '%s', "
		   "certificate-authority: '%s/sa/ca.crt'}}]\nusers: [{name: u, user: {tokenFile: '%s/sa/token'}}]\n"
		   "contexts: [{name: t, context: {cluster: c, user: u}}]\n", cp_url, dir, dir);
	fclose(f);
	printf("  real control plane at %s, ready in %.1f s (CRD and RBAC applied, ServiceAccount token minted)\n", cp_url,
	       (now_ms() - t0) / 1000);
}

static int setup(void **state)
{
	snprintf(dir, sizeof(dir), "/tmp/corral-agent-test-XXXXXX");
	assert_non_null(mkdtemp(dir));
	if (kc_up(&kc, script, real ? "crr" : apiserver ? "crk" : "cra") < 0)
		return -1;
	if (real) {
		real_up();
	} else if (apiserver) {
		int p[2];
		assert_int_equal(pipe(p), 0);
		api_pid = fork();
		if (api_pid == 0) {
			dup2(p[1], 1);
			close(p[0]);
			execlp("python3", "python3", apiserver, "--token", "agent-token", (char *)NULL);
			_exit(127);
		}
		close(p[1]);
		FILE *f = fdopen(p[0], "r");
		char line[64] = "";
		assert_non_null(fgets(line, sizeof(line), f));
		fclose(f);
		assert_int_equal(sscanf(line, "listening %d", &api_port), 1);
		char path[128];
		snprintf(path, sizeof(path), "%s/kubeconfig", dir);
		f = fopen(path, "w");
		fprintf(f, "apiVersion: v1\nkind: Config\ncurrent-context: t\nclusters: [{name: c, cluster: {server: "
			   "'http://127.0.0.1:%d'}}]\nusers: [{name: u, user: {token: agent-token}}]\n"
			   "contexts: [{name: t, context: {cluster: c, user: u}}]\n", api_port);
		fclose(f);
	}
	put("namespaces.yaml", "apiVersion: v1\nkind: Namespace\nmetadata: {name: x, labels: {ns: x}}\n---\n"
			       "apiVersion: v1\nkind: Namespace\nmetadata: {name: 'y', labels: {ns: 'y'}}\n---\n"
			       "apiVersion: v1\nkind: Namespace\nmetadata: {name: z, labels: {ns: z}}\n");
	for (int i = 0; i < KC_PODS; i++) {
		char n[2] = { "abc"[i % 3], 0 };
		put_pod(i, n, NULL, i);
	}
	return 0;
}

static int teardown(void **state)
{
	for (int k = 0; k < KC_NODES; k++)
		stop_agent(k, SIGTERM);
	char *del;
	if (asprintf(&del, "ip netns del %s-w1 2>/dev/null", kc.prefix) >= 0) { /* provisional_reads_node_pods' */
		if (system(del)) {
		}
		free(del);
	}
	kc_down(&kc);
	if (cpdir[0]) {
		char *cmd;
		if (asprintf(&cmd, "sh %s down %s", run_sh, cpdir) >= 0) {
			if (system(cmd)) {
			}
			free(cmd);
		}
	}
	if (api_pid > 0) {
		kill(api_pid, SIGKILL);
		waitpid(api_pid, NULL, 0);
	}
	json_decref(api_files);
	char *cmd;
	if (asprintf(&cmd, "cat %s/agent*.log >&2; rm -rf %s", dir, dir) >= 0) {
		if (system(cmd)) {
		}
		free(cmd);
	}
	return 0;
}

static const char *policy =
	"apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p1, namespace: x}\n"
	"spec:\n  podSelector: {matchLabels: {pod: a}}\n  ingress:\n"
	"  - from: [{podSelector: {matchLabels: {role: client}}}, {namespaceSelector: {matchLabels: {ns: z}}}]\n"
	"    ports: [{port: 80}]\n";

/* Objects written to the folder are enforced on the right node; labels,
 * deletions and an address reused by a new pod take effect. */
static void objects_take_effect(void **state)
{
	for (int k = 0; k < KC_NODES; k++)
		start_agent(k, NULL);
	wait_synced(0);
	wait_synced(1);
	assert_true(reach(YA, XA, 500)); /* nothing isolates x/a yet */
	put("policy.yaml", "%s", policy);
	printf("  policy created -> verdict changed in %.1f ms\n", until(YA, XA, false));
	assert_true(reach(ZA, XA, 500));
	assert_false(reach(XB, XA, 200));
	/* x/b (on node-2) gets the client label: node-1 lets it in */
	put_pod(XB, "b", "role: client", XB);
	printf("  label added -> verdict changed in %.1f ms\n", until(XB, XA, true));
	/* z/b deleted: its address leaves the peer set */
	rm("pod-z-b.yaml");
	printf("  pod deleted -> verdict changed in %.1f ms\n", until(ZB, XA, false));
	/* a new pod x/new takes z/b's address: the address now means x/new */
	put_pod(XC, "new", "role: server", ZB);
	assert_false(reach(ZB, XA, 200));
	put_pod(XC, "new", "role: client", ZB);
	printf("  address reused by a client pod -> verdict changed in %.1f ms\n", until(ZB, XA, true));
	rm("pod-x-new.yaml");
	put_pod(ZB, "b", NULL, ZB);
	until(ZB, XA, true);
}

static json_t *status_of(int node);
static long long metric_value(int node, const char *sample);

/* The debounce adapts: a change after a quiet debounceMs goes to the
 * kernel at once; one within debounceMs of the last transaction waits for
 * the end of that interval, gathering what comes meanwhile. Each change's
 * latency (in -> acknowledged by the kernel) is in status and /metrics. */
static void debounce_adapts(void **state)
{
	if (!apiserver)
		skip(); /* the files source waits debounceMs for written files to settle */
	extra_args = "--debounce-ms 2500";
	start_agent(0, NULL);
	extra_args = NULL;
	wait_synced(0);
	assert_true(reach(XB, XA, 500)); /* x/b is a client (objects_take_effect) */
	usleep(2700000);                 /* quiet for longer than debounceMs */
	put_pod(XB, "b", NULL, XB);
	double idle = until(XB, XA, false);
	printf("  label removed after a quiet interval -> verdict changed in %.1f ms (debounceMs 2500)\n", idle);
	assert_true(idle < 1500);
	put_pod(XB, "b", "role: client", XB); /* right after a transaction: held */
	double held = until(XB, XA, true);
	printf("  label added %.0f ms after the last transaction -> verdict changed in %.1f ms\n", idle, held);
	assert_true(held > 1000);
	json_t *d = status_of(0), *ch = json_object_get(d, "changes");
	assert_true(json_integer_value(json_object_get(json_object_get(ch, "pod"), "count")) >= 2);
	assert_true(json_integer_value(json_object_get(ch, "transactions_held")) >= 1);
	json_t *pod = json_object_get(ch, "pod"), *work = json_object_get(pod, "debounce_excluded");
	double p99 = json_real_value(json_object_get(pod, "p99_ms"));
	assert_true(p99 > 1000 && p99 < 5000); /* the held one */
	/* the same changes less the debounce's hold: the held one took the
	 * agent a transaction's time, not debounceMs */
	double work_max = json_real_value(json_object_get(work, "max_ms"));
	printf("  pod changes: max %.1f ms in, %.1f ms with the debounce's hold excluded\n",
	       json_real_value(json_object_get(pod, "max_ms")), work_max);
	assert_true(work && work_max > 0 && work_max < 500);
	json_decref(d);
	assert_true(metric_value(0, "corral_change_to_kernel_seconds_count{object=\"pod\"}") >= 2);
	assert_true(metric_value(0, "corral_change_in_agent_seconds_count{object=\"pod\"}") ==
		    metric_value(0, "corral_change_to_kernel_seconds_count{object=\"pod\"}"));
	assert_true(metric_value(0, "corral_change_in_agent_seconds_bucket{object=\"pod\",le=\"0.5\"}") ==
		    metric_value(0, "corral_change_in_agent_seconds_count{object=\"pod\"}"));
	/* a transaction that sends nothing (a pod of another node created
	 * before its address) holds nothing back: the change right after it
	 * goes at once, as after any quiet interval */
	usleep(2700000);
	put("pod-z-idle.yaml", "%s", "apiVersion: v1\nkind: Pod\nmetadata: {name: idle, namespace: z, labels: {pod: idle}}\n"
				      "spec: {nodeName: node-2, containers: [{name: s}]}\nstatus: {phase: Pending}\n");
	usleep(300000);
	put_pod(XB, "b", NULL, XB);
	double after_empty = until(XB, XA, false);
	printf("  label removed 300 ms after a transaction that sent nothing -> verdict changed in %.1f ms\n",
	       after_empty);
	assert_true(after_empty < 1500);
	put_pod(XB, "b", "role: client", XB);
	until(XB, XA, true);
	start_agent(0, NULL);
	wait_synced(0);
}

/* Restarting the agent (cleanly or by a crash) never opens the node nor
 * breaks established allowed connections: the table stays in force until
 * the new agent's first transaction replaces it in one step. */
static void restart_keeps_enforcement(void **state)
{
	int conn = kc_connect(&kc, ZB, XA, 80, 1000);
	assert_true(conn >= 0);
	for (int round = 0; round < 2; round++) {
		int sig = round ? SIGKILL : SIGTERM;
		stop_agent(0, sig);
		int probes = 0;
		double t0 = now_ms();
		start_agent(0, NULL);
		while (!synced(0) || now_ms() - t0 < 400) {
			assert_false(reach(YA, XA, 100)); /* must stay dropped */
			assert_true(reach(ZA, XA, 500));  /* must stay allowed */
			probes++;
			assert_true(now_ms() - t0 < 10000);
		}
		assert_true(kc_conn_alive(&kc, conn, 1000));
		printf("  restart after %s: %d probe pairs during the restart, none wrong\n",
		       sig == SIGKILL ? "SIGKILL" : "SIGTERM", probes);
	}
	close(conn);
	if (apiserver)
		return;
	/* a folder that no longer parses keeps the last good objects */
	put("policy.yaml", "%s  - from: [{podSelector: {matchLabels: {oops", policy);
	usleep(200000);
	assert_false(reach(YA, XA, 200));
	assert_true(reach(ZA, XA, 500));
	json_t *r = ask(0, json_pack("{s:s}", "cmd", "status"));
	char *t = json_dumps(r, 0);
	assert_non_null(strstr(t, "previous objects kept"));
	free(t);
	json_decref(r);
	put("policy.yaml", "%s", policy);
}

/* A real dropped packet shows up in `drops` with its pods and policy. */
static void drops_are_reported(void **state)
{
	assert_false(reach(YC, XA, 200));
	usleep(100000);
	json_t *r = ask(0, json_pack("{s:s, s:b, s:b}", "cmd", "drops", "follow", 0, "explain", 1));
	assert_non_null(r);
	bool found = false;
	size_t i;
	json_t *d;
	json_array_foreach(r, i, d) {
		const char *sp = json_string_value(json_object_get(d, "source_pod"));
		const char *dp = json_string_value(json_object_get(d, "destination_pod"));
		const char *pol = json_string_value(json_object_get(d, "policies"));
		if (sp && dp && !strcmp(sp, "y/c") && !strcmp(dp, "x/a")) {
			found = true;
			assert_string_equal(json_string_value(json_object_get(d, "direction")), "ingress");
			assert_int_equal(json_integer_value(json_object_get(d, "port")), 80);
			assert_string_equal(pol, "NetworkPolicy x/p1");
			assert_non_null(strstr(json_string_value(json_object_get(d, "explain")), "DENIED"));
			printf("  %s\n", json_string_value(json_object_get(d, "text")));
		}
	}
	json_decref(r);
	assert_true(found);
	/* --follow: a drop that happens after subscribing is streamed */
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	assert_true(strlen(sock_path(0)) < sizeof(sa.sun_path));
	memcpy(sa.sun_path, sock_path(0), strlen(sock_path(0)) + 1);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	dprintf(fd, "{\"cmd\": \"drops\", \"follow\": true}\n");
	usleep(100000);
	char buf[65536];
	while (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) > 0) /* the ring's backlog */
		;
	assert_false(reach(YB, XA, 200)); /* y/b may not reach x/a: one drop */
	struct timeval tv = { 2, 0 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0);
	assert_true(n > 0);
	buf[n] = 0;
	assert_non_null(strstr(buf, "\"source_pod\":\"y/b\""));
	close(fd);
}

static double sh_number(const char *fmt, ...);

/* The value of one sample of node's /metrics (the whole line up to the
 * value, e.g. "corral_ready"), or -1 when it is missing. */
static long long metric_value(int node, const char *sample)
{
	char *m = metrics(node), *key;
	assert_true(asprintf(&key, "\n%s ", sample) >= 0);
	char *at = strstr(m, key);
	long long v = at ? strtoll(at + strlen(key), NULL, 10) : -1;
	free(key);
	free(m);
	return v;
}

static const char *p1_drops =
	"corral_dropped_packets_total{direction=\"ingress\",reason=\"policy\",namespace=\"x\",policy=\"NetworkPolicy/p1\"}";

/* Sends n datagrams from pod i to j:port, a few at a time (the veths'
 * queues are short). */
static void send_udp(int i, int j, int port, int n)
{
	int fd = kc_udp_open(&kc, i, j, port, false);
	assert_true(fd >= 0);
	for (int k = 0; k < n; k++) {
		while (send(fd, "x", 1, 0) < 0)
			usleep(100);
		if (k % 100 == 99)
			usleep(2000);
	}
	close(fd);
	usleep(100000);
}

/* The applied ruleset's text (agentctl dump), kept until the next call. */
static const char *ask_dump(int node)
{
	static char *text;
	free(text);
	json_t *r = ask(node, json_pack("{s:s}", "cmd", "dump"));
	const char *t = json_string_value(json_object_get(json_array_get(r, 0), "text"));
	text = strdup(t ? t : "");
	json_decref(r);
	return text;
}

/* Drop counts are the kernel's counters, not the rate-limited logs: every
 * dropped datagram is counted, by namespace and policy, and none is lost
 * when the chain that counted them is rewritten (the counters are read
 * first) or between two scrapes. */
static void drops_counted_exactly(void **state)
{
	long long before = metric_value(0, p1_drops);
	long long logs = metric_value(0, "corral_drop_logs_total{direction=\"ingress\"}");
	assert_true(before >= 0);
	/* the agent watches the node's links: the unclassified-address chains
	 * count into a reason of their own, both directions */
	assert_true(metric_value(0, "corral_dropped_packets_total{direction=\"egress\",reason=\"unclassified\","
				    "namespace=\"\",policy=\"\"}") >= 0);
	assert_true(metric_value(0, "corral_dropped_packets_total{direction=\"ingress\",reason=\"unclassified\","
				    "namespace=\"\",policy=\"\"}") >= 0);
	send_udp(YA, XA, 80, 2000);
	long long after = metric_value(0, p1_drops);
	long long logged = metric_value(0, "corral_drop_logs_total{direction=\"ingress\"}") - logs;
	printf("  2000 datagrams dropped: counted %lld, logged %lld (rate-limited)\n", after - before, logged);
	assert_int_equal(after - before, 2000);
	assert_true(logged < 200);
	/* the chain is rewritten (another port) with 500 drops not yet read:
	 * read first, that chain alone (a dump of the whole table took
	 * milliseconds at 20,000 policies, on the path of every change) */
	const char *tbl = "corral_drop_counter_reads_total{scope=\"table\"}",
		   *chn = "corral_drop_counter_reads_total{scope=\"chain\"}";
	long long t0r = metric_value(0, tbl), t1r = metric_value(0, tbl); /* what a scrape reads itself */
	long long c0r = metric_value(0, chn);
	send_udp(YA, XA, 80, 500);
	put("policy.yaml", "%s", "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p1, namespace: x}\n"
				  "spec:\n  podSelector: {matchLabels: {pod: a}}\n  ingress:\n"
				  "  - from: [{podSelector: {matchLabels: {role: client}}}, {namespaceSelector: {matchLabels: {ns: z}}}]\n"
				  "    ports: [{port: 80}, {port: 8081}]\n");
	double t0 = now_ms();
	while (!strstr(ask_dump(0), "tcp . 8081") && now_ms() - t0 < 5000)
		usleep(20000);
	/* the premise: the kernel's counter started again from 0 */
	char *cmd;
	assert_true(asprintf(&cmd, "ip netns exec %s-n1 nft list table inet corral | "
				   "awk '/counter packets/ {for (i = 1; i < NF; i++) if ($i == \"packets\") s += $(i + 1)} "
				   "END {print s + 0}'", kc.prefix) >= 0);
	double in_kernel = sh_number("%s", cmd);
	free(cmd);
	long long t2r = metric_value(0, tbl), c2r = metric_value(0, chn);
	printf("  table dumps by a scrape %lld, by the rewrite %lld; chain dumps %lld\n", t1r - t0r,
	       t2r - t1r - 2 * (t1r - t0r), c2r - c0r);
	assert_true(t1r - t0r >= 1);
	assert_int_equal(t2r - t1r, 2 * (t1r - t0r)); /* the two scrapes since, nothing else */
	assert_true(c2r - c0r >= 1);
	send_udp(YA, XA, 80, 300);
	long long last = metric_value(0, p1_drops);
	printf("  chain rewritten between drops: counted %lld of 800 (the kernel's counters held %.0f after the "
	       "rewrite)\n", last - after, in_kernel);
	assert_true(in_kernel < 500);
	assert_int_equal(last - after, 800);
	put("policy.yaml", "%s", policy);
	until(YA, XA, false);
}

/* A `drops --follow` subscriber that stops reading costs the agent
 * nothing: it loses lines (counted, in status and metrics), while the
 * control socket keeps answering and a change reaches the kernel at once. */
static void stalled_follower_costs_nothing(void **state)
{
	char conf[128], *args;
	snprintf(conf, sizeof(conf), "%s.flood.conf", dir);
	FILE *f = fopen(conf, "w");
	fputs("logRate: 10000\nlogBurst: 10000\n", f);
	fclose(f);
	assert_true(asprintf(&args, "--config %s", conf) >= 0);
	extra_args = args;
	start_agent(0, NULL);
	extra_args = NULL;
	wait_synced(0);
	/* subscribe with explanations (long lines) and never read */
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	assert_true(strlen(sock_path(0)) < sizeof(sa.sun_path));
	memcpy(sa.sun_path, sock_path(0), strlen(sock_path(0)) + 1);
	int sub = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int small = 4096;
	setsockopt(sub, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	assert_int_equal(connect(sub, (struct sockaddr *)&sa, sizeof(sa)), 0);
	dprintf(sub, "{\"cmd\": \"drops\", \"follow\": true, \"explain\": true}\n");
	/* y/a may not reach x/a: every datagram is a logged drop */
	int flood = kc_udp_open(&kc, YA, XA, 80, false);
	assert_true(flood >= 0);
	/* flood until the subscriber's buffers are full and lines are lost
	 * (how many drops that takes depends on how fast the agent logs
	 * them: NFLOG itself drops what a slow reader cannot take), timing
	 * the control socket all along */
	double worst = 0;
	json_int_t lost = 0, followers = 0;
	int round;
	for (round = 0; round < 80 && (round < 10 || !lost); round++) {
		for (int k = 0; k < 500; k++)
			if (send(flood, "x", 1, 0) < 0)
				usleep(100);
		usleep(20000);
		double t0 = now_ms();
		json_t *r = ask(0, json_pack("{s:s}", "cmd", "status"));
		double took = now_ms() - t0;
		assert_non_null(r);
		json_t *d = json_object_get(json_array_get(r, 0), "data");
		lost = json_integer_value(json_object_get(d, "drop_lines_lost"));
		followers = json_integer_value(json_object_get(d, "drop_followers"));
		json_decref(r);
		worst = took > worst ? took : worst;
	}
	close(flood);
	printf("  %d drops sent to a subscriber that does not read: %lld lines lost, %lld still following, "
	       "slowest status answer %.1f ms\n", round * 500, (long long)lost, (long long)followers, worst);
	assert_true(lost > 0);
	assert_int_equal(followers, 1);
	assert_true(worst < 500);
	char *m = metrics(0);
	assert_non_null(strstr(m, "corral_drop_lines_lost_total "));
	free(m);
	/* a change still reaches the kernel at once */
	assert_false(reach(XC, XA, 150));
	put_pod(XC, "c", "role: client", XC);
	double ms = until(XC, XA, true);
	printf("  a change took effect in %.1f ms with the subscriber stalled\n", ms);
	assert_true(ms < 1500);
	put_pod(XC, "c", NULL, XC);
	until(XC, XA, false);
	close(sub);
	start_agent(0, NULL);
	wait_synced(0);
	unlink(conf);
	free(args);
}

/* Runs a shell command, returns its first line of output as a number. */
static double sh_number(const char *fmt, ...)
{
	char *cmd, out[64] = "";
	va_list ap;
	va_start(ap, fmt);
	assert_true(vasprintf(&cmd, fmt, ap) >= 0);
	va_end(ap);
	FILE *p = popen(cmd, "r");
	assert_non_null(fgets(out, sizeof(out), p) ? out : NULL);
	pclose(p);
	free(cmd);
	return atof(out);
}

static json_t *status_of(int node);

/* Against the real server: one TCP connection per agent carries every
 * list and watch (HTTP/2 negotiated by ALPN, streams multiplexed: four
 * watches at once could not share one HTTP/1.1 connection); and whether
 * the first sync came from LISTs or from WatchList streams
 * (sendInitialEvents), read off the API server's request counters. */
static void api_one_connection_per_agent(void **state)
{
	if (!real)
		skip();
	const char *port = strrchr(cp_url, ':') + 1;
	char *lists;
	assert_true(asprintf(&lists, "curl -s --cacert %s/ca.crt --cert %s/pki/admin.crt --key %s/pki/admin.key %s/metrics "
				     "| grep '^apiserver_request_total{' | grep 'resource=\"pods\"' | grep 'verb=\"LIST\"' "
				     "| awk '{s += $NF} END {print s + 0}'",
			     cpdir, cpdir, cpdir, cp_url) >= 0);
	double before = sh_number("%s", lists);
	start_agent(1, NULL);
	wait_synced(1);
	double after = sh_number("%s", lists);
	if (agents[0] <= 0)
		start_agent(0, NULL);
	wait_synced(0);
	usleep(500000); /* every watch started */
	for (int k = 0; k < KC_NODES; k++) {
		json_t *d = status_of(k);
		json_int_t watches = json_integer_value(json_object_get(json_object_get(d, "source_state"), "watches"));
		json_decref(d);
		int conns = (int)sh_number("ss -tnpH state established '( dport = :%s )' | grep -c 'pid=%d,'", port,
					   (int)agents[k]);
		printf("  agent of node-%d: %d TCP connection(s) to the API server for %lld watches so far\n", k + 1, conns,
		       (long long)watches);
		assert_true(watches >= 4);
		/* the agent just restarted has only its lists and watches: one
		 * connection; one that has posted drop Events may hold a second,
		 * the Events writer's own (a slow API server never holds the
		 * watches up) */
		assert_true(conns == 1 || (k != 0 && conns == 2));
	}
	printf("  first sync of a restarted agent: %.0f LIST request(s) for pods at the API server: %s\n", after - before,
	       after > before ? "LIST, not WatchList (sendInitialEvents is off in the agent)" : "WatchList");
	free(lists);
}

/* An invalid AccessPolicy isolates its pods and allows nothing; the other
 * policies keep working; status and metrics name it. */
static void invalid_policy_isolates(void **state)
{
	put_pod(XC, "c", "app: web", XC);
	until(YA, XC, true); /* x/c is not isolated yet */
	if (real) {
		/* the real server refuses it (the CRD's schema): nothing to enforce */
		char *msg = NULL;
		struct vec docs = { 0 };
		char *err = NULL;
		static const char *bad = "apiVersion: corral.dev/v1\nkind: AccessPolicy\nmetadata: {name: web, namespace: x}\n"
					 "spec:\n  application: web\n  inbound:\n    rules: [{application: '*', namespace: '*', "
					 "ports: [{port: 0}]}]\n";
		assert_int_equal(kube_yaml_parse(bad, strlen(bad), &docs, &err), 0);
		assert_int_equal(real_apply("accesspolicies", docs.v[0], false, &msg), 422);
		printf("  refused by the API server: %s\n", msg);
		assert_non_null(strstr(msg, "spec.inbound.rules[0].ports[0].port"));
		free(msg);
		vec_free(&docs);
		assert_true(reach(YA, XC, 500));
		return;
	}
	put("web.yaml", "apiVersion: corral.dev/v1\nkind: AccessPolicy\nmetadata: {name: web, namespace: x}\n"
			"spec:\n  application: web\n  inbound:\n    rules: [{application: '*', namespace: '*', ports: [{port: 0}]}]\n");
	until(YA, XC, false);
	assert_true(reach(ZA, XA, 500));
	json_t *r = ask(0, json_pack("{s:s}", "cmd", "status"));
	char *t = json_dumps(r, 0);
	/* from the API server, an object the server accepted and we refuse is
	 * one we could not read (fail closed); from a file, one that is invalid */
	assert_non_null(strstr(t, apiserver ? "AccessPolicy x/web could not be read; enforced fail-closed"
					     : "AccessPolicy x/web is invalid"));
	free(t);
	json_decref(r);
	char *m = metrics(0);
	assert_non_null(strstr(m, "corral_policies{kind=\"AccessPolicy\",valid=\"false\"} 1"));
	assert_non_null(strstr(m, apiserver ? "corral_source_objects_unreadable{kind=\"AccessPolicy\"} 1"
					    : "corral_source_objects_unreadable{kind=\"AccessPolicy\"} 0"));
	free(m);
	rm("web.yaml");
	until(YA, XC, true);
}

/* The agent needs CAP_NET_ADMIN and nothing else, and a writable /tmp only:
 * run it that way (bounding set cut to NET_ADMIN, root filesystem
 * read-only in its own mount namespace) and it still enforces and reports
 * drops, as the DaemonSet's security context asks. */
static void least_privilege_is_enough(void **state)
{
	if (apiserver) /* run inside the node namespace, it cannot reach a test API server on the host */
		skip();
	stop_agent(0, SIGTERM);
	char *prefix;
	/* the socket's folder stays writable (a bind mount of its own, as the
	 * DaemonSet's emptyDir); everything else is read-only */
	snprintf(sockdir[0], sizeof(sockdir[0]), "%s.sock", dir);
	mkdir(sockdir[0], 0700);
	assert_true(asprintf(&prefix, "unshare --mount --propagation private sh -c 'mount --bind %s %s && "
				      "mount -o remount,bind,ro / && exec setpriv --bounding-set=-all,+net_admin "
				      "--inh-caps=-all --no-new-privs \"$0\" \"$@\"'",
			     sockdir[0], sockdir[0]) >= 0);
	start_agent(0, prefix);
	free(prefix);
	wait_synced(0);
	put("policy.yaml", "%s", policy); /* touch: a transaction under restricted capabilities */
	assert_false(reach(YB, XA, 200));
	assert_true(reach(ZA, XA, 500));
	/* the capability set really was cut */
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%d/status", agents[0]);
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	bool checked = false;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "CapEff:", 7)) {
			unsigned long long eff = strtoull(line + 7, NULL, 16);
			printf("  agent CapEff %llx (CAP_NET_ADMIN only: %llx)\n", eff, 1ULL << 12);
			assert_true(eff == 1ULL << 12);
			checked = true;
		}
	fclose(f);
	assert_true(checked);
	usleep(100000);
	json_t *r = ask(0, json_pack("{s:s, s:b, s:b}", "cmd", "drops", "follow", 0, "explain", 0));
	char *t = json_dumps(r, 0);
	if (!strstr(t, "\"source_pod\": \"y/b\""))
		fprintf(stderr, "drops: %s\n", t);
	assert_non_null(strstr(t, "\"source_pod\": \"y/b\""));
	free(t);
	json_decref(r);
	stop_agent(0, SIGTERM);
	rmdir(sockdir[0]);
	sockdir[0][0] = 0;
}

/* The API server goes away (stopped, then answering 503): the last
 * ruleset keeps enforcing; when it is back, changes flow again. */
static void api_outage_keeps_ruleset(void **state)
{
	if (!apiserver)
		skip();
	start_agent(0, NULL);
	wait_synced(0);
	if (real) {
		/* the real outage: kube-apiserver stopped (every watch closed,
		 * connections refused), then started again (429s while its caches
		 * fill); probed all along */
		char *cmd;
		int probes = 0;
		assert_true(asprintf(&cmd, "exec sh %s restart %s >/dev/null", run_sh, cpdir) >= 0);
		pid_t r = fork();
		if (r == 0) {
			execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
			_exit(127);
		}
		free(cmd);
		double t0 = now_ms();
		while (running(&r)) {
			assert_false(reach(YA, XA, 150));
			assert_true(reach(ZA, XA, 500));
			probes++;
			assert_true(now_ms() - t0 < 120000);
		}
		printf("  API server restarted in %.1f s: %d probe pairs meanwhile, none wrong\n", (now_ms() - t0) / 1000,
		       probes);
	} else {
		kill(api_pid, SIGSTOP);
		for (int i = 0; i < 5; i++) {
			assert_false(reach(YA, XA, 150));
			assert_true(reach(ZA, XA, 500));
			usleep(200000);
		}
		kill(api_pid, SIGCONT);
		api_post("fault", json_pack("{s:s, s:i, s:i}", "name", "status", "count", 6, "code", 503));
		api_post("closeall", json_object());
	}
	for (int i = 0; i < 3; i++) {
		assert_false(reach(YA, XA, 150));
		assert_true(reach(ZA, XA, 500));
	}
	static const char *ns_yz =
		"apiVersion: v1\nkind: Namespace\nmetadata: {name: x, labels: {ns: x}}\n---\n"
		"apiVersion: v1\nkind: Namespace\nmetadata: {name: 'y', labels: {ns: '%s'}}\n---\n"
		"apiVersion: v1\nkind: Namespace\nmetadata: {name: z, labels: {ns: z}}\n";
	put("namespaces.yaml", ns_yz, "z"); /* y now counts as z for x/a's policy */
	/* the agent may be waiting out its back-off (up to ~3 s after a
	 * restart of a few seconds) before it watches again */
	printf("  API back: a change took effect in %.1f ms\n", until_ms(YA, XA, true, real ? 15000 : 5000));
	put("namespaces.yaml", ns_yz, "y");
	until(YA, XA, false);
	json_t *r = ask(0, json_pack("{s:s}", "cmd", "status"));
	char *t = json_dumps(r, 0);
	assert_non_null(strstr(t, "\"watch_restarts\""));
	free(t);
	json_decref(r);
	stop_agent(0, SIGTERM);
}

static char *curl_in_node(int node, const char *path)
{
	char *cmd, out[1024];
	assert_true(asprintf(&cmd, "ip netns exec %s-n%d curl -s http://127.0.0.1:9464%s", kc.prefix, node + 1, path) >= 0);
	FILE *p = popen(cmd, "r");
	size_t n = fread(out, 1, sizeof(out) - 1, p);
	out[n] = 0;
	pclose(p);
	free(cmd);
	return strdup(out);
}

static json_t *status_of(int node)
{
	json_t *r = ask(node, json_pack("{s:s}", "cmd", "status"));
	json_t *d = json_incref(json_object_get(json_array_get(r, 0), "data"));
	json_decref(r);
	return d;
}

static json_int_t relists_of(int node)
{
	json_t *d = status_of(node);
	json_int_t n = json_integer_value(json_object_get(json_object_get(d, "source_state"), "relists"));
	json_decref(d);
	return n;
}

/* What the API objects of api_objects_enforced_from_the_first_sync say;
 * asserted on the first sync, through relists and with the agent never
 * allowing a pair it must drop. */
static void expect_api_state(int rounds)
{
	for (int i = 0; i < rounds; i++) {
		assert_true(reach_or_dump(YA, XB, true));   /* np-x: from namespaces trusted=yes */
		assert_true(reach_or_dump(ZA, XB, false));  /* ... not from z */
		assert_true(reach_or_dump(ZC, YA, false));  /* np-z: z/c may only call its own namespace */
		assert_true(reach_or_dump(ZC, ZA, true));
		assert_true(reach_or_dump(XC, YB, true));   /* AccessPolicy y/web: callers from x */
		assert_true(reach_or_dump(ZA, YB, false));  /* ... not from z */
		assert_true(reach_or_dump(YB, XC, false));  /* y/web calls nobody */
	}
}

static const char *np_x =
	"apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: np-x, namespace: x}\n"
	"spec:\n  podSelector: {matchLabels: {pod: b}}\n  policyTypes: [Ingress]\n"
	"  ingress: [{from: [{namespaceSelector: {matchLabels: {trusted: 'yes'}}}], ports: [{port: 80}]}]\n";

/* Everything the API server holds when the agent starts is enforced on the
 * first sync -- typed lists carry no kind or apiVersion on their items --
 * and stays enforced through relists: a 410 on the watch, and an API
 * server coming back with a compacted history. A NetworkPolicy the agent
 * cannot read fails closed as documented and is named everywhere. */
static void api_objects_enforced_from_the_first_sync(void **state)
{
	if (!apiserver)
		skip();
	for (int k = 0; k < KC_NODES; k++)
		stop_agent(k, SIGTERM);
	put("namespaces.yaml", "apiVersion: v1\nkind: Namespace\nmetadata: {name: x, labels: {ns: x}}\n---\n"
			       "apiVersion: v1\nkind: Namespace\nmetadata: {name: 'y', labels: {ns: 'y', trusted: 'yes'}}\n---\n"
			       "apiVersion: v1\nkind: Namespace\nmetadata: {name: z, labels: {ns: z}}\n");
	put("np-x.yaml", "%s", np_x);
	put("np-z.yaml", "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: np-z, namespace: z}\n"
			 "spec:\n  podSelector: {matchLabels: {pod: c}}\n  policyTypes: [Egress]\n"
			 "  egress: [{to: [{podSelector: {}}]}]\n");
	put_pod(YB, "b", "app: web", YB);
	put("ap-y.yaml", "apiVersion: corral.dev/v1\nkind: AccessPolicy\nmetadata: {name: web, namespace: 'y'}\n"
			 "spec:\n  application: web\n  inbound:\n    rules: [{application: '*', namespace: x}]\n");
	for (int k = 0; k < KC_NODES; k++)
		start_agent(k, NULL);
	wait_synced(0);
	wait_synced(1);
	expect_api_state(1);
	/* a 410 on every watch: the agents list again (real: etcd compacted
	 * and the API server restarted, see real_expire_watches) */
	json_int_t before[KC_NODES] = { relists_of(0), relists_of(1) };
	pid_t cp_op = 0;
	if (real) {
		cp_op = real_expire_watches();
	} else {
		api_post("compact", json_object());
		api_post("closeall", json_object());
	}
	double t0 = now_ms();
	while (relists_of(0) == before[0] || relists_of(1) == before[1] || running(&cp_op)) {
		expect_api_state(1);
		assert_true(now_ms() - t0 < (real ? 60000 : 10000));
	}
	expect_api_state(2);
	/* the API server restarting: every watch closed, 503s while it comes
	 * up, a compacted history (410) once it answers */
	before[0] = relists_of(0);
	if (real) {
		cp_op = real_expire_watches();
	} else {
		api_post("compact", json_object());
		api_post("fault", json_pack("{s:s, s:i, s:i}", "name", "status", "count", 8, "code", 503));
		api_post("closeall", json_object());
	}
	t0 = now_ms();
	while (relists_of(0) == before[0] || running(&cp_op)) {
		expect_api_state(1);
		assert_true(now_ms() - t0 < (real ? 60000 : 15000));
	}
	expect_api_state(2);
	printf("  first sync and %lld relists: every object enforced, no wrong verdict\n", (long long)relists_of(0));
	if (real) /* a real server serves only what it accepted: no poisoned object */
		goto clean;

	/* the server now serves np-x with a selector the decoder refuses */
	assert_true(reach(YA, XC, 500)); /* x/c: no policy selects it */
	api_post("fault", json_pack("{s:s, s:s, s:s, s:s, s:{s:[{s:s, s:s}]}}", "name", "poison", "resource",
				    "networkpolicies", "key", "x/np-x", "path", "spec.podSelector", "value",
				    "matchExpressions", "key", "pod", "operator", "Matches"));
	put("np-x.yaml", "%s  # served poisoned\n", np_x);
	until(YA, XC, false); /* every pod of x isolated for ingress, nothing allowed */
	assert_false(reach(YA, XB, 150));
	assert_true(reach(XA, ZA, 500)); /* egress of x untouched: policyTypes was readable */
	json_t *st = status_of(0);
	char *t = json_dumps(st, 0);
	assert_non_null(strstr(t, "NetworkPolicy x/np-x could not be read; enforced fail-closed (isolates every pod of "
				  "namespace x for ingress, allows nothing): spec.podSelector.matchExpressions[0].operator"));
	assert_int_equal(json_integer_value(json_object_get(json_object_get(st, "objects"), "failclosed")), 1);
	free(t);
	json_decref(st);
	char *m = metrics(0);
	assert_non_null(strstr(m, "corral_source_objects_unreadable{kind=\"NetworkPolicy\"} 1"));
	free(m);
	char *rz = curl_in_node(0, "/readyz");
	assert_non_null(strstr(rz, "ready: 1 objects could not be read and are enforced fail-closed"));
	free(rz);
	json_t *r = ask(kc_pod_node(XC), json_pack("{s:s, s:s, s:s, s:i}", "cmd", "explain", "src", "y/a", "dst", "x/c",
						  "port", 80));
	t = json_dumps(r, 0);
	assert_non_null(strstr(t, "NetworkPolicy x/np-x (COULD NOT BE READ: enforced fail-closed, allows nothing)"));
	free(t);
	json_decref(r);
	usleep(100000);
	r = ask(kc_pod_node(XC), json_pack("{s:s, s:b, s:b}", "cmd", "drops", "follow", 0, "explain", 0));
	t = json_dumps(r, 0);
	assert_non_null(strstr(t, "NetworkPolicy x/np-x (could not be read)"));
	free(t);
	json_decref(r);
	/* a relist reads it the same way: still enforced fail-closed */
	before[0] = relists_of(0);
	api_post("compact", json_object());
	api_post("closeall", json_object());
	t0 = now_ms();
	while (relists_of(0) == before[0]) {
		assert_false(reach(YA, XC, 150));
		assert_true(now_ms() - t0 < 10000);
	}
	assert_false(reach(YA, XC, 150));
	/* served readably again: back to what it says */
	api_post("fault", json_pack("{s:s, s:s}", "name", "poison", "key", ""));
	put("np-x.yaml", "%s", np_x);
	/* each node's agent on its own time (node-2's relist may be waiting
	 * out a back-off from the 503s above): x/c is on node-1, x/b on node-2 */
	until(YA, XC, true);
	until(YA, XB, true);
	expect_api_state(1);
	rz = curl_in_node(0, "/readyz");
	assert_string_equal(rz, "ready\n");
	free(rz);
clean:
	rm("np-x.yaml");
	rm("np-z.yaml");
	rm("ap-y.yaml");
	put_pod(YB, "b", NULL, YB);
	until(ZA, YB, true);
	for (int k = 0; k < KC_NODES; k++)
		stop_agent(k, SIGTERM);
}

/* SIGHUP re-reads the configuration file (here: the drop-log rate, which
 * rewrites every group chain); /healthz and /readyz answer. */
static void reload_and_health(void **state)
{
	if (apiserver)
		skip();
	char conf[128], *cmd, out[256] = "";
	snprintf(conf, sizeof(conf), "%s.agent.conf", dir);
	FILE *f = fopen(conf, "w");
	fputs("logRate: 5\nlogFormat: json\n", f);
	fclose(f);
	assert_true(asprintf(&cmd, "--config %s", conf) >= 0);
	extra_args = cmd;
	start_agent(0, NULL);
	extra_args = NULL;
	wait_synced(0);
	json_t *r = ask(0, json_pack("{s:s}", "cmd", "dump"));
	char *t = json_dumps(r, 0);
	assert_non_null(strstr(t, "limit rate 5/second"));
	free(t);
	json_decref(r);
	f = fopen(conf, "w");
	fputs("logRate: 7\nlogFormat: json\n", f);
	fclose(f);
	kill(agents[0], SIGHUP);
	usleep(300000);
	r = ask(0, json_pack("{s:s}", "cmd", "dump"));
	t = json_dumps(r, 0);
	assert_non_null(strstr(t, "limit rate 7/second"));
	free(t);
	json_decref(r);
	assert_false(reach(YA, XA, 150)); /* enforcement went on through the reload */
	/* health endpoints, in the node's namespace */
	free(cmd);
	assert_true(asprintf(&cmd, "ip netns exec %s-n1 curl -s http://127.0.0.1:9464/readyz http://127.0.0.1:9464/healthz",
			     kc.prefix) >= 0);
	FILE *p = popen(cmd, "r");
	size_t n = fread(out, 1, sizeof(out) - 1, p);
	out[n] = 0;
	pclose(p);
	free(cmd);
	assert_string_equal(out, "ready\nok\n");
	/* logs were JSON lines */
	assert_true(asprintf(&cmd, "grep -c '^{\"time\"' %s/agent1.log", dir) >= 0);
	p = popen(cmd, "r");
	n = fread(out, 1, sizeof(out) - 1, p);
	out[n] = 0;
	pclose(p);
	free(cmd);
	assert_true(atoi(out) >= 2);
	stop_agent(0, SIGTERM);
	unlink(conf);
}

/* Bad configuration refuses to start, naming the setting. */
static void bad_config_refuses_to_start(void **state)
{
	char path[128], *cmd, out[512] = "";
	snprintf(path, sizeof(path), "%s.conf", dir);
	FILE *f = fopen(path, "w");
	fputs("appLabel: app\nlogRate: 0\n", f);
	fclose(f);
	assert_true(asprintf(&cmd, "%s --config %s --source files:%s --node-name n 2>&1", agent_bin, path, dir) >= 0);
	FILE *p = popen(cmd, "r");
	size_t n = fread(out, 1, sizeof(out) - 1, p);
	out[n] = 0;
	int st = pclose(p);
	free(cmd);
	unlink(path);
	printf("  %s", out);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 2);
	assert_non_null(strstr(out, "logRate"));
}

/* Revocation (issue 20, item 3): a change that removes an allow marks
 * the conntrack entries of the flows it stops (their packets dropped), on the node that enforces
 * the side that stopped them, and nothing else. Long-lived TCP
 * connections and UDP flows, IPv4 and IPv6, ingress (y/b's) and egress
 * (z/c's) sides, same node and across nodes. First with --revoke-flows
 * false: they all survive the change (the hole), then with the default. */
static const char *rv_policies =
	"apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: rv-in, namespace: 'y'}\n"
	"spec:\n  podSelector: {matchLabels: {pod: b}}\n  ingress:\n"
	"  - from: [{namespaceSelector: {matchLabels: {ns: x}}%s}]\n"
	"---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: rv-eg, namespace: z}\n"
	"spec:\n  podSelector: {matchLabels: {pod: c}}\n  policyTypes: [Egress]\n  egress:\n"
	"  - to: [{namespaceSelector: {matchLabels: {ns: 'y'}}%s}]\n";

struct rv_flow {
	int from, to;
	bool udp, v6, revoked;
	const char *what;
	int fd;
};

static bool rv_alive(struct rv_flow *f, int timeout_ms)
{
	return f->udp ? kc_udp_alive(&kc, f->fd, timeout_ms) : kc_conn_alive(&kc, f->fd, timeout_ms);
}

static void rv_put(bool narrow)
{
	put("rv.yaml", rv_policies, narrow ? ", podSelector: {matchLabels: {pod: c}}" : "",
	    narrow ? ", podSelector: {matchLabels: {pod: a}}" : "");
}

static void flows_revoked(void **state)
{
	struct rv_flow fl[] = {
		{ XA, YB, false, false, true, "TCP x/a -> y/b, same node (ingress)", -1 },
		{ XB, YB, false, false, true, "TCP x/b -> y/b, across nodes (ingress)", -1 },
		{ XA, YB, false, true, true, "TCP/IPv6 x/a -> y/b (ingress)", -1 },
		{ XA, YB, true, false, true, "UDP x/a -> y/b (ingress)", -1 },
		{ XB, YB, true, true, true, "UDP/IPv6 x/b -> y/b, across nodes (ingress)", -1 },
		{ ZC, YC, false, false, true, "TCP z/c -> y/c, across nodes (egress)", -1 },
		{ ZC, YC, true, true, true, "UDP/IPv6 z/c -> y/c (egress)", -1 },
		{ XC, YB, false, false, false, "TCP x/c -> y/b, still allowed", -1 },
		{ XC, YB, false, true, false, "TCP/IPv6 x/c -> y/b, still allowed", -1 },
		{ XC, YB, true, false, false, "UDP x/c -> y/b, still allowed", -1 },
		{ ZC, YA, false, false, false, "TCP z/c -> y/a, still allowed", -1 },
		{ ZC, YA, true, true, false, "UDP/IPv6 z/c -> y/a, still allowed", -1 },
	};
	size_t n = sizeof(fl) / sizeof(fl[0]);
	extra_args = "--revoke-flows false";
	for (int k = 0; k < KC_NODES; k++)
		start_agent(k, NULL);
	extra_args = NULL;
	wait_synced(0);
	wait_synced(1);
	rv_put(false);
	usleep(300000);
	for (size_t i = 0; i < n; i++) {
		fl[i].fd = fl[i].udp ? kc_udp_open(&kc, fl[i].from, fl[i].to, 80, fl[i].v6)
				     : kc_connect_af(&kc, fl[i].from, fl[i].to, 80, fl[i].v6, 1000);
		assert_true(fl[i].fd >= 0);
		if (!rv_alive(&fl[i], 1000))
			fail_msg("%s: not established", fl[i].what);
	}
	/* revocation off: the change stops new flows only */
	rv_put(true);
	usleep(300000);
	assert_false(reach(XA, YB, 200)); /* the change is in force */
	for (size_t i = 0; i < n; i++)
		if (!rv_alive(&fl[i], 1000))
			fail_msg("%s: ended without revocation", fl[i].what);
	printf("  --revoke-flows false: all %zu flows survive the change\n", n);

	/* revocation on (the default): the same change again */
	rv_put(false);
	for (int k = 0; k < KC_NODES; k++)
		start_agent(k, NULL);
	wait_synced(0);
	wait_synced(1);
	usleep(200000);
	for (size_t i = 0; i < n; i++)
		if (!rv_alive(&fl[i], 1000))
			fail_msg("%s: revoked while still allowed", fl[i].what);
	rv_put(true);
	double t0 = now_ms();
	for (size_t i = 0; i < n; i++) {
		if (!fl[i].revoked)
			continue;
		while (rv_alive(&fl[i], 200))
			if (now_ms() - t0 > 3000)
				fail_msg("%s: still carries data 3 s after the change", fl[i].what);
	}
	printf("  every flow the change stopped carries no data (all checked within %.0f ms of the change)\n",
	       now_ms() - t0);
	for (size_t i = 0; i < n; i++) {
		bool alive = rv_alive(&fl[i], fl[i].revoked ? 300 : 1000);
		printf("  %-45s %s\n", fl[i].what, alive ? "alive" : "revoked");
		assert_true(alive == !fl[i].revoked);
	}
	/* counted, and told */
	char *m = metrics(0);
	const char *line = strstr(m, "\ncorral_flows_revoked_total ");
	assert_non_null(line);
	printf("  node-1 metric: %.*s\n", (int)strcspn(line + 1, "\n"), line + 1);
	assert_true(atoi(line + strlen("\ncorral_flows_revoked_total ")) >= 6);
	free(m);
	json_t *r = ask(0, json_pack("{s:s}", "cmd", "status"));
	const char *text = json_string_value(json_object_get(json_array_get(r, 0), "text"));
	assert_non_null(text);
	assert_non_null(strstr(text, "flows revoked: "));
	printf("  status: %.*s\n", (int)strcspn(strstr(text, "flows revoked: "), "\n"), strstr(text, "flows revoked: "));
	json_decref(r);
	r = ask(0, json_pack("{s:s, s:b, s:b}", "cmd", "drops", "follow", 0, "explain", 0));
	bool in = false, eg = false;
	size_t i;
	json_t *d;
	json_array_foreach(r, i, d) {
		const char *kind = json_string_value(json_object_get(d, "kind"));
		const char *sp = json_string_value(json_object_get(d, "source_pod"));
		const char *dir_ = json_string_value(json_object_get(d, "direction"));
		if (!kind || strcmp(kind, "revoked") || !sp)
			continue;
		if (!strcmp(sp, "x/a") && !strcmp(dir_, "ingress") && !in) {
			in = true;
			assert_string_equal(json_string_value(json_object_get(d, "policies")), "NetworkPolicy y/rv-in");
			printf("  %s\n", json_string_value(json_object_get(d, "text")));
		}
		if (!strcmp(sp, "z/c") && !strcmp(dir_, "egress") && !eg) {
			eg = true;
			assert_string_equal(json_string_value(json_object_get(d, "policies")), "NetworkPolicy z/rv-eg");
			printf("  %s\n", json_string_value(json_object_get(d, "text")));
		}
	}
	json_decref(r);
	assert_true(in && eg);
	for (size_t k = 0; k < n; k++)
		close(fl[k].fd);
	rm("rv.yaml");
	for (int k = 0; k < KC_NODES; k++)
		stop_agent(k, SIGTERM);
}

/* The agent's revocation status on node (status "revocation"), a new reference. */
static json_t *revocation(int node)
{
	json_t *r = ask(node, json_pack("{s:s}", "cmd", "status"));
	json_t *v = json_incref(json_object_get(json_object_get(json_array_get(r, 0), "data"), "revocation"));
	json_decref(r);
	assert_non_null(v);
	return v;
}

/* A revocation pass reads the whole conntrack table, so passes come at
 * most every revokeIntervalMs (100 by default: pod churn narrows rules
 * many times a second). A narrowing change that comes sooner has its pass
 * held back, and that pass must run when the interval is over even if no
 * other change ever comes: else the flows it stops would go on. Here the
 * interval is 3 s, so that the second change always falls inside it and a
 * third one comes with more than 2 s of the hold left (it must not wait
 * for it). */
static const char *hb_policy =
	"apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: hb, namespace: 'y'}\n"
	"spec:\n  podSelector: {matchLabels: {pod: b}}\n  ingress:\n%s%s";
static const char *hb_from_a = "  - from: [{namespaceSelector: {matchLabels: {ns: x}}, podSelector: {matchLabels: {pod: a}}}]\n";
static const char *hb_from_c = "  - from: [{namespaceSelector: {matchLabels: {ns: x}}, podSelector: {matchLabels: {pod: c}}}]\n";

static void revocation_held_back(void **state)
{
	put("hb.yaml", hb_policy, hb_from_a, hb_from_c);
	extra_args = "--revoke-interval-ms 3000";
	start_agent(0, NULL); /* y/b, x/a and x/c are node-1's */
	extra_args = NULL;
	wait_synced(0);
	int fa = kc_connect_af(&kc, XA, YB, 80, false, 1000), fc = kc_connect_af(&kc, XC, YB, 80, false, 1000);
	assert_true(fa >= 0 && fc >= 0);
	assert_true(kc_conn_alive(&kc, fa, 1000) && kc_conn_alive(&kc, fc, 1000));
	usleep(3100000); /* an interval since the first ruleset's pass */
	/* the first change: x/a's flow revoked by a pass at once */
	put("hb.yaml", hb_policy, "", hb_from_c);
	double t0 = now_ms();
	while (kc_conn_alive(&kc, fa, 100))
		if (now_ms() - t0 > 1500)
			fail_msg("x/a -> y/b: still carries data 1.5 s after the first change");
	json_t *rv = revocation(0);
	json_int_t passes = json_integer_value(json_object_get(rv, "passes"));
	json_int_t held = json_integer_value(json_object_get(rv, "passes_held_back"));
	json_decref(rv);
	/* the second, within the interval: in force at once, its pass held */
	double t1 = now_ms();
	put("hb.yaml", hb_policy, "", "  - from: [{namespaceSelector: {matchLabels: {ns: x}}, podSelector: {matchLabels: {pod: z}}}]\n");
	while (reach(XC, YB, 150))
		if (now_ms() - t1 > 1500)
			fail_msg("x/c -> y/b: new connections still admitted 1.5 s after the second change");
	rv = revocation(0);
	bool pending = json_is_true(json_object_get(rv, "pending"));
	assert_int_equal(json_integer_value(json_object_get(rv, "passes_held_back")), held + 1);
	assert_int_equal(json_integer_value(json_object_get(rv, "passes")), passes);
	json_decref(rv);
	assert_true(pending);
	printf("  second change in force %.0f ms after it, its revocation pass held back\n", now_ms() - t1);
	/* a third change while that pass is held: in force at once too, not
	 * when the transaction armed for the held pass comes (it waited for
	 * it: up to revokeIntervalMs) */
	static const char *from_z = "  - from: [{namespaceSelector: {matchLabels: {ns: x}}, podSelector: {matchLabels: {pod: z}}}]\n";
	put("hb.yaml", hb_policy, hb_from_a, from_z);
	double third = until_ms(XA, YB, true, 1500);
	rv = revocation(0);
	assert_true(json_is_true(json_object_get(rv, "pending")));
	assert_int_equal(json_integer_value(json_object_get(rv, "passes")), passes);
	json_decref(rv);
	printf("  a third change, while the pass is held, in force %.0f ms after it\n", third);
	assert_true(third < 1000);
	/* ... and run when the interval is over, with no change since */
	while (kc_conn_alive(&kc, fc, 100))
		if (now_ms() - t1 > 5000)
			fail_msg("x/c -> y/b: still carries data 5 s after the second change (the held pass never ran)");
	printf("  x/c -> y/b revoked %.0f ms after the second change\n", now_ms() - t1);
	rv = revocation(0);
	assert_false(json_is_true(json_object_get(rv, "pending")));
	assert_int_equal(json_integer_value(json_object_get(rv, "passes")), passes + 1);
	json_decref(rv);
	close(fa);
	close(fc);
	rm("hb.yaml");
	stop_agent(0, SIGTERM);
}

/* A revoked flow stays revoked whichever end sends next. Its conntrack
 * entry once was deleted, and a packet from the responder (an echo, an
 * ACK, a server push) then started the flow again reversed, y/b -> x/c,
 * which nothing isolates: established both ways again (agent.e2e failed
 * in CI on it, 2026-11-30). Here the responder sends first, over TCP and
 * UDP, after the pass that revoked both flows. */
struct sock_req {
	int type;
	uint16_t port; /* bind to it (a server), else a client */
};

static int sock_in_ns(void *arg)
{
	const struct sock_req *r = arg;
	int fd = socket(AF_INET, r->type | SOCK_CLOEXEC, 0);
	if (fd < 0 || !r->port)
		return fd;
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(r->port) };
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || (r->type == SOCK_STREAM && listen(fd, 4) < 0)) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Whether fd has something to read within ms (what it read is dropped). */
static bool got_within(int fd, int ms)
{
	struct pollfd p = { fd, POLLIN, 0 };
	char buf[64];
	return poll(&p, 1, ms) == 1 && recv(fd, buf, sizeof(buf), MSG_DONTWAIT) > 0;
}

static void revoked_flow_stays_dead(void **state)
{
	put("hb.yaml", hb_policy, hb_from_a, hb_from_c);
	start_agent(0, NULL); /* y/b and x/c are node-1's */
	wait_synced(0);
	char yb[64];
	kc_pod_addr(YB, false, yb, sizeof(yb));
	struct sockaddr_in to = { .sin_family = AF_INET };
	inet_pton(AF_INET, yb, &to.sin_addr);
	int lst = kc_in_ns(&kc, kc.pod_ns[YB], sock_in_ns, &(struct sock_req){ SOCK_STREAM, 8081 });
	int usrv = kc_in_ns(&kc, kc.pod_ns[YB], sock_in_ns, &(struct sock_req){ SOCK_DGRAM, 8082 });
	int lst2 = kc_in_ns(&kc, kc.pod_ns[YB], sock_in_ns, &(struct sock_req){ SOCK_STREAM, 8083 });
	int tcl2 = kc_in_ns(&kc, kc.pod_ns[XC], sock_in_ns, &(struct sock_req){ SOCK_STREAM, 0 });
	assert_true(lst2 >= 0 && tcl2 >= 0);
	int tcl = kc_in_ns(&kc, kc.pod_ns[XC], sock_in_ns, &(struct sock_req){ SOCK_STREAM, 0 });
	int ucl = kc_in_ns(&kc, kc.pod_ns[XC], sock_in_ns, &(struct sock_req){ SOCK_DGRAM, 0 });
	assert_true(lst >= 0 && usrv >= 0 && tcl >= 0 && ucl >= 0);
	to.sin_port = htons(8081);
	assert_int_equal(connect(tcl, (struct sockaddr *)&to, sizeof(to)), 0);
	int tsrv = accept(lst, NULL, NULL);
	assert_true(tsrv >= 0);
	to.sin_port = htons(8083);
	assert_int_equal(connect(tcl2, (struct sockaddr *)&to, sizeof(to)), 0);
	int tsrv2 = accept(lst2, NULL, NULL);
	assert_true(tsrv2 >= 0);
	to.sin_port = htons(8082);
	assert_int_equal(connect(ucl, (struct sockaddr *)&to, sizeof(to)), 0);
	assert_int_equal(send(ucl, "hi", 2, 0), 2);
	struct sockaddr_in from;
	socklen_t fl = sizeof(from);
	char buf[16];
	struct pollfd p = { usrv, POLLIN, 0 };
	assert_int_equal(poll(&p, 1, 1000), 1);
	assert_int_equal(recvfrom(usrv, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fl), 2);
	assert_int_equal(connect(usrv, (struct sockaddr *)&from, fl), 0);
	/* both flows work both ways, the responder's packets as replies */
	assert_int_equal(send(tsrv, "a", 1, 0), 1);
	assert_true(got_within(tcl, 1000));
	assert_int_equal(send(tcl, "b", 1, 0), 1);
	assert_true(got_within(tsrv, 1000));
	assert_int_equal(send(usrv, "a", 1, 0), 1);
	assert_true(got_within(ucl, 1000));
	json_t *rv = revocation(0);
	json_int_t passes = json_integer_value(json_object_get(rv, "passes"));
	json_decref(rv);
	/* a third TCP flow, closed: its entry in TIME_WAIT */
	int lst3 = kc_in_ns(&kc, kc.pod_ns[YB], sock_in_ns, &(struct sock_req){ SOCK_STREAM, 8085 });
	int tcl3 = kc_in_ns(&kc, kc.pod_ns[XC], sock_in_ns, &(struct sock_req){ SOCK_STREAM, 0 });
	assert_true(lst3 >= 0 && tcl3 >= 0);
	to.sin_port = htons(8085);
	assert_int_equal(connect(tcl3, (struct sockaddr *)&to, sizeof(to)), 0);
	int tsrv3 = accept(lst3, NULL, NULL);
	assert_true(tsrv3 >= 0);
	close(tcl3);
	usleep(50000);
	close(tsrv3);
	close(lst3);
	usleep(100000);
	char *tw;
	assert_true(asprintf(&tw, "ip netns exec %s-n1 conntrack -L -p tcp --orig-port-dst 8085 2>/dev/null | grep -c TIME_WAIT",
			     kc.prefix) >= 0);
	FILE *twf = popen(tw, "r");
	int tw_before = -1, tw_after = -1;
	assert_true(twf && fscanf(twf, "%d", &tw_before) == 1);
	pclose(twf);
	put("hb.yaml", hb_policy, hb_from_a, ""); /* x/c no longer admitted */
	double t0 = now_ms();
	for (;;) {
		rv = revocation(0);
		bool done = json_integer_value(json_object_get(rv, "passes")) > passes &&
			    !json_is_true(json_object_get(rv, "pending"));
		json_decref(rv);
		if (done)
			break;
		if (now_ms() - t0 > 3000)
			fail_msg("no revocation pass 3 s after the change");
		usleep(20000);
	}
	/* the responder first: nothing reaches x/c, then nothing from it
	 * reaches y/b either (the flows did not come back reversed) */
	assert_int_equal(send(tsrv, "push", 4, 0), 4);
	assert_int_equal(send(usrv, "push", 4, 0), 4);
	bool t_back = got_within(tcl, 600), u_back = got_within(ucl, 200);
	printf("  after the pass, y/b -> x/c: TCP push %s, UDP datagram %s\n", t_back ? "DELIVERED" : "dropped",
	       u_back ? "DELIVERED" : "dropped");
	assert_int_equal(send(tcl, "more", 4, MSG_NOSIGNAL), 4);
	assert_int_equal(send(ucl, "more", 4, 0), 4);
	bool t_fwd = got_within(tsrv, 600), u_fwd = got_within(usrv, 200);
	printf("  then x/c -> y/b: TCP data %s, UDP datagram %s\n", t_fwd ? "DELIVERED" : "dropped",
	       u_fwd ? "DELIVERED" : "dropped");
	assert_false(t_back || u_back || t_fwd || u_fwd);
	/* a new connection from x/c is refused by policy as before */
	assert_false(reach(XC, YB, 300));
	/* the closed flow's entry deleted, not marked: marked, its TIME_WAIT
	 * could not be told from one a pass put there, and was once restored
	 * to ESTABLISHED (a trap for a connection reusing its ports) */
	twf = popen(tw, "r");
	assert_true(twf && fscanf(twf, "%d", &tw_after) == 1);
	pclose(twf);
	free(tw);
	printf("  a closed TCP flow of x/c: %d entry in TIME_WAIT before the pass, %d after\n", tw_before, tw_after);
	assert_int_equal(tw_before, 1);
	assert_int_equal(tw_after, 0);
	/* the second TCP flow's entry gone (expired: 120 s after the last
	 * packet; or evicted from a full table), its responder pushes: a TCP
	 * segment that is no SYN and starts no tracked flow, dropped, so the
	 * flow does not come back reversed */
	char *cmd;
	assert_true(asprintf(&cmd, "ip netns exec %s-n1 conntrack -D -p tcp --orig-port-dst 8083 >/dev/null 2>&1",
			     kc.prefix) >= 0);
	assert_int_equal(system(cmd), 0);
	free(cmd);
	assert_int_equal(send(tsrv2, "push", 4, 0), 4);
	bool t2_back = got_within(tcl2, 1500);
	assert_int_equal(send(tcl2, "more", 4, MSG_NOSIGNAL), 4);
	bool t2_fwd = got_within(tsrv2, 1500);
	printf("  its entry deleted: y/b -> x/c TCP push %s, then x/c -> y/b %s\n", t2_back ? "DELIVERED" : "dropped",
	       t2_fwd ? "DELIVERED" : "dropped");
	assert_false(t2_back || t2_fwd);
	json_t *dr = ask(0, json_pack("{s:s, s:b, s:b}", "cmd", "drops", "follow", 0, "explain", 0));
	bool untracked = false;
	size_t di;
	json_t *dd;
	json_array_foreach(dr, di, dd) {
		const char *kind = json_string_value(json_object_get(dd, "kind"));
		if (kind && !strcmp(kind, "untracked") && !untracked) {
			untracked = true;
			printf("  %s\n", json_string_value(json_object_get(dd, "text")));
		}
	}
	json_decref(dr);
	assert_true(untracked);
	/* (earlier tests' revoked flows may still be tracked too) */
	rv = revocation(0);
	assert_true(json_integer_value(json_object_get(rv, "still_revoked")) >= 2);
	passes = json_integer_value(json_object_get(rv, "passes"));
	json_decref(rv);
	/* allowed again (a policy deleted and created again, say): the same
	 * flows carry data again, both ways (their marks cleared by the pass
	 * that follows the change) */
	put("hb.yaml", hb_policy, hb_from_a, hb_from_c);
	t0 = now_ms();
	for (;;) {
		rv = revocation(0);
		bool done = json_integer_value(json_object_get(rv, "passes")) > passes &&
			    json_integer_value(json_object_get(json_object_get(rv, "last"), "restored")) >= 2;
		json_decref(rv);
		if (done)
			break;
		if (now_ms() - t0 > 3000)
			fail_msg("no pass cleared the revoked flows' marks 3 s after they were allowed again");
		usleep(20000);
	}
	assert_int_equal(send(usrv, "back", 4, 0), 4);
	assert_true(got_within(ucl, 1000));
	assert_int_equal(send(ucl, "back", 4, 0), 4);
	assert_true(got_within(usrv, 1000));
	/* TCP: what was dropped comes again at the next retransmission */
	assert_true(got_within(tcl, 5000));
	assert_true(got_within(tsrv, 5000));
	assert_int_equal(send(tsrv, "back", 4, 0), 4);
	assert_true(got_within(tcl, 1000));
	printf("  allowed again: the same TCP and UDP flows carry data both ways, %.0f ms after the change\n",
	       now_ms() - t0);
	close(tsrv);
	close(lst);
	close(tcl);
	close(tsrv2);
	close(lst2);
	close(tcl2);
	close(usrv);
	close(ucl);
	rm("hb.yaml");
	stop_agent(0, SIGTERM);
}

/* A forged source (issue 20, item 1) is dropped by the agent's table and
 * reported by `drops` as such, naming whose address was used. */
static void forged_source_reported(void **state)
{
	char src[64], dst[64];
	start_agent(0, NULL);
	wait_synced(0);
	kc_pod_addr(YA, false, src, sizeof(src));
	kc_pod_addr(XA, false, dst, sizeof(dst));
	int fd = kc_raw_open(&kc, XA, 17, false);
	assert_true(fd >= 0);
	assert_int_equal(kc_send_raw(&kc, kc.pod_ns[XC], 17, src, dst, 4242, 80), 0);
	assert_false(kc_raw_seen(fd, false, src, 4242, 300));
	close(fd);
	json_t *r = ask(0, json_pack("{s:s, s:b, s:b}", "cmd", "drops", "follow", 0, "explain", 0));
	bool found = false;
	size_t i;
	json_t *d;
	json_array_foreach(r, i, d) {
		const char *kind = json_string_value(json_object_get(d, "kind"));
		if (!kind || strcmp(kind, "forged-source") || strcmp(json_string_value(json_object_get(d, "source")), src))
			continue;
		found = true;
		const char *text = json_string_value(json_object_get(d, "text"));
		printf("  %s\n", text);
		assert_non_null(strstr(text, "forged source 10.1.2.1 (the address of y/a) -> x/a UDP/80 dropped"));
	}
	json_decref(r);
	assert_true(found);
	stop_agent(0, SIGTERM);
}

/* Pod x/waitK of node-1, known to the API without an address, and its
 * interface vwK on node-1 with 10.1.7.(20+K), made as a CNI makes it
 * before the API reports the address (add false: removed). */
static void waiting_pod(int k)
{
	put("waiting.yaml",
	    "apiVersion: v1\nkind: Pod\nmetadata: {name: wait%d, namespace: x, labels: {pod: w}}\n"
	    "spec: {nodeName: node-1, containers: [{name: s}]}\nstatus: {phase: Pending}\n", k);
	usleep(300 * 1000);
}

static void waiting_iface(int k, bool add)
{
	char cmd[1024];
	if (add)
		snprintf(cmd, sizeof(cmd),
			 "set -e; ip netns add %1$s-w%2$d; ip -n %1$s-n1 link add vw%2$d type veth peer name eth0 netns "
			 "%1$s-w%2$d; ip -n %1$s-w%2$d addr add 10.1.7.%3$d/32 dev eth0; ip -n %1$s-w%2$d link set eth0 up; "
			 "ip -n %1$s-n1 link set vw%2$d up; ip -n %1$s-n1 route add 10.1.7.%3$d/32 dev vw%2$d",
			 kc.prefix, k, 20 + k);
	else
		snprintf(cmd, sizeof(cmd), "ip netns del %s-w%d", kc.prefix, k);
	assert_int_equal(system(cmd), 0);
}

/* When node-1's agent first says pod's new address is its twin (found by
 * a read of the node's pods), or 0 once limit ms from t0 have passed;
 * the last entry's verdict and why, for the log. */
static double twin_found(const char *pod, double t0, int limit, char *verdict, char *why, size_t len)
{
	snprintf(verdict, len, "(no entry)");
	why[0] = 0;
	while (now_ms() - t0 < limit) {
		json_t *d = status_of(0), *en;
		size_t i;
		double found = 0;
		json_array_foreach(json_object_get(d, "provisional"), i, en) {
			const char *v = json_string_value(json_object_get(en, "verdict"));
			snprintf(verdict, len, "%s", v ? v : "?");
			snprintf(why, len, "%s", json_string_value(json_object_get(en, "why")) ?: "");
			if (v && !strcmp(v, "twin") && !strcmp(json_string_value(json_object_get(en, "pod")) ?: "", pod))
				found = now_ms();
		}
		json_decref(d);
		if (found)
			return found;
		usleep(20 * 1000);
	}
	return 0;
}

/* A new pod's address before the API reports it (issue 14), through the
 * API: x/wait1 is bound to node-1 and waits for an address; its
 * interface, address and route appear on node-1; the agent reads node-1's
 * pods (a consistent LIST with fieldSelector spec.nodeName=node-1, which
 * with --real the real kube-apiserver answers) and takes the address for
 * x/wait1. Without that read the address stays denied. */
static void provisional_reads_node_pods(void **state)
{
	if (!apiserver)
		skip();
	char verdict[512], why[512];
	start_agent(0, NULL);
	wait_synced(0);
	waiting_pod(1);
	waiting_iface(1, true);
	double t0 = now_ms(), found = twin_found("x/wait1", t0, 10000, verdict, why, sizeof(why));
	printf("  new interface of x/wait1: %s after %.0f ms: %s\n", verdict, (found ? found : now_ms()) - t0, why);
	assert_true(found > 0);
	waiting_iface(1, false);
	rm("waiting.yaml");
	stop_agent(0, SIGTERM);
}

static bool file_has(const char *path, const char *what)
{
	FILE *f = fopen(path, "r");
	char line[1024];
	bool found = false;
	while (f && !found && fgets(line, sizeof(line), f))
		found = strstr(line, what) != NULL;
	if (f)
		fclose(f);
	return found;
}

/* The read of this node's pods fails once (503) and an unrelated change
 * comes during its back-off (1 s): the change's transaction came earlier
 * than the one armed for the retry, and no timer was left for it, so the
 * new interface's pod stayed unknown (its address denied) until some other
 * event. The read is retried at the back-off's end all the same. */
static void provisional_read_retried_after_a_change(void **state)
{
	if (!apiserver || real)
		skip();
	char log[128], verdict[512], why[512];
	snprintf(log, sizeof(log), "%s/agent1.log", dir);
	start_agent(0, NULL);
	wait_synced(0);
	waiting_pod(2);
	/* the next request the agent makes (its watches are open): the read */
	api_post("fault", json_pack("{s:s, s:i, s:i}", "name", "status", "count", 1, "code", 503));
	waiting_iface(2, true);
	double t0 = now_ms();
	while (!file_has(log, "reading this node's pods: ") && now_ms() - t0 < 3000)
		usleep(20 * 1000);
	bool failed = file_has(log, "reading this node's pods: ");
	/* an unrelated change within the back-off: a label no policy uses */
	put_pod(ZC, "c", "extra: yes", ZC);
	double found = twin_found("x/wait2", t0, 6000, verdict, why, sizeof(why));
	printf("  read of node-1's pods failed once (%s), a change in its back-off: x/wait2 %s after %.0f ms (%s)\n",
	       failed ? "seen in the log" : "NOT seen", found ? "found" : "not found", (found ? found : now_ms()) - t0,
	       verdict);
	waiting_iface(2, false);
	put_pod(ZC, "c", NULL, ZC);
	rm("waiting.yaml");
	stop_agent(0, SIGTERM);
	assert_true(failed);
	assert_true(found > 0);
}

int main(int argc, char **argv)
{
	real = argc == 6 && !strcmp(argv[3], "--real");
	if (argc != 3 && argc != 4 && !real) {
		fprintf(stderr, "usage: test-agent CLUSTER-SCRIPT AGENT [FAKE-APISERVER.py | --real RUN.SH REPO]\n");
		return 2;
	}
	script = argv[1];
	agent_bin = argv[2];
	apiserver = real ? "real" : argc == 4 ? argv[3] : NULL;
	run_sh = real ? argv[4] : NULL;
	repo = real ? argv[5] : NULL;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(objects_take_effect),
		cmocka_unit_test(debounce_adapts),
		cmocka_unit_test(restart_keeps_enforcement),
		cmocka_unit_test(drops_are_reported),
		cmocka_unit_test(drops_counted_exactly),
		cmocka_unit_test(stalled_follower_costs_nothing),
		cmocka_unit_test(api_one_connection_per_agent),
		cmocka_unit_test(invalid_policy_isolates),
		cmocka_unit_test(least_privilege_is_enough),
		cmocka_unit_test(api_outage_keeps_ruleset),
		cmocka_unit_test(api_objects_enforced_from_the_first_sync),
		cmocka_unit_test(reload_and_health),
		cmocka_unit_test(bad_config_refuses_to_start),
		cmocka_unit_test(flows_revoked),
		cmocka_unit_test(revocation_held_back),
		cmocka_unit_test(revoked_flow_stays_dead),
		cmocka_unit_test(forged_source_reported),
		cmocka_unit_test(provisional_reads_node_pods),
		cmocka_unit_test(provisional_read_retried_after_a_change),
	};
	if (getenv("TEST_AGENT_ONLY")) /* one test by name (a glob) */
		cmocka_set_test_filter(getenv("TEST_AGENT_ONLY"));
	return cmocka_run_group_tests(tests, setup, teardown);
}
