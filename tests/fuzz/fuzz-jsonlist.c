/* libFuzzer target (review): a JSON List read item by item (a small node
 * budget) reads exactly as the same text read whole: the same verdict,
 * the same items, the same List. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kube/yaml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct got {
	json_t *items, *doc;
};

static void on_item(json_t *item, size_t line, void *arg)
{
	(void)line;
	json_array_append(((struct got *)arg)->items, item);
}

static void on_doc(json_t *doc, size_t line, void *arg)
{
	(void)line;
	struct got *g = arg;
	json_decref(g->doc);
	g->doc = json_deep_copy(doc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!size || data[0] != '{')
		return 0;
	struct got s = { json_array(), NULL }, w = { json_array(), NULL };
	struct kube_yaml_opts so = { 8, on_doc, on_item, NULL, &s, NULL }, wo = { 0, on_doc, on_item, NULL, &w, NULL };
	char *e1 = NULL, *e2 = NULL;
	int rs = kube_yaml_each((const char *)data, size, &so, &e1);
	int rw = kube_yaml_each((const char *)data, size, &wo, &e2);
	bool budget = rs < 0 && e1 && strstr(e1, "more than 8 nodes");
	/* items that are not objects: refused streamed, and by the decoder
	 * when read whole (an object must be a mapping) */
	json_t *wi = rw == 0 ? json_object_get(w.doc, "items") : NULL, *x;
	size_t i;
	json_array_foreach(wi, i, x) if (!json_is_object(x) && !json_is_array(x)) budget = true;
	if (!budget && (rs < 0) != (rw < 0))
		abort(); /* one reading accepts what the other refuses */
	if (rs == 0 && rw == 0 && s.doc && w.doc) {
		/* whole: the List with its items; streamed: items apart */
		json_t *whole = json_deep_copy(w.doc);
		json_t *items = json_object_get(whole, "items");
		if (json_array_size(s.items) && json_is_array(items)) {
			if (!json_equal(items, s.items))
				abort();
			json_object_set_new(whole, "items", json_array());
		}
		if (!json_equal(whole, s.doc))
			abort();
		json_decref(whole);
	}
	free(e1);
	free(e2);
	json_decref(s.items);
	json_decref(w.items);
	json_decref(s.doc);
	json_decref(w.doc);
	return 0;
}
