/* agentctl's one-shot read of the cluster (kube/list.c) against the fake
 * API server: every page of every resource, items of typed lists (no kind
 * on them) read as the resource they were listed from, a continue token
 * that expires in the middle (410: the list starts over, nothing read
 * twice), an object the decoder refuses kept fail-closed, errors named.
 *   test-list FAKE-APISERVER.py */
#define _GNU_SOURCE
#include <curl/curl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "kube/list.h"

static const char *server_py;
static pid_t pid;
static int port;

static void ctl(const char *path, const char *fmt, ...)
{
	va_list ap;
	char *body, *url;
	va_start(ap, fmt);
	assert_true(vasprintf(&body, fmt, ap) >= 0);
	va_end(ap);
	assert_true(asprintf(&url, "http://127.0.0.1:%d/_ctl/%s", port, path) >= 0);
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

static int setup(void **st)
{
	int p[2];
	assert_int_equal(pipe(p), 0);
	pid = fork();
	if (pid == 0) {
		dup2(p[1], 1);
		close(p[0]);
		execlp("python3", "python3", server_py, "--token", "t0k", (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	FILE *f = fdopen(p[0], "r");
	char line[64] = "";
	assert_non_null(fgets(line, sizeof(line), f));
	fclose(f);
	assert_int_equal(sscanf(line, "listening %d", &port), 1);
	ctl("apply", "{\"resource\": \"namespaces\", \"object\": {\"metadata\": {\"name\": \"x\"}}}");
	for (int i = 0; i < 7; i++)
		ctl("apply", "{\"resource\": \"pods\", \"object\": {\"metadata\": {\"name\": \"p%d\", \"namespace\": \"x\", "
			     "\"labels\": {\"app\": \"a\"}}, \"status\": {\"phase\": \"Running\", \"podIPs\": [{\"ip\": "
			     "\"10.0.0.%d\"}]}}}", i, i + 1);
	ctl("apply", "{\"resource\": \"networkpolicies\", \"object\": {\"metadata\": {\"name\": \"np\", \"namespace\": "
		     "\"x\"}, \"spec\": {\"podSelector\": {}}}}");
	ctl("apply", "{\"resource\": \"accesspolicies\", \"object\": {\"metadata\": {\"name\": \"ap\", \"namespace\": "
		     "\"x\"}, \"spec\": {\"application\": \"a\"}}}");
	return 0;
}

static int teardown(void **st)
{
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	return 0;
}

static struct kube_auth auth(const char *token)
{
	struct kube_auth a = { 0 };
	a.server = xasprintf("http://127.0.0.1:%d", port);
	a.token = xstrdup(token);
	a.context = xstrdup("test");
	return a;
}

static int read_all(const char *token, unsigned limit, struct manifest_set *set, char **err)
{
	struct kube_auth a = auth(token);
	struct kube_list_opts o = { "app", limit, 10 };
	char *warn = NULL;
	int rc = kube_list_all(&a, &o, set, &warn, err);
	free(warn);
	kube_auth_free(&a);
	return rc;
}

static void pages(void **st)
{
	struct manifest_set set = { 0 };
	char *err = NULL;
	assert_int_equal(read_all("t0k", 2, &set, &err), 0); /* 7 pods: 4 pages */
	assert_int_equal(set.nss.n, 1);
	assert_int_equal(set.pods.n, 7);
	assert_int_equal(set.policies.n, 2);
	assert_int_equal(set.objects, 10);
	assert_int_equal(set.diags.errors, 0);
	struct pod_spec *p = set.pods.v[0];
	assert_string_equal(p->ns, "x");
	assert_int_equal(p->naddr, 1);
	manifest_set_free(&set);
}

static void continue_expires(void **st)
{
	struct manifest_set set = { 0 };
	char *err = NULL;
	ctl("fault", "{\"name\": \"expire_continue\", \"count\": 1}");
	assert_int_equal(read_all("t0k", 3, &set, &err), 0);
	assert_int_equal(set.pods.n, 7); /* started over: each pod once */
	manifest_set_free(&set);
}

static void unreadable_kept(void **st)
{
	struct manifest_set set = { 0 };
	char *err = NULL;
	ctl("fault", "{\"name\": \"poison\", \"resource\": \"networkpolicies\", \"key\": \"x/np\", \"path\": "
		     "\"spec.podSelector\", \"value\": 5, \"count\": 1}");
	assert_int_equal(read_all("t0k", 500, &set, &err), 0);
	ctl("fault", "{\"name\": \"poison\", \"resource\": \"none\", \"count\": 0}");
	assert_int_equal(set.policies.n, 2);
	bool found = false;
	for (size_t i = 0; i < set.policies.n; i++) {
		struct policy_spec *ps = set.policies.v[i];
		if (!strcmp(ps->name, "np"))
			found = ps->unreadable && !ps->valid; /* fail-closed, never dropped */
	}
	assert_true(found);
	assert_true(set.diags.errors >= 1);
	manifest_set_free(&set);
}

static void errors_named(void **st)
{
	struct manifest_set set = { 0 };
	char *err = NULL;
	assert_int_equal(read_all("wrong", 500, &set, &err), -1);
	assert_non_null(strstr(err, "list namespaces: the API server at http://127.0.0.1:"));
	assert_non_null(strstr(err, "refused our credentials (401 Unauthorized)"));
	assert_non_null(strstr(err, "context \"test\""));
	free(err);
	manifest_set_free(&set);
	memset(&set, 0, sizeof(set));
	ctl("fault", "{\"name\": \"status\", \"code\": 500, \"count\": 1}");
	assert_int_equal(read_all("t0k", 500, &set, &err), -1);
	assert_non_null(strstr(err, "answered HTTP 500: injected fault"));
	free(err);
	manifest_set_free(&set);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: test-list FAKE-APISERVER.py\n");
		return 2;
	}
	server_py = argv[1];
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(pages), cmocka_unit_test(continue_expires), cmocka_unit_test(unreadable_kept),
		cmocka_unit_test(errors_named),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
