/* Diagnostics: every error names the file, the object and the field path,
 * formatted as "file: Kind ns/name: spec.path: reason". */
#ifndef CORRAL_DIAG_H
#define CORRAL_DIAG_H

#include "util.h"

struct diag {
	bool warning;
	char *file, *kind, *obj, *path, *msg;
};

struct diags {
	struct vec v; /* struct diag* */
	size_t errors, warnings;
};

void diags_add(struct diags *d, bool warning, const char *file, const char *kind, const char *obj,
	       const char *path, const char *fmt, ...) __attribute__((format(printf, 7, 8)));
char *diag_format(const struct diag *x);
void diags_free(struct diags *d);

#endif
