/* DNS-aware egress: the proof of "no first-connection drop" and the cost
 * of the proxy, in the test bed of tests/agent/dnsbed.h.
 *
 *   corral-bench-dns CLUSTER-SCRIPT AGENT [--iterations N]
 *
 * 1. without corral (no agent, no table): N queries of a name that
 *    answers a fresh AAAA each time, from pod x/a: DNS latency;
 * 2. with corral (the agent on node-1; x/a's policy names the host):
 *    N times resolve, then connect to the answer at once (a fresh address
 *    each time: nothing was learned before), counting connections that
 *    fail and packets the kernel dropped for x/a's group; DNS latency;
 * 3. the same over IPv4 for min(N, 200) fresh A answers.
 * Prints one JSON line per figure (median, p99 and the drop counts). */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dnsbed.h"

static struct kcluster kc;
static char dir[64];

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static void figure(const char *metric, double v, const char *unit, int n)
{
	printf("{\"bench\": \"dns\", \"size\": \"%d\", \"metric\": \"%s\", \"value\": %.3f, \"unit\": \"%s\"}\n", n, metric,
	       v, unit);
}

static void latency(const char *what, double *ms, int n)
{
	char m[96];
	qsort(ms, (size_t)n, sizeof(*ms), cmp_d);
	snprintf(m, sizeof(m), "%s_median", what);
	figure(m, ms[n / 2], "ms", n);
	snprintf(m, sizeof(m), "%s_p99", what);
	figure(m, ms[(n * 99) / 100 < n ? (n * 99) / 100 : n - 1], "ms", n);
}

static uint64_t drops(void)
{
	/* packets x/a's egress group dropped (its chain's default drop) */
	char cmd[256], buf[4096];
	uint64_t total = 0;
	snprintf(cmd, sizeof(cmd), "ip netns exec %s-n1 nft list table inet corral 2>/dev/null", kc.prefix);
	FILE *p = popen(cmd, "r");
	bool eg = false;
	while (fgets(buf, sizeof(buf), p)) {
		if (strstr(buf, "chain eg_g"))
			eg = true;
		else if (strstr(buf, "chain "))
			eg = false;
		char *c = strstr(buf, "counter packets ");
		if (eg && c)
			total += strtoull(c + 16, NULL, 10);
	}
	pclose(p);
	return total;
}

static pid_t agent_start(const char *agent)
{
	char *cmd;
	if (asprintf(&cmd, "exec %s --source files:%s/objects --node-name node-1 --netns /run/netns/%s-n1 --socket %s/n1.sock "
			   "--metrics-address '' >>%s/agent.log 2>&1", agent, dir, kc.prefix, dir, dir) < 0)
		abort();
	pid_t pid = fork();
	if (pid == 0) {
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	free(cmd);
	/* synced: the redirect is in the table */
	for (int i = 0; i < 400; i++) {
		char c[256];
		snprintf(c, sizeof(c), "ip netns exec %s-n1 nft list chain inet corral dns_redirect >/dev/null 2>&1", kc.prefix);
		if (system(c) == 0)
			return pid;
		usleep(25000);
	}
	fprintf(stderr, "bench-dns: the agent did not sync (see %s/agent.log)\n", dir);
	exit(1);
}

static void objects(void)
{
	char path[128];
	char v4[2][32], v6[2][32];
	snprintf(path, sizeof(path), "%s/objects", dir);
	mkdir(path, 0700);
	snprintf(path, sizeof(path), "%s/objects/all.yaml", dir);
	kc_pod_addr(0, false, v4[0], sizeof(v4[0]));
	kc_pod_addr(0, true, v6[0], sizeof(v6[0]));
	kc_pod_addr(BED_DNS_POD, false, v4[1], sizeof(v4[1]));
	kc_pod_addr(BED_DNS_POD, true, v6[1], sizeof(v6[1]));
	FILE *f = fopen(path, "w");
	fprintf(f, "apiVersion: v1\nkind: Pod\nmetadata: {name: a, namespace: x, labels: {app: web}}\n"
		   "spec: {nodeName: node-1}\nstatus: {phase: Running, podIPs: [{ip: '%s'}, {ip: '%s'}]}\n"
		   "---\napiVersion: v1\nkind: Pod\nmetadata: {name: coredns, namespace: kube-system, labels: {k8s-app: kube-dns}}\n"
		   "spec: {nodeName: node-1}\nstatus: {phase: Running, podIPs: [{ip: '%s'}, {ip: '%s'}]}\n"
		   "---\napiVersion: corral.dev/v1\nkind: AccessPolicy\nmetadata: {name: web, namespace: x}\n"
		   "spec: {application: web, outbound: {external: [{host: fresh.example.com}, {host: fresh4.example.com}]}}\n",
		v4[0], v6[0], v4[1], v6[1]);
	fclose(f);
}

/* n times: resolve (qtype), then connect at once; returns failures. */
static int run(int n, const char *name, int qtype, double *ms)
{
	int fails = 0;
	for (int i = 0; i < n; i++) {
		struct bed_addrs r;
		if (bed_resolve(&kc, 0, name, qtype, false, 3000, &r, &ms[i]) < 0 || !r.n) {
			fails++;
			continue;
		}
		if (!bed_connect(&kc, 0, r.a[0], 443, 1000))
			fails++;
	}
	return fails;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: corral-bench-dns CLUSTER-SCRIPT AGENT [--iterations N]\n");
		return 2;
	}
	int n = argc >= 5 && !strcmp(argv[3], "--iterations") ? atoi(argv[4]) : 1000;
	if (n < 1 || n > 100000)
		return 2;
	snprintf(dir, sizeof(dir), "/tmp/corral-bench-dns-XXXXXX");
	if (!mkdtemp(dir) || bed_up(&kc, argv[1], "bdn") < 0)
		return 1;
	objects();
	bed_zone_fresh("fresh.example.com", 30, 1);
	bed_zone_fresh("fresh4.example.com", 30, 1);
	double *ms = calloc((size_t)n, sizeof(*ms));
	/* 1. without corral */
	for (int i = 0; i < n; i++) {
		struct bed_addrs r;
		if (bed_resolve(&kc, 0, "fresh.example.com", 28, false, 3000, &r, &ms[i]) < 0)
			ms[i] = 3000;
	}
	latency("dns_latency_without_corral", ms, n);
	/* 2. with corral: fresh AAAA answers */
	pid_t agent = agent_start(argv[2]);
	uint64_t d0 = drops();
	int fails = run(n, "fresh.example.com", 28, ms);
	uint64_t d1 = drops();
	latency("dns_latency_with_corral", ms, n);
	figure("resolve_then_connect_failures_v6", fails, "connections", n);
	figure("first_connection_drops_v6", (double)(d1 - d0), "packets", n);
	/* 3. IPv4: 200 fresh addresses at most */
	int n4 = n < 200 ? n : 200;
	fails = run(n4, "fresh4.example.com", 1, ms);
	uint64_t d2 = drops();
	figure("resolve_then_connect_failures_v4", fails, "connections", n4);
	figure("first_connection_drops_v4", (double)(d2 - d1), "packets", n4);
	/* a check that the proof can fail: a fresh address nobody resolved */
	bool raw = bed_connect(&kc, 0, (ip128){ 0x20010db8000f0000ULL, 0xffffULL }, 443, 300);
	figure("unresolved_address_dropped", !raw, "bool", 1);
	kill(agent, SIGTERM);
	waitpid(agent, NULL, 0);
	free(ms);
	bed_down();
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 && !raw ? 0 : 1;
}
