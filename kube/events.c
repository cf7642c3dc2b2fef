/* Events about pods (see events.h). The legacy core/v1 shape is used,
 * with firstTimestamp, lastTimestamp and count: the API server validates
 * it only for involvedObject.namespace matching the Event's namespace
 * (k8s.io/kubernetes pkg/apis/core/validation/events.go, legacy path), and
 * every kubectl shows it as "(xN over T)". */
#define _GNU_SOURCE
#include "kube/events.h"

#include <curl/curl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static json_t *stamp(time_t t)
{
	char b[32];
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(b, sizeof(b), "%Y-%m-%dT%H:%M:%SZ", &tm);
	return json_string(b);
}

static char *escaped(const char *s)
{
	char *e = curl_easy_escape(NULL, s, 0), *out = xstrdup(e ? e : "");
	curl_free(e);
	return out;
}

long kube_event_create(struct kube_http *h, const struct kube_event *ev, struct sbuf *resp, char **err)
{
	json_t *o = json_pack("{s:s, s:s, s:{s:s, s:s}, s:{s:s, s:s, s:s, s:s, s:s?}, s:s, s:s, s:s, s:{s:s, s:s?}, "
			      "s:o, s:o, s:i, s:s, s:s?}",
			      "apiVersion", "v1", "kind", "Event", "metadata", "name", ev->name, "namespace", ev->ns,
			      "involvedObject", "apiVersion", "v1", "kind", "Pod", "namespace", ev->ns, "name", ev->pod,
			      "uid", ev->pod_uid, "type", ev->type, "reason", ev->reason, "message", ev->message, "source",
			      "component", ev->component, "host", ev->host, "firstTimestamp", stamp(ev->first),
			      "lastTimestamp", stamp(ev->last), "count", (int)ev->count, "reportingComponent",
			      ev->component, "reportingInstance", ev->host);
	char *body = json_dumps(o, JSON_COMPACT), *ns = escaped(ev->ns);
	char *path = xasprintf("/api/v1/namespaces/%s/events", ns);
	long st = kube_http_do(h, "POST", path, "application/json", body, resp, err);
	json_decref(o);
	free(body);
	free(ns);
	free(path);
	return st;
}

long kube_event_update(struct kube_http *h, const struct kube_event *ev, struct sbuf *resp, char **err)
{
	json_t *o = json_pack("{s:i, s:o}", "count", (int)ev->count, "lastTimestamp", stamp(ev->last));
	char *body = json_dumps(o, JSON_COMPACT), *ns = escaped(ev->ns), *name = escaped(ev->name);
	char *path = xasprintf("/api/v1/namespaces/%s/events/%s", ns, name);
	long st = kube_http_do(h, "PATCH", path, "application/merge-patch+json", body, resp, err);
	json_decref(o);
	free(body);
	free(ns);
	free(name);
	free(path);
	return st;
}

long kube_pod_uid(struct kube_http *h, const char *ns, const char *name, char **uid, struct sbuf *resp, char **err)
{
	char *n = escaped(ns), *p = escaped(name), *path = xasprintf("/api/v1/namespaces/%s/pods/%s", n, p);
	long st = kube_http_do(h, "GET", path, NULL, NULL, resp, err);
	*uid = NULL;
	if (st == 200) {
		json_t *o = json_loadb(resp->s ? resp->s : "", resp->n, 0, NULL);
		const char *u = json_string_value(json_object_get(json_object_get(o, "metadata"), "uid"));
		if (u && *u)
			*uid = xstrdup(u);
		else
			st = 0, *err = xstrdup("the pod has no metadata.uid");
		json_decref(o);
	}
	free(n);
	free(p);
	free(path);
	return st;
}
