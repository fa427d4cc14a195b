// Package pgtest starts a throwaway PostgreSQL server for tests: initdb into
// a temporary folder, postgres on a free local port, one fresh database per
// caller. PostgreSQL refuses to run as root, so under root the server runs as
// the "postgres" system user. Tests skip when no server binaries are
// installed, and fail instead when RAGTUNE_REQUIRE_SHARED=1.
package pgtest

import (
	"database/sql"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
)

// SkipOrFail skips the test, or fails it when RAGTUNE_REQUIRE_SHARED=1
// (CI, where every external component must be present).
func SkipOrFail(t testing.TB, format string, a ...any) {
	t.Helper()
	if os.Getenv("RAGTUNE_REQUIRE_SHARED") == "1" {
		t.Fatalf(format, a...)
	}
	t.Skipf(format, a...)
}

var (
	once    sync.Once
	baseURL string
	dir     string
	runAs   string
	binDir  string
	initErr error
	dbSeq   int
	mu      sync.Mutex
)

// URL returns a postgresql:// URL of a new, empty database on the shared
// test server, starting the server on first use.
func URL(t testing.TB) string {
	t.Helper()
	once.Do(start)
	if initErr != nil {
		SkipOrFail(t, "PostgreSQL: %v", initErr)
	}
	mu.Lock()
	dbSeq++
	name := fmt.Sprintf("t%d_%d", os.Getpid(), dbSeq)
	mu.Unlock()
	db, err := sql.Open("pgx", baseURL+"/postgres?sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatalf("create database: %v", err)
	}
	return baseURL + "/" + name + "?sslmode=disable"
}

// Stop shuts the shared server down (call from TestMain after m.Run).
func Stop() {
	if baseURL == "" || initErr != nil {
		return
	}
	run(filepath.Join(binDir, "pg_ctl"), "-D", filepath.Join(dir, "data"), "-m", "immediate", "-w", "stop")
	os.RemoveAll(dir)
}

func findBin() string {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Strings(dirs)
	for i := len(dirs) - 1; i >= 0; i-- {
		if _, err := os.Stat(filepath.Join(dirs[i], "initdb")); err == nil {
			return dirs[i]
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p)
	}
	return ""
}

func run(name string, args ...string) ([]byte, error) {
	var cmd *exec.Cmd
	if runAs != "" {
		cmd = exec.Command("runuser", append([]string{"-u", runAs, "--", name}, args...)...)
	} else {
		cmd = exec.Command(name, args...)
	}
	return cmd.CombinedOutput()
}

func start() {
	binDir = findBin()
	if binDir == "" {
		initErr = fmt.Errorf("no initdb found (install postgresql; see scripts/test-deps)")
		return
	}
	if os.Geteuid() == 0 {
		if _, err := user.Lookup("postgres"); err != nil {
			initErr = fmt.Errorf("running as root and there is no postgres user to run the server as")
			return
		}
		runAs = "postgres"
	}
	var err error
	dir, err = os.MkdirTemp("", "ragtune-pg-")
	if err != nil {
		initErr = err
		return
	}
	os.Chmod(dir, 0o755)
	if runAs != "" {
		u, _ := user.Lookup(runAs)
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		os.Chown(dir, uid, gid)
	}
	data := filepath.Join(dir, "data")
	if out, err := run(filepath.Join(binDir, "initdb"), "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"); err != nil {
		initErr = fmt.Errorf("initdb: %v: %s", err, out)
		return
	}
	port, err := freePort()
	if err != nil {
		initErr = err
		return
	}
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=50", port, dir)
	if out, err := run(filepath.Join(binDir, "pg_ctl"), "-D", data, "-o", opts, "-l", filepath.Join(dir, "log"), "-w", "-t", "60", "start"); err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "log"))
		initErr = fmt.Errorf("pg_ctl start: %v: %s %s", err, out, strings.TrimSpace(string(log)))
		return
	}
	baseURL = fmt.Sprintf("postgresql://postgres@127.0.0.1:%d", port)
	// pg_ctl -w waits for readiness, but be tolerant of a slow first accept.
	for i := 0; i < 50; i++ {
		db, err := sql.Open("pgx", baseURL+"/postgres?sslmode=disable")
		if err == nil {
			err = db.Ping()
			db.Close()
		}
		if err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	initErr = fmt.Errorf("server on port %d did not accept connections", port)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
