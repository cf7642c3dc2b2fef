package main

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
)

// freePort asks the kernel for a free port on 127.0.0.1. It is free when
// asked; a program started right after binds it (the window is small and
// the test bed's only).
func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// ports reads DIR/NAME ("P1 P2 ..."), or chooses N free ports and writes
// them there, so that a restart keeps its addresses.
func ports(dir, name string, n int) []int {
	path := filepath.Join(dir, name)
	if b, err := os.ReadFile(path); err == nil {
		var ps []int
		for _, f := range strings.Fields(string(b)) {
			var p int
			fmt.Sscan(f, &p)
			ps = append(ps, p)
		}
		if len(ps) == n {
			return ps
		}
	}
	var ps []int
	var s []string
	for len(ps) < n {
		p := freePort()
		dup := false
		for _, q := range ps {
			dup = dup || q == p
		}
		if !dup {
			ps = append(ps, p)
			s = append(s, fmt.Sprint(p))
		}
	}
	if err := os.WriteFile(path, []byte(strings.Join(s, " ")+"\n"), 0644); err != nil {
		fatal(err)
	}
	return ps
}

func localURL(port int) url.URL {
	return url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", port)}
}

// runEtcd runs one etcd member with its data in DIR/etcd until SIGTERM or
// SIGINT; DIR/etcd.url names its client URL once it serves.
func runEtcd(dir string) error {
	ps := ports(dir, "etcd.ports", 2)
	client, peer := localURL(ps[0]), localURL(ps[1])

	cfg := embed.NewConfig()
	cfg.Name = "corral-test"
	cfg.Dir = filepath.Join(dir, "etcd")
	cfg.ListenClientUrls = []url.URL{client}
	cfg.AdvertiseClientUrls = []url.URL{client}
	cfg.ListenPeerUrls = []url.URL{peer}
	cfg.AdvertisePeerUrls = []url.URL{peer}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	cfg.LogLevel = "warn"
	cfg.LogOutputs = []string{filepath.Join(dir, "etcd.log")}
	// A test bed: losing the last writes on a machine crash is fine, and
	// loading 150,000 pods without an fsync per write is much faster.
	cfg.UnsafeNoFsync = true
	// Compaction is the tests' to decide (run.sh compact); the API server's
	// own periodic compaction is pushed out of reach too (apiserver.go).
	cfg.AutoCompactionRetention = "0"
	cfg.QuotaBackendBytes = 8 << 30

	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return err
	}
	defer e.Close()
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(60 * time.Second):
		e.Server.Stop()
		return fmt.Errorf("etcd did not become ready in 60s")
	}
	if err := os.WriteFile(filepath.Join(dir, "etcd.url"), []byte(client.String()+"\n"), 0644); err != nil {
		return err
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	select {
	case <-sig:
		return nil
	case err := <-e.Err():
		return err
	}
}

func etcdURL(dir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, "etcd.url"))
	if err != nil {
		return "", fmt.Errorf("etcd not started in %s: %w", dir, err)
	}
	return strings.TrimSpace(string(b)), nil
}

// The key through which kube-apiservers sharing an etcd tell one another
// the last compaction (apiserver's storage/etcd3 compactor): the one that
// compacts writes the revision there first; the others watch it and their
// watch caches drop what is older (ListFromCacheSnapshot).
const compactRevKey = "compact_rev_key"

// compact compacts etcd's history at its current revision the way a
// kube-apiserver does it (announce on compactRevKey, then compact), so that
// a resourceVersion older than that is gone: a continue token from before
// it gets 410 once the API server has seen the announcement (its watch
// cache polls every 15 s), a watch served by etcd at once. Prints the
// revision.
func compact(dir string) error {
	u, err := etcdURL(dir)
	if err != nil {
		return err
	}
	c, err := clientv3.New(clientv3.Config{Endpoints: []string{u}, DialTimeout: 10 * time.Second})
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		r, err := c.Get(ctx, compactRevKey)
		if err != nil {
			return err
		}
		var version int64
		if len(r.Kvs) > 0 {
			version = r.Kvs[0].Version
		}
		rev := r.Header.Revision
		t, err := c.Txn(ctx).If(clientv3.Compare(clientv3.Version(compactRevKey), "=", version)).
			Then(clientv3.OpPut(compactRevKey, fmt.Sprint(rev))).Commit()
		if err != nil {
			return err
		}
		if !t.Succeeded {
			continue // another compaction announced meanwhile: again
		}
		if _, err := c.Compact(ctx, rev, clientv3.WithCompactPhysical()); err != nil {
			return err
		}
		fmt.Println(rev)
		return nil
	}
}
