/* The policy engine: holds the cluster's objects, keeps them indexed, and
 * maintains the ruleset IR for one node incrementally. The IR is what the
 * nftables renderer consumes and what explain walks, so the two cannot
 * disagree.
 *
 * IR, for one node:
 *   - groups: a local pod isolated in a direction belongs to the group of
 *     exactly the policies that select it in that direction; the group's
 *     rules are the union of those policies' rules for the direction;
 *   - rules: one per policy rule; a rule names a peer set (or any peer) and
 *     port entries (or any port); named ports are resolved per
 *     destination pod;
 *   - peer sets: shared by rules with identical peers; the union of the
 *     pods matching the peer selectors cluster-wide (their addresses) and
 *     the ipBlock ranges with excepts carved out, kept disjoint. Only live
 *     policies (those in at least one group of this node) have IR rules
 *     and peer sets, kept filled as pods change; a node holds the few
 *     hundred sets its groups use, not one for every peer of every policy
 *     in the cluster. A policy no group holds any more keeps them until
 *     the transaction ends (engine_take_dirty): a group that takes it
 *     back meanwhile keeps the same sets (ids, learned addresses). The
 *     remote side of a flow (explain, matrix) gets a
 *     transient group whose rules of policies that are not live have peer
 *     sets of their own, not filled: ir_peerset_has() answers for them by
 *     matching the pod that owns the address.
 * Passes, for each change:
 *   1. index the object (namespace -> pods, label -> pods, address -> pod);
 *   2. re-evaluate only the peer sets whose selectors may match the old or
 *      the new state (found through anchors: a label pair, a namespace
 *      name or a namespace label the selector requires);
 *   3. regroup only the local pods the change can affect;
 *   4. mark what changed dirty, for the data plane to diff. */
#ifndef CORRAL_ENGINE_H
#define CORRAL_ENGINE_H

#include "fqdn.h"
#include "model.h"

struct engine_config {
	const char *node;      /* NULL: every pod counts as local (offline) */
	const char *app_label; /* the application label keys, a comma list (model.h),
				  default APP_LABELS_DEFAULT */
	bool dns_default;      /* AccessPolicy pods may reach cluster DNS */
	/* Entities (model.h). pod_cidrs: the cluster's pod ranges, a comma
	 * list of prefixes, added to every Node's spec.podCIDRs; world is
	 * empty in a family where neither gives a range (fail closed).
	 * apiserver: the API server's addresses, a comma list, until (and
	 * beside) what engine_apiserver_set() learns. NULL: none. */
	const char *pod_cidrs;
	const char *apiserver;
};

struct ir_group;
struct pod_meet;

struct ns {
	istr name;
	struct ns_spec *spec; /* NULL: implied by pods or policies */
	struct labelset implied;
	struct list pods;     /* struct pod.ns_node */
	struct vec policies;  /* struct policy* */
};

struct pod {
	struct pod_spec *spec;
	struct ns *ns;
	struct list ns_node;
	struct pod_lnode *lnodes; /* its labels that live terms anchor on (engine.c) */
	bool indexed;             /* in the address and label indexes (active when indexed) */
	bool active;              /* has an address, not finished, not hostNetwork */
	bool local;
	uint8_t owns;             /* bit i: the address index has it own spec->addr[i] (engine.c) */
	struct ir_group *group[DIR_COUNT];
	/* provisional (engine_pod_upsert_meet): the waiting pods whose
	 * verdicts this one's must all meet; NULL for every other pod */
	struct pod_meet *meet;
};

struct ir_peerset {
	uint32_t id;
	char *key;               /* canonical description, shared by equal peers */
	uint32_t refs;
	/* ipBlock / external ranges, excepts carved, and the current ranges
	 * of its entities: kept current when nodes change */
	struct range_set ranges;
	uint32_t entities;       /* ENT_* of its peers */
	struct range_set own;    /* the ranges written in the policy (no entity) */
	uint32_t live;           /* rules of live policies using it (struct policy.ngroups) */
	struct ptrset members;   /* struct pod*, while live: their addresses are members */
	struct vec terms;        /* struct term* (engine private) */
	uint64_t epoch;
	bool dirty;
	/* What changed since the data plane last rendered it (it then calls
	 * engine_peerset_rendered): the addresses whose membership may have
	 * changed (touched, a pod's old and new ones), so that a set of many
	 * members is edited rather than listed again; or, full, anything
	 * (new, its ranges changed, or too many touched to be worth it). */
	bool full;
	uint32_t ntouched, ctouched;
	ip128 *touched;
	/* a host rule's peers (outbound.external[].host): the addresses DNS
	 * answers gave pods for the pattern (fqdn.h), learned by the agent's
	 * DNS proxy; never part of the engine's own passes */
	istr host;
	struct fqdn_set learned;
};

struct ir_rule {
	const struct policy *pol; /* NULL for a cluster default */
	enum dir dir;
	uint32_t index;           /* position in the policy's rules */
	const struct rule *spec;
	struct ir_peerset *peers; /* NULL when the rule allows any peer */
	const char *what;         /* cluster default: its name */
};

struct policy {
	struct policy_spec *spec;
	struct ns *ns;
	uint32_t ngroups; /* groups it is part of; > 0: live, it has rules (none otherwise,
			     once the transaction it went idle in ends: engine_take_dirty) */
	bool idle;        /* no group holds it, its rules are kept until then */
	uint32_t nrules[DIR_COUNT];
	struct ir_rule *rules[DIR_COUNT];
};

struct ir_group {
	uint32_t id;
	enum dir dir;
	uint32_t npol;
	const struct policy **pols; /* sorted by kind, then name */
	struct vec rules;           /* struct ir_rule* */
	uint32_t npods;             /* local pods in the group (and meet groups holding it) */
	bool dirty;
	/* A meet group (npol 0, no rules of its own): a flow is allowed only
	 * if every group of meet allows it (two or more, sorted by id): the
	 * verdict of a provisional address that may be any of several
	 * waiting pods (engine_pod_upsert_meet). meet_refs: the meet groups
	 * this one is part of. */
	uint32_t nmeet, meet_refs;
	struct ir_group **meet;
};

struct engine_stats {
	uint64_t term_evals;     /* selector terms evaluated against a pod */
	uint64_t group_evals;    /* (pod, direction) policy sets computed */
	uint64_t peerset_builds; /* peer sets built from scratch */
};

struct engine;

struct engine *engine_new(const struct engine_config *cfg);
void engine_free(struct engine *e);

/* Each upsert takes ownership of the spec. */
void engine_node_upsert(struct engine *e, struct node_spec *spec);
void engine_node_delete(struct engine *e, const char *name);
/* The kube-apiserver entity learns the ready addresses of the Service
 * default/kubernetes's EndpointSlices: engine_node_upsert of a node_spec
 * with apiserver set, and this to forget one. */
void engine_apiserver_slice_delete(struct engine *e, const char *name);
/* The API server's endpoint addresses learned from the cluster (beside
 * the configured ones); copies s. */
void engine_apiserver_set(struct engine *e, const struct range_set *s);
/* The node that has address a, or NULL. */
const struct node_spec *engine_node_by_addr(const struct engine *e, ip128 a);
void engine_nodes(const struct engine *e, struct vec *v); /* struct node_spec*, by name */
/* The current addresses of an entity. */
const struct range_set *engine_entity_ranges(const struct engine *e, enum entity ent);
/* Whether world is known in a family (pod ranges known for it). */
bool engine_world_known(const struct engine *e, bool v6);
void engine_ns_upsert(struct engine *e, struct ns_spec *spec);
void engine_ns_delete(struct engine *e, const char *name);
void engine_pod_upsert(struct engine *e, struct pod_spec *spec);
/* A provisional pod (agent/daemon/provisional.h): spec, a twin of one of
 * the waiting pods cands (with the new address), stands for an address
 * that may be any of theirs, so it gets no more than every one of them
 * would: in each direction, the meet of their groups (no group when none
 * is isolated, the one group when only one kind is); a member of a peer
 * set only if every candidate matches it; a named port resolved only
 * where every candidate resolves it alike. Takes a reference on each
 * candidate spec; a later engine_pod_upsert() of the pod ends it. */
void engine_pod_upsert_meet(struct engine *e, struct pod_spec *spec, struct pod_spec *const *cands, size_t n);
void engine_pod_delete(struct engine *e, const char *ns, const char *name);
void engine_policy_upsert(struct engine *e, struct policy_spec *spec);
void engine_policy_delete(struct engine *e, enum policy_kind kind, const char *ns, const char *name);

const struct engine_config *engine_config(const struct engine *e);
const struct engine_stats *engine_stats(const struct engine *e);

/* Look-ups for explain and the renderer. */
struct pod *engine_pod_find(const struct engine *e, const char *ns, const char *name);
/* The pod that owns address a: the one live pod that lists it. While two
 * or more live pods list one address (a reused address whose old pod is
 * still known, or a manifest that copies another pod's address), no pod
 * owns it: the address is quarantined. It then matches no pod selector
 * (only ipBlocks, which match addresses), and every flow from or to it is
 * dropped, on the node of each claimant; explain and matrix say so. This
 * depends only on the objects, not on the order their events came in, so
 * every node and offline explain agree. */
struct pod *engine_pod_by_addr(const struct engine *e, ip128 a);
/* How many live pods claim a (0, 1 or more); *pods (may be NULL) gets them. */
size_t engine_addr_claims(const struct engine *e, ip128 a, struct pod *const **pods);
bool engine_addr_quarantined(const struct engine *e, ip128 a);
struct ns *engine_ns_find(const struct engine *e, const char *name);
const struct labelset *ns_labels(const struct ns *n);
struct policy *engine_policy_find(const struct engine *e, enum policy_kind kind, const char *ns,
				  const char *name);
/* Fill v with pointers, sorted by namespace then name. */
void engine_pods(const struct engine *e, struct vec *v);
void engine_policies(const struct engine *e, struct vec *v);
void engine_namespaces(const struct engine *e, struct vec *v); /* struct ns*, by name */
void engine_groups(const struct engine *e, struct vec *v); /* sorted by id */
void engine_peersets(const struct engine *e, struct vec *v); /* sorted by id */
size_t engine_pod_count(const struct engine *e);
size_t engine_ns_count(const struct engine *e);
size_t engine_policy_count(const struct engine *e, enum policy_kind kind, bool valid);
/* Objects enforced fail-closed because they could not be read. */
struct engine_unreadable {
	size_t namespaces, pods, policies[POLICY_KINDS], nodes;
};
void engine_unreadable_counts(const struct engine *e, struct engine_unreadable *out);
/* Active pods on this node (those that get dispatch entries), sorted. */
void engine_local_pods(const struct engine *e, struct vec *v);
/* Whether pods a and b would get the same verdicts on this node if each
 * had the same address: the same namespace and container ports, the same
 * policies isolating them in each direction (the same group), the same
 * membership in every peer set (live or not: the twin's group may make
 * one live). Addresses, ipBlocks and entities do not tell them apart.
 * Either unreadable: false. */
bool engine_pods_equivalent(const struct engine *e, const struct pod *a, const struct pod *b);
/* Every pod of this node, with an address or not (an index: no scan of
 * the cluster's pods), sorted. */
void engine_node_pods(const struct engine *e, struct vec *v);

/* The group a pod on another node would have on its own node (id 0), for
 * explaining the remote side of a flow; free with the function below. */
struct ir_group *engine_group_transient(const struct engine *e, const struct pod *p, enum dir d);
void engine_group_transient_free(struct ir_group *g);

/* Dirty objects since the last call; clears the marks. */
void engine_take_dirty(struct engine *e, struct vec *peersets, struct vec *groups);
/* The data plane has rendered ps as it is now: forgets what was touched. */
void engine_peerset_rendered(struct ir_peerset *ps);
/* The data plane has rendered every peer set as it is now (a render with
 * nothing to reuse lists each one whole): forgets what was touched of
 * each, the ones whose dirty marks were taken and dropped too, so that
 * their next change is an edit rather than a listing again. */
void engine_peersets_rendered(struct engine *e);

/* Whether the rule's peers include address a. For a host rule: an address
 * learned for its pattern and not expired (the kernel admits new flows to
 * it); ir_peerset_had() also counts one expired but still remembered (a
 * flow opened while it was live: revocation keeps it, as the kernel does). */
bool ir_peerset_has(const struct engine *e, const struct ir_peerset *ps, ip128 a);
bool ir_peerset_had(const struct engine *e, const struct ir_peerset *ps, ip128 a);
/* Whether pod p's addresses are members (the pod is active and matches). */
bool ir_peerset_has_pod(const struct engine *e, const struct ir_peerset *ps, const struct pod *p);
/* Every host peer set (ps->host set), sorted by id. */
void engine_host_peersets(const struct engine *e, struct vec *v);
/* The port the rule entry names on pod dst for proto, or -1 (named ports:
 * resolved against dst's container ports, name and protocol). */
int ir_port_resolve(const struct port_match *pm, const struct pod *dst);

/* The IR as text, deterministic: golden tests compare it. */
char *engine_ir_dump(const struct engine *e);

#endif
