/* libFuzzer target: bytes -> YAML/JSON parser -> decoder -> engine ->
 * evaluator. Nothing may crash, leak or trip a sanitizer, whatever the
 * bytes. */
#include <stdint.h>
#include <stdlib.h>

#include "kube/manifest.h"
#include "policy/eval.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct manifest_set set = { 0 };
	struct decode_opts o = { (size & 1) ? DECODE_STRICT : DECODE_AGENT, true, "app", "default" };
	struct engine_config cfg = { NULL, "app", true, NULL, NULL };
	manifest_load_buffer(&set, "fuzz", (const char *)data, size, &o);
	for (size_t i = 0; i < set.diags.v.n; i++)
		free(diag_format(set.diags.v.v[i]));
	manifest_assign_addresses(&set);
	struct engine *e = engine_new(&cfg);
	manifest_apply(&set, e);
	struct vec pods = { 0 };
	engine_pods(e, &pods);
	for (size_t i = 0; i < pods.n && i < 8; i++)
		for (size_t j = 0; j < pods.n && j < 8; j++) {
			struct pod *s = pods.v[i], *d = pods.v[j];
			if (!s->spec->naddr || !d->spec->naddr)
				continue;
			struct endpoint src = { s, s->spec->addr[0] }, dst = { d, d->spec->addr[0] };
			struct verdict v;
			policy_eval(e, &src, &dst, PROTO_TCP, 80, &v);
			verdict_free(&v);
		}
	free(engine_ir_dump(e));
	vec_free(&pods);
	engine_free(e);
	manifest_set_free(&set);
	return 0;
}
