/* Words for a verdict: what each rule is, and the smallest change that
 * would allow a denied flow. Pure: returns strings, prints nothing. */
#ifndef CORRAL_EXPLAIN_H
#define CORRAL_EXPLAIN_H

#include "eval.h"

/* "NetworkPolicy x/allow spec.ingress[0]: from pods ... ; ports TCP 80" */
char *explain_rule(const struct ir_rule *r);
/* Why one rule did not match: "peer not matched", "port not matched" ... */
const char *explain_miss(const struct rule_check *c);
/* The change that would allow the flow on side d (NULL if allowed). */
char *explain_fix(const struct engine *e, const struct endpoint *src, const struct endpoint *dst, enum dir d,
		  const struct dir_verdict *v, int proto, int port);
/* "x/a" or the address */
char *explain_endpoint(const struct endpoint *ep);

#endif
