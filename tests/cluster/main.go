// corral-node: the node components of a real Kubernetes for corral's
// tests, from the same k8s.io/kubernetes release as tests/controlplane.
//
// One binary, several roles (the large Kubernetes packages are compiled
// and linked once):
//
//	corral-node kubelet FLAG...      the kubelet
//	corral-node kube-proxy FLAG...   kube-proxy
//	corral-node scheduler FLAG...    kube-scheduler
//
// It is driven by cluster.sh (up, down, e2e); see there and README
// ("Conformance: the upstream NetworkPolicy e2e suite").
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register" // --logging-format=json, as the real binaries
	proxy "k8s.io/kubernetes/cmd/kube-proxy/app"
	scheduler "k8s.io/kubernetes/cmd/kube-scheduler/app"
	kubelet "k8s.io/kubernetes/cmd/kubelet/app"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: corral-node kubelet|kube-proxy|scheduler FLAG...")
		os.Exit(2)
	}
	var cmd *cobra.Command
	switch os.Args[1] {
	case "kubelet":
		cmd = kubelet.NewKubeletCommand(context.Background())
	case "kube-proxy":
		cmd = proxy.NewProxyCommand()
	case "scheduler":
		cmd = scheduler.NewSchedulerCommand()
	default:
		fmt.Fprintln(os.Stderr, "corral-node: unknown role", os.Args[1])
		os.Exit(2)
	}
	cmd.SetArgs(os.Args[2:])
	os.Exit(cli.Run(cmd))
}
