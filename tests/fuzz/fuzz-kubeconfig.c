/* libFuzzer target: bytes as a kubeconfig file. Never a crash or a leak;
 * a refused file says why, an accepted one names a server. */
#include <stdint.h>
#include <stdlib.h>

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
	return 0;
}
