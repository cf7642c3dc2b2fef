package main

import (
	"fmt"
	"os"
	"path/filepath"

	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register" // --logging-format=json, as the real binary
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
)

// The service-account issuer, as a cluster made by kubeadm names it.
const saIssuer = "https://kubernetes.default.svc.cluster.local"

// runAPIServer runs kube-apiserver in this process with the flags of a
// small real cluster: HTTPS on 127.0.0.1 (port chosen on the first start,
// kept by restarts), client certificates and service-account tokens,
// Node+RBAC authorization, the default admission chain. EXTRA flags come
// last and so win. Returns the server's exit code.
func runAPIServer(dir string, extra []string) int {
	p := pki{dir: filepath.Join(dir, "pki")}
	p.ensure()
	etcd, err := etcdURL(dir)
	if err != nil {
		fatal(err)
	}
	port := ports(dir, "apiserver.port", 1)[0]
	url := fmt.Sprintf("https://127.0.0.1:%d", port)
	writeKubeconfig(filepath.Join(dir, "admin.kubeconfig"), url, p)
	if err := os.WriteFile(filepath.Join(dir, "url"), []byte(url+"\n"), 0644); err != nil {
		fatal(err)
	}

	args := []string{
		"--etcd-servers=" + etcd,
		// Compaction when a test asks (run.sh compact), not on a timer: the
		// interval is longer than any test. (Not 0: that also stops the API
		// server from learning of compactions made by others, and its watch
		// cache would then keep serving continue tokens etcd no longer can.)
		"--etcd-compaction-interval=240h",
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		fmt.Sprintf("--secure-port=%d", port),
		"--tls-cert-file=" + p.path("apiserver.crt"),
		"--tls-private-key-file=" + p.path("apiserver.key"),
		"--client-ca-file=" + p.path("ca.crt"),
		"--service-account-issuer=" + saIssuer,
		"--service-account-key-file=" + p.path("sa.pub"),
		"--service-account-signing-key-file=" + p.path("sa.key"),
		"--service-cluster-ip-range=10.96.0.0/16",
		"--authorization-mode=Node,RBAC",
		// The "kubernetes" Service's endpoints would be 127.0.0.1, which
		// Endpoints validation refuses: leave them out, as the upstream
		// integration test server does.
		"--endpoint-reconciler-type=none",
		"--profiling=false",
		// On SIGTERM: finish the requests in flight, then close every
		// connection (watches included) within 2 s, so that a restart is
		// quick. The default waits for the request timeout (60 s) while a
		// client holds a watch open.
		"--shutdown-send-retry-after=true",
		"--cert-dir=" + filepath.Join(dir, "pki", "generated"),
	}
	args = append(args, extra...)

	cmd := app.NewAPIServerCommand()
	cmd.SetArgs(args)
	return cli.Run(cmd)
}

// writeKubeconfig writes a kubeconfig for the cluster admin (client cert in
// system:masters) with every file embedded, so it can be copied anywhere.
func writeKubeconfig(path, url string, p pki) {
	read := func(n string) string {
		b, err := os.ReadFile(p.path(n))
		if err != nil {
			fatal(err)
		}
		return b64(b)
	}
	s := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: corral-test
  cluster:
    server: %s
    certificate-authority-data: %s
users:
- name: corral-admin
  user:
    client-certificate-data: %s
    client-key-data: %s
contexts:
- name: corral-test
  context:
    cluster: corral-test
    user: corral-admin
current-context: corral-test
`, url, read("ca.crt"), read("admin.crt"), read("admin.key"))
	if err := os.WriteFile(path, []byte(s), 0600); err != nil {
		fatal(err)
	}
}
