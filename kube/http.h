/* Plain requests to the API server, one at a time (blocking), with the
 * same TLS and credentials as the list/watch client: agentctl's one-shot
 * reads of the cluster and the agent's Event recorder. */
#ifndef CORRAL_KUBE_HTTP_H
#define CORRAL_KUBE_HTTP_H

#include <curl/curl.h>
#include <stdbool.h>

#include "kube/kubeconfig.h"
#include "policy/util.h"

/* The server certificate check and the client certificate of a (shared
 * with kube/client.c, so that every request is made the same way). */
void kube_http_tls(CURL *e, const struct kube_auth *a);

struct kube_http;

/* Copies what it needs of a; timeout_s bounds each request. */
struct kube_http *kube_http_new(const struct kube_auth *a, long timeout_s);
void kube_http_free(struct kube_http *h);

/* METHOD path (with its query) and an optional body of content type
 * ctype. Returns the HTTP status with the body in *resp (to free), or 0
 * when no answer came, with the reason in *err (to free). A token file
 * is read again every minute and after a 401. */
long kube_http_do(struct kube_http *h, const char *method, const char *path, const char *ctype, const char *body,
		  struct sbuf *resp, char **err);

/* What went wrong with a request, in words a person can act on:
 * "the API server at URL refused our credentials (401 Unauthorized): ...".
 * status and resp as kube_http_do gave them (resp may hold a Status);
 * what names the request ("list pods"). To free. */
char *kube_http_explain(const struct kube_http *h, const char *what, long status, const struct sbuf *resp,
			const char *err);

#endif
