/* Where the API server is and how to prove who we are: the in-cluster
 * service account, or a kubeconfig file. */
#ifndef CORRAL_KUBECONFIG_H
#define CORRAL_KUBECONFIG_H

#include <stdbool.h>
#include <stddef.h>

struct kube_auth {
	char *server;          /* https://host:port */
	char *ca_file;         /* or ca_data (PEM bytes) */
	char *ca_data;
	size_t ca_len;
	char *cert_file, *key_file; /* client certificate, or *_data */
	char *cert_data, *key_data;
	size_t cert_len, key_len;
	char *token;           /* static bearer token */
	char *token_file;      /* re-read: rotated by the kubelet */
	bool insecure;         /* insecure-skip-tls-verify */
	char *context;         /* kubeconfig: the context used */
	char *namespace;       /* the context's namespace (in cluster: the pod's), or NULL */
};

/* The service account mounted in every pod (KUBERNETES_SERVICE_HOST/PORT,
 * /var/run/secrets/kubernetes.io/serviceaccount/{token,ca.crt}); root
 * overrides the folder (tests). 0 or -1 with *err. */
int kube_auth_in_cluster(struct kube_auth *a, const char *root, char **err);
/* A kubeconfig: path, else $KUBECONFIG (first file), else ~/.kube/config.
 * context NULL: current-context. Exec plugins and auth providers are
 * refused with an error that says so. 0 or -1 with *err. */
int kube_auth_kubeconfig(struct kube_auth *a, const char *path, const char *context, char **err);
/* The same for a one-shot program (agentctl): a user with an exec
 * credential plugin (client.authentication.k8s.io/v1 or v1beta1, what
 * managed clusters use) has it run once for a token or certificate. */
int kube_auth_kubeconfig_exec(struct kube_auth *a, const char *path, const char *context, char **err);
/* The same from a kubeconfig's bytes (file names it in messages and
 * anchors relative paths); the fuzz target's entry. */
int kube_auth_kubeconfig_parse(struct kube_auth *a, const char *file, const char *text, size_t len,
			       const char *context, char **err);
void kube_auth_free(struct kube_auth *a);

#endif
