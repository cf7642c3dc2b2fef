/* Kubernetes Events (core/v1) about pods, as `kubectl describe pod` and
 * `kubectl get events` show them: created once, then their count and
 * lastTimestamp patched as the same thing happens again (what client-go's
 * event recorder does for repeated events). */
#ifndef CORRAL_KUBE_EVENTS_H
#define CORRAL_KUBE_EVENTS_H

#include <stdint.h>
#include <time.h>

#include "kube/http.h"

struct kube_event {
	const char *ns, *name;         /* the Event's: its namespace is the pod's */
	const char *pod, *pod_uid;     /* involvedObject: a Pod (the uid is what kubectl describe matches) */
	const char *type, *reason, *message;
	const char *component, *host;  /* source, and reportingComponent/Instance */
	uint32_t count;
	time_t first, last;
};

/* POST the Event; the HTTP status (201 created), or 0 with *err (to free). */
long kube_event_create(struct kube_http *h, const struct kube_event *ev, struct sbuf *resp, char **err);
/* PATCH its count and lastTimestamp (a JSON merge patch); 200, 404 when
 * it is gone (events expire, an hour by default), or 0 with *err. */
long kube_event_update(struct kube_http *h, const struct kube_event *ev, struct sbuf *resp, char **err);
/* The uid of pod ns/name into *uid (to free): 200, 404, or 0 with *err. */
long kube_pod_uid(struct kube_http *h, const char *ns, const char *name, char **uid, struct sbuf *resp, char **err);

#endif
