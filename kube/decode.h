/* Decoding of Kubernetes objects (as JSON values) into the policy model.
 * Shared by the API client, the manifest folder source and agentctl. */
#ifndef CORRAL_KUBE_DECODE_H
#define CORRAL_KUBE_DECODE_H

#include <jansson.h>

#include "../policy/diag.h"
#include "../policy/model.h"

enum decode_mode {
	DECODE_AGENT,  /* unknown fields outside rules are warnings */
	DECODE_STRICT, /* agentctl check: every unknown field is an error */
	/* objects the API server accepted: unknown fields outside rules are
	 * ignored (the server pruned or validated them); anything else that
	 * cannot be read makes the object unreadable, enforced fail-closed */
	DECODE_API,
};

struct decode_opts {
	enum decode_mode mode;
	bool workloads;         /* Deployment & co. stand for one pod each */
	const char *app_label;  /* the application label keys, a comma list
				   (default APP_LABELS_DEFAULT, policy/model.h) */
	const char *default_ns; /* default "default" */
};

enum obj_type { OBJ_NONE, OBJ_NAMESPACE, OBJ_POD, OBJ_POLICY, OBJ_NODE };

struct decoded {
	enum obj_type type;
	struct ns_spec *ns;
	struct pod_spec *pod;
	struct policy_spec *pol;
	struct node_spec *node;
};

/* Decodes one object. Returns 0 with out->type set (OBJ_NONE for a kind
 * corral does not read), or -EINVAL when nothing usable came out (no
 * name or namespace: the object cannot even be identified). Otherwise it
 * fails closed: an invalid policy is returned with valid == false (it
 * isolates and allows nothing); one whose targets cannot be read also
 * has unreadable set and targets every pod of its namespace; a pod or a
 * namespace with a problem has unreadable set (see model.h). In
 * DECODE_API mode every problem makes the object unreadable. Every
 * problem is added to d. */
int kube_decode(json_t *obj, const char *file, const struct decode_opts *o, struct diags *d,
		struct decoded *out);

/* Validators shared with the tests of the CRD schema. */
bool k8s_label_value_ok(const char *s);
bool k8s_label_key_ok(const char *s);
bool k8s_dns_label_ok(const char *s);
bool k8s_dns_name_ok(const char *s); /* lower-case DNS name, no scheme/port/path */
bool k8s_port_name_ok(const char *s); /* IANA_SVC_NAME */

#endif
