/* A Pod read straight from its JSON text (a LIST item, a watch event's
 * object): the fields kube/decode.c reads, nothing built for the rest.
 * jansson's tree of a pod and the walk over it were most of the agent's
 * start at 150,000 pods (README, "Performance").
 *
 * It is a shortcut, never a second opinion: it answers only when it is
 * sure to give what the reference path (kube_json_strip_managed, jansson,
 * kube_decode_listed) gives, i.e. when the text is JSON jansson accepts
 * (stricter here: no duplicate key anywhere, no escape in a key or in a
 * string it reads, no \u0000, nesting and numbers within bounds) and the
 * pod reads without a single problem. Everything else, an unreadable pod
 * included, is left to the reference path, which words the error and
 * fails closed. tests/fuzz/fuzz-podscan.c checks the two agree. */
#ifndef CORRAL_KUBE_PODSCAN_H
#define CORRAL_KUBE_PODSCAN_H

#include <stdbool.h>
#include <stddef.h>

#include "kube/decode.h"

struct pod_scan {
	struct pod_spec *pod; /* packed (pod_spec_pack), as kube_decode makes it */
	char *rv;             /* metadata.resourceVersion when a string, else NULL */
	int type;             /* kube_pod_scan_event: 1 ADDED, 2 MODIFIED */
};

/* The Pod in b[0..n) (one JSON object, nothing after it), decoded as
 * kube_decode_listed(KRES_PODS, ...) with opts (DECODE_API only) and file
 * "api" would: true with *out set (both to be freed by the caller), or
 * false when not sure (nothing to free: use the reference path). */
bool kube_pod_scan(const char *b, size_t n, const struct decode_opts *opts, struct pod_scan *out);
/* The same for the pod at the start of b[0..n) (a LIST item: what follows
 * it is the caller's to read): its length, or 0 when not sure. Where the
 * scan is sure, the text is JSON, so the object ends where
 * kube/yaml.c's json_value_end says it does. */
size_t kube_pod_scan_prefix(const char *b, size_t n, const struct decode_opts *opts, struct pod_scan *out);
/* A watch event's line (b[0..n)) whose type is ADDED or MODIFIED and
 * whose object is a pod the scan is sure of, read as kube/stream.c and
 * kube_decode_listed read it (out->type says which); false when not sure
 * or another type (kube/stream.c reads it with jansson). */
bool kube_pod_scan_event(const char *b, size_t n, const struct decode_opts *opts, struct pod_scan *out);
/* kube_pod_scan_check for a watch event's line: the reference is
 * kube/stream.c's reading of it (type, object) and kube_decode_listed. */
int kube_pod_scan_check_event(const char *b, size_t n, char **why);

/* Tests and the fuzz target: scans b and also decodes it the reference
 * way (jansson, as a LIST item is read, or a watch event's object when
 * watch is set) and
 * compares. 1: scanned, and the same pod and resourceVersion; 0: not
 * scanned (left to the reference); -1: they differ, *why (to free) says
 * how. */
int kube_pod_scan_check(const char *b, size_t n, bool watch, char **why);
/* The same for a LIST page of pods (b[0..n)), read item by item with and
 * without the scan: the same verdict, error, items and List. 0, or -1
 * with *why (to free). */
int kube_pod_scan_check_page(const char *b, size_t n, char **why);

#endif
