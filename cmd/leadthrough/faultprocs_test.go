package main

// The moving parts of TestPipelineSurvivesFaults: the real leadthrough binary run as processes that the test kills
// and restarts, the brokers it restarts, and a TCP proxy it cuts to take ClickHouse away from the workers.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// faultRestartDelay is how long a killed (or crashed) process stays down before it is started again, as a service
// manager's restart delay (systemd's RestartSec) would keep it.
const faultRestartDelay = time.Second

// buildLeadthrough builds the leadthrough binary from this package into a temporary directory.
func buildLeadthrough(t testing.TB) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to build leadthrough: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "leadthrough")
	out, err := exec.Command(goBin, "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// faultAddr is a free loopback address whose port lies below Linux's ephemeral range (32768–60999): a process
// restarted on it must find it free again, and a port in the ephemeral range can meanwhile be taken by an outgoing
// connection, even by a client connecting to itself while nothing listens there.
func faultAddr(t testing.TB) string {
	t.Helper()
	faultAddrs.Lock()
	defer faultAddrs.Unlock()
	for range 200 {
		port := 20000 + rand.IntN(12000)
		if faultAddrs.given[port] {
			continue // free now, but a process the test restarts will bind it again
		}
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			addr := ln.Addr().String()
			ln.Close()
			faultAddrs.given[port] = true
			return addr
		}
	}
	t.Fatal("no free loopback port between 20000 and 32000")
	return ""
}

// faultAddrs are the ports faultAddr handed out: each goes to one process only, which may be down (killed, not yet
// restarted) when the next address is asked for.
var faultAddrs = struct {
	sync.Mutex
	given map[int]bool
}{given: map[int]bool{}}

// childEnv is the environment of the processes the test starts: without LEADTHROUGH_* variables, so that only
// their command lines configure them.
func childEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "LEADTHROUGH_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// faultProcess is a leadthrough process kept running the way a service manager keeps a daemon running: started
// again faultRestartDelay after it exits, whether the test killed it or it exited by itself. Exits the test did not
// cause are recorded. Its stdout and stderr, over all its lives, go to one log file.
type faultProcess struct {
	name    string
	bin     string
	args    []string
	logPath string

	mu         sync.Mutex
	cmd        *exec.Cmd
	exited     chan struct{} // closed when the current life ended
	killing    bool          // the current life is being killed by the test
	stopping   bool          // stop was called: do not start again
	starts     int
	unexpected []string      // exits the test did not cause, with the end of the log
	stopErr    error         // how the last life ended after stop's SIGTERM
	wake       chan struct{} // closed by stop, to end a restart delay early
	loopDone   chan struct{} // closed when the keep-running loop returned
}

// startFaultProcess starts `bin args…` and keeps it running until the test ends (or stop).
func startFaultProcess(t testing.TB, name, bin string, args ...string) *faultProcess {
	t.Helper()
	p := &faultProcess{name: name, bin: bin, args: args, logPath: filepath.Join(t.TempDir(), name+".log"),
		wake: make(chan struct{}), loopDone: make(chan struct{})}
	started := make(chan error, 1)
	go p.keepRunning(started)
	if err := <-started; err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(func() { p.stop(10 * time.Second) })
	return p
}

func (p *faultProcess) keepRunning(started chan<- error) {
	defer close(p.loopDone)
	for {
		err := p.start()
		if started != nil {
			started <- err
			started = nil
			if err != nil {
				return
			}
		}
		if err == nil {
			<-p.exited
		}
		p.mu.Lock()
		stopping, killed := p.stopping, p.killing
		p.killing = false
		if !stopping && !killed {
			state := "did not start: " + fmt.Sprint(err)
			if err == nil {
				state = p.cmd.ProcessState.String()
			}
			p.unexpected = append(p.unexpected, fmt.Sprintf("life %d ended by itself (%s); its log ends with:\n%s",
				p.starts, state, faultTail(p.logPath, 15)))
		}
		p.mu.Unlock()
		if stopping {
			return
		}
		select {
		case <-time.After(faultRestartDelay):
		case <-p.wake:
			return
		}
	}
}

func (p *faultProcess) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopping {
		return errors.New("stopping")
	}
	log, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	p.starts++
	fmt.Fprintf(log, "----- %s, life %d, started %s\n", p.name, p.starts, time.Now().Format(time.StampMilli))
	cmd := exec.Command(p.bin, p.args...)
	cmd.Env = childEnv()
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		log.Close()
		return err
	}
	p.cmd, p.exited = cmd, make(chan struct{})
	go func(exited chan struct{}) {
		cmd.Wait()
		log.Close()
		close(exited)
	}(p.exited)
	return nil
}

// kill SIGKILLs the current life (no chance to leave a consumer group, commit or flush) and waits until it is
// gone; the process is started again faultRestartDelay later.
func (p *faultProcess) kill() {
	p.mu.Lock()
	if p.cmd == nil || p.stopping {
		p.mu.Unlock()
		return
	}
	exited := p.exited
	select {
	case <-exited:
	default:
		p.killing = true
		p.cmd.Process.Kill()
	}
	p.mu.Unlock()
	<-exited
}

// stop SIGTERMs the process and waits up to timeout for it to exit (then SIGKILLs it). It returns how the process
// ended: nil for exit status 0, as a daemon asked to stop should.
func (p *faultProcess) stop(timeout time.Duration) error {
	p.mu.Lock()
	if p.stopping {
		p.mu.Unlock()
		<-p.loopDone
		return p.stopErr
	}
	p.stopping = true
	close(p.wake)
	cmd, exited := p.cmd, p.exited
	running := false
	if cmd != nil {
		select {
		case <-exited:
		default:
			running = true
			cmd.Process.Signal(syscall.SIGTERM)
		}
	}
	p.mu.Unlock()
	if running {
		select {
		case <-exited:
			if !cmd.ProcessState.Success() {
				p.stopErr = fmt.Errorf("%s exited with %s on SIGTERM", p.name, cmd.ProcessState)
			}
		case <-time.After(timeout):
			cmd.Process.Signal(syscall.SIGQUIT) // the Go runtime writes every goroutine's stack to the log
			select {
			case <-exited:
			case <-time.After(2 * time.Second):
				cmd.Process.Kill()
				<-exited
			}
			p.stopErr = fmt.Errorf("%s did not exit within %s of SIGTERM; its log ends:\n%s", p.name, timeout, faultTail(p.logPath, 400))
		}
	}
	<-p.loopDone
	return p.stopErr
}

// unexpectedExits returns the exits the test did not cause.
func (p *faultProcess) unexpectedExits() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.unexpected...)
}

// faultTail returns the last n lines of the file at path.
func faultTail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// faultProxy forwards TCP connections from addr to target until it is cut: then it stops listening and closes
// every connection it forwards, as if the target went down, until it is restored.
type faultProxy struct {
	addr, target string

	mu    sync.Mutex
	ln    net.Listener // nil while cut
	conns map[net.Conn]bool
}

func startFaultProxy(t *testing.T, target string) *faultProxy {
	t.Helper()
	p := &faultProxy{addr: faultAddr(t), target: target, conns: map[net.Conn]bool{}}
	if err := p.restore(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.cut() })
	return p
}

// restore listens on addr again.
func (p *faultProxy) restore() error {
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		return fmt.Errorf("proxy to %s: %w", p.target, err)
	}
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go p.accept(ln)
	return nil
}

// cut closes the listener and every forwarded connection, and returns how many connections it cut (each is a
// pair: client side and server side).
func (p *faultProxy) cut() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	n := len(p.conns) / 2
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
	return n
}

func (p *faultProxy) accept(ln net.Listener) {
	for {
		in, err := ln.Accept()
		if err != nil {
			return
		}
		out, err := net.DialTimeout("tcp", p.target, 5*time.Second)
		if err != nil {
			in.Close()
			continue
		}
		p.mu.Lock()
		if p.ln != ln { // cut meanwhile
			p.mu.Unlock()
			in.Close()
			out.Close()
			continue
		}
		p.conns[in], p.conns[out] = true, true
		p.mu.Unlock()
		go p.pipe(out, in)
		go p.pipe(in, out)
	}
}

func (p *faultProxy) pipe(dst, src net.Conn) {
	io.Copy(dst, src)
	dst.Close()
	src.Close()
	p.mu.Lock()
	delete(p.conns, dst)
	delete(p.conns, src)
	p.mu.Unlock()
}

// faultBroker is the Kafka broker of a fault run.
type faultBroker interface {
	// Addr is the bootstrap address, the one the broker advertises.
	Addr() string
	// Restart SIGKILLs the broker and starts it again on the same address and data; it returns once the broker
	// answers.
	Restart(t *testing.T)
	// Log is what the broker logged last, for a failure message.
	Log() string
}

// embeddedFaultBroker is `leadthrough broker` as a process, persisting to a data directory of its own.
type embeddedFaultBroker struct {
	addr string
	proc *faultProcess
}

func startEmbeddedFaultBroker(t testing.TB, bin string, partitions int) *embeddedFaultBroker {
	t.Helper()
	b := &embeddedFaultBroker{addr: faultAddr(t)}
	b.proc = startFaultProcess(t, "broker", bin, "broker", "--listen", b.addr, "--data-dir", t.TempDir(),
		"--partitions", strconv.Itoa(partitions), "--log-level", "warn")
	b.waitListening(t)
	return b
}

func (b *embeddedFaultBroker) Addr() string { return b.addr }

func (b *embeddedFaultBroker) Restart(t *testing.T) {
	t.Helper()
	b.proc.kill()
	b.waitListening(t)
}

func (b *embeddedFaultBroker) Log() string { return faultTail(b.proc.logPath, 20) }

// listening reports whether something accepts connections at addr.
func listening(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err == nil {
		c.Close()
	}
	return err == nil
}

func (b *embeddedFaultBroker) waitListening(t testing.TB) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if listening(b.addr) {
			return
		}
	}
	t.Fatalf("the embedded broker does not listen on %s after 30s:\n%s", b.addr, b.Log())
}

// dedicatedKafka is an Apache Kafka broker of the test's own, set up by scripts/kafka.sh (the script that sets up
// the shared test broker) in a run directory and on ports of its own, so that the test can kill it without
// disturbing the tests that share the other one.
type dedicatedKafka struct {
	script string
	env    []string
	addr   string
	ports  []string // every address it listens on
	dir    string   // $LEADTHROUGH_RUN_DIR/kafka
}

func startDedicatedKafka(t *testing.T) *dedicatedKafka {
	t.Helper()
	script, err := filepath.Abs("../../scripts/kafka.sh")
	if err != nil {
		t.Fatal(err)
	}
	runDir := t.TempDir()
	k := &dedicatedKafka{script: script, dir: filepath.Join(runDir, "kafka")}
	k.ports = []string{faultAddr(t), faultAddr(t), faultAddr(t)} // plaintext, controller, SASL_SSL
	k.addr = k.ports[0]
	port := func(i int) string { _, p, _ := net.SplitHostPort(k.ports[i]); return p }
	k.env = childEnv("LEADTHROUGH_RUN_DIR="+runDir, "KAFKA_PORT="+port(0), "KAFKA_CONTROLLER_PORT="+port(1),
		"KAFKA_SASL_PORT="+port(2))
	// The jars of the shared broker's install, when there is one: kafka.sh takes them as they are when they are
	// the version it wants, and otherwise installs its own copy in place of the link.
	shared := filepath.Join("..", "..", ".run", "kafka", "libs")
	if secrets := os.Getenv("LEADTHROUGH_TEST_KAFKA_SECRETS"); secrets != "" {
		shared = filepath.Join(filepath.Dir(secrets), "libs")
	}
	if abs, err := filepath.Abs(shared); err == nil {
		if _, err := os.Stat(abs); err == nil {
			if err := os.MkdirAll(k.dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(abs, filepath.Join(k.dir, "libs")); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Cleanup(func() {
		if out, err := k.run("stop"); err != nil {
			t.Errorf("stop the test's Kafka: %v\n%s", err, out)
		}
	})
	if out, err := k.run("start"); err != nil {
		t.Fatalf("start a Kafka for this test with scripts/kafka.sh: %v\n%s", err, out)
	}
	return k
}

func (k *dedicatedKafka) run(command string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, k.script, command)
	cmd.Env = k.env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

func (k *dedicatedKafka) Addr() string { return k.addr }

func (k *dedicatedKafka) Restart(t *testing.T) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(k.dir, "kafka.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("kafka.pid: %v", err)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill -9 Kafka (pid %d): %v", pid, err)
	}
	// The JVM is not the test's child (kafka.sh detaches it): it is gone once it has been reaped and none of its
	// ports accepts connections any more (kafka.sh refuses to start while one does). Its threads close the ports
	// as they exit, which can be after the main thread is a zombie.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		_, err := os.Stat(fmt.Sprintf("/proc/%d", pid))
		if errors.Is(err, os.ErrNotExist) && !slices.ContainsFunc(k.ports, listening) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Kafka (pid %d) is still there 30s after SIGKILL", pid)
		}
	}
	if out, err := k.run("start"); err != nil {
		t.Fatalf("restart the test's Kafka: %v\n%s", err, out)
	}
}

func (k *dedicatedKafka) Log() string {
	return faultTail(filepath.Join(k.dir, "logs", "server.log"), 20)
}
