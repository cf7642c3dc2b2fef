/* The test bed of DNS-aware egress (tests/agent/test-dns.c and
 * bench/bench-dns.c): the namespace cluster of tests/dataplane/cluster.sh,
 * plus
 *   - "the internet": a namespace PREFIX-ext behind node-1's uplink
 *     (veth "uplink"), where every address of 203.0.113.0/24,
 *     198.51.100.0/24 and 2001:db8::/32 is local (documentation ranges; they exist only in
 *     these namespaces) and TCP 80, 443 and 8443 accept;
 *   - a DNS server in pod z/c (10.1.3.3, fd00::3:3), which the manifests
 *     declare as kube-system/coredns, k8s-app=kube-dns: it answers UDP
 *     and TCP from a table the test fills (ldns builds the answers);
 *   - a resolver for pods: a query from the pod's namespace, the answer's
 *     addresses parsed, then a TCP connection at once. */
#ifndef CORRAL_DNSBED_H
#define CORRAL_DNSBED_H

#include <stdbool.h>
#include <stddef.h>

#include "kcluster.h"
#include "policy/addr.h"

#define BED_DNS_POD 8 /* z/c */

struct bed_addrs {
	size_t n;
	ip128 a[512];
	bool tc;        /* the UDP answer was truncated */
	int rcode;
};

/* Cluster, internet and DNS server up; 0 or -1. */
int bed_up(struct kcluster *kc, const char *script, const char *prefix);
void bed_down(void);

/* The zone: name -> records ("CNAME target", "A 203.0.113.10",
 * "AAAA 2001:db8::1"), with one TTL. Replaces what name had. */
void bed_zone_set(const char *name, unsigned ttl, const char *const *records, size_t n);
/* name answers a new address each query: 203.0.113.(first + k % 200) for
 * A, 2001:db8:f::k for AAAA (k counts queries). */
void bed_zone_fresh(const char *name, unsigned ttl, unsigned first);
/* n A records 198.51.100.(1 + k % 250) for name (answers that need TCP). */
void bed_zone_many(const char *name, unsigned ttl, size_t n);
/* The server ignores queries while true (the cluster DNS silent). */
void bed_dns_silent(bool on);
unsigned long bed_dns_queries(void);

/* Pod i asks name (type 1 A or 28 AAAA) of the cluster DNS (over v6 if
 * v6); UDP, and TCP again when truncated (as resolvers do). 0, or -1 when
 * no answer came within timeout_ms. *ms: how long it took. */
int bed_resolve(struct kcluster *kc, int pod, const char *name, int qtype, bool v6, int timeout_ms,
		struct bed_addrs *out, double *ms);
/* A TCP connection from pod i to a:port, at once; true if it connected
 * within timeout_ms. */
bool bed_connect(struct kcluster *kc, int pod, ip128 a, int port, int timeout_ms);

#endif
