/* Blocking requests to the API server (see http.h). One curl easy handle
 * per kube_http, so that its connection (and TLS session) is reused from
 * one request to the next. */
#define _GNU_SOURCE
#include "kube/http.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void kube_http_tls(CURL *e, const struct kube_auth *a)
{
	if (a->insecure) {
		curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	if (a->ca_file)
		curl_easy_setopt(e, CURLOPT_CAINFO, a->ca_file);
	if (a->ca_data) {
		struct curl_blob b = { a->ca_data, a->ca_len, CURL_BLOB_COPY };
		curl_easy_setopt(e, CURLOPT_CAINFO_BLOB, &b);
	}
	if (a->cert_file)
		curl_easy_setopt(e, CURLOPT_SSLCERT, a->cert_file);
	if (a->key_file)
		curl_easy_setopt(e, CURLOPT_SSLKEY, a->key_file);
	if (a->cert_data) {
		struct curl_blob b = { a->cert_data, a->cert_len, CURL_BLOB_COPY };
		curl_easy_setopt(e, CURLOPT_SSLCERT_BLOB, &b);
	}
	if (a->key_data) {
		struct curl_blob b = { a->key_data, a->key_len, CURL_BLOB_COPY };
		curl_easy_setopt(e, CURLOPT_SSLKEY_BLOB, &b);
	}
}

struct kube_http {
	struct kube_auth auth; /* a copy */
	CURL *easy;
	long timeout_s;
	char *token; /* read from auth.token_file */
	time_t token_at;
};

static char *dup_or_null(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

static char *dup_bytes(const char *p, size_t n)
{
	if (!p)
		return NULL;
	char *d = xmalloc(n + 1);
	memcpy(d, p, n);
	d[n] = 0;
	return d;
}

struct kube_http *kube_http_new(const struct kube_auth *a, long timeout_s)
{
	static bool inited;
	if (!inited) {
		curl_global_init(CURL_GLOBAL_DEFAULT);
		inited = true;
	}
	struct kube_http *h = xcalloc(1, sizeof(*h));
	struct kube_auth *c = &h->auth;
	c->server = dup_or_null(a->server);
	c->ca_file = dup_or_null(a->ca_file);
	c->ca_data = dup_bytes(a->ca_data, a->ca_len);
	c->ca_len = a->ca_len;
	c->cert_file = dup_or_null(a->cert_file);
	c->key_file = dup_or_null(a->key_file);
	c->cert_data = dup_bytes(a->cert_data, a->cert_len);
	c->cert_len = a->cert_len;
	c->key_data = dup_bytes(a->key_data, a->key_len);
	c->key_len = a->key_len;
	c->token = dup_or_null(a->token);
	c->token_file = dup_or_null(a->token_file);
	c->insecure = a->insecure;
	c->context = dup_or_null(a->context);
	c->namespace = dup_or_null(a->namespace);
	h->timeout_s = timeout_s > 0 ? timeout_s : 30;
	h->easy = curl_easy_init();
	return h;
}

void kube_http_free(struct kube_http *h)
{
	if (!h)
		return;
	curl_easy_cleanup(h->easy);
	kube_auth_free(&h->auth);
	free(h->token);
	free(h);
}

/* The bearer token: the file's (rotated by the kubelet) if there is one. */
static const char *token(struct kube_http *h, bool force)
{
	if (h->auth.token_file && (force || !h->token || time(NULL) - h->token_at >= 60)) {
		FILE *f = fopen(h->auth.token_file, "r");
		char buf[8192];
		size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
		if (f)
			fclose(f);
		while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
			n--;
		buf[n] = 0;
		if (n) {
			free(h->token);
			h->token = xstrdup(buf);
		}
		h->token_at = time(NULL);
	}
	return h->token ? h->token : h->auth.token;
}

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
	struct sbuf *b = arg;
	if (b->n + size * n > (256u << 20)) /* no answer of ours is that large */
		return 0;
	sbuf_addn(b, data, size * n);
	return size * n;
}

static long once(struct kube_http *h, const char *method, const char *url, const char *ctype, const char *body,
		 struct sbuf *resp, char **err, bool fresh_token)
{
	CURL *e = h->easy;
	char errbuf[CURL_ERROR_SIZE] = "";
	struct curl_slist *hdr = curl_slist_append(NULL, "Accept: application/json");
	const char *tok = token(h, fresh_token);
	if (tok) {
		char *a = xasprintf("Authorization: Bearer %s", tok);
		hdr = curl_slist_append(hdr, a);
		free(a);
	}
	if (ctype) {
		char *c = xasprintf("Content-Type: %s", ctype);
		hdr = curl_slist_append(hdr, c);
		free(c);
	}
	curl_easy_reset(e);
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
	if (body) {
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	}
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, hdr);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, resp);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, 10L);
	curl_easy_setopt(e, CURLOPT_TIMEOUT, h->timeout_s);
	curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
	kube_http_tls(e, &h->auth);
	resp->n = 0;
	CURLcode rc = curl_easy_perform(e);
	long status = 0;
	curl_slist_free_all(hdr);
	if (rc != CURLE_OK) {
		*err = xstrdup(errbuf[0] ? errbuf : curl_easy_strerror(rc));
		return 0;
	}
	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
	return status;
}

long kube_http_do(struct kube_http *h, const char *method, const char *path, const char *ctype, const char *body,
		  struct sbuf *resp, char **err)
{
	char *url = xasprintf("%s%s", h->auth.server, path);
	long status = once(h, method, url, ctype, body, resp, err, false);
	if (status == 401 && h->auth.token_file) /* rotated since we read it? */
		status = once(h, method, url, ctype, body, resp, err, true);
	free(url);
	if (resp->s)
		resp->s[resp->n] = 0;
	return status;
}

static const char *status_message(const struct sbuf *resp, json_t **keep)
{
	*keep = resp && resp->n ? json_loadb(resp->s, resp->n, 0, NULL) : NULL;
	return json_string_value(json_object_get(*keep, "message"));
}

char *kube_http_explain(const struct kube_http *h, const char *what, long status, const struct sbuf *resp,
			const char *err)
{
	const struct kube_auth *a = &h->auth;
	char *ctx = a->context ? xasprintf("context \"%s\"", a->context) : xstrdup("the service account");
	json_t *st;
	const char *msg = status_message(resp, &st);
	char *out;
	if (!status && err && (strstr(err, "SSL") || strstr(err, "certificate")))
		out = xasprintf("%s: cannot verify the API server at %s (TLS: %s): check the certificate-authority "
				"of %s", what, a->server, err, ctx);
	else if (!status)
		out = xasprintf("%s: cannot reach the API server at %s: %s", what, a->server, err ? err : "no answer");
	else if (status == 401)
		out = xasprintf("%s: the API server at %s refused our credentials (401 Unauthorized): the token or "
				"client certificate of %s is wrong or has expired", what, a->server, ctx);
	else if (status == 403)
		out = xasprintf("%s: forbidden (403): %s", what, msg ? msg : "the account may not do that");
	else
		out = xasprintf("%s: the API server at %s answered HTTP %ld%s%s", what, a->server, status,
				msg ? ": " : "", msg ? msg : "");
	json_decref(st);
	free(ctx);
	return out;
}
