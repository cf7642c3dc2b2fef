#define _GNU_SOURCE
#include "kube/kubeconfig.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kube/exec.h"
#include "kube/manifest.h"
#include "kube/yaml.h"
#include "policy/util.h"

void kube_auth_free(struct kube_auth *a)
{
	free(a->server);
	free(a->ca_file);
	free(a->ca_data);
	free(a->cert_file);
	free(a->key_file);
	free(a->cert_data);
	free(a->key_data);
	free(a->token);
	free(a->token_file);
	free(a->context);
	free(a->namespace);
	memset(a, 0, sizeof(*a));
}

int kube_auth_in_cluster(struct kube_auth *a, const char *root, char **err)
{
	const char *host = getenv("KUBERNETES_SERVICE_HOST"), *port = getenv("KUBERNETES_SERVICE_PORT");
	const char *dir = root ? root : "/var/run/secrets/kubernetes.io/serviceaccount";
	memset(a, 0, sizeof(*a));
	if (!host || !port) {
		*err = xstrdup("in-cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set "
			       "(not running in a pod? use --kubeconfig)");
		return -ENOENT;
	}
	a->server = strchr(host, ':') ? xasprintf("https://[%s]:%s", host, port) : xasprintf("https://%s:%s", host, port);
	a->token_file = xasprintf("%s/token", dir);
	a->ca_file = xasprintf("%s/ca.crt", dir);
	FILE *f = fopen(a->token_file, "r");
	if (!f) {
		int e = errno;
		*err = xasprintf("in-cluster: cannot read the service account token %s: %s", a->token_file,
				 strerror(e));
		kube_auth_free(a);
		return -e;
	}
	fclose(f);
	char *nsfile = xasprintf("%s/namespace", dir), *ns, *nerr = NULL;
	size_t len;
	if ((ns = manifest_read_file(nsfile, 256, &len, &nerr))) { /* optional: the pod's own namespace */
		ns[strcspn(ns, "\n")] = 0;
		a->namespace = ns;
	}
	free(nerr);
	free(nsfile);
	return 0;
}

/* base64 (standard alphabet, padding optional) */
static char *b64(const char *in, size_t *outlen)
{
	static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t n = strlen(in), o = 0;
	unsigned char *out = xmalloc(n * 3 / 4 + 4);
	uint32_t acc = 0;
	int bits = 0;
	for (size_t i = 0; i < n; i++) {
		if (in[i] == '=' || in[i] == '\n' || in[i] == '\r' || in[i] == ' ')
			continue;
		const char *p = strchr(tbl, in[i]);
		if (!p || !in[i]) {
			free(out);
			return NULL;
		}
		acc = acc << 6 | (uint32_t)(p - tbl);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (unsigned char)(acc >> bits);
		}
	}
	out[o] = 0;
	*outlen = o;
	return (char *)out;
}

static json_t *named(json_t *list, const char *name, const char *what)
{
	size_t i;
	json_t *x;
	json_array_foreach(list, i, x) {
		const char *n = json_string_value(json_object_get(x, "name"));
		if (n && !strcmp(n, name))
			return json_object_get(x, what);
	}
	return NULL;
}

static char *rel(const char *base, const char *p)
{
	if (p[0] == '/' || !strchr(base, '/'))
		return xstrdup(p);
	return xasprintf("%.*s/%s", (int)(strrchr(base, '/') - base), base, p);
}

static int data_field(json_t *o, const char *key, char **out, size_t *len, const char *path, char **err)
{
	const char *v = json_string_value(json_object_get(o, key));
	if (!v)
		return 0;
	if (!(*out = b64(v, len))) {
		*err = xasprintf("%s: %s: not valid base64", path, key);
		return -EINVAL;
	}
	return 0;
}

static int parse(struct kube_auth *a, const char *file, const char *text, size_t len, const char *context,
		 json_t **exec, char **err);

/* exec: NULL refuses exec plugins; else the user's exec stanza, if any,
 * comes back there (a new reference) for the caller to run. */
static int load(struct kube_auth *a, const char *path, const char *context, json_t **exec, char **err)
{
	char *file = NULL, *text = NULL, *rerr = NULL;
	size_t len;
	memset(a, 0, sizeof(*a));
	if (path)
		file = xstrdup(path);
	else if (getenv("KUBECONFIG") && *getenv("KUBECONFIG")) {
		file = xstrdup(getenv("KUBECONFIG"));
		char *colon = strchr(file, ':');
		if (colon)
			*colon = 0; /* the first of a list: merging several is not supported */
	} else if (getenv("HOME"))
		file = xasprintf("%s/.kube/config", getenv("HOME"));
	if (!file || !(text = manifest_read_file(file, 4u << 20, &len, &rerr))) {
		*err = xasprintf("kubeconfig %s: %s", file ? file : "(none: no --kubeconfig, $KUBECONFIG or $HOME)",
				 file ? rerr : "not found");
		free(rerr);
		free(file);
		return -ENOENT;
	}
	int rc = parse(a, file, text, len, context, exec, err);
	if (rc == 0 && exec && *exec) {
		rc = kube_exec_credential(a, file, *exec, err);
		json_decref(*exec);
		*exec = NULL;
		if (rc < 0)
			kube_auth_free(a);
	}
	free(text);
	free(file);
	return rc;
}

int kube_auth_kubeconfig(struct kube_auth *a, const char *path, const char *context, char **err)
{
	return load(a, path, context, NULL, err);
}

int kube_auth_kubeconfig_exec(struct kube_auth *a, const char *path, const char *context, char **err)
{
	json_t *exec = NULL;
	return load(a, path, context, &exec, err);
}

int kube_auth_kubeconfig_parse(struct kube_auth *a, const char *file, const char *text, size_t len,
			       const char *context, char **err)
{
	return parse(a, file, text, len, context, NULL, err);
}

static int parse(struct kube_auth *a, const char *file, const char *text, size_t len, const char *context,
		 json_t **exec, char **err)
{
	struct vec docs = { 0 };
	char *perr = NULL;
	int rc = -EINVAL;
	memset(a, 0, sizeof(*a));
	if (kube_yaml_parse(text, len, &docs, &perr) < 0 || docs.n != 1 || !json_is_object((json_t *)docs.v[0])) {
		*err = xasprintf("kubeconfig %s: %s", file, perr ? perr : "expected one YAML mapping");
		goto out;
	}
	json_t *kc = docs.v[0];
	const char *ctxname = context ? context : json_string_value(json_object_get(kc, "current-context"));
	if (!ctxname) {
		*err = xasprintf("kubeconfig %s: no current-context (pick one with --context)", file);
		goto out;
	}
	json_t *ctx = named(json_object_get(kc, "contexts"), ctxname, "context");
	const char *cluster = json_string_value(json_object_get(ctx, "cluster"));
	const char *user = json_string_value(json_object_get(ctx, "user"));
	json_t *cl = cluster ? named(json_object_get(kc, "clusters"), cluster, "cluster") : NULL;
	json_t *us = user ? named(json_object_get(kc, "users"), user, "user") : NULL;
	if (!ctx || !cl) {
		*err = xasprintf("kubeconfig %s: context \"%s\" %s", file, ctxname,
				 !ctx ? "does not exist" : "names a cluster that does not exist");
		goto out;
	}
	if (us && ((json_object_get(us, "exec") && !exec) || json_object_get(us, "auth-provider"))) {
		*err = xasprintf("kubeconfig %s: user \"%s\" authenticates with %s, which %s; use a token, a tokenFile "
				 "or a client certificate (or run in the cluster)", file, user,
				 json_object_get(us, "exec") ? "an exec plugin" : "an auth-provider",
				 json_object_get(us, "exec") ? "the agent does not run (agentctl does)"
							     : "corral does not support (kubectl's are deprecated)");
		goto out;
	}
	if (us && exec && json_object_get(us, "exec"))
		*exec = json_incref(json_object_get(us, "exec"));
	const char *server = json_string_value(json_object_get(cl, "server"));
	if (!server) {
		*err = xasprintf("kubeconfig %s: cluster \"%s\" has no server", file, cluster);
		goto out;
	}
	const char *s;
	a->server = xstrdup(server);
	a->context = xstrdup(ctxname);
	if ((s = json_string_value(json_object_get(ctx, "namespace"))) && *s)
		a->namespace = xstrdup(s);
	a->insecure = json_is_true(json_object_get(cl, "insecure-skip-tls-verify"));
	char *where = xasprintf("kubeconfig %s: cluster %s", file, cluster);
	if ((s = json_string_value(json_object_get(cl, "certificate-authority"))))
		a->ca_file = rel(file, s);
	int bad = data_field(cl, "certificate-authority-data", &a->ca_data, &a->ca_len, where, err);
	free(where);
	if (bad)
		goto out;
	if (us) {
		where = xasprintf("kubeconfig %s: user %s", file, user);
		if ((s = json_string_value(json_object_get(us, "client-certificate"))))
			a->cert_file = rel(file, s);
		if ((s = json_string_value(json_object_get(us, "client-key"))))
			a->key_file = rel(file, s);
		if ((s = json_string_value(json_object_get(us, "token"))))
			a->token = xstrdup(s);
		if ((s = json_string_value(json_object_get(us, "tokenFile"))))
			a->token_file = rel(file, s);
		bad = data_field(us, "client-certificate-data", &a->cert_data, &a->cert_len, where, err) ||
		      data_field(us, "client-key-data", &a->key_data, &a->key_len, where, err);
		free(where);
		if (bad)
			goto out;
	}
	rc = 0;
out:
	for (size_t i = 0; i < docs.n; i++)
		json_decref(docs.v[i]);
	vec_free(&docs);
	free(perr);
	if (rc < 0)
		kube_auth_free(a);
	return rc;
}
