/* libFuzzer target (differential): a pod read from its text by the scan
 * (kube/podscan.c) is the pod jansson and kube_decode read, as a LIST
 * item and as a watch event's object: the same fields, the same
 * resourceVersion, and a scan only of what the reference reads without a
 * problem; as a watch event's line, the same pod and event type as the
 * stream reads. Inputs the scan leaves to the reference prove nothing
 * here and are fine. The same bytes read as a LIST page give the same items,
 * verdict and error with and without the scan (where a scanned item
 * ends). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kube/podscan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	for (int watch = 0; watch < 2; watch++) {
		char *why = NULL;
		if (kube_pod_scan_check((const char *)data, size, watch, &why) < 0) {
			fprintf(stderr, "fuzz-podscan (%s): %s\n", watch ? "watch" : "list", why);
			abort();
		}
		free(why);
	}
	/* the same bytes as a watch event's line */
	char *why = NULL;
	if (kube_pod_scan_check_event((const char *)data, size, &why) < 0) {
		fprintf(stderr, "fuzz-podscan (event): %s\n", why);
		abort();
	}
	free(why);
	/* and as the object of an event, so that every pod the mutations make
	 * is tried as a watch event too */
	char *line = malloc(size + 40);
	int k = sprintf(line, "{\"type\":\"%s\",\"object\":", size % 2 ? "ADDED" : "MODIFIED");
	memcpy(line + k, data, size);
	line[k + size] = '}';
	if (kube_pod_scan_check_event(line, k + size + 1, &why) < 0) {
		fprintf(stderr, "fuzz-podscan (event object): %s\n", why);
		abort();
	}
	free(why);
	free(line);
	/* the same bytes as a LIST page (item lengths found by the scan) */
	if (kube_pod_scan_check_page((const char *)data, size, &why) < 0) {
		fprintf(stderr, "fuzz-podscan (page): %s\n", why);
		abort();
	}
	return 0;
}
