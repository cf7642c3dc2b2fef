package main

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// kinds load understands, in the order they are created (a pod needs its
// namespace, and that namespace's default ServiceAccount).
var loadKinds = []struct {
	kind       string
	gvr        schema.GroupVersionResource
	namespaced bool
}{
	{"Namespace", schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}, false},
	{"Pod", schema.GroupVersionResource{Version: "v1", Resource: "pods"}, true},
	{"NetworkPolicy", schema.GroupVersionResource{Group: "networking.k8s.io", Version: "v1", Resource: "networkpolicies"}, true},
	{"AccessPolicy", schema.GroupVersionResource{Group: "corral.dev", Version: "v1", Resource: "accesspolicies"}, true},
}

// load creates the objects of a JSON List (as `corral-bench --write`
// writes it) through the API server of DIR as cluster admin, WORKERS
// requests at a time, kind by kind. A pod is created as a controller
// would create it (with an image when it has none) and then gets the
// status its kubelet would write, through the status subresource: phase,
// addresses, conditions and one container status. Objects that already
// exist are left as they are, so an interrupted load can be run again.
func load(dir, file string, workers int) error {
	cfg, err := clientcmd.BuildConfigFromFlags("", filepath.Join(dir, "admin.kubeconfig"))
	if err != nil {
		return err
	}
	cfg.QPS, cfg.Burst = 1e6, 1e6 // the server's own limits are what is measured
	cfg.Timeout = 60 * time.Second
	cfg.WarningHandler = rest.NoWarnings{} // (the generator's IPv6 addresses are not in canonical form)
	dc, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return err
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	var list struct {
		Items []map[string]any `json:"items"`
	}
	if err := json.Unmarshal(b, &list); err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	start := time.Now()
	for _, k := range loadKinds {
		var items []map[string]any
		for _, it := range list.Items {
			if it["kind"] == k.kind {
				items = append(items, it)
			}
		}
		if len(items) == 0 {
			continue
		}
		t := time.Now()
		if err := loadKind(dc, k.gvr, k.namespaced, k.kind == "Pod", items, workers); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "load: %d %s in %.1fs\n", len(items), k.gvr.Resource, time.Since(t).Seconds())
	}
	fmt.Printf("%.3f\n", time.Since(start).Seconds())
	return nil
}

func loadKind(dc dynamic.Interface, gvr schema.GroupVersionResource, namespaced, pod bool, items []map[string]any, workers int) error {
	var next, done atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(len(items)) || firstErr.Load() != nil {
					return
				}
				if err := loadOne(dc, gvr, namespaced, pod, items[i]); err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				if n := done.Add(1); n%20000 == 0 {
					fmt.Fprintf(os.Stderr, "load: %d/%d %s\n", n, len(items), gvr.Resource)
				}
			}
		}()
	}
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		return err
	}
	return nil
}

// retry: what a busy or just-started server answers for a while
func retry(err error) bool {
	return apierrors.IsTooManyRequests(err) || apierrors.IsServerTimeout(err) || apierrors.IsTimeout(err) ||
		apierrors.IsInternalError(err) || apierrors.IsServiceUnavailable(err) ||
		(apierrors.IsForbidden(err) && strings.Contains(err.Error(), "serviceaccount")) // not made yet
}

func loadOne(dc dynamic.Interface, gvr schema.GroupVersionResource, namespaced, pod bool, obj map[string]any) error {
	u := &unstructured.Unstructured{Object: obj}
	var status map[string]any
	if pod {
		status, _ = obj["status"].(map[string]any)
		delete(obj, "status")
		spec, _ := obj["spec"].(map[string]any)
		ctrs, _ := spec["containers"].([]any)
		for _, c := range ctrs {
			if m, ok := c.(map[string]any); ok && m["image"] == nil {
				m["image"] = "registry.example.com/app:1"
			}
		}
	}
	var ri dynamic.ResourceInterface = dc.Resource(gvr)
	if namespaced {
		ri = dc.Resource(gvr).Namespace(u.GetNamespace())
	}
	ctx := context.Background()
	for attempt := 0; ; attempt++ {
		_, err := ri.Create(ctx, u, metav1.CreateOptions{})
		if err == nil || apierrors.IsAlreadyExists(err) {
			break
		}
		if !retry(err) || attempt > 100 {
			return fmt.Errorf("create %s %s/%s: %w", gvr.Resource, u.GetNamespace(), u.GetName(), err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if status == nil {
		return nil
	}
	patch, err := json.Marshal(map[string]any{"status": kubeletStatus(obj, status)})
	if err != nil {
		return err
	}
	for attempt := 0; ; attempt++ {
		_, err := ri.Patch(ctx, u.GetName(), types.StrategicMergePatchType, patch, metav1.PatchOptions{}, "status")
		if err == nil {
			return nil
		}
		if !retry(err) || attempt > 100 {
			return fmt.Errorf("status of pod %s/%s: %w", u.GetNamespace(), u.GetName(), err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// kubeletStatus: the status of a running pod as a kubelet writes it, with
// the phase and addresses the manifest gives.
func kubeletStatus(pod, given map[string]any) map[string]any {
	now := time.Now().UTC().Format(time.RFC3339)
	st := map[string]any{"phase": "Running", "startTime": now, "qosClass": "BestEffort"}
	for k, v := range given {
		st[k] = v
	}
	if ips, ok := st["podIPs"].([]any); ok && len(ips) > 0 {
		if m, ok := ips[0].(map[string]any); ok {
			st["podIP"] = m["ip"]
		}
	}
	spec, _ := pod["spec"].(map[string]any)
	node, _ := spec["nodeName"].(string)
	h := sha256.Sum256([]byte(node))
	host := fmt.Sprintf("172.20.%d.%d", h[0], h[1]|1)
	st["hostIP"], st["hostIPs"] = host, []any{map[string]any{"ip": host}}
	var conds []any
	for _, t := range []string{"PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled"} {
		conds = append(conds, map[string]any{"type": t, "status": "True", "lastTransitionTime": now})
	}
	st["conditions"] = conds
	var cs []any
	ctrs, _ := spec["containers"].([]any)
	for _, c := range ctrs {
		m, _ := c.(map[string]any)
		id := sha256.Sum256([]byte(fmt.Sprint(pod["metadata"], m["name"])))
		cs = append(cs, map[string]any{
			"name": m["name"], "image": m["image"], "imageID": fmt.Sprintf("%v@sha256:%x", m["image"], h),
			"containerID": fmt.Sprintf("containerd://%x", id), "ready": true, "started": true, "restartCount": 0,
			"state": map[string]any{"running": map[string]any{"startedAt": now}},
		})
	}
	st["containerStatuses"] = cs
	return st
}
