/* The policy object model: what the compiler needs of Namespaces, Pods,
 * NetworkPolicies and AccessPolicies, and nothing else. Decoders (kube/)
 * fill these "spec" structs; the engine takes ownership of them. */
#ifndef CORRAL_MODEL_H
#define CORRAL_MODEL_H

#include "addr.h"
#include "util.h"

enum dir { DIR_INGRESS = 0, DIR_EGRESS = 1 };
#define DIR_COUNT 2
const char *dir_name(enum dir d); /* "ingress" / "egress" */

enum proto { PROTO_ANY = 0, PROTO_TCP = 6, PROTO_UDP = 17, PROTO_SCTP = 132 };
const char *proto_name(int p); /* "TCP", "UDP", "SCTP" */
int proto_parse(const char *s); /* PROTO_* or -1; exact upper case, as the API */

struct label {
	istr key, val;
};
/* Sorted by key (strcmp), keys unique. */
struct labelset {
	uint32_t n;
	struct label *v;
};
istr labelset_get(const struct labelset *l, const char *key);
void labelset_set(struct labelset *l, const char *key, const char *val);
void labelset_free(struct labelset *l);
void labelset_copy(struct labelset *dst, const struct labelset *src);

enum sel_op { SEL_IN, SEL_NOT_IN, SEL_EXISTS, SEL_DOES_NOT_EXIST };
struct sel_req {
	istr key;
	enum sel_op op;
	uint32_t nvals;
	istr *vals; /* sorted by strcmp */
};
/* A label selector: requirements ANDed. No requirement selects everything.
 * matchLabels entries become SEL_IN with one value. Requirements are kept
 * sorted so that equal selectors print equally. */
struct selector {
	uint32_t n;
	/* req and every req's vals in one block (selector_normalize and
	 * selector_copy leave it so: a selector of two requirements was four
	 * blocks); selector_add first takes it apart */
	bool packed;
	struct sel_req *req;
};
bool selector_matches(const struct selector *s, const struct labelset *l);
void selector_add(struct selector *s, const char *key, enum sel_op op, const char **vals, uint32_t nvals);
void selector_normalize(struct selector *s); /* also packs it */
void selector_free(struct selector *s);
void selector_copy(struct selector *dst, const struct selector *src);
/* Canonical text, e.g. "app in (a,b),!tier" or "{}" for everything. */
void selector_format(const struct selector *s, struct sbuf *out);

struct cport {
	istr name; /* NULL if unnamed */
	uint8_t proto;
	uint16_t port;
};

enum pod_phase { PHASE_PENDING, PHASE_RUNNING, PHASE_SUCCEEDED, PHASE_FAILED, PHASE_UNKNOWN };
/* The phase status.phase names (its n bytes); a name we do not know reads
 * as running, as an absent phase does. */
enum pod_phase pod_phase_parse(const char *s, size_t n);

/* Specs have one owner (the engine) unless refs says how many more share
 * them (the API client's cache does); *_spec_free drops one owner. Fields
 * ordered so that no padding is left (128 bytes). */
struct pod_spec {
	uint32_t refs;
	uint32_t naddr;
	istr ns, node;
	/* Not interned (a pod's name is its own: 150,000 of them made the
	 * intern table four times larger): in the spec's block when packed,
	 * else an allocation of its own. Copy it with xstrdup or istr_get,
	 * never istr_ref. */
	const char *name;
	struct labelset labels;
	ip128 addr[2]; /* at most one of each family, as status.podIPs */
	enum pod_phase phase;
	uint32_t nports;
	struct cport *ports;
	istr source; /* file or "api" (interned: shared by every object of a file) */
	char *workload; /* offline: "Deployment" etc. or NULL */
	/* Something in the object could not be read (the first problem is in
	 * error). Fail closed: the pod is matched by no peer selector, and on
	 * its node it is quarantined (isolated both ways, nothing allowed),
	 * since which policies select it cannot be known for sure. */
	char *error;
	bool unreadable;
	bool host_network;
	bool synthetic_addr; /* offline: address made up for a pod without one */
	/* labels.v, ports and name live in the spec's own block
	 * (pod_spec_pack): they are read-only, and freed with it */
	bool packed;
};
/* The spec as one block: the struct, its labels, its container ports and
 * its name (four allocations were 320 bytes of heap and a slot of the
 * intern table for a pod of four labels and two ports, one is 256). p must
 * have no other owner yet (refs 0); p is consumed, the packed copy
 * returned. */
struct pod_spec *pod_spec_pack(struct pod_spec *p);
/* The same block made from p, whose references move to it; p's arrays
 * and name stay the caller's (they may live on its stack). */
struct pod_spec *pod_spec_packed_copy(const struct pod_spec *p);
void pod_spec_free(struct pod_spec *p);

struct ns_spec {
	uint32_t refs;
	istr name;
	struct labelset labels; /* kubernetes.io/metadata.name always set */
	istr source;
	/* its labels could not all be read (first problem in error): fail
	 * closed, it matches no namespace selector (its name still counts) */
	bool unreadable;
	char *error;
};
void ns_spec_free(struct ns_spec *n);

/* One port entry of a rule. proto == PROTO_ANY is never stored: a rule
 * without ports has any_port set instead. lo == 0 means every port of the
 * protocol. A named entry has name set and lo == hi == 0. */
struct port_match {
	uint8_t proto;
	uint16_t lo, hi;
	istr name;
};

/* Named entities of AccessPolicy external entries (both directions):
 * addresses the engine keeps current from the cluster, not from the
 * policy (engine.h says where each comes from). */
enum entity {
	ENT_NODES = 1,     /* every node's addresses (Node status.addresses) */
	ENT_WORLD = 2,     /* outside the cluster's pod ranges and node addresses */
	ENT_APISERVER = 4, /* the API server's endpoint addresses */
};
#define ENT_ALL (ENT_NODES | ENT_WORLD | ENT_APISERVER)
const char *entity_name(enum entity e); /* "nodes", "world", "kube-apiserver" */
int entity_parse(const char *s);        /* ENT_* or -1 */

enum peer_kind { PEER_PODS, PEER_CIDR, PEER_HOST, PEER_ENTITY };
/* The fields of one kind share their place with the other kind's (56
 * bytes, was 104: an AccessPolicy rule has a peer per application label
 * key); read only those of the peer's kind. */
struct peer {
	enum peer_kind kind;
	/* PEER_ENTITY: one ENT_* */
	uint32_t entity;
	/* PEER_CIDR / PEER_HOST / PEER_ENTITY: the text the user wrote
	 * (PEER_HOST: a pattern of policy/fqdn.h, "api.example.com" or
	 * "*.example.com") */
	char *text;
	union {
		struct { /* PEER_PODS: pods in ns (if set) or in namespaces matching nssel */
			istr ns;
			struct selector nssel;
			struct selector podsel;
		};
		struct { /* PEER_CIDR: the cidr with its excepts carved out */
			struct range_set ranges;
			/* the excepts as written (for explain) */
			uint32_t nexcept;
			char **except;
		};
	};
};

struct rule {
	bool any_peer; /* no from/to: every address */
	uint32_t npeers;
	struct peer *peers;
	bool any_port;
	uint32_t nports;
	struct port_match *ports;
	istr path; /* where it was written, e.g. "spec.ingress[0]" (interned: the same few paths repeat in every policy) */
	/* AccessPolicy: the application and namespace the rule names */
	istr ap_app, ap_ns;
};

/* KIND_QUARANTINE is the engine's own stand-in policy that isolates pods
 * it could not read; no object of that kind exists. */
enum policy_kind { KIND_NETPOL, KIND_ACCESS, KIND_QUARANTINE };
#define POLICY_KINDS 2 /* kinds of objects: NetworkPolicy, AccessPolicy */
const char *policy_kind_name(enum policy_kind k); /* "NetworkPolicy", "AccessPolicy", "Quarantine" */

struct policy_spec {
	uint32_t refs;
	enum policy_kind kind;
	istr ns, name;
	struct selector target; /* pods of ns */
	/* more selectors ORed with target: an AccessPolicy's application read
	 * through the later keys of the application label list (each with
	 * the earlier keys absent, see app_selectors()) */
	uint32_t nalt;
	struct selector *alt;
	bool isolates[DIR_COUNT];
	/* false: the object failed validation; it still isolates its targets
	 * but its rules allow nothing (a typo must never open traffic) */
	bool valid;
	/* the object could not be read as written (an API object the decoder
	 * refused, or targets that cannot be known): enforced fail-closed. It
	 * is also !valid; unknown targets read as every pod of the namespace,
	 * unknown policyTypes as both directions. */
	bool unreadable;
	char *error; /* first validation error when !valid */
	uint32_t nrules[DIR_COUNT];
	struct rule *rules[DIR_COUNT];
	istr app; /* AccessPolicy: spec.application */
	uint32_t nhosts; /* AccessPolicy: external host entries (DNS-aware egress) */
	istr source;
};
void policy_spec_free(struct policy_spec *p);
void rule_free(struct rule *r);
/* Whether the policy's targets (target, or one of alt) select labels l. */
bool policy_spec_selects(const struct policy_spec *p, const struct labelset *l);

/* The application label: an ordered list of keys, written as a comma
 * list ("app,app.kubernetes.io/name"). A pod's application is the value
 * of the first key of the list it has. */
#define APP_LABELS_DEFAULT "app,app.kubernetes.io/name"
#define APP_KEYS_MAX 8
/* Splits the list into at most APP_KEYS_MAX keys (copies into buf, which
 * keys point into); returns how many. */
uint32_t app_keys_split(const char *list, char *buf, size_t buflen, const char **keys);
/* The application of labels l and the key it was read from (NULL, NULL
 * when the pod has none of the keys). */
istr app_of(const char *list, const struct labelset *l, const char **key);
/* The selectors that together (ORed) select application app: for the
 * i-th key, "key_i in (app)" with every earlier key absent. Returns how
 * many were written to out (at most APP_KEYS_MAX). */
uint32_t app_selectors(const char *list, const char *app, struct selector *out);

/* A Node: its addresses (status.addresses of type InternalIP and
 * ExternalIP) and its pod ranges (spec.podCIDRs). With apiserver set, not
 * a Node but the EndpointSlice default/NAME of the Service kubernetes
 * (label kubernetes.io/service-name=kubernetes): addr are the API
 * server's ready endpoint addresses (the kube-apiserver entity). */
struct node_spec {
	uint32_t refs;
	istr name;
	uint32_t naddr;
	ip128 *addr;
	struct range_set podcidrs;
	istr source;
	/* its addresses could not all be read: the first problem in error.
	 * Fail closed: the addresses read still count as a node's (world
	 * excludes them), nothing unread is guessed. */
	bool unreadable;
	char *error;
	bool apiserver; /* the kubernetes Service's EndpointSlice, not a Node */
};
void node_spec_free(struct node_spec *n);

#endif
