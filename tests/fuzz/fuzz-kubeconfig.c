/* libFuzzer target: bytes as a kubeconfig file, and as what an exec
 * credential plugin printed (the ExecCredential agentctl reads). Never a
 * crash or a leak; a refused file says why, an accepted one names a
 * server; an accepted ExecCredential gives a token or a certificate. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kube/exec.h"
#include "kube/kubeconfig.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kube_auth a;
	char *err = NULL;
	int rc = kube_auth_kubeconfig_parse(&a, "/k/config", (const char *)data, size, NULL, &err);
	if (rc < 0 ? !err : !a.server)
		abort();
	free(err);
	if (rc == 0)
		kube_auth_free(&a);
	memset(&a, 0, sizeof(a));
	err = NULL;
	rc = kube_exec_credential_parse(&a, (const char *)data, size, &err);
	if (rc < 0 ? !err : !a.token && !a.cert_data)
		abort();
	free(err);
	kube_auth_free(&a);
	return 0;
}
