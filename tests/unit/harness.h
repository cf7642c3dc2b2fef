/* Small helpers shared by the unit tests: a cluster from YAML text, and
 * verdicts by name. */
#ifndef CORRAL_TEST_HARNESS_H
#define CORRAL_TEST_HARNESS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>
#include <stdlib.h>

#include "kube/manifest.h"
#include "policy/eval.h"
#include "policy/explain.h"

/* Namespaces x, y and kube-system; pods x/a (app=a), x/b (app=b),
 * y/a (app=a), y/c (no app label) and kube-system/dns. Ports: "http" 80/TCP
 * on every pod, "dns" 53/UDP on dns, and x/b serves "http" on 8080. */
extern const char *BASE;

struct engine *load(const char *yaml, const struct engine_config *cfg, enum decode_mode mode, struct diags *d);
#define LOAD(yaml) load(yaml, NULL, DECODE_AGENT, NULL)
/* "ns/pod" or an address */
bool allowed(struct engine *e, const char *src, const char *dst, int proto, int port);
/* Decodes yaml alone; returns the diagnostics text joined by newlines. */
char *check_text(const char *yaml, enum decode_mode mode, size_t *errors);

#endif
