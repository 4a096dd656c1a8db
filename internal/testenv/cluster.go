package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// ClusterName is the cluster scripts/cluster.sh defines: 2 shards × 2 replicas.
const ClusterName = "leadthrough"

// Cluster is the local ClickHouse cluster of scripts/cluster.sh.
type Cluster struct {
	Name string
	// Nodes are the native-protocol addresses of ch1 … ch4, in shard order: Nodes[0] and Nodes[1] are the replicas
	// of shard 1, Nodes[2] and Nodes[3] those of shard 2.
	Nodes  []string
	script string // scripts/cluster.sh
	runDir string // where the script keeps ch1 … ch4 ($LEADTHROUGH_RUN_DIR/cluster)
}

// ClickHouseCluster returns the local cluster that LEADTHROUGH_TEST_CLICKHOUSE_CLUSTER names: the comma-separated
// native addresses of its four nodes, as `make test` sets it after scripts/cluster.sh start.
func ClickHouseCluster(t testing.TB) Cluster {
	t.Helper()
	v := lookup(t, "LEADTHROUGH_TEST_CLICKHOUSE_CLUSTER",
		"local ClickHouse cluster (scripts/cluster.sh: comma-separated native addresses of ch1 … ch4)")
	nodes := strings.Split(v, ",")
	if len(nodes) != 4 {
		t.Fatalf("LEADTHROUGH_TEST_CLICKHOUSE_CLUSTER=%q: want the four nodes of scripts/cluster.sh", v)
	}
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	runDir := os.Getenv("LEADTHROUGH_RUN_DIR")
	if runDir == "" {
		runDir = filepath.Join(root, ".run")
	}
	return Cluster{Name: ClusterName, Nodes: nodes, script: filepath.Join(root, "scripts", "cluster.sh"),
		runDir: filepath.Join(runDir, "cluster")}
}

// repoRoot is the directory of go.mod above the working directory (a test runs in its package's directory).
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the working directory")
		}
		dir = parent
	}
}

// Kill SIGKILLs node i (0-based: Nodes[i], the script's ch<i+1>) and waits until it is gone.
func (c Cluster) Kill(t testing.TB, i int) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(c.runDir, fmt.Sprintf("ch%d", i+1), "clickhouse-server.pid"))
	if err != nil {
		t.Fatalf("kill ch%d: %v", i+1, err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("kill ch%d: pid file: %v", i+1, err)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill ch%d (pid %d): %v", i+1, pid, err)
	}
	for deadline := time.Now().Add(30 * time.Second); syscall.Kill(pid, 0) == nil; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("ch%d (pid %d) still runs 30s after SIGKILL", i+1, pid)
		}
	}
}

// Start starts node i (0-based) again after Kill and waits until it answers and sees ZooKeeper.
func (c Cluster) Start(t testing.TB, i int) {
	t.Helper()
	out, err := exec.Command(c.script, "start-node", strconv.Itoa(i+1)).CombinedOutput()
	if err != nil {
		t.Fatalf("scripts/cluster.sh start-node %d: %v\n%s", i+1, err, out)
	}
}
