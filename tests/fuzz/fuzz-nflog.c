/* libFuzzer target: bytes as NFLOG netlink messages (what the agent reads
 * from its NFLOG socket) -> attributes -> the logged IP packet's flow.
 * Never a crash or an out-of-bounds read; every flow reported has a
 * family the parser knows. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/nl/nflog.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void on_pkt(const struct nflog_pkt *p, void *arg)
{
	if (p->family != 4 && p->family != 6)
		abort();
	if (strlen(p->prefix) > 65535) /* read as the agent does (sscanf): within the message */
		abort();
	(*(size_t *)arg)++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t n = 0;
	/* libmnl wants the buffer aligned as the kernel's is */
	void *buf = malloc(size ? size : 1);
	for (size_t i = 0; i < size; i++)
		((uint8_t *)buf)[i] = data[i];
	nflog_parse_msgs(buf, size, on_pkt, &n);
	struct nflog_pkt p;
	nflog_parse(data, size, &p);
	free(buf);
	return 0;
}
