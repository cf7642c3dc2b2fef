/* Explanations as text and JSON, shared by agentctl and the agent. */
#ifndef CORRAL_REPORT_H
#define CORRAL_REPORT_H

#include <jansson.h>
#include <stdio.h>

#include "policy/eval.h"

/* where[d]: what the kernel holds for that side (chain, counters), or NULL. */
void report_explain_text(FILE *out, const struct engine *e, const struct endpoint *src, const struct endpoint *dst,
			 int proto, int port, const struct verdict *v, const char *const where[DIR_COUNT]);
json_t *report_explain_json(const struct engine *e, const struct endpoint *src, const struct endpoint *dst, int proto,
			    int port, const struct verdict *v, const char *const where[DIR_COUNT]);
/* Without a port: the destination's first declared port (of the protocol
 * if one is given), else 80. */
void report_default_port(const struct endpoint *dst, int *proto, int *port);

/* SRC/DST as people write them: "ns/pod", "ns/app" (the pods of an
 * application) or an IP address. 0, -EINVAL (unreadable), -ENOENT (no such
 * pod) or -EADDRNOTAVAIL (no address); *note says more when set. */
int report_resolve(const struct engine *e, const char *spec, struct endpoint *out, char **note);

/* Objects enforced fail-closed, in words (for status, explain, drops):
 *   "NetworkPolicy x/p could not be read; enforced fail-closed (isolates
 *    every pod of namespace x for ingress and egress, allows nothing): why"
 * and the short form "NetworkPolicy x/p (could not be read)". */
char *report_policy_problem(const struct policy_spec *ps);
char *report_policy_name(const struct policy_spec *ps);
char *report_pod_problem(const struct pod_spec *p);
char *report_ns_problem(const struct ns_spec *n);
/* Every object enforced fail-closed or invalid, one line each, into arr. */
void report_problems(const struct engine *e, json_t *arr);

#endif
