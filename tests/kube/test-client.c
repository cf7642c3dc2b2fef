/* The API client against tests/kube/fake-apiserver.py: one test per fault
 * of the brief, TLS that fails closed, kubeconfig handling.
 *   test-client FAKE-APISERVER.py */
#define _GNU_SOURCE
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "kube/client.h"

static const char *server_py;
static char tmp[64], fixtures[512];

struct server {
	pid_t pid;
	int port;
};

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001) };
	socklen_t l = sizeof(a);
	bind(fd, (struct sockaddr *)&a, sizeof(a));
	getsockname(fd, (struct sockaddr *)&a, &l);
	close(fd);
	return ntohs(a.sin_port);
}

/* Starts the fake server (extra args: --tls CERT KEY, --token T). */
static struct server serve(int port, const char *extra)
{
	int p[2];
	struct server s = { 0, 0 };
	assert_int_equal(pipe(p), 0);
	s.pid = fork();
	if (s.pid == 0) {
		char *cmd;
		dup2(p[1], 1);
		close(p[0]);
		if (asprintf(&cmd, "exec python3 %s --port %d %s", server_py, port, extra ? extra : "") < 0)
			_exit(1);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	FILE *f = fdopen(p[0], "r");
	char line[64] = "";
	assert_non_null(fgets(line, sizeof(line), f));
	fclose(f);
	assert_int_equal(sscanf(line, "listening %d", &s.port), 1);
	return s;
}

static void stop(struct server *s)
{
	if (s->pid > 0) {
		kill(s->pid, SIGKILL);
		waitpid(s->pid, NULL, 0);
	}
	s->pid = 0;
}

/* POST /_ctl/... */
static void ctl(struct server *s, const char *path, const char *fmt, ...)
{
	va_list ap;
	char *body, *url;
	va_start(ap, fmt);
	assert_true(vasprintf(&body, fmt, ap) >= 0);
	va_end(ap);
	assert_true(asprintf(&url, "http://127.0.0.1:%d/_ctl/%s", s->port, path) >= 0);
	CURL *e = curl_easy_init();
	FILE *devnull = fopen("/dev/null", "w");
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, devnull);
	assert_int_equal(curl_easy_perform(e), CURLE_OK);
	curl_easy_cleanup(e);
	fclose(devnull);
	free(body);
	free(url);
}

static void pod(struct server *s, const char *ns, const char *name, const char *app, const char *ip)
{
	ctl(s, "apply",
	    "{\"resource\": \"pods\", \"object\": {\"apiVersion\": \"v1\", \"kind\": \"Pod\", \"metadata\": {\"name\": "
	    "\"%s\", \"namespace\": \"%s\", \"labels\": {\"app\": \"%s\"}}, \"spec\": {\"nodeName\": \"n1\"}, "
	    "\"status\": {\"phase\": \"Running\", \"podIPs\": [{\"ip\": \"%s\"}]}}}",
	    name, ns, app, ip);
}

static void delpod(struct server *s, const char *ns, const char *name, bool silently)
{
	ctl(s, silently ? "wipe" : "delete", "{\"resource\": \"pods\", \"namespace\": \"%s\", \"name\": \"%s\"}", ns, name);
}

/* ---------- what the client told us ---------- */

struct seen {
	int added[KRES_COUNT], updated[KRES_COUNT], deleted[KRES_COUNT];
	int synced, troubles, unreadable, token_rereads, page_shrinks;
	char last_trouble[512], last_unreadable[512];
	char last_old_app[64], last_new_app[64];
};

static void on_changed(void *arg, enum kube_res r, const void *old, void *new)
{
	struct seen *s = arg;
	if (!old)
		s->added[r]++;
	else if (!new)
		s->deleted[r]++;
	else
		s->updated[r]++;
	if (r == KRES_PODS && old && new) {
		istr a = labelset_get(&((const struct pod_spec *)old)->labels, "app");
		istr b = labelset_get(&((const struct pod_spec *)new)->labels, "app");
		snprintf(s->last_old_app, sizeof(s->last_old_app), "%s", a ? a : "");
		snprintf(s->last_new_app, sizeof(s->last_new_app), "%s", b ? b : "");
	}
}

static void on_synced(void *arg)
{
	((struct seen *)arg)->synced++;
}

static void on_trouble(void *arg, enum kube_res r, const char *what)
{
	struct seen *s = arg;
	s->troubles++;
	s->token_rereads += strstr(what, "401 Unauthorized: token re-read") != NULL;
	s->page_shrinks += strstr(what, "went past 32 MiB: asking for") != NULL;
	snprintf(s->last_trouble, sizeof(s->last_trouble), "%s: %s", kube_res_name(r), what);
}

static void on_unreadable(void *arg, enum kube_res r, const char *what)
{
	struct seen *s = arg;
	s->unreadable++;
	snprintf(s->last_unreadable, sizeof(s->last_unreadable), "%s: %s", kube_res_name(r), what);
}

static struct kube_client *client_reload(struct server *s, struct seen *seen, const char *token, const char *token_file,
				   unsigned token_reload);

static struct kube_client *client(struct server *s, struct seen *seen, const char *token, const char *token_file)
{
	return client_reload(s, seen, token, token_file, 1);
}

static struct kube_client *client_reload(struct server *s, struct seen *seen, const char *token, const char *token_file,
				   unsigned token_reload)
{
	struct kube_auth a = { 0 };
	a.server = xasprintf("http://127.0.0.1:%d", s->port);
	a.token = token ? xstrdup(token) : NULL;
	a.token_file = token_file ? xstrdup(token_file) : NULL;
	struct kube_client_opts o = { .backoff_base = 0.05, .backoff_cap = 0.4, .healthy_after = 1, .watch_timeout = 3,
				      .idle_timeout = 2, .page_limit = 2, .token_reload = token_reload };
	struct kube_handlers h = { .changed = on_changed, .synced = on_synced, .trouble = on_trouble,
				   .unreadable = on_unreadable, .arg = seen };
	memset(seen, 0, sizeof(*seen));
	return kube_client_new(&a, &o, &h);
}

#define run_until(c, cond, secs)                                                                   \
	do {                                                                                       \
		double _end = now_s() + (secs);                                                    \
		while (!(cond) && now_s() < _end)                                                  \
			kube_client_step((c), -1, 20);                                             \
		if (!(cond))                                                               \
			fail_msg("timed out waiting for %s (last trouble: %s)", #cond, seen.last_trouble); \
	} while (0)

static void run_for(struct kube_client *c, double secs)
{
	double end = now_s() + secs;
	while (now_s() < end)
		kube_client_step(c, -1, 20);
}

static const char *ap_app_of(struct kube_client *c, const char *ns, const char *name)
{
	const struct pod_spec *p = kube_client_get(c, KRES_PODS, ns, name);
	return p ? labelset_get(&p->labels, "app") : NULL;
}

/* ---------- tests ---------- */

/* LIST in pages, then WATCH: adds, updates with old and new, deletes. */
static void list_then_watch(void **st)
{
	struct server s = serve(0, NULL);
	struct seen seen;
	for (int i = 0; i < 5; i++) {
		char n[16], ip[16];
		snprintf(n, sizeof(n), "p%d", i);
		snprintf(ip, sizeof(ip), "10.0.0.%d", i + 1);
		pod(&s, "a", n, "web", ip);
	}
	ctl(&s, "apply", "{\"resource\": \"namespaces\", \"object\": {\"metadata\": {\"name\": \"a\", \"labels\": {\"t\": \"1\"}}}}");
	struct kube_client *c = client(&s, &seen, NULL, NULL);
	run_until(c, seen.synced, 5);
	assert_int_equal(kube_client_count(c, KRES_PODS), 5);
	assert_int_equal(seen.added[KRES_PODS], 5);
	assert_int_equal(seen.added[KRES_NAMESPACES], 1);
	assert_true(kube_client_stats(c)->lists >= 4);
	pod(&s, "a", "p9", "api", "10.0.0.9");
	pod(&s, "a", "p0", "db", "10.0.0.1");
	delpod(&s, "a", "p1", false);
	run_until(c, seen.deleted[KRES_PODS] == 1 && seen.updated[KRES_PODS] == 1 && seen.added[KRES_PODS] == 6, 5);
	assert_string_equal(seen.last_old_app, "web");
	assert_string_equal(seen.last_new_app, "db");
	assert_null(kube_client_get(c, KRES_PODS, "a", "p1"));
	assert_string_equal(ap_app_of(c, "a", "p9"), "api");
	kube_client_free(c);
	stop(&s);
}

/* Typed lists carry no kind or apiVersion on their items (a real server's
 * shape, which the fake server imitates): every resource is read as the
 * resource it was listed from, before and after a relist. An object the
 * decoder refuses is kept, fail-closed, never read as gone. */
/* The API server's endpoints (the kube-apiserver entity): the
 * EndpointSlices of the Service default/kubernetes, listed and watched in
 * namespace default, read as node_specs with apiserver set: the addresses
 * of endpoints not known unready. */
static void apiserver_endpoints(void **st)
{
	(void)st;
	struct server s = serve(0, NULL);
	struct seen seen;
	ctl(&s, "apply", "{\"resource\": \"endpointslices\", \"object\": {\"metadata\": {\"name\": \"kubernetes\", "
			 "\"namespace\": \"default\", \"labels\": {\"kubernetes.io/service-name\": \"kubernetes\"}}, "
			 "\"addressType\": \"IPv4\", \"endpoints\": [{\"addresses\": [\"192.0.2.10\"]}, "
			 "{\"addresses\": [\"192.0.2.11\"], \"conditions\": {\"ready\": false}}, "
			 "{\"addresses\": [\"192.0.2.12\"], \"conditions\": {\"ready\": true}}], "
			 "\"ports\": [{\"name\": \"https\", \"port\": 6443, \"protocol\": \"TCP\"}]}}");
	struct kube_client *c = client(&s, &seen, NULL, NULL);
	run_until(c, seen.synced, 5);
	const struct node_spec *n = kube_client_get(c, KRES_APISERVER, "default", "kubernetes");
	assert_non_null(n);
	assert_true(n->apiserver && !n->unreadable);
	assert_int_equal(n->naddr, 2); /* 192.0.2.11 is not ready */
	char a[IP_STRLEN], b[IP_STRLEN];
	ip_format(n->addr[0], a, sizeof(a));
	ip_format(n->addr[1], b, sizeof(b));
	assert_string_equal(a, "192.0.2.10");
	assert_string_equal(b, "192.0.2.12");
	/* a change is watched */
	ctl(&s, "apply", "{\"resource\": \"endpointslices\", \"object\": {\"metadata\": {\"name\": \"kubernetes\", "
			 "\"namespace\": \"default\", \"labels\": {\"kubernetes.io/service-name\": \"kubernetes\"}}, "
			 "\"addressType\": \"IPv4\", \"endpoints\": [{\"addresses\": [\"192.0.2.20\"]}]}}");
	run_until(c, (n = kube_client_get(c, KRES_APISERVER, "default", "kubernetes")) && n->naddr == 1 &&
			     n->addr[0].lo == 0xffffc0000214ull, 5);
	kube_client_free(c);
	stop(&s);
}

static void objects_read_as_their_resource(void **st)
{
	struct server s = serve(0, NULL);
	struct seen seen;
	ctl(&s, "apply", "{\"resource\": \"namespaces\", \"object\": {\"metadata\": {\"name\": \"x\", \"labels\": {\"t\": \"1\"}}}}");
	pod(&s, "x", "a", "web", "10.0.0.1");
	ctl(&s, "apply", "{\"resource\": \"networkpolicies\", \"object\": {\"metadata\": {\"name\": \"deny\", "
			 "\"namespace\": \"x\"}, \"spec\": {\"podSelector\": {}, \"policyTypes\": [\"Ingress\"]}}}");
	ctl(&s, "apply", "{\"resource\": \"networkpolicies\", \"object\": {\"metadata\": {\"name\": \"odd\", "
			 "\"namespace\": \"x\"}, \"spec\": {\"podSelector\": {\"matchLabels\": {\"app\": \"web\"}}}}}");
	ctl(&s, "apply", "{\"resource\": \"accesspolicies\", \"object\": {\"metadata\": {\"name\": \"web\", "
			 "\"namespace\": \"x\"}, \"spec\": {\"application\": \"web\"}}}");
	/* the decoder refuses what the server serves for x/odd */
	ctl(&s, "fault", "{\"name\": \"poison\", \"resource\": \"networkpolicies\", \"key\": \"x/odd\", "
			 "\"path\": \"spec.podSelector\", \"value\": {\"matchExpressions\": [{\"key\": \"app\", "
			 "\"operator\": \"Matches\"}]}}");
	struct kube_client *c = client(&s, &seen, NULL, NULL);
	run_until(c, seen.synced, 5);
	for (int round = 0; round < 2; round++) {
		assert_non_null(kube_client_get(c, KRES_NAMESPACES, NULL, "x"));
		assert_non_null(kube_client_get(c, KRES_PODS, "x", "a"));
		const struct policy_spec *deny = kube_client_get(c, KRES_NETPOLS, "x", "deny");
		assert_non_null(deny);
		assert_true(deny->valid && !deny->unreadable && deny->isolates[DIR_INGRESS]);
		assert_non_null(kube_client_get(c, KRES_ACCESS, "x", "web"));
		const struct policy_spec *odd = kube_client_get(c, KRES_NETPOLS, "x", "odd");
		assert_non_null(odd);
		assert_true(odd->unreadable && !odd->valid && odd->target.n == 0);
		assert_non_null(strstr(seen.last_unreadable, "NetworkPolicy x/odd: spec.podSelector.matchExpressions[0].operator"));
		if (round)
			break;
		/* a relist (410) reads the typed list again */
		ctl(&s, "compact", "{}");
		ctl(&s, "closeall", "{}");
		run_until(c, kube_client_stats(c)->relists >= 1, 8);
		run_for(c, 0.3);
	}
	assert_int_equal(seen.deleted[KRES_NETPOLS], 0);
	assert_int_equal(kube_client_stats(c)->rejected, 0);
	kube_client_free(c);
	stop(&s);
}

/* Review: the API server stores any string in an annotation, "\u0000"
 * included (Go writes it escaped). One such object, written by any tenant
 * who may create a Pod or a NetworkPolicy in its own namespace, must not
 * stop the client from reading the others: neither in the LIST (the whole
 * page was refused, then relisted forever: never synced) nor in the WATCH
 * (the stream was dropped at it and resumed before it, forever: nothing
 * of that resource after it was ever read, cluster-wide). */
static void nul_in_a_string(void **st)
{
	struct server s = serve(0, NULL);
	struct seen seen;
	pod(&s, "other", "before", "web", "10.0.0.1");
	ctl(&s, "apply", "{\"resource\": \"pods\", \"object\": {\"apiVersion\": \"v1\", \"kind\": \"Pod\", \"metadata\": "
			 "{\"name\": \"nul\", \"namespace\": \"tenant\", \"labels\": {\"app\": \"t\"}, \"annotations\": "
			 "{\"note\": \"a\\u0000b\"}}, \"spec\": {\"nodeName\": \"n1\"}, \"status\": {\"phase\": \"Running\", "
			 "\"podIPs\": [{\"ip\": \"10.0.0.2\"}]}}}");
	struct kube_client *c = client(&s, &seen, NULL, NULL);
	run_until(c, seen.synced, 5); /* main: "LIST: malformed response: \u0000 is not allowed" for ever */
	assert_non_null(kube_client_get(c, KRES_PODS, "other", "before"));
	assert_non_null(kube_client_get(c, KRES_PODS, "tenant", "nul"));
	/* the same through the watch: an object after it still arrives */
	ctl(&s, "apply", "{\"resource\": \"networkpolicies\", \"object\": {\"metadata\": {\"name\": \"nul\", "
			 "\"namespace\": \"tenant\", \"annotations\": {\"note\": \"\\u0000\"}}, \"spec\": {\"podSelector\": {}}}}");
	ctl(&s, "apply", "{\"resource\": \"networkpolicies\", \"object\": {\"metadata\": {\"name\": \"deny\", "
			 "\"namespace\": \"other\"}, \"spec\": {\"podSelector\": {}, \"policyTypes\": [\"Ingress\"]}}}");
	run_until(c, kube_client_get(c, KRES_NETPOLS, "other", "deny") != NULL, 5);
	assert_non_null(kube_client_get(c, KRES_NETPOLS, "tenant", "nul"));
	kube_client_free(c);
	stop(&s);
}

/* 1. 410 as an ERROR event in a 200 stream, and as an HTTP 410: relist;
 * 7. objects that vanished meanwhile become deletes. */
static void gone_relists(void **st)
{
	for (int as_status = 0; as_status < 2; as_status++) {
		struct server s = serve(0, NULL);
		struct seen seen;
		pod(&s, "a", "keep", "web", "10.0.0.1");
		pod(&s, "a", "vanish", "web", "10.0.0.2");
		struct kube_client *c = client(&s, &seen, NULL, NULL);
		run_until(c, seen.synced, 5);
		delpod(&s, "a", "vanish", true); /* no event: only a relist can tell */
		pod(&s, "a", "new", "api", "10.0.0.3");
		ctl(&s, "compact", "{}");
		if (as_status)
			ctl(&s, "fault", "{\"name\": \"gone_as_status\", \"count\": 4}");
		ctl(&s, "closeall", "{}");
		run_until(c, seen.deleted[KRES_PODS] == 1 && kube_client_get(c, KRES_PODS, "a", "new"), 8);
		assert_true(kube_client_stats(c)->relists >= 1);
		assert_non_null(kube_client_get(c, KRES_PODS, "a", "keep"));
		assert_null(kube_client_get(c, KRES_PODS, "a", "vanish"));
		assert_int_equal(seen.updated[KRES_PODS], 0); /* "keep" came back unchanged: no update */
		kube_client_free(c);
		stop(&s);
	}
}

/* An ERROR event other than 410 (a real server sends a 500 for a watch
 * from just before the compaction revision with its watch cache off):
 * listed again after a back-off, never re-watched from the same version
 * in a loop. */
static void error_event_relists(void **st)
{
	struct server s = serve(0, NULL);
	struct seen seen;
	pod(&s, "e", "first", "web", "10.0.7.1");
	struct kube_client *c = client(&s, &seen, NULL, NULL);
	run_until(c, seen.synced, 5);
	uint64_t lists = kube_client_stats(c)->lists, watches = kube_client_stats(c)->watches;
	ctl(&s, "fault", "{\"name\": \"error_event\", \"count\": 3}");
	delpod(&s, "e", "first", true); /* gone without an event: only a list tells */
	ctl(&s, "closeall", "{}");
	run_until(c, seen.deleted[KRES_PODS] == 1, 8);
	uint64_t dl = kube_client_stats(c)->lists - lists, dw = kube_client_stats(c)->watches - watches;
	printf("  3 ERROR 500 events: %llu lists, %llu watches\n", (unsigned long long)dl, (unsigned long long)dw);
	assert_true(dl >= 1);
	assert_true(dw <= 12); /* backed off: no spin on the same version */
	assert_non_null(strstr(seen.last_trouble, "watch ERROR event 500"));
	kube_client_free(c);
	stop(&s);
}

/* A LIST page that grows past its byte bound (pods with large
 * annotations) is asked for again with fewer items, and the list
 * completes; items are applied one by one, never as one page-wide tree. */
static void oversized_pages_shrink(void **st)
{
	struct server s = serve(0, NULL);
	struct seen seen;
	char *big = xmalloc((20u << 20) + 1);
	memset(big, 'a', 20u << 20);
	big[20u << 20] = 0;
	for (int i = 0; i < 3; i++) {
		char n[16];
		snprintf(n, sizeof(n), "big%d", i);
		ctl(&s, "apply", "{\"resource\": \"pods\", \"object\": {\"metadata\": {\"name\": \"%s\", \"namespace\": "
				 "\"b\", \"labels\": {\"app\": \"web\"}, \"annotations\": {\"note\": \"%s\"}}, \"spec\": {}, "
				 "\"status\": {\"podIPs\": [{\"ip\": \"10.0.8.%d\"}]}}}", n, big, i + 1);
	}
	free(big);
	struct kube_client *c = client(&s, &seen, NULL, NULL); /* pages of 2: 40 MB, past the 32 MiB bound */
	run_until(c, seen.synced, 60);
	assert_int_equal(kube_client_count(c, KRES_PODS), 3);
	assert_true(seen.page_shrinks >= 1);
	kube_client_free(c);
	stop(&s);
}

/* 2. A continue token that expires in the middle of a paginated list. */
static void continue_expires(void **st)
{
	struct server s = serve(0, NULL);
	struct seen seen;
	for (int i = 0; i < 9; i++) {
		char n[16], ip[16];
		snprintf(n, sizeof(n), "p%d", i);
		snprintf(ip, sizeof(ip), "10.0.1.%d", i + 1);
		pod(&s, "b", n, "web", ip);
	}
	ctl(&s, "fault", "{\"name\": \"expire_continue\", \"count\": 1}");
	struct kube_client *c = client(&s, &seen, NULL, NULL);
	run_until(c, seen.synced, 5);
	assert_int_equal(kube_client_count(c, KRES_PODS), 9);
	assert_int_equal(seen.added[KRES_PODS], 9); /* pages before the failure are not added twice */
	assert_true(kube_client_stats(c)->relists >= 1);
	kube_client_free(c);
	stop(&s);
}

/* 3. Streams that end cleanly are watched again; empty, instant ones are
 * failures with back-off, not a spin. */
static void short_watches_back_off(void **st)
{
	struct server s = serve(0, NULL);
	struct seen seen;
	struct kube_client *c = client(&s, &seen, NULL, NULL);
	run_until(c, seen.synced, 5);
	uint64_t w0 = kube_client_stats(c)->watches;
	ctl(&s, "fault", "{\"name\": \"empty_watch\", \"count\": 1000}");
	ctl(&s, "closeall", "{}");
	run_for(c, 1.5);
	uint64_t n = kube_client_stats(c)->watches - w0;
	printf("  %llu watches in 1.5 s against a server that ends every watch at once (%d resources)\n",
	       (unsigned long long)n, KRES_COUNT);
	assert_true(n >= KRES_COUNT && n <= KRES_COUNT * 6); /* back-off 0.05 s doubling, capped at 0.4 s */
	ctl(&s, "fault", "{\"name\": \"empty_watch\", \"count\": 0}");
	pod(&s, "a", "late", "web", "10.0.0.7");
	run_until(c, kube_client_get(c, KRES_PODS, "a", "late"), 5);
	kube_client_free(c);
	stop(&s);
}

/* 4. A connection that stays open and sends nothing is given up on. */
static void silent_connection(void **st)
{
	struct server s = serve(0, NULL);
	struct seen seen;
	struct kube_client *c = client(&s, &seen, NULL, NULL);
	run_until(c, seen.synced, 5);
	ctl(&s, "fault", "{\"name\": \"idle\", \"count\": 4, \"seconds\": 60}");
	ctl(&s, "closeall", "{}");
	run_for(c, 0.3);
	pod(&s, "a", "after-idle", "web", "10.0.0.8");
	double t0 = now_s();
	run_until(c, kube_client_get(c, KRES_PODS, "a", "after-idle"), 8);
	printf("  silent watch abandoned and the change seen after %.1f s (idle timeout 2 s)\n", now_s() - t0);
	kube_client_free(c);
	stop(&s);
}

/* A read of one node's pods (kube_client_node_pods, for provisional
 * verdicts) while the pod watch is behind: the server withholds every
 * watch event (idle), the read has the new pod all the same, and only
 * this node's. */
struct node_read {
	int calls, rc;
	struct pod_spec **pods;
	size_t n;
	char err[256];
};

static void on_node_pods(void *arg, int rc, struct pod_spec **pods, size_t n, const char *err)
{
	struct node_read *r = arg;
	r->calls++;
	r->rc = rc;
	r->pods = pods;
	r->n = n;
	if (err) {
		printf("  read failed: %s\n", err);
		snprintf(r->err, sizeof(r->err), "%s", err);
	}
}

static void apply_pod(struct server *s, const char *name, const char *node, const char *app)
{
	ctl(s, "apply",
	    "{\"resource\": \"pods\", \"object\": {\"apiVersion\": \"v1\", \"kind\": \"Pod\", \"metadata\": {\"name\": "
	    "\"%s\", \"namespace\": \"a\", \"labels\": {\"app\": \"%s\"}}, \"spec\": {\"nodeName\": \"%s\"}, "
	    "\"status\": {\"phase\": \"Pending\"}}}",
	    name, app, node);
}

static void node_pods_past_a_stale_watch(void **st)
{
	struct server s = serve(0, NULL);
	struct seen seen;
	pod(&s, "a", "old", "web", "10.0.0.1"); /* on n1 */
	apply_pod(&s, "cand", "n1", "web");
	struct kube_client *c = client(&s, &seen, NULL, NULL);
	run_until(c, seen.synced, 5);
	ctl(&s, "fault", "{\"name\": \"idle\", \"count\": 1000, \"seconds\": 60}");
	ctl(&s, "closeall", "{}");
	run_for(c, 0.3);
	apply_pod(&s, "late", "n1", "db");
	apply_pod(&s, "elsewhere", "n2", "web");
	run_for(c, 0.5);
	assert_null(kube_client_get(c, KRES_PODS, "a", "late")); /* the watch is behind */
	struct node_read r = { 0 };
	assert_int_equal(kube_client_node_pods(c, "n1", on_node_pods, &r), 0);
	assert_int_equal(kube_client_node_pods(c, "n1", on_node_pods, &r), -EBUSY);
	run_until(c, r.calls == 1, 5);
	assert_int_equal(r.rc, 0);
	assert_int_equal(r.n, 3);
	bool late = false;
	for (size_t i = 0; i < r.n; i++) {
		assert_string_equal(r.pods[i]->node, "n1");
		if (!strcmp(r.pods[i]->name, "late")) {
			late = true;
			assert_int_equal(r.pods[i]->naddr, 0);
			assert_string_equal(labelset_get(&r.pods[i]->labels, "app"), "db");
		}
		pod_spec_free(r.pods[i]);
	}
	free(r.pods);
	assert_true(late);
	assert_null(kube_client_get(c, KRES_PODS, "a", "late")); /* still behind */
	/* a read refused: the API server's Status (reason, message) is said */
	ctl(&s, "fault", "{\"name\": \"status\", \"count\": 1, \"code\": 403}");
	r = (struct node_read){ 0 };
	assert_int_equal(kube_client_node_pods(c, "n1", on_node_pods, &r), 0);
	run_until(c, r.calls == 1, 5);
	assert_true(r.rc < 0);
	assert_string_equal(r.err, "HTTP 403 Injected: injected fault");
	/* a server that fails the read: rc < 0, no pods */
	stop(&s);
	r = (struct node_read){ 0 };
	assert_int_equal(kube_client_node_pods(c, "n1", on_node_pods, &r), 0);
	run_until(c, r.calls == 1, 15);
	assert_true(r.rc < 0);
	assert_int_equal(r.n, 0);
	kube_client_free(c);
}

/* 5. Events split across chunks, several per chunk, a truncated last one. */
static void chunking(void **st)
{
	const char *faults[] = { "split", "batch", "truncate" };
	for (int f = 0; f < 3; f++) {
		struct server s = serve(0, NULL);
		struct seen seen;
		struct kube_client *c = client(&s, &seen, NULL, NULL);
		run_until(c, seen.synced, 5);
		ctl(&s, "fault", "{\"name\": \"%s\", \"count\": 1}", faults[f]);
		pod(&s, "c", "one", "web", "10.0.2.1");
		pod(&s, "c", "two", "api", "10.0.2.2");
		pod(&s, "c", "three", "db", "10.0.2.3");
		run_until(c, kube_client_count(c, KRES_PODS) == 3, 8);
		assert_string_equal(ap_app_of(c, "c", "three"), "db");
		assert_int_equal(seen.added[KRES_PODS], 3); /* each once, never a half object */
		kube_client_free(c);
		stop(&s);
	}
}

/* 6. Malformed JSON and unknown event types end the stream; recovery. */
static void malformed_streams(void **st)
{
	const char *faults[] = { "malformed", "unknown_type" };
	for (int f = 0; f < 2; f++) {
		struct server s = serve(0, NULL);
		struct seen seen;
		struct kube_client *c = client(&s, &seen, NULL, NULL);
		run_until(c, seen.synced, 5);
		ctl(&s, "fault", "{\"name\": \"%s\", \"count\": 1}", faults[f]);
		pod(&s, "d", "x", "web", "10.0.3.1");
		run_until(c, kube_client_get(c, KRES_PODS, "d", "x"), 8);
		assert_true(seen.troubles >= 1);
		printf("  %s: recovered after \"%s\"\n", faults[f], seen.last_trouble);
		kube_client_free(c);
		stop(&s);
	}
}

/* 8. 429 and 5xx with Retry-After; connection refused; reset mid-stream. */
static void errors_and_retry_after(void **st)
{
	struct server s = serve(0, NULL);
	struct seen seen;
	ctl(&s, "fault", "{\"name\": \"status\", \"count\": 1, \"code\": 429, \"retry_after\": 1}");
	double t0 = now_s();
	struct kube_client *c = client(&s, &seen, NULL, NULL);
	run_until(c, seen.synced, 6);
	double took = now_s() - t0;
	printf("  429 with Retry-After: 1 -> synced after %.2f s\n", took);
	assert_true(took >= 1.0);
	assert_non_null(strstr(seen.last_trouble, "429"));
	ctl(&s, "fault", "{\"name\": \"status\", \"count\": 3, \"code\": 503}");
	ctl(&s, "closeall", "{}");
	pod(&s, "e", "after-503", "web", "10.0.4.1");
	run_until(c, kube_client_get(c, KRES_PODS, "e", "after-503"), 6);
	ctl(&s, "fault", "{\"name\": \"reset_mid\", \"count\": 1}");
	pod(&s, "e", "after-reset", "web", "10.0.4.2");
	run_until(c, kube_client_get(c, KRES_PODS, "e", "after-reset"), 6);
	kube_client_free(c);
	stop(&s);
	/* nothing listening yet: back off until the server comes */
	int port = free_port();
	struct server dead = { 0, port };
	c = client(&dead, &seen, NULL, NULL);
	run_for(c, 0.5);
	assert_false(seen.synced);
	assert_non_null(strstr(seen.last_trouble, "onnect"));
	s = serve(port, NULL);
	run_until(c, seen.synced, 6);
	kube_client_free(c);
	stop(&s);
}

/* 9. The token is rotated: the old one gets 401; the file is re-read. */
static void token_rotation(void **st)
{
	char tf[128];
	snprintf(tf, sizeof(tf), "%s/token", tmp);
	FILE *f = fopen(tf, "w");
	fputs("t1\n", f);
	fclose(f);
	struct server s = serve(0, "--token t1");
	struct seen seen;
	/* the timed re-read is an hour away: only the 401 path can pick up
	 * the new token in time */
	struct kube_client *c = client_reload(&s, &seen, NULL, tf, 3600);
	run_until(c, seen.synced, 5);
	f = fopen(tf, "w");
	fputs("t2\n", f);
	fclose(f);
	ctl(&s, "token", "{\"token\": \"t2\"}");
	ctl(&s, "closeall", "{}");
	pod(&s, "f", "rotated", "web", "10.0.5.1");
	double t0 = now_s();
	run_until(c, kube_client_get(c, KRES_PODS, "f", "rotated"), 6);
	uint64_t n401 = kube_client_stats(c)->unauthorized;
	printf("  401s seen: %llu, recovered with the new token in %.2f s\n", (unsigned long long)n401, now_s() - t0);
	assert_true(n401 >= 1);
	assert_true(n401 <= 2 * KRES_COUNT); /* one per watch, then the new token works */
	assert_true(seen.token_rereads >= 1);
	kube_client_free(c);
	stop(&s);
	/* a wrong token never syncs, and says why */
	s = serve(0, "--token right");
	c = client(&s, &seen, "wrong", NULL);
	run_for(c, 0.5);
	assert_false(seen.synced);
	assert_non_null(strstr(seen.last_trouble, "401"));
	kube_client_free(c);
	stop(&s);
}

/* 10. The API server restarts: every watch closes at once, the server
 * answers 503 while it comes up, and its watch cache starts after the
 * versions the client holds (410: relist; what changed meanwhile, deletes
 * included, arrives). */
static void server_restart(void **st)
{
	struct server s = serve(0, NULL);
	struct seen seen;
	pod(&s, "g", "before", "web", "10.0.6.1");
	struct kube_client *c = client(&s, &seen, NULL, NULL);
	run_until(c, seen.synced, 5);
	run_for(c, 0.3); /* every watch open */
	uint64_t w0 = kube_client_stats(c)->watches;
	delpod(&s, "g", "before", true);
	pod(&s, "g", "after", "web", "10.0.6.2");
	ctl(&s, "compact", "{}");
	ctl(&s, "fault", "{\"name\": \"status\", \"count\": 6, \"code\": 503}");
	ctl(&s, "closeall", "{}");
	run_until(c, kube_client_get(c, KRES_PODS, "g", "after") && !kube_client_get(c, KRES_PODS, "g", "before"), 10);
	printf("  watches restarted: %llu, relists: %llu\n", (unsigned long long)(kube_client_stats(c)->watches - w0),
	       (unsigned long long)kube_client_stats(c)->relists);
	assert_true(kube_client_stats(c)->watches - w0 >= 4); /* all four watched again */
	assert_true(kube_client_stats(c)->relists >= 1);
	kube_client_free(c);
	stop(&s);
}

/* Streaming initial list when the server offers it; LIST when it says 422. */
static void initial_events(void **st)
{
	for (int supported = 0; supported < 2; supported++) {
		struct server s = serve(0, NULL);
		struct seen seen;
		if (supported)
			ctl(&s, "config", "{\"initial_events\": true}");
		pod(&s, "h", "p", "web", "10.0.7.1");
		struct kube_auth a = { 0 };
		a.server = xasprintf("http://127.0.0.1:%d", s.port);
		struct kube_client_opts o = { .backoff_base = 0.05, .backoff_cap = 0.4, .watch_timeout = 3,
					      .idle_timeout = 2, .initial_events = true };
		struct kube_handlers h = { .changed = on_changed, .synced = on_synced, .trouble = on_trouble, .unreadable = on_trouble, .arg = &seen };
		memset(&seen, 0, sizeof(seen));
		struct kube_client *c = kube_client_new(&a, &o, &h);
		run_until(c, seen.synced, 5);
		assert_non_null(kube_client_get(c, KRES_PODS, "h", "p"));
		pod(&s, "h", "q", "web", "10.0.7.2");
		run_until(c, kube_client_get(c, KRES_PODS, "h", "q"), 5);
		printf("  sendInitialEvents %s: synced\n", supported ? "served" : "refused (422), fell back to LIST");
		kube_client_free(c);
		stop(&s);
	}
}

/* TLS: the right CA syncs; a wrong CA or an expired certificate never
 * syncs (fail closed) and says why. */
static void tls(void **st)
{
	char *cmd;
	assert_true(asprintf(&cmd, "sh %s %s", fixtures, tmp) >= 0);
	assert_int_equal(system(cmd), 0);
	free(cmd);
	struct {
		const char *cert, *ca;
		bool ok;
		const char *why;
	} cases[] = {
		{ "server", "ca", true, NULL },
		{ "server", "other-ca", false, "certificate problem: unable to get local issuer" },
		{ "expired", "ca", false, "certificate has expired" },
	};
	for (size_t i = 0; i < 3; i++) {
		char args[256], ca[128];
		snprintf(args, sizeof(args), "--tls %s/%s.crt %s/%s.key", tmp, cases[i].cert, tmp, cases[i].cert);
		snprintf(ca, sizeof(ca), "%s/%s.crt", tmp, cases[i].ca);
		struct server s = serve(0, args);
		struct seen seen;
		memset(&seen, 0, sizeof(seen));
		struct kube_auth a = { 0 };
		a.server = xasprintf("https://127.0.0.1:%d", s.port);
		a.ca_file = xstrdup(ca);
		struct kube_client_opts o = { .backoff_base = 0.05, .backoff_cap = 0.4, .watch_timeout = 3, .idle_timeout = 2 };
		struct kube_handlers h = { .changed = on_changed, .synced = on_synced, .trouble = on_trouble, .unreadable = on_trouble, .arg = &seen };
		struct kube_client *c = kube_client_new(&a, &o, &h);
		run_for(c, cases[i].ok ? 0 : 1.0);
		if (cases[i].ok) {
			run_until(c, seen.synced, 5);
		} else {
			assert_false(seen.synced);
			printf("  %s cert / %s: refused: %s\n", cases[i].cert, cases[i].ca, seen.last_trouble);
			assert_non_null(strcasestr(seen.last_trouble, cases[i].why));
		}
		kube_client_free(c);
		stop(&s);
	}
}

static void kubeconfig(void **st)
{
	char path[128], *err = NULL;
	struct kube_auth a;
	snprintf(path, sizeof(path), "%s/kubeconfig", tmp);
	FILE *f = fopen(path, "w");
	fputs("apiVersion: v1\nkind: Config\ncurrent-context: dev\n"
	      "clusters:\n- name: c1\n  cluster: {server: 'https://10.0.0.1:6443', certificate-authority-data: aGVsbG8=}\n"
	      "- name: c2\n  cluster: {server: 'https://k.example:443', certificate-authority: ca.crt, insecure-skip-tls-verify: true}\n"
	      "users:\n- name: u1\n  user: {tokenFile: tok}\n"
	      "- name: u2\n  user: {exec: {command: aws, apiVersion: client.authentication.k8s.io/v1}}\n"
	      "- name: u3\n  user: {client-certificate-data: Y2VydA==, client-key-data: a2V5}\n"
	      "contexts:\n- name: dev\n  context: {cluster: c1, user: u1}\n"
	      "- name: cloud\n  context: {cluster: c2, user: u2}\n"
	      "- name: certs\n  context: {cluster: c2, user: u3}\n",
	      f);
	fclose(f);
	assert_int_equal(kube_auth_kubeconfig(&a, path, NULL, &err), 0);
	assert_string_equal(a.server, "https://10.0.0.1:6443");
	assert_int_equal(a.ca_len, 5);
	assert_memory_equal(a.ca_data, "hello", 5);
	assert_non_null(strstr(a.token_file, "/tok"));
	kube_auth_free(&a);
	assert_int_equal(kube_auth_kubeconfig(&a, path, "certs", &err), 0);
	assert_true(a.insecure);
	assert_memory_equal(a.cert_data, "cert", 4);
	assert_memory_equal(a.key_data, "key", 3);
	assert_non_null(strstr(a.ca_file, "/ca.crt"));
	kube_auth_free(&a);
	assert_int_equal(kube_auth_kubeconfig(&a, path, "cloud", &err), -EINVAL);
	printf("  %s\n", err);
	assert_non_null(strstr(err, "exec plugin"));
	free(err);
	assert_int_equal(kube_auth_kubeconfig(&a, path, "nope", &err), -EINVAL);
	assert_non_null(strstr(err, "does not exist"));
	free(err);
	/* in the cluster: the service's address and the mounted account */
	char tok[160];
	snprintf(tok, sizeof(tok), "%s/token", tmp);
	f = fopen(tok, "w");
	fputs("sa-token\n", f);
	fclose(f);
	setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
	setenv("KUBERNETES_SERVICE_PORT", "443", 1);
	assert_int_equal(kube_auth_in_cluster(&a, tmp, &err), 0);
	assert_string_equal(a.server, "https://10.96.0.1:443");
	assert_string_equal(a.token_file, tok);
	assert_non_null(strstr(a.ca_file, "/ca.crt"));
	kube_auth_free(&a);
	setenv("KUBERNETES_SERVICE_HOST", "fd00::1", 1);
	assert_int_equal(kube_auth_in_cluster(&a, tmp, &err), 0);
	assert_string_equal(a.server, "https://[fd00::1]:443");
	kube_auth_free(&a);
	unsetenv("KUBERNETES_SERVICE_HOST");
	assert_int_equal(kube_auth_in_cluster(&a, tmp, &err), -ENOENT);
	assert_non_null(strstr(err, "KUBERNETES_SERVICE_HOST"));
	free(err);
	unsetenv("KUBERNETES_SERVICE_PORT");
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: test-client FAKE-APISERVER.py\n");
		return 2;
	}
	server_py = argv[1];
	snprintf(tmp, sizeof(tmp), "/tmp/corral-kube-test-XXXXXX");
	if (!mkdtemp(tmp))
		return 1;
	signal(SIGPIPE, SIG_IGN);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	/* tls-fixtures.sh lives beside the server */
	snprintf(fixtures, sizeof(fixtures), "%.*s/tls-fixtures.sh",
		 (int)(strrchr(server_py, '/') ? strrchr(server_py, '/') - server_py : 1),
		 strrchr(server_py, '/') ? server_py : ".");
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(list_then_watch),   cmocka_unit_test(objects_read_as_their_resource),
		cmocka_unit_test(apiserver_endpoints),
		cmocka_unit_test(gone_relists),     cmocka_unit_test(error_event_relists),
		cmocka_unit_test(oversized_pages_shrink),
		cmocka_unit_test(continue_expires),  cmocka_unit_test(short_watches_back_off),
		cmocka_unit_test(silent_connection), cmocka_unit_test(chunking),
		cmocka_unit_test(malformed_streams), cmocka_unit_test(errors_and_retry_after),
		cmocka_unit_test(token_rotation),    cmocka_unit_test(server_restart),
		cmocka_unit_test(initial_events),    cmocka_unit_test(tls),
		cmocka_unit_test(kubeconfig),        cmocka_unit_test(nul_in_a_string),
		cmocka_unit_test(node_pods_past_a_stale_watch),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	char *rm;
	if (asprintf(&rm, "rm -rf %s", tmp) > 0) {
		if (system(rm)) {
		}
		free(rm);
	}
	return rc;
}
