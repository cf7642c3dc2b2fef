/* Exec credential plugins of kubeconfig users (kubectl's
 * client.authentication.k8s.io protocol), for one-shot programs. */
#ifndef CORRAL_KUBE_EXEC_H
#define CORRAL_KUBE_EXEC_H

#include <jansson.h>
#include <stddef.h>

#include "kube/kubeconfig.h"

/* Runs the user's exec stanza (command, args, env) once and takes the
 * token or the client certificate and key of its ExecCredential into a.
 * file: the kubeconfig (relative commands and messages). 0 or -1 with
 * *err naming the command and what went wrong (with its installHint). */
int kube_exec_credential(struct kube_auth *a, const char *file, json_t *exec, char **err);
/* An ExecCredential's bytes into a; the part that reads what the command
 * printed. 0 or -1 with *err. */
int kube_exec_credential_parse(struct kube_auth *a, const char *text, size_t len, char **err);

#endif
