/* corral-agent's files:DIR source under abuse (issue 17 items 2 and 5,
 * issue 20 items 4-9): one agent enforcing node-1 of the namespace
 * cluster from a folder this test mistreats, checked with real packets
 * and `status` over the control socket.
 *   test-files CLUSTER-SCRIPT AGENT */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
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

#include "kcluster.h"

static const char *script, *agent_bin;
static char dir[64], conf[96];
static struct kcluster kc;
static pid_t agent;

enum { XA, XB, XC, YA, YB, YC, ZA, ZB, ZC };

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static char *path_of(const char *name)
{
	static char p[4][256];
	static int k;
	k = (k + 1) % 4;
	snprintf(p[k], sizeof(p[k]), "%s/%s", dir, name);
	return p[k];
}

static const char *tmp_cmd(const char *fmt, ...)
{
	static char buf[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	return buf;
}

/* Files appear whole (written aside, then renamed), as tools should. */
static void put(const char *name, const char *fmt, ...)
{
	char tmp[256], *s;
	va_list ap;
	va_start(ap, fmt);
	assert_true(vasprintf(&s, fmt, ap) >= 0);
	va_end(ap);
	snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", dir, name);
	FILE *f = fopen(tmp, "w");
	assert_non_null(f);
	fputs(s, f);
	fclose(f);
	assert_int_equal(rename(tmp, path_of(name)), 0);
	free(s);
}

static void put_pod(int i)
{
	char v4[32];
	kc_pod_addr(i, false, v4, sizeof(v4));
	char file[32];
	snprintf(file, sizeof(file), "pod-%c-%c.yaml", "xyz"[i / 3], "abc"[i % 3]);
	put(file,
	    "apiVersion: v1\nkind: Pod\nmetadata: {name: '%c', namespace: '%c', labels: {pod: '%c'}}\n"
	    "spec: {nodeName: node-%d, containers: [{name: s, ports: [{name: http, containerPort: 80}]}]}\n"
	    "status: {phase: Running, podIPs: [{ip: '%s'}]}\n",
	    "abc"[i % 3], "xyz"[i / 3], "abc"[i % 3], kc_pod_node(i) + 1, v4);
}

/* x/a admits namespace z on port 80: y/a -> x/a dropped, z/a -> x/a allowed */
#define POLICY(name, from_ns)                                                                          \
	"apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: " name ", namespace: x}\n" \
	"spec:\n  podSelector: {matchLabels: {pod: a}}\n  ingress:\n"                                       \
	"  - from: [{namespaceSelector: {matchLabels: {ns: " from_ns "}}}]\n    ports: [{port: 80}]\n"
static const char *policy = POLICY("p1", "z");

static char *sock_path(void)
{
	static char p[128];
	snprintf(p, sizeof(p), "%s.sock", dir);
	return p;
}

/* SIGTERM, then SIGKILL after 3 s: an agent hung in open() on a FIFO
 * does not read its signals, and must not hang the test too. */
static void stop_agent(void)
{
	if (agent <= 0)
		return;
	kill(agent, SIGTERM);
	double end = now_ms() + 3000;
	while (waitpid(agent, NULL, WNOHANG) == 0) {
		if (now_ms() > end) {
			fprintf(stderr, "agent %d ignored SIGTERM for 3 s (hung?): SIGKILL\n", agent);
			kill(agent, SIGKILL);
			waitpid(agent, NULL, 0);
			break;
		}
		usleep(20000);
	}
	agent = 0;
}

static void start_agent(const char *config)
{
	char *cmd;
	stop_agent();
	assert_true(asprintf(&cmd, "exec %s --source files:%s --node-name node-1 --netns /run/netns/%s-n1 --socket %s "
				   "--debounce-ms 5 --metrics-address '' %s %s >>%s.log 2>&1",
			     agent_bin, dir, kc.prefix, sock_path(), config ? "--config" : "", config ? config : "",
			     dir) >= 0);
	pid_t pid = fork();
	if (pid == 0) {
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	free(cmd);
	agent = pid;
}

/* The status answer, or NULL if the agent does not answer within 2 s. */
static json_t *status(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	assert_true(strlen(sock_path()) < sizeof(sa.sun_path));
	memcpy(sa.sun_path, sock_path(), strlen(sock_path()) + 1);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct timeval tv = { 2, 0 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return NULL;
	}
	dprintf(fd, "{\"cmd\": \"status\"}\n");
	FILE *f = fdopen(fd, "r");
	char *buf = NULL;
	size_t cap = 0;
	json_t *o = NULL;
	if (getline(&buf, &cap, f) > 0)
		o = json_loads(buf, 0, NULL);
	free(buf);
	fclose(f);
	json_t *data = json_incref(json_object_get(o, "data"));
	json_decref(o);
	return data;
}

static char *status_text(void)
{
	json_t *s = status();
	char *t = s ? json_dumps(s, 0) : strdup("(no answer)");
	json_decref(s);
	return t;
}

static void wait_synced(void)
{
	double end = now_ms() + 5000;
	for (;;) {
		json_t *s = status();
		bool ok = json_is_true(json_object_get(s, "synced"));
		json_decref(s);
		if (ok)
			return;
		assert_true(now_ms() < end);
		usleep(20000);
	}
}

/* Waits up to ms until status mentions want (or, !present, no longer does). */
static void until_status_ms(const char *want, bool present, int ms)
{
	double end = now_ms() + ms;
	for (;;) {
		char *t = status_text();
		bool has = strstr(t, want) != NULL;
		if (has == present) {
			free(t);
			return;
		}
		if (now_ms() > end)
			fail_msg("status %s \"%s\" after %d ms: %s", present ? "still lacks" : "still has", want, ms, t);
		free(t);
		usleep(50000);
	}
}

static void until_status(const char *want, bool present)
{
	until_status_ms(want, present, 5000);
}

static long long objects(const char *kind)
{
	json_t *s = status();
	long long n = json_integer_value(json_object_get(json_object_get(s, "objects"), kind));
	json_decref(s);
	return n;
}

static bool reach(int i, int j, int timeout_ms)
{
	int fd = kc_connect(&kc, i, j, 80, timeout_ms);
	if (fd >= 0)
		close(fd);
	return fd >= 0;
}

static void until(int i, int j, bool want)
{
	double t0 = now_ms();
	while (now_ms() - t0 < 5000)
		if (reach(i, j, want ? 300 : 150) == want)
			return;
	fail_msg("pod %d -> pod %d: still %s after 5 s", i, j, want ? "dropped" : "allowed");
}

/* p1 in force: y/a dropped, z/a admitted */
static void enforced(void)
{
	assert_false(reach(YA, XA, 150));
	assert_true(reach(ZA, XA, 500));
}

static void settled(void)
{
	until(YA, XA, false);
	until(ZA, XA, true);
}

static int setup(void **state)
{
	snprintf(dir, sizeof(dir), "/tmp/corral-files-test-XXXXXX");
	assert_non_null(mkdtemp(dir));
	if (kc_up(&kc, script, "crf") < 0)
		return -1;
	put("namespaces.yaml", "apiVersion: v1\nkind: Namespace\nmetadata: {name: x, labels: {ns: x}}\n---\n"
			       "apiVersion: v1\nkind: Namespace\nmetadata: {name: 'y', labels: {ns: 'y'}}\n---\n"
			       "apiVersion: v1\nkind: Namespace\nmetadata: {name: z, labels: {ns: z}}\n");
	for (int i = 0; i < KC_PODS; i++)
		put_pod(i);
	put("policy.yaml", "%s", policy);
	start_agent(NULL);
	wait_synced();
	settled();
	return 0;
}

static int teardown(void **state)
{
	stop_agent();
	kc_down(&kc);
	char *cmd;
	int rc = 0;
	/* the sanitizer build's agents report at exit: any report fails the run */
	if (asprintf(&cmd, "grep -B2 -A30 -E 'Sanitizer|runtime error' %s.log >&2", dir) >= 0) {
		rc = system(cmd) == 0 ? -1 : 0;
		free(cmd);
	}
	if (asprintf(&cmd, "tail -n 40 %s.log >&2; rm -rf %s %s.log %s.sock %s", dir, dir, dir, dir, conf) >= 0) {
		if (system(cmd)) {
		}
		free(cmd);
	}
	return rc;
}

/* Issue 20, item 4: an object stays while any file defines it. A copy of
 * the policy file comes and goes; a link to the folder comes and goes. */
static void object_stays_while_defined(void **state)
{
	assert_int_equal(system(tmp_cmd("cp %s %s", path_of("policy.yaml"), path_of("policy-copy.yaml"))), 0);
	usleep(300000);
	enforced();
	char *t = status_text();
	bool reported = strstr(t, "NetworkPolicy/x/p1 is defined identically in") != NULL;
	free(t);
	unlink(path_of("policy-copy.yaml"));
	usleep(300000);
	enforced(); /* before: the copy's removal deleted p1 */
	assert_true(reported);
	until_status("defined identically in", false);
	assert_int_equal(objects("policies"), 1);
	assert_int_equal(symlink(dir, path_of("self")), 0);
	usleep(300000);
	assert_int_equal(objects("pods"), KC_PODS);
	unlink(path_of("self"));
	usleep(300000);
	assert_int_equal(objects("namespaces"), 3);
	assert_int_equal(objects("pods"), KC_PODS);
	assert_int_equal(objects("policies"), 1);
	enforced();
}

/* Issue 17, item 5: the same policy, different, in two files: both copies
 * isolate and allow nothing (never more open than either alone); the
 * error names both files; removing one copy restores the other. */
static void differing_copies_allow_nothing(void **state)
{
	put("another.yaml", "%s", POLICY("p1", "'y'")); /* the copy would admit y, not z */
	until(ZA, XA, false); /* before: one copy silently won, z or y got in */
	assert_false(reach(YA, XA, 150));
	until_status("is defined differently in", true);
	char *t = status_text();
	assert_non_null(strstr(t, "another.yaml and "));
	assert_non_null(strstr(t, "NetworkPolicy x/p1#2 is invalid"));
	free(t);
	unlink(path_of("another.yaml"));
	until_status("is defined differently in", false);
	settled();
}

/* Issue 20, item 5: `(sleep 2; cat pol.bak) > pol.yaml` truncates the file
 * and writes it two seconds later: p1 must stay in force throughout, and
 * the new content apply once the writer closes the file. */
static void in_place_rewrite_has_no_window(void **state)
{
	const char *next = POLICY("p1", "'y'"); /* admits y once written */
	pid_t w = fork();
	if (w == 0) {
		int fd = open(path_of("policy.yaml"), O_WRONLY | O_TRUNC);
		sleep(1);
		if (write(fd, next, strlen(next) / 2) < 0) /* half of it: a partial file, for a while */
			_exit(1);
		sleep(1);
		if (write(fd, next + strlen(next) / 2, strlen(next) - strlen(next) / 2) < 0)
			_exit(1);
		sleep(1);
		close(fd);
		_exit(0);
	}
	double t0 = now_ms();
	int probes = 0;
	while (now_ms() - t0 < 2800) { /* the file is empty, then half written, then whole but open */
		assert_false(reach(YA, XA, 100));
		assert_true(reach(ZA, XA, 500)); /* before: p1 was deleted while the file was empty */
		probes++;
	}
	int st;
	waitpid(w, &st, 0);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	until(YA, XA, true); /* closed: the new content is in force */
	until(ZA, XA, false);
	printf("  %d probe pairs while the file was rewritten in place, none wrong\n", probes);
	put("policy.yaml", "%s", policy);
	settled();
	/* a file emptied and left so keeps its objects, and says why; truncate()
	 * never closes, so it is read once quiet for filesSettleMs (5 s) */
	assert_int_equal(truncate(path_of("policy.yaml"), 0), 0);
	enforced();
	until_status_ms("holds no document", true, 9000);
	enforced();
	put("policy.yaml", "%s", policy);
	until_status("holds no document", false);
}

/* Issue 17, item 2: a number JSON cannot carry makes the file unparsable,
 * never shorter: p1 (after it in the same file) stays; status names the
 * line and the field. */
static void overflowing_number_keeps_objects(void **state)
{
	put("policy.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: x}\ndata: {max: 1e999}\n"
			   "---\n%s",
	    POLICY("p1", "'y'"));
	usleep(300000);
	enforced(); /* before: the file read as empty and p1 was deleted */
	until_status("line 4 column 13: data.max: 1e999 is out of range", true);
	put("policy.yaml", "%s", policy);
	until_status("1e999", false);
	enforced();
}

static int serve_unix(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	assert_true(strlen(path) < sizeof(sa.sun_path));
	memcpy(sa.sun_path, path, strlen(path) + 1);
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 1), 0);
	return fd;
}

/* Issue 20, item 6: a FIFO, a socket and devices in the folder: never
 * opened, named in status, and the agent goes on (and restarts ready). */
static void special_files_never_block(void **state)
{
	assert_int_equal(mkfifo(path_of("fifo.yaml"), 0600), 0);
	int sfd = serve_unix(path_of("sock.yaml"));
	assert_int_equal(symlink("/dev/zero", path_of("zero.yaml")), 0);
	assert_int_equal(symlink("/dev/tty", path_of("tty.yml")), 0);
	put("policy.yaml", "%s", POLICY("p1", "'y'"));
	until(YA, XA, true); /* before: the agent hung in open() on the FIFO */
	until(ZA, XA, false);
	char *t = status_text();
	assert_non_null(strstr(t, "fifo.yaml: a FIFO, not a regular file"));
	assert_non_null(strstr(t, "sock.yaml: a socket, not a regular file"));
	assert_non_null(strstr(t, "zero.yaml: a character device, not a regular file"));
	free(t);
	start_agent(NULL); /* and a restart with them there becomes ready */
	wait_synced();
	put("policy.yaml", "%s", policy);
	settled();
	unlink(path_of("fifo.yaml"));
	unlink(path_of("zero.yaml"));
	unlink(path_of("tty.yml"));
	close(sfd);
	unlink(path_of("sock.yaml"));
	until_status("not a regular file", false);
}

static long count_lines(const char *path)
{
	FILE *f = fopen(path, "r");
	long n = 0;
	int c;
	while (f && (c = fgetc(f)) != EOF)
		n += c == '\n';
	if (f)
		fclose(f);
	return n;
}

/* Issue 20, item 7: two links to the folder inside it: walked once, no
 * duplicates, changes still take effect at once, the log stays short. */
static void link_loops_walk_once(void **state)
{
	char log[128];
	snprintf(log, sizeof(log), "%s.log", dir);
	long before = count_lines(log);
	assert_int_equal(symlink(dir, path_of("l1")), 0);
	assert_int_equal(symlink(dir, path_of("l2")), 0);
	mkdir(path_of("sub"), 0700);
	assert_int_equal(symlink("..", path_of("sub/up")), 0);
	double t0 = now_ms();
	put("policy.yaml", "%s", POLICY("p1", "'y'"));
	until(YA, XA, true); /* before: a minute of walking 2^16 paths */
	until(ZA, XA, false);
	printf("  a change with link loops in the folder took effect in %.0f ms\n", now_ms() - t0);
	assert_int_equal(objects("pods"), KC_PODS);
	assert_int_equal(objects("policies"), 1);
	char *t = status_text();
	assert_null(strstr(t, "defined identically")); /* one file, reached by many paths, is one file */
	free(t);
	put("policy.yaml", "%s", policy);
	settled();
	long added = count_lines(log) - before;
	printf("  %ld log lines meanwhile\n", added);
	assert_true(added < 20);
	unlink(path_of("l1"));
	unlink(path_of("l2"));
	unlink(path_of("sub/up"));
	rmdir(path_of("sub"));
	usleep(200000);
	enforced();
}

/* Issue 20, item 8: limits from the configuration refuse a file that is
 * too large, with a clear error, and its last good objects stay. */
static void limits_refuse_and_keep(void **state)
{
	snprintf(conf, sizeof(conf), "%s.conf", dir);
	FILE *f = fopen(conf, "w");
	fputs("filesMaxFileBytes: 4096\nfilesMaxTotalBytes: 65536\n", f);
	fclose(f);
	start_agent(conf);
	wait_synced();
	settled();
	struct { char b[8192]; } big;
	memset(big.b, 'a', sizeof(big.b) - 1);
	big.b[sizeof(big.b) - 1] = 0;
	put("policy.yaml", "%s---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: big, namespace: x}\ndata: {a: %s}\n",
	    POLICY("p1", "'y'"), big.b);
	until_status("larger than the limit of 4096 bytes per file: refused (previous objects kept)", true);
	enforced(); /* the old p1, not the refused file's */
	/* the folder's total: 20 files of 4000 bytes pass 65536 */
	memset(big.b, 'b', 3800);
	big.b[3800] = 0;
	for (int i = 0; i < 20; i++)
		put(tmp_cmd("pad-%02d.yaml", i), "# %s\n", big.b);
	until_status("pass the limit of 65536 bytes in all", true);
	for (int i = 0; i < 20; i++)
		unlink(path_of(tmp_cmd("pad-%02d.yaml", i)));
	put("policy.yaml", "%s", policy);
	until_status("limit of", false);
	start_agent(NULL);
	wait_synced();
	settled();
}

/* Issue 20, item 9: a 200 KB label value (invalid) is not copied into log
 * lines nor status. */
static void huge_values_are_clipped(void **state)
{
	char *big = malloc(200001);
	memset(big, 'v', 200000);
	big[200000] = 0;
	put("huge.yaml", "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: huge, namespace: x}\n"
			 "spec: {podSelector: {matchLabels: {pod: nobody}}, ingress: [{from: [{podSelector: {matchLabels: "
			 "{pod: '%s'}}}]}]}\n", big);
	until_status("vvvvvvvvvv", true);
	char *t = status_text();
	assert_true(strlen(t) < 20000);
	assert_non_null(strstr(t, "(200000 bytes)"));
	free(t);
	FILE *f = fopen(tmp_cmd("%s.log", dir), "r");
	char *line = NULL;
	size_t cap = 0, longest = 0;
	ssize_t n;
	while ((n = getline(&line, &cap, f)) > 0)
		longest = (size_t)n > longest ? (size_t)n : longest;
	free(line);
	fclose(f);
	printf("  longest log line: %zu bytes\n", longest);
	assert_true(longest < 4096); /* before: the whole value, in every line quoting it */
	unlink(path_of("huge.yaml"));
	free(big);
	settled();
}

/* A SYN from node-2's own address (10.255.0.2 on the wire: what a
 * host-network pod or the kubelet there sends) to x/a:80, seen by x/a? */
static bool node2_reaches_xa(void)
{
	static uint16_t sport = 41000;
	char dst[64];
	kc_pod_addr(XA, false, dst, sizeof(dst));
	int fd = kc_raw_open(&kc, XA, 6, false);
	assert_true(fd >= 0);
	sport++;
	assert_int_equal(kc_send_raw(&kc, kc.node_ns[1], 6, "10.255.0.2", dst, sport, 80), 0);
	bool seen = kc_raw_seen(fd, false, "10.255.0.2", sport, 300);
	close(fd);
	return seen;
}

static void until_node2(bool want)
{
	double t0 = now_ms();
	while (now_ms() - t0 < 5000)
		if (node2_reaches_xa() == want)
			return;
	fail_msg("node-2 -> x/a: still %s after 5 s", want ? "dropped" : "allowed");
}

/* Issue 19: the nodes entity from Node manifests of the folder, kept
 * current as the file comes and goes, with the application label list
 * from the configuration (the cluster's pods are labelled pod=NAME). */
static void nodes_entity_from_files(void **state)
{
	char cfg[128];
	snprintf(cfg, sizeof(cfg), "%s.entities.yaml", dir);
	FILE *f = fopen(cfg, "w");
	assert_non_null(f);
	fputs("appLabels: app,pod\n", f);
	fclose(f);
	start_agent(cfg);
	wait_synced();
	put("ap.yaml", "apiVersion: corral.dev/v1\nkind: AccessPolicy\nmetadata: {name: a, namespace: x}\n"
		       "spec:\n  application: a\n  inbound:\n    external: [{entity: nodes, ports: [{port: 80}]}]\n");
	for (double t0 = now_ms(); objects("policies") != 2; usleep(20000))
		assert_true(now_ms() - t0 < 5000);
	until_node2(false); /* no Node known: nodes holds nothing */
	put("nodes.yaml", "apiVersion: v1\nkind: Node\nmetadata: {name: node-2}\nspec: {podCIDRs: [10.1.0.0/16]}\n"
			  "status: {addresses: [{type: InternalIP, address: 10.255.0.2}]}\n");
	until_node2(true);
	settled(); /* p1 still in force beside it */
	unlink(path_of("nodes.yaml"));
	until_node2(false);
	unlink(path_of("ap.yaml"));
	unlink(cfg);
	start_agent(NULL);
	wait_synced();
	settled();
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: test-files CLUSTER-SCRIPT AGENT\n");
		return 2;
	}
	script = argv[1];
	agent_bin = argv[2];
	if (getenv("TEST_FILES_ONLY")) /* one test, e.g. against an older agent */
		cmocka_set_test_filter(getenv("TEST_FILES_ONLY"));
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(object_stays_while_defined),
		cmocka_unit_test(differing_copies_allow_nothing),
		cmocka_unit_test(in_place_rewrite_has_no_window),
		cmocka_unit_test(overflowing_number_keeps_objects),
		cmocka_unit_test(special_files_never_block),
		cmocka_unit_test(link_loops_walk_once),
		cmocka_unit_test(limits_refuse_and_keep),
		cmocka_unit_test(huge_values_are_clipped),
		cmocka_unit_test(nodes_entity_from_files),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
