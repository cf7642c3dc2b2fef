/* DNS messages as the proxy needs them: the question of a query, and the
 * addresses an answer gives for it, following its CNAME chain. Parsing is
 * ldns's (ldns_wire2pkt: decompression, bounds, record formats); this
 * file only walks the parsed packet, with bounds of its own. The bytes
 * come from pods and from the cluster DNS: untrusted (tests/fuzz/
 * fuzz-dns.c). */
#ifndef CORRAL_DNSMSG_H
#define CORRAL_DNSMSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy/addr.h"

#define DNS_NAME_MAX 253
#define DNS_CHAIN_MAX 16  /* the query name and the CNAMEs followed */
#define DNS_ADDRS_MAX 256 /* addresses taken from one answer; the rest counted */

struct dns_addr {
	ip128 a;
	uint32_t ttl; /* the smaller of the record's and the CNAMEs' on the way */
};

struct dns_msg {
	uint16_t id, qtype;
	bool qr, tc;
	uint8_t rcode;
	/* names[0] the question's name (lower case, no final dot; "" when
	 * it holds characters no host pattern can match), then each CNAME
	 * target followed from it */
	size_t nnames;
	char names[DNS_CHAIN_MAX][DNS_NAME_MAX + 1];
	size_t naddrs;
	struct dns_addr addrs[DNS_ADDRS_MAX];
	size_t over;      /* addresses for the chain past DNS_ADDRS_MAX: not taken */
	size_t unrelated; /* answer records that are not on the chain: ignored */
};

/* A query from a pod: exactly one question. 0, or -EINVAL. */
int dns_parse_query(const uint8_t *buf, size_t len, struct dns_msg *m);
/* An answer: its question, the CNAME chain from it, and the A and AAAA
 * records of the chain's last name. 0, or -EINVAL (m is then unusable). */
int dns_parse_answer(const uint8_t *buf, size_t len, struct dns_msg *m);

/* A SERVFAIL answer to query q (its header and question), for when the
 * cluster DNS does not answer; *out malloc'd. 0 or -EINVAL. */
int dns_servfail(const uint8_t *q, size_t len, uint8_t **out, size_t *outlen);

#endif
