/* libFuzzer target: bytes -> watch-stream parser -> events -> decoder ->
 * informer cache, fed in chunks whose sizes the input chooses (events split
 * across chunks, several per chunk, truncated). Never a crash, a leak, or
 * a half-read object in the cache. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kube/client.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void changed(void *arg, enum kube_res r, const void *old, void *new)
{
	(void)arg, (void)r, (void)old, (void)new;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	struct kube_auth a = { 0 };
	a.server = strdup("http://127.0.0.1:1");
	struct kube_handlers h = { .changed = changed };
	struct kube_client *c = kube_client_new(&a, NULL, &h);
	enum kube_res res = (enum kube_res)(data[0] % KRES_COUNT);
	size_t chunk = (size_t)data[1] % 64 + 1, off = 2;
	while (off < size) {
		size_t n = size - off < chunk ? size - off : chunk;
		if (kube_client_feed(c, res, (const char *)data + off, n) < 0)
			break; /* the client drops such a stream */
		off += n;
	}
	kube_client_free(c);
	return 0;
}
