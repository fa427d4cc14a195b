// Package storage keeps hyperparameter studies in Optuna's own RDB schema
// (Optuna 3.1, alembic revision v3.0.0.d; optionally the 3.2+ revision), in
// SQLite (modernc.org/sqlite, pure Go) or PostgreSQL (pgx), so that Optuna can
// open, plot and continue ragtune studies and ragtune can continue Optuna's.
//
// Concurrency follows Optuna: a trial's number is the count of the study's
// trials with a smaller trial_id, computed inside a transaction that holds
// the database write lock (SQLite, BEGIN IMMEDIATE) or the study row lock
// (PostgreSQL, SELECT … FOR UPDATE), so Python and Go workers can share a study.
package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	_ "modernc.org/sqlite"             // registers the "sqlite" driver
)

// Schema selects the alembic revision a new database is stamped with.
type Schema string

const (
	// Schema31 is read by Optuna 3.0 and 3.1 (and upgradable by later ones).
	Schema31 Schema = "3.1"
	// Schema32 adds the trials(study_id) index; Optuna 3.2 … 5.0 read it, 3.1 refuses it.
	Schema32 Schema = "3.2"
)

// Options tune how a storage is opened.
type Options struct {
	Schema      Schema        // revision for a new database; default Schema31
	BusyTimeout time.Duration // SQLite lock wait; default 60s
}

// Storage is an open study database.
type Storage struct {
	db       *sql.DB
	postgres bool
	url      string
}

// ErrTrialFinished is returned when a write targets a trial that is no
// longer RUNNING (another worker failed or finished it).
var ErrTrialFinished = errors.New("trial has already finished")

// ErrNoStudy is returned when a named study does not exist.
var ErrNoStudy = errors.New("no such study")

// Open connects to an Optuna-style storage URL: sqlite:///relative.db,
// sqlite:////absolute.db, postgresql://user@host/db (also postgres://, and
// SQLAlchemy's postgresql+psycopg2:// forms). Missing tables are created and
// the version rows stamped, as Optuna does; a database stamped with a
// revision this code does not know is refused.
func Open(rawURL string, opt Options) (*Storage, error) {
	if opt.Schema == "" {
		opt.Schema = Schema31
	}
	if opt.Schema != Schema31 && opt.Schema != Schema32 {
		return nil, fmt.Errorf("storage: unknown schema %q (want 3.1 or 3.2)", opt.Schema)
	}
	if opt.BusyTimeout == 0 {
		opt.BusyTimeout = 60 * time.Second
	}
	driver, dsn, err := parseURL(rawURL, opt)
	if err != nil {
		return nil, err
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		return nil, fmt.Errorf("storage %s: %v", redact(rawURL), err)
	}
	s := &Storage{db: db, postgres: driver == "pgx", url: rawURL}
	if !s.postgres {
		// One connection: the process has one worker, and SQLite locks the
		// whole file anyway; a single connection makes in-process writers
		// queue in Go instead of spinning on SQLITE_BUSY.
		db.SetMaxOpenConns(1)
	} else {
		db.SetMaxOpenConns(4)
	}
	if err := s.createSchema(context.Background(), opt.Schema); err != nil {
		db.Close()
		return nil, fmt.Errorf("storage %s: %v", redact(rawURL), err)
	}
	return s, nil
}

// Close releases the database.
func (s *Storage) Close() error { return s.db.Close() }

// DB exposes the underlying database (tests and reports read it directly).
func (s *Storage) DB() *sql.DB { return s.db }

func parseURL(raw string, opt Options) (driver, dsn string, err error) {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return "", "", fmt.Errorf("storage URL %q: want sqlite:///FILE or postgresql://…", raw)
	}
	switch {
	case scheme == "sqlite":
		// SQLAlchemy form: sqlite:///rel/path.db, sqlite:////abs/path.db.
		path := strings.TrimPrefix(rest, "/")
		if path == "" {
			return "", "", fmt.Errorf("storage URL %q: no database file", raw)
		}
		if q := strings.IndexByte(path, '?'); q >= 0 {
			path = path[:q]
		}
		path = filepath.Clean(path)
		v := url.Values{}
		v.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", opt.BusyTimeout.Milliseconds()))
		v.Set("_txlock", "immediate")
		return "sqlite", "file:" + path + "?" + v.Encode(), nil
	case scheme == "postgresql" || scheme == "postgres" || strings.HasPrefix(scheme, "postgresql+"):
		return "pgx", "postgresql://" + rest, nil
	}
	return "", "", fmt.Errorf("storage URL %q: unsupported scheme %q (want sqlite or postgresql)", raw, scheme)
}

// redact hides a password in a URL for error messages.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "xxx")
	}
	return u.String()
}

// q rewrites ? placeholders into PostgreSQL's $n form.
func (s *Storage) q(query string) string {
	if !s.postgres {
		return query
	}
	var b strings.Builder
	n := 0
	for i := 0; i < len(query); i++ {
		if query[i] == '?' {
			n++
			fmt.Fprintf(&b, "$%d", n)
			continue
		}
		b.WriteByte(query[i])
	}
	return b.String()
}

// nowSQL is the database clock as naive time: Optuna's heartbeat clock.
func (s *Storage) nowSQL() string {
	if s.postgres {
		return "LOCALTIMESTAMP"
	}
	return "CURRENT_TIMESTAMP"
}

// tx runs fn in a write transaction (BEGIN IMMEDIATE on SQLite), retrying
// a few times when the database reports a lock conflict or deadlock.
func (s *Storage) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		var t *sql.Tx
		t, err = s.db.BeginTx(ctx, nil)
		if err == nil {
			err = fn(t)
			if err == nil {
				err = t.Commit()
				if err == nil {
					return nil
				}
			} else {
				t.Rollback()
			}
		}
		if !retryable(err) || ctx.Err() != nil {
			return err
		}
		time.Sleep(time.Duration(50*(attempt+1)) * time.Millisecond)
	}
	return err
}

func retryable(err error) bool {
	if err == nil {
		return false
	}
	m := err.Error()
	return strings.Contains(m, "database is locked") || strings.Contains(m, "SQLITE_BUSY") ||
		strings.Contains(m, "deadlock detected") || strings.Contains(m, "could not serialize")
}

func (s *Storage) createSchema(ctx context.Context, schema Schema) error {
	want := revision31
	if schema == Schema32 {
		want = revision32
	}
	return s.tx(ctx, func(tx *sql.Tx) error {
		ddl := sqliteDDL
		if s.postgres {
			// Serialise concurrent creators: CREATE TYPE has no IF NOT EXISTS.
			if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock(7460312)"); err != nil {
				return err
			}
			for _, name := range postgresEnumOrder {
				var n int
				if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM pg_type WHERE typname = $1", name).Scan(&n); err != nil {
					return err
				}
				if n == 0 {
					if _, err := tx.ExecContext(ctx, postgresEnums[name]); err != nil {
						return err
					}
				}
			}
			ddl = postgresDDL
		}
		for _, stmt := range ddl {
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				return fmt.Errorf("creating schema: %v", err)
			}
		}
		var version int
		err := tx.QueryRowContext(ctx, "SELECT schema_version FROM version_info WHERE version_info_id = 1").Scan(&version)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			if _, err := tx.ExecContext(ctx, s.q("INSERT INTO version_info (version_info_id, schema_version, library_version) VALUES (1, ?, ?)"), schemaVersion, libraryTag); err != nil {
				return err
			}
		case err != nil:
			return err
		case version != schemaVersion:
			return fmt.Errorf("version_info.schema_version is %d; this ragtune reads %d (run `optuna storage upgrade`)", version, schemaVersion)
		}
		var rev string
		err = tx.QueryRowContext(ctx, "SELECT version_num FROM alembic_version").Scan(&rev)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			if _, err := tx.ExecContext(ctx, s.q("INSERT INTO alembic_version (version_num) VALUES (?)"), want); err != nil {
				return err
			}
			if want == revision32 {
				// A database upgraded by Optuna has this index under another name.
				if _, err := tx.ExecContext(ctx, index32); err != nil {
					return err
				}
			}
		case err != nil:
			return err
		case rev != revision31 && rev != revision32:
			return fmt.Errorf("alembic revision %q is not one ragtune knows (%s, %s)", rev, revision31, revision32)
		}
		return nil
	})
}

// Revision returns the database's alembic revision.
func (s *Storage) Revision(ctx context.Context) (string, error) {
	var rev string
	err := s.db.QueryRowContext(ctx, "SELECT version_num FROM alembic_version").Scan(&rev)
	return rev, err
}
