/* Policies and rules that select no pod among the pods in view (a silent
 * fail-open: a misspelt application isolates nothing), as warnings with a
 * "did you mean" from the labels present. For agentctl check and explain. */
#ifndef CORRAL_LINT_H
#define CORRAL_LINT_H

#include "diag.h"
#include "engine.h"

/* Adds a warning per policy whose targets select no pod, and per rule no
 * pod in view is a peer of; nothing when no pod is in view. Returns the
 * number of warnings added. */
size_t policy_lint(const struct engine *e, struct diags *d);
/* Whether the policy's targets select no pod of its namespace. */
bool policy_selects_nothing(const struct engine *e, const struct policy *pol);

#endif
