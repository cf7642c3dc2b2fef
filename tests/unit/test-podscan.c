/* kube/podscan.c: a pod read from its text gives what jansson and
 * kube_decode give, or steps aside. Each case says which it must do, and
 * kube_pod_scan_check compares with the reference (read as a LIST item
 * and as a watch object) whenever it scans. */
#include "harness.h"

#include "kube/podscan.h"

static const struct decode_opts API = { DECODE_API, false, "app", "default" };

/* A pod as a real server lists it, with holes to fill: "%s" metadata extra,
 * spec extra, status extra. */
#define POD(MD, SPEC, ST)                                                                                          \
	"{\"metadata\":{\"name\":\"web-1\",\"namespace\":\"ns-1\",\"resourceVersion\":\"1042\","                      \
	"\"labels\":{\"app\":\"web\",\"tier\":\"front\"}" MD "},"                                                   \
	"\"spec\":{\"nodeName\":\"node-1\",\"containers\":[{\"name\":\"main\",\"ports\":[{\"name\":\"http\","       \
	"\"containerPort\":8080},{\"containerPort\":53,\"protocol\":\"UDP\"}]}]" SPEC "},"                          \
	"\"status\":{\"phase\":\"Running\",\"podIPs\":[{\"ip\":\"10.1.2.3\"},{\"ip\":\"fd00::3\"}]" ST "}}"

struct sc {
	const char *json;
	int want; /* 1: scanned, 0: left to the reference */
};

static void expect(const char *json, size_t n, int want, size_t i)
{
	for (int watch = 0; watch < 2; watch++) {
		char *why = NULL;
		int rc = kube_pod_scan_check(json, n, watch, &why);
		if (rc != want)
			fail_msg("case %zu (%s): %d, wanted %d%s%s\n%.*s", i, watch ? "watch" : "list", rc, want,
				 why ? ": " : "", why ? why : "", (int)n, json);
		free(why);
	}
}

static void run(const struct sc *c, size_t n)
{
	for (size_t i = 0; i < n; i++)
		expect(c[i].json, strlen(c[i].json), c[i].want, i);
}

static void plain_pod(void **st)
{
	(void)st;
	const char *j = POD("", "", "");
	struct pod_scan s;
	assert_true(kube_pod_scan(j, strlen(j), &API, &s));
	assert_string_equal(s.pod->ns, "ns-1");
	assert_string_equal(s.pod->name, "web-1");
	assert_string_equal(s.pod->node, "node-1");
	assert_string_equal(s.rv, "1042");
	assert_int_equal(s.pod->labels.n, 2);
	assert_string_equal(labelset_get(&s.pod->labels, "tier"), "front");
	assert_int_equal(s.pod->nports, 2);
	assert_string_equal(s.pod->ports[0].name, "http");
	assert_int_equal(s.pod->ports[0].port, 8080);
	assert_int_equal(s.pod->ports[1].proto, PROTO_UDP);
	assert_null(s.pod->ports[1].name);
	assert_int_equal(s.pod->naddr, 2);
	assert_int_equal(s.pod->phase, PHASE_RUNNING);
	assert_true(s.pod->packed);
	assert_false(s.pod->unreadable);
	pod_spec_free(s.pod);
	free(s.rv);
	expect(j, strlen(j), 1, 0);
}

/* Order does not matter; what decode.c ignores is only checked. */
static void any_order(void **st)
{
	(void)st;
	static const struct sc c[] = {
		{ "{\"status\":{\"podIP\":\"10.0.0.1\",\"phase\":\"Pending\"},\"spec\":{\"initContainers\":[{\"ports\":"
		  "[{\"containerPort\":1}]}],\"containers\":[{\"ports\":[{\"containerPort\":2,\"name\":\"b\"}]}]},"
		  "\"kind\":\"Deployment\",\"metadata\":{\"labels\":{\"z\":\"1\",\"a\":\"2\"},\"name\":\"p\"}}", 1 },
		/* managedFields of a real server, cut by the reference, skipped here */
		{ POD(",\"managedFields\":[{\"manager\":\"kubelet\",\"fieldsV1\":{\"f:status\":{\"k:{\\\"ip\\\":"
		      "\\\"10.0.0.1\\\"}\":{}}}}]", "", ""), 1 },
		{ POD(",\"annotations\":{\"kubectl.kubernetes.io/last-applied-configuration\":\"{\\\"a\\\":\\n\\t"
		      "\\\"\\u00e9\\u2028\\ud83d\\ude00\\/\\b\\f\\r\\\\\"}", "", ""), 1 },
		{ POD(",\"annotations\":{\"a\\\"b\":\"1\",\"a\\\\b\":\"2\",\"a\\nb\":\"3\"}", "", ""), 1 },
		{ POD(",\"annotations\":{\"note\":\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"}", "", ""), 1 },
		{ POD(",\"x\":[1,-2,0,3.5,-0.25e-12,1E+99,12345678901234567,true,false,null,{},[],\"\"]", "", ""), 1 },
		{ POD(",\"x\":[[[[[[[[[[{\"a\":[[[[1]]]]}]]]]]]]]]]", "", ""), 1 },
		{ POD("", ",\"hostNetwork\":true", ""), 1 },
		{ POD("", ",\"hostNetwork\":\"true\"", ""), 1 },
		{ "{\"metadata\":{\"name\":\"p\",\"labels\":null,\"namespace\":null},\"spec\":null,\"status\":null}", 1 },
		{ "{\"metadata\":{\"name\":\"p\"},\"spec\":{\"nodeName\":null,\"containers\":{\"ports\":[1]},"
		  "\"initContainers\":[\"x\",{\"ports\":\"none\"},{\"ports\":null}]},\"status\":{\"podIPs\":null,"
		  "\"podIP\":null,\"phase\":null}}", 1 },
		/* a port name that is not a string: no name; three podIPs: the third is not read */
		{ POD("", ",\"initContainers\":[{\"ports\":[{\"containerPort\":9,\"name\":7}]}]",
		      ",\"podIP\":\"bogus\""), 1 },
		{ "{\"metadata\":{\"name\":\"p\"},\"status\":{\"podIPs\":[{\"ip\":\"10.0.0.1\"},{\"ip\":\"fd00::1\"},"
		  "{\"ip\":\"bogus\"}]}}", 1 },
		{ "{\"metadata\":{\"name\":\"p\",\"resourceVersion\":7},\"status\":{\"podIPs\":[{\"ip\":\"10.0.0.1\"},"
		  "{\"ip\":\"10.0.0.1\"}]}}", 1 },
		{ " \r\n\t{\"metadata\":{\"name\":\"p\"}} \n", 1 },
	};
	run(c, ARRAY_SIZE(c));
}

/* What jansson refuses, or the scan cannot be sure of, goes to the
 * reference, which words the error. */
static void left_to_reference(void **st)
{
	(void)st;
	static const struct sc c[] = {
		/* escapes in what is read: the reference decodes them */
		{ "{\"metadata\":{\"name\":\"p\"},\"status\":{\"phase\":\"Pe\\u006edin\\u0067\"}}", 0 },
		{ "{\"metadata\":{\"name\":\"w\\u0065b\"}}", 0 },
		{ "{\"metadata\":{\"n\\u0061me\":\"web\"}}", 0 },
		/* escapes jansson refuses, and \u0000 */
		{ POD(",\"a\":\"\\ud800\"", "", ""), 0 },
		{ POD(",\"a\":\"\\udc00\\ud800\"", "", ""), 0 },
		{ POD(",\"a\":\"\\ud800\\u0041\"", "", ""), 0 },
		{ POD(",\"a\":\"\\ud800\\\\u0041\"", "", ""), 0 },
		{ POD(",\"a\":\"\\u12\"", "", ""), 0 },
		{ POD(",\"a\":\"\\x41\"", "", ""), 0 },
		{ POD(",\"a\":\"\\u0000\"", "", ""), 0 },
		/* bytes jansson refuses in a string */
		{ POD(",\"a\":\"\xff\"", "", ""), 0 },
		{ POD(",\"a\":\"\xc0\x80\"", "", ""), 0 },
		{ POD(",\"a\":\"\xed\xa0\x80\"", "", ""), 0 },
		{ POD(",\"a\":\"\xf4\x90\x80\x80\"", "", ""), 0 },
		{ POD(",\"a\":\"\xe2\x82\"", "", ""), 0 },
		{ POD(",\"a\":\"tab\there\"", "", ""), 0 },
		/* duplicate keys: jansson keeps the last (LIST) or refuses (watch) */
		{ "{\"metadata\":{\"name\":\"p\"},\"metadata\":{\"name\":\"q\"}}", 0 },
		{ POD(",\"annotations\":{\"a\":\"1\",\"a\":\"2\"}", "", ""), 0 },
		{ "{\"metadata\":{\"name\":\"p\",\"labels\":{\"app\":\"a\",\"app\":\"b\"}}}", 0 },
		/* keys compare raw only when no escape can write another's text */
		{ POD(",\"annotations\":{\"a\\\"b\":\"1\",\"a\\\"b\":\"2\"}", "", ""), 0 },
		{ POD(",\"annotations\":{\"a/b\":\"1\",\"a\\/b\":\"2\"}", "", ""), 0 },
		{ POD(",\"annotations\":{\"ab\":\"1\",\"a\\u0062\":\"2\"}", "", ""), 0 },
		{ "{\"metadata\":{\"name\":\"p\",\"labels\":{\"a\\\"b\":\"x\"}}}", 0 },
		/* numbers: too big for jansson, or not sure */
		{ POD(",\"x\":123456789012345678901234567890", "", ""), 0 },
		{ POD(",\"x\":1e400", "", ""), 0 },
		{ POD(",\"x\":-", "", ""), 0 },
		{ POD(",\"x\":01", "", ""), 0 },
		{ POD(",\"x\":1.", "", ""), 0 },
		{ POD(",\"x\":.5", "", ""), 0 },
		{ POD(",\"x\":1e", "", ""), 0 },
		/* the integral real 8080.0 is port 8080 in a LIST, an error in a watch */
		{ "{\"metadata\":{\"name\":\"p\"},\"spec\":{\"containers\":[{\"ports\":[{\"containerPort\":8080.0}]}]}}", 0 },
		/* literals and structure */
		{ POD(",\"x\":tru", "", ""), 0 },
		{ POD(",\"x\":truex", "", ""), 0 },
		{ POD(",\"x\":nul", "", ""), 0 },
		{ POD(",\"x\":[1,]", "", ""), 0 },
		{ POD(",\"x\":{\"a\":1,}", "", ""), 0 },
		{ POD(",\"x\":{\"a\" 1}", "", ""), 0 },
		{ POD(",\"x\":{1:1}", "", ""), 0 },
		{ POD("", "", "") "x", 0 },
		{ POD("", "", "") "}", 0 },
		{ "{\"metadata\":{\"name\":\"p\"}", 0 },
		{ "[{\"metadata\":{\"name\":\"p\"}}]", 0 },
		{ "", 0 },
		/* nesting past the scan's bound (jansson's is 2048) */
		{ POD(",\"x\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]", "", ""), 0 },
		/* wrong types and values: the pod is unreadable, the reference says why */
		{ "{\"metadata\":{\"name\":5}}", 0 },
		{ "{\"metadata\":{\"name\":\"\"}}", 0 },
		{ "{\"metadata\":null}", 0 },
		{ "{\"spec\":{}}", 0 },
		{ "{\"metadata\":{\"name\":\"p\",\"namespace\":\"Not_A_Label\"}}", 0 },
		{ "{\"metadata\":{\"name\":\"p\",\"namespace\":7}}", 0 },
		{ "{\"metadata\":{\"name\":\"p\",\"labels\":[]}}", 0 },
		{ "{\"metadata\":{\"name\":\"p\",\"labels\":{\"app\":5}}}", 0 },
		{ "{\"metadata\":{\"name\":\"p\",\"labels\":{\"app\":null}}}", 0 },
		{ "{\"metadata\":{\"name\":\"p\",\"labels\":{\"bad key!\":\"a\"}}}", 0 },
		{ "{\"metadata\":{\"name\":\"p\",\"labels\":{\"app\":\"-bad\"}}}", 0 },
		{ "{\"metadata\":{\"name\":\"p\"},\"spec\":[]}", 0 },
		{ "{\"metadata\":{\"name\":\"p\"},\"spec\":{\"nodeName\":1}}", 0 },
		{ "{\"metadata\":{\"name\":\"p\"},\"spec\":{\"containers\":[{\"ports\":[\"80\"]}]}}", 0 },
		{ "{\"metadata\":{\"name\":\"p\"},\"spec\":{\"containers\":[{\"ports\":[{\"name\":\"x\"}]}]}}", 0 },
		{ "{\"metadata\":{\"name\":\"p\"},\"spec\":{\"containers\":[{\"ports\":[{\"containerPort\":\"80\"}]}]}}", 0 },
		{ "{\"metadata\":{\"name\":\"p\"},\"spec\":{\"containers\":[{\"ports\":[{\"containerPort\":0}]}]}}", 0 },
		{ "{\"metadata\":{\"name\":\"p\"},\"spec\":{\"containers\":[{\"ports\":[{\"containerPort\":65536}]}]}}", 0 },
		{ "{\"metadata\":{\"name\":\"p\"},\"spec\":{\"containers\":[{\"ports\":[{\"containerPort\":-80}]}]}}", 0 },
		{ "{\"metadata\":{\"name\":\"p\"},\"spec\":{\"containers\":[{\"ports\":[{\"containerPort\":80,"
		  "\"protocol\":\"tcp\"}]}]}}", 0 },
		{ "{\"metadata\":{\"name\":\"p\"},\"spec\":{\"containers\":[{\"ports\":[{\"containerPort\":80,"
		  "\"protocol\":6}]}]}}", 0 },
		{ "{\"metadata\":{\"name\":\"p\"},\"status\":[]}", 0 },
		{ "{\"metadata\":{\"name\":\"p\"},\"status\":{\"phase\":1}}", 0 },
		{ "{\"metadata\":{\"name\":\"p\"},\"status\":{\"podIPs\":{}}}", 0 },
		{ "{\"metadata\":{\"name\":\"p\"},\"status\":{\"podIPs\":[\"10.0.0.1\"]}}", 0 },
		{ "{\"metadata\":{\"name\":\"p\"},\"status\":{\"podIPs\":[{\"addr\":\"10.0.0.1\"}]}}", 0 },
		{ "{\"metadata\":{\"name\":\"p\"},\"status\":{\"podIPs\":[{\"ip\":\"10.0.0.300\"}]}}", 0 },
		{ "{\"metadata\":{\"name\":\"p\"},\"status\":{\"podIPs\":[{\"ip\":\"10.0.0.1\"},{\"ip\":\"10.0.0.2\"}]}}", 0 },
		{ "{\"metadata\":{\"name\":\"p\"},\"status\":{\"podIP\":\"10.0.0.256\"}}", 0 },
		{ "{\"metadata\":{\"name\":\"p\"},\"status\":{\"podIP\":[]}}", 0 },
	};
	run(c, ARRAY_SIZE(c));
	/* a NUL byte inside the text */
	static const char nul[] = "{\"metadata\":{\"name\":\"p\",\"x\":\"a\0b\"}}";
	expect(nul, sizeof(nul) - 1, 0, 999);
}

/* The reference keeps a pod's name and namespace whatever the scan
 * decides: a name with an escape is read the same both ways. */
static void unreadable_still_unreadable(void **st)
{
	(void)st;
	const char *j = "{\"metadata\":{\"name\":\"p\",\"labels\":{\"app\":5}}}";
	struct pod_scan s;
	assert_false(kube_pod_scan(j, strlen(j), &API, &s));
	assert_null(s.pod);
	assert_null(s.rv);
	struct decode_opts strict = API;
	strict.mode = DECODE_STRICT; /* the scan serves the API's objects only */
	const char *ok = "{\"metadata\":{\"name\":\"p\"}}";
	assert_false(kube_pod_scan(ok, strlen(ok), &strict, &s));
	assert_true(kube_pod_scan(ok, strlen(ok), &API, &s));
	assert_string_equal(s.pod->ns, "default");
	assert_null(s.rv);
	pod_spec_free(s.pod);
}

/* A LIST page: where a scanned item ends is where the reference's item
 * ends, whatever its strings hold; items it steps aside for, and the
 * page's own errors, read as before. */
static void pages(void **st)
{
	(void)st;
	static const char *const pg[] = {
		"{\"metadata\":{\"resourceVersion\":\"9\"},\"items\":[" POD(",\"annotations\":{\"a\":\"}]},\\\"\"}", "", "")
		"," POD("", "", "") ", {\"metadata\":{\"name\":5}},\n" POD("", "", "") "]}",
		"{\"items\":[" POD("", "", "") "," POD("", "", "") ",],\"metadata\":{}}",
		"{\"items\":[" POD("", "", "") " " POD("", "", "") "],\"metadata\":{}}",
		"{\"items\":[" POD("", "", "") "},\"metadata\":{}}",
		"{\"items\":[" POD("", "", "") "x],\"metadata\":{}}",
		"{\"items\":[{\"metadata\":{\"name\":\"p\"}}]",
	};
	for (size_t i = 0; i < ARRAY_SIZE(pg); i++) {
		char *why = NULL;
		if (kube_pod_scan_check_page(pg[i], strlen(pg[i]), &why) < 0)
			fail_msg("page %zu: %s\n%s", i, why, pg[i]);
	}
	/* the scan reads a pod to its end inside a page, and no further */
	const char *two = POD(",\"a\":\"}\"", "", "") "," POD("", "", "");
	struct pod_scan s;
	size_t used = kube_pod_scan_prefix(two, strlen(two), &API, &s);
	assert_int_equal(used, strlen(POD(",\"a\":\"}\"", "", "")));
	pod_spec_free(s.pod);
	free(s.rv);
	assert_false(kube_pod_scan(two, strlen(two), &API, &s));
}

/* A watch event's line: ADDED and MODIFIED pods are scanned, the rest
 * (other types, an object that is not a pod the scan is sure of, what
 * the stream refuses) is read by the stream as before. */
static void events(void **st)
{
	(void)st;
	static const struct sc c[] = {
		{ "{\"type\":\"ADDED\",\"object\":" POD("", "", "") "}", 1 },
		{ "{\"object\":" POD("", "", "") ",\"type\":\"MODIFIED\"} \r", 1 },
		{ "{\"type\":\"DELETED\",\"object\":" POD("", "", "") "}", 0 },
		{ "{\"type\":\"BOOKMARK\",\"object\":{\"metadata\":{\"name\":\"p\"}}}", 0 },
		{ "{\"type\":\"ADDED\"}", 0 },
		{ "{\"object\":" POD("", "", "") "}", 0 },
		{ "{\"type\":\"ADD\\u0045D\",\"object\":" POD("", "", "") "}", 0 },
		{ "{\"type\":\"ADDED\",\"type\":\"ADDED\",\"object\":" POD("", "", "") "}", 0 },
		{ "{\"type\":\"ADDED\",\"object\":" POD("", "", "") ",\"object\":{}}", 0 },
		{ "{\"type\":\"ADDED\",\"object\":" POD("", "", "") "}x", 0 },
		{ "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"p\",\"labels\":{\"app\":1}}}}", 0 },
		{ "{\"type\":\"ADDED\",\"object\":" POD(",\"managedFields\":[{\"k:{\\\"a\\\":1}\":{}}]", "", "") "}", 1 },
	};
	for (size_t i = 0; i < ARRAY_SIZE(c); i++) {
		char *why = NULL;
		int rc = kube_pod_scan_check_event(c[i].json, strlen(c[i].json), &why);
		if (rc != c[i].want)
			fail_msg("event %zu: %d, wanted %d%s%s\n%s", i, rc, c[i].want, why ? ": " : "", why ? why : "", c[i].json);
		free(why);
	}
	struct pod_scan s;
	const char *m = c[1].json;
	assert_true(kube_pod_scan_event(m, strlen(m), &API, &s));
	assert_int_equal(s.type, 2);
	assert_string_equal(s.rv, "1042");
	pod_spec_free(s.pod);
	free(s.rv);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(plain_pod),
		cmocka_unit_test(any_order),
		cmocka_unit_test(left_to_reference),
		cmocka_unit_test(unreadable_still_unreadable),
		cmocka_unit_test(pages),
		cmocka_unit_test(events),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
