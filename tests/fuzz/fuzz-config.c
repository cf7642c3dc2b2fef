/* libFuzzer target: bytes as the agent's configuration file (YAML or
 * JSON) over the defaults. Never a crash or a leak; a refused file leaves
 * an error message naming it. */
#include <stdint.h>
#include <stdlib.h>

#include "agent/daemon/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct agent_config c;
	char *err = NULL;
	agent_config_defaults(&c);
	if (agent_config_parse(&c, "fuzz.yaml", (const char *)data, size, &err) < 0 && !err)
		abort(); /* a refusal always says why */
	free(err);
	agent_config_free(&c);
	return 0;
}
