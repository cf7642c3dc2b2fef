/* API client benchmark, one JSON line per figure: N pods of a realistic
 * shape (5 labels, 2 container ports, one IPv4) arrive as ADDED events on
 * one watch stream (fed in 64 KiB pieces, no network), are parsed, decoded
 * and kept in the informer cache.
 *   corral-bench-kube [--pods N] [--engine] [--server-shape] [--jansson]
 *   (--engine: pods also go to the engine, as in the agent; --server-shape:
 *   each pod also carries what a real API server adds, about 2.4 KB more:
 *   managedFields of three managers, the kubelet's conditions and
 *   container status, the ServiceAccount volume; --jansson: pods decoded
 *   with jansson and kube_decode only, as before kube/podscan.c, the
 *   reference to compare with) */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kube/client.h"
#include "policy/engine.h"

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long rss_kb(const char *field)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long v = -1;
	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, field, strlen(field)))
			v = strtol(line + strlen(field) + 1, NULL, 10);
	if (f)
		fclose(f);
	return v;
}

static void emit(const char *metric, double v, const char *unit)
{
	printf("{\"bench\": \"kube\", \"metric\": \"%s\", \"value\": %.6g, \"unit\": \"%s\"}\n", metric, v, unit);
}

/* --engine: the agent's wiring (the engine shares the cache's objects) */
static void changed(void *arg, enum kube_res r, const void *old, void *new)
{
	struct engine *e = arg;
	(void)old;
	if (!e || !new || r != KRES_PODS)
		return;
	kube_obj_ref(r, new);
	engine_pod_upsert(e, new);
}

int main(int argc, char **argv)
{
	int n = 150000;
	bool server = false;
	struct kube_client_opts co = { 0 };
	struct engine *e = NULL;
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--pods") && i + 1 < argc)
			n = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--server-shape"))
			server = true;
		else if (!strcmp(argv[i], "--jansson"))
			co.jansson_only = true;
		else if (!strcmp(argv[i], "--engine")) {
			struct engine_config cfg = { "node-1", "app", true, NULL, NULL };
			e = engine_new(&cfg);
		}
	/* what a real server adds to each pod (--server-shape) */
	static const char extra_md[] =
		",\"managedFields\":[{\"manager\":\"kube-controller-manager\",\"operation\":\"Update\",\"apiVersion\":\"v1\","
		"\"time\":\"2026-11-29T14:50:00Z\",\"fieldsType\":\"FieldsV1\",\"fieldsV1\":{\"f:metadata\":{\"f:generateName\":{},"
		"\"f:labels\":{\".\":{},\"f:app\":{},\"f:pod-template-hash\":{},\"f:team\":{},\"f:tier\":{},\"f:version\":{}},"
		"\"f:ownerReferences\":{\".\":{},\"k:{\\\"uid\\\":\\\"0\\\"}\":{}}},\"f:spec\":{\"f:containers\":{\"k:{\\\"name\\\":"
		"\\\"main\\\"}\":{\".\":{},\"f:image\":{},\"f:imagePullPolicy\":{},\"f:name\":{},\"f:ports\":{\".\":{},"
		"\"k:{\\\"containerPort\\\":8080,\\\"protocol\\\":\\\"TCP\\\"}\":{\".\":{},\"f:containerPort\":{},\"f:name\":{},"
		"\"f:protocol\":{}}},\"f:resources\":{},\"f:terminationMessagePath\":{}}},\"f:dnsPolicy\":{},"
		"\"f:enableServiceLinks\":{},\"f:restartPolicy\":{},\"f:schedulerName\":{},\"f:securityContext\":{},"
		"\"f:terminationGracePeriodSeconds\":{}}}},{\"manager\":\"kube-scheduler\",\"operation\":\"Update\","
		"\"apiVersion\":\"v1\",\"time\":\"2026-11-29T14:50:00Z\",\"fieldsType\":\"FieldsV1\",\"fieldsV1\":{\"f:status\":"
		"{\"f:conditions\":{\".\":{},\"k:{\\\"type\\\":\\\"PodScheduled\\\"}\":{\".\":{},\"f:lastProbeTime\":{},"
		"\"f:lastTransitionTime\":{},\"f:status\":{},\"f:type\":{}}}}},\"subresource\":\"status\"},{\"manager\":\"kubelet\","
		"\"operation\":\"Update\",\"apiVersion\":\"v1\",\"time\":\"2026-11-29T14:50:02Z\",\"fieldsType\":\"FieldsV1\","
		"\"fieldsV1\":{\"f:status\":{\"f:conditions\":{\"k:{\\\"type\\\":\\\"ContainersReady\\\"}\":{\".\":{},"
		"\"f:lastProbeTime\":{},\"f:lastTransitionTime\":{},\"f:status\":{},\"f:type\":{}},\"k:{\\\"type\\\":"
		"\\\"Ready\\\"}\":{\".\":{},\"f:lastProbeTime\":{},\"f:lastTransitionTime\":{},\"f:status\":{},\"f:type\":{}}},"
		"\"f:containerStatuses\":{},\"f:hostIP\":{},\"f:hostIPs\":{},\"f:phase\":{},\"f:podIP\":{},\"f:podIPs\":{\".\":{},"
		"\"k:{\\\"ip\\\":\\\"10.0.0.1\\\"}\":{\".\":{},\"f:ip\":{}}},\"f:startTime\":{}}},\"subresource\":\"status\"}]";
	static const char extra_status[] =
		",\"conditions\":[{\"type\":\"Initialized\",\"status\":\"True\",\"lastProbeTime\":null,"
		"\"lastTransitionTime\":\"2026-11-29T14:50:00Z\"},{\"type\":\"Ready\",\"status\":\"True\",\"lastProbeTime\":null,"
		"\"lastTransitionTime\":\"2026-11-29T14:50:02Z\"},{\"type\":\"ContainersReady\",\"status\":\"True\","
		"\"lastProbeTime\":null,\"lastTransitionTime\":\"2026-11-29T14:50:02Z\"},{\"type\":\"PodScheduled\","
		"\"status\":\"True\",\"lastProbeTime\":null,\"lastTransitionTime\":\"2026-11-29T14:50:00Z\"}],"
		"\"hostIP\":\"10.255.0.1\",\"startTime\":\"2026-11-29T14:50:00Z\",\"containerStatuses\":[{\"name\":\"main\","
		"\"state\":{\"running\":{\"startedAt\":\"2026-11-29T14:50:01Z\"}},\"lastState\":{},\"ready\":true,"
		"\"restartCount\":0,\"image\":\"registry.example.com/app:1.2.3\",\"imageID\":\"registry.example.com/app@sha256:"
		"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\",\"containerID\":\"containerd://"
		"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\",\"started\":true}],\"qosClass\":\"BestEffort\"";
	/* the stream, built first so that its bytes are not counted as cache */
	struct sbuf s = { 0 };
	for (int i = 0; i < n; i++)
		sbuf_addf(&s,
			  "{\"type\":\"ADDED\",\"object\":{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":"
			  "\"web-%d-7d4b9c\",\"namespace\":\"ns-%d\",\"uid\":\"4f1c%08x-0000-4000-8000-00000000%04x\","
			  "\"resourceVersion\":\"%d\",\"labels\":{\"app\":\"app-%d\",\"team\":\"team-%d\",\"version\":\"v%d\","
			  "\"tier\":\"web\",\"pod-template-hash\":\"7d4b9c%04x\"},\"ownerReferences\":[{\"kind\":\"ReplicaSet\","
			  "\"name\":\"web-%d\"}]%s},\"spec\":{\"nodeName\":\"node-%d\",\"containers\":[{\"name\":\"main\",\"image\":"
			  "\"registry.example.com/app:1.2.3\",\"ports\":[{\"name\":\"http\",\"containerPort\":8080},{\"name\":"
			  "\"metrics\",\"containerPort\":9090}]}]},\"status\":{\"phase\":\"Running\",\"podIP\":\"10.%d.%d.%d\","
			  "\"podIPs\":[{\"ip\":\"10.%d.%d.%d\"}]%s}}}\n",
			  i, i % 5000, i, i % 10000, 1000 + i, i % 50, i % 20, i % 3, i % 4096, i / 3, server ? extra_md : "",
			  i / 110, 64 + (i >> 16), (i >> 8) & 255, i & 255, 64 + (i >> 16), (i >> 8) & 255, i & 255,
			  server ? extra_status : "");
	long before = rss_kb("VmRSS");
	struct kube_auth a = { 0 };
	a.server = strdup("http://127.0.0.1:1");
	struct kube_handlers h = { .changed = changed, .arg = e };
	struct kube_client *c = kube_client_new(&a, co.jansson_only ? &co : NULL, &h);
	double t0 = now_s();
	for (size_t off = 0; off < s.n; off += 65536) {
		size_t len = s.n - off < 65536 ? s.n - off : 65536;
		if (kube_client_feed(c, KRES_PODS, s.s + off, len) < 0)
			return 1;
	}
	double secs = now_s() - t0;
	long after = rss_kb("VmRSS");
	size_t bytes = s.n;
	sbuf_free(&s);
	if (kube_client_count(c, KRES_PODS) != (size_t)n) {
		fprintf(stderr, "bench-kube: %zu pods cached, expected %d\n", kube_client_count(c, KRES_PODS), n);
		return 1;
	}
	emit("pods", n, "pods");
	emit("stream_bytes_per_pod", (double)bytes / n, "bytes");
	emit("events_per_s", n / secs, "events/s");
	emit("cache_mb", (double)(after - before) / 1024, "MB");
	emit("cache_bytes_per_pod", (double)(after - before) * 1024 / n, "bytes");
	emit("peak_rss_mb", (double)rss_kb("VmHWM") / 1024, "MB");
	engine_free(e);
	kube_client_free(c);
	return 0;
}
