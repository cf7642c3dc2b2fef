#include "agent/daemon/dnsmsg.h"

#include <errno.h>
#include <ldns/ldns.h>
#include <stdlib.h>
#include <string.h>

/* A name in wire format (ldns has decompressed it: length-prefixed
 * labels, a zero at the end, at most 255 bytes) as lower-case text
 * without the final dot; "" when a label holds a byte no host pattern
 * can hold (the name then matches nothing). */
static void name_text(const ldns_rdf *rdf, char *out)
{
	const uint8_t *p = ldns_rdf_data(rdf);
	size_t n = ldns_rdf_size(rdf), o = 0, i = 0;
	out[0] = 0;
	if (!p || ldns_rdf_get_type(rdf) != LDNS_RDF_TYPE_DNAME)
		return;
	while (i < n && p[i]) {
		size_t l = p[i++];
		if (l > 63 || i + l > n || o + l + 1 > DNS_NAME_MAX) {
			out[0] = 0;
			return;
		}
		if (o)
			out[o++] = '.';
		for (size_t k = 0; k < l; k++) {
			char c = (char)p[i + k];
			if (c >= 'A' && c <= 'Z')
				c = (char)(c - 'A' + 'a');
			if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_')) {
				out[0] = 0;
				return;
			}
			out[o++] = c;
		}
		i += l;
	}
	out[o] = 0;
}

static int header(const ldns_pkt *p, struct dns_msg *m)
{
	memset(m, 0, offsetof(struct dns_msg, names));
	m->id = ldns_pkt_id(p);
	m->qr = ldns_pkt_qr(p);
	m->tc = ldns_pkt_tc(p);
	m->rcode = (uint8_t)ldns_pkt_get_rcode(p);
	const ldns_rr_list *q = ldns_pkt_question(p);
	if (!q || ldns_rr_list_rr_count(q) != 1)
		return -EINVAL;
	const ldns_rr *rr = ldns_rr_list_rr(q, 0);
	m->qtype = (uint16_t)ldns_rr_get_type(rr);
	name_text(ldns_rr_owner(rr), m->names[0]);
	m->nnames = 1;
	m->naddrs = m->over = m->unrelated = 0;
	return 0;
}

int dns_parse_query(const uint8_t *buf, size_t len, struct dns_msg *m)
{
	ldns_pkt *p = NULL;
	if (ldns_wire2pkt(&p, buf, len) != LDNS_STATUS_OK)
		return -EINVAL;
	int rc = header(p, m);
	if (!rc && m->qr)
		rc = -EINVAL;
	ldns_pkt_free(p);
	return rc;
}

static size_t chain_index(const struct dns_msg *m, const char *name)
{
	for (size_t i = 0; *name && i < m->nnames; i++)
		if (!strcmp(m->names[i], name))
			return i;
	return SIZE_MAX;
}

/* Follows CNAMEs from the question's name: each step takes the CNAME
 * whose owner is the chain's last name (answers list them in order, but
 * nothing obliges them to); a loop or a chain past DNS_CHAIN_MAX stops
 * it. Returns the smallest TTL of the CNAMEs taken. */
static uint32_t follow_cnames(const ldns_rr_list *an, struct dns_msg *m, bool *used)
{
	uint32_t ttl = UINT32_MAX;
	char owner[DNS_NAME_MAX + 1], target[DNS_NAME_MAX + 1];
	for (bool more = true; more && m->nnames < DNS_CHAIN_MAX;) {
		more = false;
		for (size_t i = 0; i < ldns_rr_list_rr_count(an); i++) {
			const ldns_rr *rr = ldns_rr_list_rr(an, i);
			if (used[i] || ldns_rr_get_type(rr) != LDNS_RR_TYPE_CNAME || ldns_rr_rd_count(rr) != 1)
				continue;
			name_text(ldns_rr_owner(rr), owner);
			if (!*owner || strcmp(owner, m->names[m->nnames - 1]))
				continue;
			name_text(ldns_rr_rdf(rr, 0), target);
			used[i] = true;
			if (!*target || chain_index(m, target) != SIZE_MAX)
				return ttl; /* a loop, or a name no pattern holds: the chain ends here */
			memcpy(m->names[m->nnames++], target, sizeof(target));
			ttl = ldns_rr_ttl(rr) < ttl ? ldns_rr_ttl(rr) : ttl;
			more = true;
			break;
		}
	}
	return ttl;
}

static bool rr_addr(const ldns_rr *rr, ip128 *a)
{
	ldns_rr_type t = ldns_rr_get_type(rr);
	if ((t != LDNS_RR_TYPE_A && t != LDNS_RR_TYPE_AAAA) || ldns_rr_rd_count(rr) != 1)
		return false;
	const ldns_rdf *d = ldns_rr_rdf(rr, 0);
	const uint8_t *p = ldns_rdf_data(d);
	if (t == LDNS_RR_TYPE_A && ldns_rdf_size(d) == 4) {
		*a = ip_from_v4((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]);
		return true;
	}
	if (t == LDNS_RR_TYPE_AAAA && ldns_rdf_size(d) == 16) {
		a->hi = a->lo = 0;
		for (int i = 0; i < 8; i++) {
			a->hi = a->hi << 8 | p[i];
			a->lo = a->lo << 8 | p[8 + i];
		}
		return true;
	}
	return false;
}

int dns_parse_answer(const uint8_t *buf, size_t len, struct dns_msg *m)
{
	ldns_pkt *p = NULL;
	if (ldns_wire2pkt(&p, buf, len) != LDNS_STATUS_OK)
		return -EINVAL;
	int rc = header(p, m);
	const ldns_rr_list *an = ldns_pkt_answer(p);
	size_t n = an ? ldns_rr_list_rr_count(an) : 0;
	if (rc < 0 || !m->qr || !*m->names[0] || !n) {
		ldns_pkt_free(p);
		return rc < 0 || !m->qr ? -EINVAL : 0;
	}
	bool *used = calloc(n, sizeof(*used));
	if (!used)
		abort();
	uint32_t ttl = follow_cnames(an, m, used);
	char owner[DNS_NAME_MAX + 1];
	for (size_t i = 0; i < n; i++) {
		const ldns_rr *rr = ldns_rr_list_rr(an, i);
		ip128 a;
		if (used[i])
			continue;
		name_text(ldns_rr_owner(rr), owner);
		/* only the chain's last name has addresses (RFC 1034 3.6.2: a
		 * name with a CNAME has no other data) */
		if (!*owner || strcmp(owner, m->names[m->nnames - 1]) || !rr_addr(rr, &a)) {
			m->unrelated++;
			continue;
		}
		if (m->naddrs == DNS_ADDRS_MAX) {
			m->over++;
			continue;
		}
		uint32_t t = ldns_rr_ttl(rr);
		m->addrs[m->naddrs++] = (struct dns_addr){ a, t < ttl ? t : ttl };
	}
	free(used);
	ldns_pkt_free(p);
	return 0;
}

int dns_servfail(const uint8_t *q, size_t len, uint8_t **out, size_t *outlen)
{
	ldns_pkt *p = NULL;
	if (ldns_wire2pkt(&p, q, len) != LDNS_STATUS_OK)
		return -EINVAL;
	ldns_pkt_set_qr(p, true);
	ldns_pkt_set_ra(p, true);
	ldns_pkt_set_rcode(p, LDNS_RCODE_SERVFAIL);
	int rc = ldns_pkt2wire(out, p, outlen) == LDNS_STATUS_OK ? 0 : -EINVAL;
	ldns_pkt_free(p);
	return rc;
}
