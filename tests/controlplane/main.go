// corral-controlplane: a real Kubernetes control plane for corral's tests.
//
// One binary, several roles (so that the large Kubernetes packages are
// compiled and linked once):
//
//	corral-controlplane etcd DIR          embedded etcd, data in DIR/etcd
//	corral-controlplane apiserver DIR [FLAG...]
//	                                      kube-apiserver in-process on that etcd
//	corral-controlplane controller-manager DIR [CONTROLLERS [FLAG...]]
//	                                      kube-controller-manager (a few controllers)
//	corral-controlplane compact DIR       compact etcd at its current revision
//	corral-controlplane kubectl ARGS...   kubectl built from the same release
//
// It is driven by run.sh (up, down, restart, compact, kubectl); see there
// and README ("Testing against a real API server").
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func usage() {
	fmt.Fprintln(os.Stderr, "usage: corral-controlplane etcd DIR | apiserver DIR [FLAG...] | controller-manager DIR [CONTROLLERS [FLAG...]] | compact DIR | load DIR FILE [WORKERS] | kubectl ARGS...")
	os.Exit(2)
}

func main() {
	// Called through a link named kubectl: behave as kubectl.
	if strings.HasPrefix(filepath.Base(os.Args[0]), "kubectl") {
		os.Exit(runKubectl(os.Args[1:]))
	}
	if len(os.Args) < 2 {
		usage()
	}
	role, args := os.Args[1], os.Args[2:]
	if role == "kubectl" {
		os.Exit(runKubectl(args))
	}
	if len(args) < 1 {
		usage()
	}
	dir, err := filepath.Abs(args[0])
	if err != nil {
		fatal(err)
	}
	watchOwner(dir, role)
	switch role {
	case "etcd":
		err = runEtcd(dir)
	case "apiserver":
		os.Exit(runAPIServer(dir, args[1:]))
	case "controller-manager":
		controllers, extra := defaultControllers, []string(nil)
		if len(args) > 1 {
			controllers, extra = args[1], args[2:]
		}
		os.Exit(runControllerManager(dir, controllers, extra))
	case "compact":
		err = compact(dir)
	case "load":
		if len(args) < 2 {
			usage()
		}
		workers := 32
		if len(args) > 2 {
			workers, err = strconv.Atoi(args[2])
			if err != nil {
				usage()
			}
		}
		err = load(dir, args[1], workers)
	default:
		usage()
	}
	if err != nil {
		fatal(err)
	}
}

// watchOwner: with CORRAL_CP_OWNER=PID, this process ends itself (SIGTERM,
// so as gracefully as when run.sh stops it) once process PID is gone, so
// that a test killed before its clean-up leaves nothing running. etcd waits
// for the API server and controller manager of DIR to end first (their
// shutdown needs it).
func watchOwner(dir, role string) {
	pid, err := strconv.Atoi(os.Getenv("CORRAL_CP_OWNER"))
	if err != nil || pid <= 0 {
		return
	}
	gone := func(pid int) bool { return syscall.Kill(pid, 0) == syscall.ESRCH }
	go func() {
		for !gone(pid) {
			time.Sleep(time.Second)
		}
		fmt.Fprintf(os.Stderr, "corral-controlplane: owner process %d is gone, stopping\n", pid)
		if role == "etcd" {
			for i := 0; i < 100; i++ {
				up := false
				for _, n := range []string{"apiserver.pid", "controller-manager.pid"} {
					b, err := os.ReadFile(filepath.Join(dir, n))
					if p, err2 := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && err2 == nil && !gone(p) && !zombie(p) {
						up = true
					}
				}
				if !up {
					break
				}
				time.Sleep(200 * time.Millisecond)
			}
		}
		syscall.Kill(os.Getpid(), syscall.SIGTERM)
		time.Sleep(20 * time.Second)
		os.Exit(1)
	}()
}

// zombie: process PID has ended and waits to be reaped.
func zombie(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	i := strings.LastIndexByte(string(b), ')')
	return i > 0 && i+2 < len(b) && b[i+2] == 'Z'
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "corral-controlplane:", err)
	os.Exit(1)
}
