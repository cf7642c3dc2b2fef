/* Words for a verdict: what each rule is, and the smallest change that
 * would allow a denied flow. Pure: returns strings, prints nothing. */
#ifndef CORRAL_EXPLAIN_H
#define CORRAL_EXPLAIN_H

#include "eval.h"

/* "NetworkPolicy x/allow spec.ingress[0]: from pods ... ; ports TCP 80" */
char *explain_rule(const struct ir_rule *r);
/* Why one rule did not match: "peer not matched", "port not matched" ... */
const char *explain_miss(const struct rule_check *c);
/* When peer address a is inside one of the rule's ipBlocks but carved out
 * by an except: "10.0.2.1 is inside 10.0.0.0/8 but excluded by its except
 * 10.0.2.0/24"; *except (may be NULL) gets the except as written. Else NULL. */
char *explain_excluded(const struct ir_rule *r, ip128 a, const char **except);

/* A suggested change: the text people read, and the same change as an edit
 * a machine applies to the manifests (the round-trip test does). */
enum fix_action {
	FIX_NOTE,   /* nothing to add: text says why */
	FIX_APPEND, /* append the items of yaml (a block sequence) to the list at path */
	FIX_CREATE, /* create the object yaml holds (one document) */
};

struct fix {
	enum fix_action action;
	enum policy_kind kind; /* APPEND: the policy to edit */
	char *ns, *name;       /* APPEND: that policy; CREATE: the new one */
	char *path;            /* APPEND: "spec.ingress", "spec.ingress[0].ports", ... */
	char *rule;            /* the rule the change adds or widens: "spec.ingress[0]"; NULL
				  for an appended rule (its index is the list's length) and for
				  CREATE (every rule of the new policy) */
	char *yaml;            /* APPEND: the items; CREATE: the document */
	char *note;            /* lines said first (invalid policies, host-network peers), or
				  why no change can help (FIX_NOTE); "" if none */
	char *text;            /* the change: "add to ...:\n    - ...\n"; "" for FIX_NOTE */
};

/* The change that would allow the flow on side d; NULL when the side
 * allows it, is not isolated, or is quarantined (no change can help). */
struct fix *explain_fix_edit(const struct engine *e, const struct endpoint *src, const struct endpoint *dst,
			     enum dir d, const struct dir_verdict *v, int proto, int port);
void fix_free(struct fix *f);
/* Its note and text (NULL as above). */
char *explain_fix(const struct engine *e, const struct endpoint *src, const struct endpoint *dst, enum dir d,
		  const struct dir_verdict *v, int proto, int port);

/* s as a YAML scalar that reads back as the same string: plain when that
 * is safe, else double-quoted ("2024", "1", "", "null", "yes", "on",
 * "007", "10.0.0.1", "fd00::1/128", ...). */
void yaml_scalar(struct sbuf *b, const char *s);

/* "x/a" or the address */
char *explain_endpoint(const struct endpoint *ep);

#endif
