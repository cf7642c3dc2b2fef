/* Exec credential plugins (see exec.h). What kubectl does, from the
 * client.authentication.k8s.io reference: run `command` with `args`, the
 * user's environment plus `env`, and KUBERNETES_EXEC_INFO describing the
 * request (an ExecCredential with spec.interactive); standard input and
 * error stay the user's (a plugin may ask for a login); standard output
 * is an ExecCredential whose status holds a token, or PEM client
 * certificate and key data. A command with a slash is relative to the
 * kubeconfig's folder; one without is looked up in PATH. */
#define _GNU_SOURCE
#include "kube/exec.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "policy/util.h"

#define EXEC_MAX_OUTPUT (1u << 20)

static bool api_version_ok(const char *v)
{
	return v && (!strcmp(v, "client.authentication.k8s.io/v1") || !strcmp(v, "client.authentication.k8s.io/v1beta1"));
}

int kube_exec_credential_parse(struct kube_auth *a, const char *text, size_t len, char **err)
{
	json_error_t je;
	json_t *o = json_loadb(text, len, 0, &je), *st = json_object_get(o, "status");
	const char *tok = json_string_value(json_object_get(st, "token"));
	const char *cert = json_string_value(json_object_get(st, "clientCertificateData"));
	const char *key = json_string_value(json_object_get(st, "clientKeyData"));
	int rc = -1;
	if (!o)
		*err = xasprintf("its output is not JSON: %s", je.text);
	else if (!json_is_string(json_object_get(o, "kind")) || strcmp(json_string_value(json_object_get(o, "kind")), "ExecCredential"))
		*err = xstrdup("its output is not an ExecCredential");
	else if (!(tok && *tok) && !(cert && key))
		*err = xstrdup("its ExecCredential has neither status.token nor status.clientCertificateData and "
			       "clientKeyData");
	else {
		if (tok && *tok) {
			free(a->token);
			a->token = xstrdup(tok);
		}
		if (cert && key) {
			free(a->cert_data);
			free(a->key_data);
			a->cert_data = xstrdup(cert);
			a->cert_len = strlen(cert);
			a->key_data = xstrdup(key);
			a->key_len = strlen(key);
		}
		rc = 0;
	}
	json_decref(o);
	return rc;
}

/* The child: environment, then the command. Never returns. */
static void child(int out, const char *cmd, char **argv, json_t *env, const char *info)
{
	size_t i;
	json_t *x;
	dup2(out, 1);
	close(out);
	json_array_foreach(env, i, x) {
		const char *n = json_string_value(json_object_get(x, "name"));
		const char *v = json_string_value(json_object_get(x, "value"));
		if (n && v)
			setenv(n, v, 1);
	}
	setenv("KUBERNETES_EXEC_INFO", info, 1);
	if (strchr(cmd, '/'))
		execv(cmd, argv);
	else
		execvp(cmd, argv);
	_exit(127);
}

static char *run(const char *cmd, json_t *args, json_t *env, const char *info, int *status, char **err)
{
	size_t n = json_array_size(args), i;
	json_t *x;
	char **argv = xcalloc(n + 2, sizeof(char *));
	argv[0] = (char *)cmd;
	json_array_foreach(args, i, x) argv[i + 1] = (char *)(json_string_value(x) ? json_string_value(x) : "");
	int p[2];
	if (pipe(p) < 0) {
		*err = xasprintf("pipe: %s", strerror(errno));
		free(argv);
		return NULL;
	}
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		close(p[0]);
		child(p[1], cmd, argv, env, info);
	}
	close(p[1]);
	free(argv);
	struct sbuf b = { 0 };
	char buf[4096];
	ssize_t r;
	while (pid > 0 && (r = read(p[0], buf, sizeof(buf))) > 0)
		if (b.n + (size_t)r <= EXEC_MAX_OUTPUT)
			sbuf_addn(&b, buf, (size_t)r);
	close(p[0]);
	if (pid < 0 || waitpid(pid, status, 0) < 0) {
		*err = xasprintf("cannot run it: %s", strerror(errno));
		sbuf_free(&b);
		return NULL;
	}
	if (!b.s)
		sbuf_add(&b, "");
	return sbuf_steal(&b);
}

int kube_exec_credential(struct kube_auth *a, const char *file, json_t *exec, char **err)
{
	const char *cmd = json_string_value(json_object_get(exec, "command"));
	const char *api = json_string_value(json_object_get(exec, "apiVersion"));
	const char *hint = json_string_value(json_object_get(exec, "installHint"));
	char *path = NULL, *why = NULL, *out = NULL;
	int status = 0, rc = -1;
	if (!cmd || !*cmd || !api_version_ok(api)) {
		*err = xasprintf("kubeconfig %s: the exec plugin needs a command and apiVersion "
				 "client.authentication.k8s.io/v1 or v1beta1", file);
		return -1;
	}
	/* a command with a slash is relative to the kubeconfig's folder */
	if (strchr(cmd, '/') && cmd[0] != '/' && strchr(file, '/'))
		path = xasprintf("%.*s/%s", (int)(strrchr(file, '/') - file), file, cmd);
	else
		path = xstrdup(cmd);
	char *info = xasprintf("{\"apiVersion\":\"%s\",\"kind\":\"ExecCredential\",\"spec\":{\"interactive\":%s}}", api,
			       isatty(0) ? "true" : "false");
	out = run(path, json_object_get(exec, "args"), json_object_get(exec, "env"), info, &status, &why);
	if (!out)
		*err = xasprintf("kubeconfig %s: exec plugin %s: %s", file, cmd, why);
	else if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
		*err = xasprintf("kubeconfig %s: exec plugin %s: not found%s%s", file, cmd, hint ? ": " : "", hint ? hint : "");
	else if (!WIFEXITED(status) || WEXITSTATUS(status))
		*err = xasprintf("kubeconfig %s: exec plugin %s failed (%s %d)", file, cmd,
				 WIFEXITED(status) ? "exit status" : "signal",
				 WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
	else if (kube_exec_credential_parse(a, out, strlen(out), &why) < 0)
		*err = xasprintf("kubeconfig %s: exec plugin %s: %s", file, cmd, why);
	else
		rc = 0;
	free(why);
	free(out);
	free(info);
	free(path);
	return rc;
}
