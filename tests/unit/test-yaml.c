/* The manifest reader: values read as kubectl reads them (go-yaml v2 via
 * sigs.k8s.io/yaml), what JSON cannot carry refused with line and field,
 * never a shorter file. */
#include "harness.h"

#include <errno.h>

#include "kube/yaml.h"

/* yaml -> the compact JSON of its one document, or the error it gives */
static char *read1(const char *yaml)
{
	struct vec docs = { 0 };
	char *err = NULL;
	if (kube_yaml_parse(yaml, strlen(yaml), &docs, &err) < 0) {
		char *out = xasprintf("ERROR %s", err ? err : "(no message)");
		free(err);
		vec_free(&docs);
		return out;
	}
	free(err);
	char *out = docs.n == 1 ? json_dumps(docs.v[0], JSON_COMPACT | JSON_ENCODE_ANY)
				: xasprintf("%zu documents", docs.n);
	for (size_t i = 0; i < docs.n; i++)
		json_decref(docs.v[i]);
	vec_free(&docs);
	return out;
}

struct rcase {
	const char *yaml, *want; /* want: JSON, or a part of the error */
};

static void run(const struct rcase *cases, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char *got = read1(cases[i].yaml);
		bool ok = !strncmp(cases[i].want, "ERROR", 5) ? !strncmp(got, "ERROR", 5) && strstr(got, cases[i].want + 6)
							      : !strcmp(got, cases[i].want);
		if (!ok)
			fail_msg("case %zu: %s\nwanted: %s\ngot:    %s", i, cases[i].yaml, cases[i].want, got);
		free(got);
	}
}

/* Issue 17, item 6: integers as kubectl reads them (go-yaml v2's
 * resolve.go after removing "_", Go's ParseInt with base 0), not as a
 * YAML 1.2 reader would. */
static void integers_as_kubectl(void **st)
{
	static const struct rcase cases[] = {
		{ "port: 010\n", "{\"port\":8}" },          /* octal, not 10 */
		{ "port: 0x1f90\n", "{\"port\":8080}" },    /* not a named port "0x1f90" */
		{ "port: 0X1F90\n", "{\"port\":8080}" },
		{ "port: 0o17\n", "{\"port\":15}" },
		{ "port: 0b101\n", "{\"port\":5}" },
		{ "port: 1_000\n", "{\"port\":1000}" },
		{ "port: 0x_1f_90\n", "{\"port\":8080}" },
		{ "port: +80\n", "{\"port\":80}" },
		{ "port: -010\n", "{\"port\":-8}" },
		{ "port: 09\n", "{\"port\":9}" },           /* not octal: read as the float 9 */
		{ "port: 8e1\n", "{\"port\":80}" },
		{ "port: 80.0\n", "{\"port\":80}" },
		{ "port: 80.5\n", "{\"port\":80.5}" },
		{ "port: .5\n", "{\"port\":0.5}" },
		{ "port: 0\n", "{\"port\":0}" },
		{ "port: 00\n", "{\"port\":0}" },
		{ "port: 9223372036854775807\n", "{\"port\":9223372036854775807}" },
		{ "port: -9223372036854775808\n", "{\"port\":-9223372036854775808}" },
		/* strings stay strings */
		{ "port: '010'\n", "{\"port\":\"010\"}" },
		{ "port: \"0x1f90\"\n", "{\"port\":\"0x1f90\"}" },
		{ "port: !!str 010\n", "{\"port\":\"010\"}" },
		{ "port: !!int \"010\"\n", "{\"port\":8}" },
		{ "t: 1:30\n", "{\"t\":\"1:30\"}" },        /* no sexagesimal in go-yaml */
		{ "d: 2024-01-02\n", "{\"d\":\"2024-01-02\"}" },
		{ "ip: 10.0.0.1\n", "{\"ip\":\"10.0.0.1\"}" },
		{ "v: _1\n", "{\"v\":\"_1\"}" },
		{ "v: 0x\n", "{\"v\":\"0x\"}" },
		{ "v: 1.2.3\n", "{\"v\":\"1.2.3\"}" },
		{ "v: 12abc\n", "{\"v\":\"12abc\"}" },
		{ "v: '-'\n", "{\"v\":\"-\"}" },
		/* JSON carries numbers the same way */
		{ "{\"port\": 80.0}", "{\"port\":80}" },
		{ "{\"port\": 1e2}", "{\"port\":100}" },
	};
	run(cases, ARRAY_SIZE(cases));
}

static void booleans_and_nulls_as_kubectl(void **st)
{
	static const struct rcase cases[] = {
		{ "a: yes\n", "{\"a\":true}" },
		{ "a: y\n", "{\"a\":true}" },
		{ "a: On\n", "{\"a\":true}" },
		{ "a: NO\n", "{\"a\":false}" },
		{ "a: off\n", "{\"a\":false}" },
		{ "a: True\n", "{\"a\":true}" },
		{ "a: 'y'\n", "{\"a\":\"y\"}" },
		{ "a: yess\n", "{\"a\":\"yess\"}" },
		{ "a: ~\n", "{\"a\":null}" },
		{ "a: Null\n", "{\"a\":null}" },
		{ "a:\n", "{\"a\":null}" },
		{ "a: !!bool yes\n", "{\"a\":true}" },
		{ "a: !!bool 'maybe'\n", "ERROR \"maybe\" is not a valid !!bool" },
		{ "a: !!int abc\n", "ERROR line 1 column 4: a: \"abc\" is not a valid !!int" },
		{ "a: !!float 1\n", "{\"a\":1}" },
		{ "a: !custom 010\n", "{\"a\":\"010\"}" },
		/* keys as the JSON kubectl sends: go-yaml reads them as values */
		{ "on: x\n", "{\"true\":\"x\"}" },
		{ "010: x\n", "{\"8\":\"x\"}" },
		{ "'010': x\n", "{\"010\":\"x\"}" },
		{ "~: x\n", "ERROR the key ~ reads as null" },
		{ "1.5: x\n", "ERROR the key 1.5 reads as a fraction" },
	};
	run(cases, ARRAY_SIZE(cases));
}

/* Issue 17, item 2: what JSON cannot carry is an error naming the line and
 * the field; it never ends the file early in silence. */
static void unrepresentable_is_an_error(void **st)
{
	static const struct rcase cases[] = {
		{ "kind: ConfigMap\ndata: {max: 1e999}\n", "ERROR line 2 column 13: data.max: 1e999 is out of range" },
		{ "data:\n  list: [1, 2, -1e999]\n", "ERROR line 2 column 16: data.list[2]: -1e999 is out of range" },
		{ "a: 1e-999\n", "ERROR a: 1e-999 is out of range" },
		{ "a: .inf\n", "ERROR line 1 column 4: a: .inf is not a number JSON can carry" },
		{ "a: -.Inf\n", "ERROR -.Inf is not a number" },
		{ "a: .NaN\n", "ERROR .NaN is not a number" },
		{ "a: 9223372036854775808\n", "ERROR a: 9223372036854775808 is out of range" },
		{ "a: 0xffffffffffffffffff\n", "ERROR is out of range" },
		{ "a: 1e19\n", "ERROR 1e19 is out of range" },
		{ "a: \"web\\0evil\"\n", "ERROR line 1 column 4: a: a string holds a NUL character" },
		{ "\"a\\0b\": x\n", "ERROR a string holds a NUL character" },
		{ "a: !!binary aGVsbG8=\n", "ERROR !!binary values are not supported" },
		{ "{\"a\": 1e999}", "ERROR line 1" },
		{ "{\"a\": \"x\\u0000y\"}", "ERROR line 1" },
	};
	run(cases, ARRAY_SIZE(cases));
}

/* The ConfigMap of the issue: before the fix, the document with 1e999
 * ended the file and the deny policy after it vanished; now the file is an
 * error as a whole. */
static void file_never_shorter(void **st)
{
	const char *yaml = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: x}\ndata: {max: 1e999}\n---\n"
			   "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: deny, namespace: x}\n"
			   "spec: {podSelector: {}}\n";
	struct vec docs = { 0 };
	char *err = NULL;
	assert_int_equal(kube_yaml_parse(yaml, strlen(yaml), &docs, &err), -EINVAL);
	assert_int_equal(docs.n, 0);
	assert_non_null(strstr(err, "line 4 column 13: data.max: 1e999 is out of range"));
	free(err);
	size_t errors;
	char *t = check_text(yaml, DECODE_STRICT, &errors);
	assert_true(errors >= 1);
	assert_non_null(strstr(t, "bad.yaml: line 4 column 13: data.max: 1e999 is out of range"));
	free(t);
	/* a later document failing takes the earlier ones with it */
	const char *late = "apiVersion: v1\nkind: Namespace\nmetadata: {name: x}\n---\na: .nan\n";
	assert_int_equal(kube_yaml_parse(late, strlen(late), &docs, &err), -EINVAL);
	assert_int_equal(docs.n, 0);
	free(err);
	vec_free(&docs);
}

/* Merge keys as go-yaml v2; a key both before << and merged is refused. */
static void merge_keys(void **st)
{
	static const struct rcase cases[] = {
		{ "b: &b {x: 1, q: 2}\nc: {<<: *b, q: 3}\n", "{\"b\":{\"x\":1,\"q\":2},\"c\":{\"x\":1,\"q\":3}}" },
		{ "b: &b {x: 1}\nc: {<<: *b, y: 3}\n", "{\"b\":{\"x\":1},\"c\":{\"x\":1,\"true\":3}}" }, /* y is true */
		{ "b: &b {x: 1}\nd: &d {x: 2, z: 3}\nc: {<<: [*b, *d]}\n",
		  "{\"b\":{\"x\":1},\"d\":{\"x\":2,\"z\":3},\"c\":{\"x\":1,\"z\":3}}" },
		{ "b: &b {x: 1}\nc: {x: 0, <<: *b}\n", "ERROR \"x\" is set before << and by it" },
		{ "c: {<<: 5}\n", "ERROR << merges mappings only" },
		{ "c: {\"<<\": 5}\n", "{\"c\":{\"<<\":5}}" },
		{ "b: &b {x: 1}\nc: {<<: *b, <<: *b}\n", "ERROR duplicate key \"<<\"" },
		{ "c: {a: 1, a: 2}\n", "ERROR line 1 column 11: c.a: duplicate key \"a\"" },
	};
	run(cases, ARRAY_SIZE(cases));
}

/* Anchors belong to their document, and an alias shares its value: a 1 MB
 * string aliased many times costs nothing, and the work is bounded. */
static void anchors_per_document(void **st)
{
	static const struct rcase cases[] = {
		{ "a: &x 1\n---\nb: *x\n", "ERROR unknown alias" },
	};
	run(cases, ARRAY_SIZE(cases));
	struct sbuf b = { 0 };
	sbuf_add(&b, "s: &s \"");
	for (int i = 0; i < 1 << 20; i++)
		sbuf_add(&b, "x");
	sbuf_add(&b, "\"\nl: [");
	for (int i = 0; i < 100; i++)
		sbuf_add(&b, "*s, ");
	sbuf_add(&b, "]\n");
	char *got = read1(b.s);
	assert_non_null(strstr(got, "ERROR line 2"));
	assert_non_null(strstr(got, "aliases expand to too many nodes"));
	free(got);
	sbuf_free(&b);
}

/* One document may not hold more nodes than the budget (memory bound). */
static void node_budget(void **st)
{
	struct sbuf b = { 0 };
	sbuf_add(&b, "a: [");
	for (unsigned i = 0; i < KUBE_YAML_MAX_DOC_NODES; i++)
		sbuf_add(&b, "0,");
	sbuf_add(&b, "]\n");
	char *got = read1(b.s), *want = xasprintf("more than %u nodes", KUBE_YAML_MAX_DOC_NODES);
	assert_non_null(strstr(got, "ERROR"));
	assert_non_null(strstr(got, want));
	free(got);
	b.s[0] = '[';
	b.s[1] = b.s[2] = b.s[3] = ' ';
	b.s[b.n - 2] = ']';
	got = read1(b.s);
	assert_non_null(strstr(got, want));
	free(got);
	free(want);
	sbuf_free(&b);
}

static void count_item(json_t *item, size_t line, void *arg)
{
	(void)line;
	*(size_t *)arg += json_array_size(json_object_get(item, "v"));
}

static void count_doc(json_t *doc, size_t line, void *arg)
{
	(void)line;
	*(size_t *)arg += 1000000 * json_array_size(json_object_get(doc, "items"));
}

/* A List's items stream one by one, each with a budget of its own: a List
 * costs its largest item, not the whole file (kubectl get -o yaml). */
static void list_items_stream(void **st)
{
	struct sbuf b = { 0 };
	size_t per = KUBE_YAML_MAX_DOC_NODES * 6 / 10, n = 0;
	sbuf_add(&b, "apiVersion: v1\nkind: List\nitems:\n");
	for (int i = 0; i < 3; i++) {
		sbuf_add(&b, "- v: [");
		for (size_t k = 0; k < per; k++)
			sbuf_add(&b, "0,");
		sbuf_add(&b, "]\n");
	}
	struct kube_yaml_opts o = { .item = count_item, .doc = count_doc, .arg = &n };
	char *err = NULL;
	assert_int_equal(kube_yaml_each(b.s, b.n, &o, &err), 0);
	assert_int_equal(n, 3 * per); /* every item, and the List left with items: [] */
	char *got = read1(b.s); /* whole, as kube_yaml_parse reads: over the budget */
	assert_non_null(strstr(got, "ERROR"));
	free(got);
	sbuf_free(&b);
	/* an anchor inside an item does not outlive it */
	const char *cross = "kind: List\nitems:\n- {a: &x 1}\n- {b: *x}\n";
	n = 0;
	assert_int_equal(kube_yaml_each(cross, strlen(cross), &o, &err), -EINVAL);
	assert_non_null(strstr(err, "items[1].b: unknown alias"));
	free(err);
}

/* The same for a JSON List (kubectl get -A -o json): items on their own
 * budget; a bad or oversized item fails the file, naming its line. */
static void json_list_items_stream(void **st)
{
	struct sbuf b = { 0 };
	size_t per = KUBE_YAML_MAX_DOC_NODES * 6 / 10, n = 0;
	sbuf_add(&b, "{\"apiVersion\": \"v1\", \"kind\": \"List\", \"items\": [\n");
	for (int i = 0; i < 3; i++) {
		sbuf_addf(&b, "%s{\"v\": [", i ? ",\n" : "");
		for (size_t k = 0; k < per; k++)
			sbuf_addf(&b, "%s0", k ? "," : "");
		sbuf_add(&b, "], \"s\": \"a,]\\\"}\"}");
	}
	sbuf_add(&b, "\n], \"metadata\": {}}\n");
	struct kube_yaml_opts o = { .item = count_item, .doc = count_doc, .arg = &n };
	char *err = NULL;
	assert_int_equal(kube_yaml_each(b.s, b.n, &o, &err), 0);
	assert_int_equal(n, 3 * per); /* every item, and the List left with items: [] */
	/* one item over the budget on its own: the file fails, naming its line */
	sbuf_free(&b);
	sbuf_add(&b, "{\"kind\": \"List\", \"items\": [{\"v\": [0]},\n{\"v\": [");
	for (size_t k = 0; k < 2 * per; k++)
		sbuf_addf(&b, "%s0", k ? "," : "");
	sbuf_add(&b, "]}]}");
	assert_int_equal(kube_yaml_each(b.s, b.n, &o, &err), -EINVAL);
	assert_non_null(strstr(err, "line 2: the document has more than"));
	free(err);
	sbuf_free(&b);
}

/* Review: a JSON List read item by item (over its budget) must read as
 * the same text does whole: what jansson (and kubectl) refuse whole is
 * refused streamed too. main accepted, streamed only, a trailing comma
 * after the last item, "items" closed by '}' instead of ']', and anything
 * after a NUL byte past the List (the rest was rebuilt with "%.*s"). */
static void json_list_stream_reads_as_whole(void **st)
{
	static const struct {
		const char *what, *text;
		size_t len; /* 0: strlen */
	} bad[] = {
		{ "trailing comma", "{\"kind\": \"List\", \"items\": [{\"a\": 1}, {\"a\": 2}, {\"a\": 3}, {\"a\": 4}, {\"a\": 5}, "
				    "{\"a\": 6}, {\"a\": 7}, {\"a\": 8}, ], \"x\": 1}", 0 },
		{ "items closed by }", "{\"kind\": \"List\", \"items\": [{\"a\": 1}, {\"a\": 2}, {\"a\": 3}, {\"a\": 4}, {\"a\": 5}, "
				       "{\"a\": 6}, {\"a\": 7}, {\"a\": 8}}}", 0 },
		{ "garbage after a NUL", "{\"kind\": \"List\", \"items\": [{\"a\": 1}, {\"a\": 2}, {\"a\": 3}, {\"a\": 4}, "
					 "{\"a\": 5}, {\"a\": 6}, {\"a\": 7}, {\"a\": 8}]}\0{{{ not json", 0 },
	};
	int fails = 0;
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		const char *t = bad[i].text;
		size_t len = bad[i].len ? bad[i].len : strlen(t);
		if (i == 2)
			len = strlen(t) + 1 + strlen(t + strlen(t) + 1);
		size_t n = 0;
		char *err = NULL;
		/* whole (the default budget): refused */
		struct kube_yaml_opts whole = { .item = count_item, .doc = count_doc, .arg = &n };
		assert_int_equal(kube_yaml_each(t, len, &whole, &err), -EINVAL);
		free(err);
		err = NULL;
		/* streamed (a budget the List exceeds): refused as well */
		struct kube_yaml_opts streamed = { .max_doc_nodes = 12, .item = count_item, .doc = count_doc, .arg = &n };
		int rc = kube_yaml_each(t, len, &streamed, &err);
		if (rc != -EINVAL)
			print_message("%s: read when streamed (rc %d), refused whole\n", bad[i].what, rc), fails++;
		free(err);
	}
	assert_int_equal(fails, 0);
}

static void collect_warning(const char *msg, void *arg)
{
	sbuf_addf(arg, "%s\n", msg);
}

/* Readings that surprise (octal, YAML 1.1 words) are said as warnings. */
static void surprising_readings_warn(void **st)
{
	const char *yaml = "ports: [{port: 010}, {port: 07}]\nlabels: {on: yes}\n";
	struct sbuf w = { 0 };
	struct kube_yaml_opts o = { .warn = collect_warning, .arg = &w };
	char *err = NULL;
	assert_int_equal(kube_yaml_each(yaml, strlen(yaml), &o, &err), 0);
	assert_non_null(w.s);
	assert_non_null(strstr(w.s, "line 1 column 16: ports[0].port: 010 is read as the octal number 8"));
	assert_null(strstr(w.s, "07 is read"));
	assert_non_null(strstr(w.s, "line 2 column 10: labels: on is read as true"));
	assert_non_null(strstr(w.s, "labels.true: yes is read as true"));
	sbuf_free(&w);
}

/* managedFields cut before parsing (kube_json_strip_managed): exactly the
 * members of that name whose value is an array, at any depth; the same
 * key with another value, or the text inside a string, is kept; what does
 * not scan is left to the parser. */
static void strip_managed_fields(void **st)
{
	(void)st;
	static const struct {
		const char *in, *want; /* want NULL: nothing cut */
	} cases[] = {
		{ "{\"metadata\":{\"name\":\"a\",\"managedFields\":[{\"manager\":\"x\",\"fieldsV1\":{\"f:a\":{\"]\":1}}}],"
		  "\"labels\":{\"managedFields\":\"v\"}},\"spec\":{}}",
		  "{\"metadata\":{\"name\":\"a\",\"labels\":{\"managedFields\":\"v\"}},\"spec\":{}}" },
		{ "{\"metadata\":{\"name\":\"a\",\"managedFields\":[1,2]}}", "{\"metadata\":{\"name\":\"a\"}}" },
		{ "{\"managedFields\":[]}", "{}" },
		{ "{\n  \"metadata\": {\n    \"managedFields\" : [ {\"m\": \"a\\\"b]\"} ] ,\n    \"name\": \"a\"\n  }\n}",
		  "{\"metadata\": {\"name\": \"a\"}}" },
		{ "[{\"managedFields\":[1]},{\"managedFields\":[2],\"x\":1},{\"y\":[{\"managedFields\":[3]}]}]",
		  "[{},{\"x\":1},{\"y\":[{}]}]" },
		{ "{\"a\":\"\\\"managedFields\\\":[1]\",\"b\":1}", NULL },
		{ "{\"a\":[\"managedFields\"],\"b\":\"managedFields\"}", NULL },
		{ "{\"managedFields\":{\"x\":[1]}}", NULL },
		{ "{\"managedFields\":\"[1]\"}", NULL },
		{ "{\"managedFields\":[1,2", NULL },
		{ "{\"x\":\"managedFields\",\"managedFields\":[1]", NULL },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t n = 0;
		char *out = kube_json_strip_managed(cases[i].in, strlen(cases[i].in), &n);
		if (!cases[i].want) {
			if (out)
				fail_msg("case %zu: cut to %s", i, out);
			continue;
		}
		assert_non_null(out);
		assert_int_equal(strlen(out), n);
		json_t *got = json_loads(out, 0, NULL), *want = json_loads(cases[i].want, 0, NULL);
		if (!got || !want || !json_equal(got, want))
			fail_msg("case %zu: %s", i, out);
		json_decref(got);
		json_decref(want);
		free(out);
	}
}

/* The definition of kube_json_value_end, a byte at a time (as it was
 * written before it read eight bytes a step). */
static size_t value_end_ref(const char *b, size_t i, size_t len)
{
	size_t depth = 0;
	for (; i < len; i++) {
		char ch = b[i];
		if (ch == '"') {
			for (i++; i < len && b[i] != '"'; i++)
				if (b[i] == '\\')
					i++;
			if (i >= len)
				return len;
			if (!depth)
				return i + 1;
		} else if (ch == '{' || ch == '[') {
			depth++;
		} else if (ch == '}' || ch == ']') {
			if (!depth)
				return i;
			if (!--depth)
				return i + 1;
		} else if (!depth && (ch == ',' || ch == ' ' || ch == '\n' || ch == '\r' || ch == '\t')) {
			return i;
		}
	}
	return len;
}

/* Where a value ends, eight bytes a step, is where the byte-at-a-time
 * reading says: crafted strings (escapes at every offset of a word, a
 * backslash as the last byte, quotes at word edges) and random text of
 * the bytes that matter, from every start and with every length. */
static void value_end_as_byte_at_a_time(void **st)
{
	static const char *const crafted[] = {
		"\"abcdefgh\"", "\"abcdefg\\\"hijklmnop\"", "\"\\\\\\\\\\\\\\\\\\\"x\"",
		"\"1234567\\", "\"12345678\\", "\"123456789\\\"", "{\"a\": [1, 2, {\"b\\\"}\": \"]\"}]}",
		"[\"\\\\\", 1]", "{\"k\":\"\\u0000\\\\\\\"\\n\"}, {}", "\"\xff\x80\x22", "123, 4", "true]", "\"\"",
	};
	static const char alphabet[] = "\"\\{}[],: \n\r\tab1\x80\xff";
	char buf[96];
	uint64_t x = 88172645463325252ULL;
	for (size_t k = 0; k < ARRAY_SIZE(crafted) + 3000; k++) {
		size_t n;
		if (k < ARRAY_SIZE(crafted)) {
			n = strlen(crafted[k]);
			memcpy(buf, crafted[k], n);
		} else {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			n = 1 + x % (sizeof(buf) - 1);
			for (size_t j = 0; j < n; j++) {
				x ^= x << 13, x ^= x >> 7, x ^= x << 17;
				/* mostly letters: strings of every length */
				buf[j] = x % 4 ? (char)('a' + x % 7) : alphabet[(x >> 8) % (sizeof(alphabet) - 1)];
			}
		}
		for (size_t i = 0; i < n; i++)
			for (size_t len = i; len <= n; len++) {
				size_t got = kube_json_value_end(buf, i, len), want = value_end_ref(buf, i, len);
				if (got != want)
					fail_msg("case %zu, from %zu in %zu bytes \"%.*s\": %zu, not %zu", k, i, len, (int)n,
						 buf, got, want);
			}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(integers_as_kubectl),
		cmocka_unit_test(booleans_and_nulls_as_kubectl),
		cmocka_unit_test(unrepresentable_is_an_error),
		cmocka_unit_test(file_never_shorter),
		cmocka_unit_test(merge_keys),
		cmocka_unit_test(strip_managed_fields),
		cmocka_unit_test(anchors_per_document),
		cmocka_unit_test(node_budget),
		cmocka_unit_test(list_items_stream),
		cmocka_unit_test(json_list_items_stream),
		cmocka_unit_test(json_list_stream_reads_as_whole),
		cmocka_unit_test(surprising_readings_warn),
		cmocka_unit_test(value_end_as_byte_at_a_time),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
