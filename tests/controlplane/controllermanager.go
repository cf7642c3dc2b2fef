package main

import (
	"path/filepath"

	"k8s.io/component-base/cli"
	"k8s.io/kubernetes/cmd/kube-controller-manager/app"
)

// The controllers a test bed needs from kube-controller-manager: a
// "default" ServiceAccount in every namespace (without it the ServiceAccount
// admission plugin refuses every pod), namespace deletion that empties and
// then removes the namespace, garbage collection of dependents, and the
// kube-root-ca.crt ConfigMap. Not the node lifecycle or pod GC controllers:
// there are no kubelets, and they would evict or delete the tests' pods.
const defaultControllers = "serviceaccount-controller,namespace-controller,garbage-collector-controller," +
	"root-ca-certificate-publisher-controller"

// runControllerManager runs kube-controller-manager in this process as the
// cluster admin, with CONTROLLERS, no leader election and no serving port.
func runControllerManager(dir, controllers string, extra []string) int {
	args := []string{
		"--kubeconfig=" + filepath.Join(dir, "admin.kubeconfig"),
		"--controllers=" + controllers,
		"--leader-elect=false",
		"--secure-port=0",
		"--root-ca-file=" + filepath.Join(dir, "pki", "ca.crt"),
		"--use-service-account-credentials=false",
	}
	cmd := app.NewControllerManagerCommand()
	cmd.SetArgs(append(args, extra...))
	return cli.Run(cmd)
}
