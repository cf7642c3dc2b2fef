/* Drops as Kubernetes Events, end to end: an agent with --source kube (the
 * fake API server), real TCP connections dropped by a NetworkPolicy in the
 * namespace cluster, and the Events the API server receives:
 *   - one Event on the pod whose policy dropped the flow (reason
 *     PolicyDrop, Warning, its uid, the peer, port and policy named), whose
 *     count rises as the drops go on;
 *   - no more writes than the rate limit allows, the count kept exact;
 *   - none with --drop-events false.
 *   test-events CLUSTER-SCRIPT AGENT FAKE-APISERVER.py */
#define _GNU_SOURCE
#include <jansson.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "kcluster.h"

static const char *script, *agent_bin, *apiserver;
static char dir[64];
static pid_t api_pid, agent;
static int api_port;
static struct kcluster kc;

enum { XA, XB, XC, YA, YB, YC, ZA, ZB, ZC };

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static size_t on_body(char *d, size_t s, size_t n, void *arg)
{
	json_t **out = arg;
	char *text = strndup(d, s * n);
	/* bodies here are small: one write */
	*out = json_loads(text, 0, NULL);
	free(text);
	return s * n;
}

/* A request to the fake API server; its JSON answer (NULL if none). */
static json_t *api(const char *method, const char *path, json_t *body)
{
	char *url, *b = body ? json_dumps(body, JSON_COMPACT) : NULL;
	json_t *out = NULL;
	assert_true(asprintf(&url, "http://127.0.0.1:%d%s", api_port, path) >= 0);
	CURL *e = curl_easy_init();
	struct curl_slist *h = curl_slist_append(NULL, "Authorization: Bearer t0k");
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
	if (b)
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, b);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, &out);
	curl_easy_setopt(e, CURLOPT_BUFFERSIZE, 1L << 19);
	assert_int_equal(curl_easy_perform(e), CURLE_OK);
	curl_slist_free_all(h);
	curl_easy_cleanup(e);
	free(url);
	free(b);
	json_decref(body);
	return out;
}

static void apply(const char *res, json_t *obj)
{
	json_decref(api("POST", "/_ctl/apply", json_pack("{s:s, s:o}", "resource", res, "object", obj)));
}

static json_t *events(void)
{
	json_t *l = api("GET", "/api/v1/namespaces/x/events", NULL);
	json_t *items = json_incref(json_object_get(l, "items"));
	json_decref(l);
	return items;
}

static long writes(void)
{
	json_t *s = api("GET", "/_ctl/stats", NULL);
	long n = (long)(json_integer_value(json_object_get(s, "event_post")) +
			json_integer_value(json_object_get(s, "event_patch")));
	json_decref(s);
	return n;
}

static char *sock_path(void)
{
	static char p[96];
	snprintf(p, sizeof(p), "%.60s/agent.sock", dir);
	return p;
}

static json_t *status(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock_path());
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return NULL;
	}
	dprintf(fd, "{\"cmd\": \"status\"}\n");
	FILE *f = fdopen(fd, "r");
	json_t *o = json_loadf(f, JSON_DISABLE_EOF_CHECK, NULL);
	fclose(f);
	json_t *data = json_incref(json_object_get(o, "data"));
	json_decref(o);
	return data;
}

/* The agent of x/a's node. */
static void start_agent(const char *extra)
{
	char *cmd;
	int node = kc_pod_node(XA) + 1;
	if (agent > 0) {
		kill(agent, SIGTERM);
		waitpid(agent, NULL, 0);
	}
	assert_true(asprintf(&cmd, "exec %s --source kube --kubeconfig %s/kubeconfig --node-name node-%d "
				   "--netns /run/netns/%s-n%d --socket %s --debounce-ms 5 %s >>%s/agent.log 2>&1",
			     agent_bin, dir, node, kc.prefix, node, sock_path(), extra, dir) >= 0);
	agent = fork();
	if (agent == 0) {
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	free(cmd);
	double end = now_ms() + 10000;
	for (;;) {
		json_t *s = status();
		bool ok = s && json_is_true(json_object_get(s, "synced"));
		json_decref(s);
		if (ok)
			break;
		assert_true(now_ms() < end);
		usleep(50000);
	}
}

/* n dropped connection attempts from pod i to x/a:port. */
static void knock(int i, int port, int n)
{
	for (int k = 0; k < n; k++) {
		int fd = kc_connect(&kc, i, XA, port, 120);
		assert_int_equal(fd, -1); /* dropped */
	}
}

static json_t *wait_events(size_t n, long min_count, int ms)
{
	double end = now_ms() + ms;
	for (;;) {
		json_t *ev = events();
		long total = 0;
		size_t i;
		json_t *x;
		json_array_foreach(ev, i, x) total += (long)json_integer_value(json_object_get(x, "count"));
		if ((json_array_size(ev) >= n && total >= min_count) || now_ms() > end)
			return ev;
		json_decref(ev);
		usleep(100000);
	}
}

static void one_event_counting_up(void **st)
{
	start_agent("");
	knock(YB, 80, 3);
	json_t *ev = wait_events(1, 1, 5000);
	assert_int_equal(json_array_size(ev), 1);
	json_t *e = json_array_get(ev, 0), *io = json_object_get(e, "involvedObject");
	json_t *pod = api("GET", "/api/v1/namespaces/x/pods/a", NULL);
	assert_string_equal(json_string_value(json_object_get(io, "kind")), "Pod");
	assert_string_equal(json_string_value(json_object_get(io, "name")), "a");
	assert_string_equal(json_string_value(json_object_get(io, "namespace")), "x");
	assert_string_equal(json_string_value(json_object_get(io, "uid")),
			    json_string_value(json_object_get(json_object_get(pod, "metadata"), "uid")));
	assert_string_equal(json_string_value(json_object_get(e, "reason")), "PolicyDrop");
	assert_string_equal(json_string_value(json_object_get(e, "type")), "Warning");
	const char *msg = json_string_value(json_object_get(e, "message"));
	char want[128];
	char ip[32];
	kc_pod_addr(YB, false, ip, sizeof(ip));
	snprintf(want, sizeof(want), "ingress TCP/80 from y/b (%s) dropped: isolated by NetworkPolicy x/deny", ip);
	assert_non_null(strstr(msg, want));
	assert_string_equal(json_string_value(json_object_get(json_object_get(e, "source"), "component")), "corral-agent");
	long c1 = (long)json_integer_value(json_object_get(e, "count"));
	char *name = strdup(json_string_value(json_object_get(json_object_get(e, "metadata"), "name")));
	printf("Event %s: count %ld: %s\n", name, c1, msg);
	json_decref(ev);
	json_decref(pod);
	/* the same flow again: the same Event, a higher count */
	knock(YB, 80, 3);
	ev = wait_events(1, c1 + 1, 15000);
	assert_int_equal(json_array_size(ev), 1);
	e = json_array_get(ev, 0);
	assert_string_equal(json_string_value(json_object_get(json_object_get(e, "metadata"), "name")), name);
	long c2 = (long)json_integer_value(json_object_get(e, "count"));
	printf("the same Event: count %ld\n", c2);
	assert_true(c2 > c1);
	free(name);
	json_decref(ev);
}

/* With 3 writes a minute per pod and policy: many drops of several
 * flows in 3 s make at most 3 (+1 refilled) writes; the drops wait. */
static void rate_limited(void **st)
{
	start_agent("--drop-events-per-minute 3");
	long before = writes();
	double t0 = now_ms();
	for (int round = 0; round < 6; round++) {
		knock(YB, 81, 2);
		knock(ZC, 80, 2);
		knock(XB, 81, 2);
	}
	usleep(500000);
	long made = writes() - before;
	double secs = (now_ms() - t0) / 1e3;
	json_t *s = status();
	json_t *de = json_object_get(json_object_get(s, "source_state"), "drop_events");
	char *txt = json_dumps(de, JSON_COMPACT);
	printf("%ld writes in %.1f s; agent: %s\n", made, secs, txt);
	free(txt);
	assert_true(made >= 1);
	assert_true(made <= 3 + (long)(secs * 3 / 60) + 1);
	assert_true(json_integer_value(json_object_get(de, "pending")) >= 1); /* drops waiting for a token */
	json_decref(s);
}

static void disabled(void **st)
{
	start_agent("--drop-events false");
	long before = writes();
	knock(YC, 80, 4);
	usleep(1500000);
	json_t *s = status();
	printf("dropEvents false: %ld writes; drops seen %lld\n", writes() - before,
	       (long long)json_integer_value(json_object_get(s, "drops_seen")));
	assert_int_equal(writes(), before);
	assert_true(json_integer_value(json_object_get(s, "drops_seen")) >= 1); /* dropped all the same */
	assert_true(json_is_false(json_object_get(json_object_get(s, "source_state"), "drop_events")));
	json_decref(s);
}

static int setup(void **st)
{
	snprintf(dir, sizeof(dir), "/tmp/corral-events-test-XXXXXX");
	assert_non_null(mkdtemp(dir));
	if (kc_up(&kc, script, "cre") < 0)
		return -1;
	int p[2];
	assert_int_equal(pipe(p), 0);
	api_pid = fork();
	if (api_pid == 0) {
		dup2(p[1], 1);
		close(p[0]);
		execlp("python3", "python3", apiserver, "--token", "t0k", (char *)NULL);
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
		   "'http://127.0.0.1:%d'}}]\nusers: [{name: u, user: {token: t0k}}]\n"
		   "contexts: [{name: t, context: {cluster: c, user: u}}]\n", api_port);
	fclose(f);
	for (int n = 0; n < 3; n++) {
		char ns[2] = { "xyz"[n], 0 };
		apply("namespaces", json_pack("{s:{s:s, s:{s:s}}}", "metadata", "name", ns, "labels", "ns", ns));
	}
	for (int i = 0; i < KC_PODS; i++) {
		char ns[2] = { "xyz"[i / 3], 0 }, name[2] = { "abc"[i % 3], 0 }, v4[32], node[24];
		kc_pod_addr(i, false, v4, sizeof(v4));
		snprintf(node, sizeof(node), "node-%d", kc_pod_node(i) + 1);
		apply("pods", json_pack("{s:{s:s, s:s, s:{s:s}}, s:{s:s}, s:{s:s, s:[{s:s}]}}", "metadata", "name", name,
					"namespace", ns, "labels", "pod", name, "spec", "nodeName", node, "status", "phase",
					"Running", "podIPs", "ip", v4));
	}
	apply("networkpolicies", json_pack("{s:{s:s, s:s}, s:{s:{s:{s:s}}, s:[s]}}", "metadata", "name", "deny",
					   "namespace", "x", "spec", "podSelector", "matchLabels", "pod", "a",
					   "policyTypes", "Ingress"));
	return 0;
}

static int teardown(void **st)
{
	if (agent > 0) {
		kill(agent, SIGTERM);
		waitpid(agent, NULL, 0);
	}
	kc_down(&kc);
	if (api_pid > 0) {
		kill(api_pid, SIGKILL);
		waitpid(api_pid, NULL, 0);
	}
	char *cmd;
	if (asprintf(&cmd, "cat %s/agent.log >&2; rm -rf %s", dir, dir) >= 0) {
		if (system(cmd)) {
		}
		free(cmd);
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: test-events CLUSTER-SCRIPT AGENT FAKE-APISERVER.py\n");
		return 2;
	}
	if (geteuid() != 0) {
		printf("needs root (network namespaces): skipped\n");
		return 77;
	}
	script = argv[1];
	agent_bin = argv[2];
	apiserver = argv[3];
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(one_event_counting_up),
		cmocka_unit_test(rate_limited),
		cmocka_unit_test(disabled),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
