/* libFuzzer target: bytes -> one LIST page of a resource (agentctl's
 * one-shot read of the cluster, kube/list.c) -> items decoded as that
 * resource into a set, then applied to an engine as agentctl does. The
 * first byte picks the resource. Never a crash or a leak; the continue
 * token is whatever the page says. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kube/list.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	struct manifest_set set = { 0 };
	struct decode_opts o = { DECODE_API, false, "app", "default" };
	char *cont = NULL, *err = NULL;
	enum kube_res r = (enum kube_res)(data[0] % KRES_COUNT);
	if (kube_list_page(r, (const char *)data + 1, size - 1, &o, &set, &cont, &err) == 0) {
		struct engine_config cfg = { NULL, "app", true, NULL, NULL };
		struct engine *e = engine_new(&cfg);
		manifest_assign_addresses(&set);
		manifest_apply(&set, e);
		engine_free(e);
	}
	free(cont);
	free(err);
	manifest_set_free(&set);
	return 0;
}
