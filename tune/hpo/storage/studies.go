package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/ragtune/ragtune/tune/hpo"
)

// Study identifies a study and its objectives' directions.
type Study struct {
	ID         int64
	Name       string
	Directions []hpo.Direction
}

func directionName(d hpo.Direction) (string, error) {
	switch d {
	case hpo.Minimize:
		return "MINIMIZE", nil
	case hpo.Maximize:
		return "MAXIMIZE", nil
	}
	return "", fmt.Errorf("direction %d is neither minimize nor maximize", d)
}

func parseDirection(s string) (hpo.Direction, error) {
	switch s {
	case "MINIMIZE":
		return hpo.Minimize, nil
	case "MAXIMIZE":
		return hpo.Maximize, nil
	}
	return 0, fmt.Errorf("study direction %q is not MINIMIZE or MAXIMIZE", s)
}

// CreateStudy adds a study with one direction row per objective, or returns
// the existing one of that name after checking its directions agree.
func (s *Storage) CreateStudy(ctx context.Context, name string, dirs []hpo.Direction) (Study, error) {
	if name == "" || len(name) > 512 {
		return Study{}, fmt.Errorf("study name must be 1 to 512 characters")
	}
	if len(dirs) == 0 {
		return Study{}, fmt.Errorf("study %q: needs at least one objective direction", name)
	}
	names := make([]string, len(dirs))
	for i, d := range dirs {
		n, err := directionName(d)
		if err != nil {
			return Study{}, fmt.Errorf("study %q: objective %d: %v", name, i, err)
		}
		names[i] = n
	}
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if s.postgres {
			// Workers starting together must not both insert the study.
			if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock(7460313)"); err != nil {
				return err
			}
		}
		var id int64
		err := tx.QueryRowContext(ctx, s.q("SELECT study_id FROM studies WHERE study_name = ?"), name).Scan(&id)
		if err == nil {
			return nil // exists; directions are checked below
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if err := tx.QueryRowContext(ctx, s.q("INSERT INTO studies (study_name) VALUES (?) RETURNING study_id"), name).Scan(&id); err != nil {
			return err
		}
		for i, n := range names {
			if _, err := tx.ExecContext(ctx, s.q("INSERT INTO study_directions (direction, study_id, objective) VALUES (?, ?, ?)"), n, id, i); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return Study{}, fmt.Errorf("study %q: %v", name, err)
	}
	st, err := s.LoadStudy(ctx, name)
	if err != nil {
		return Study{}, err
	}
	if len(st.Directions) != len(dirs) {
		return Study{}, fmt.Errorf("study %q exists with %d objectives; the sweep has %d", name, len(st.Directions), len(dirs))
	}
	for i := range dirs {
		if st.Directions[i] != dirs[i] {
			return Study{}, fmt.Errorf("study %q exists with objective %d %s; the sweep says %s", name, i, names[i], mustName(st.Directions[i]))
		}
	}
	return st, nil
}

func mustName(d hpo.Direction) string {
	n, err := directionName(d)
	if err != nil {
		return fmt.Sprint(int(d))
	}
	return n
}

// LoadStudy finds a study by name; ErrNoStudy if there is none.
func (s *Storage) LoadStudy(ctx context.Context, name string) (Study, error) {
	st := Study{Name: name}
	err := s.db.QueryRowContext(ctx, s.q("SELECT study_id FROM studies WHERE study_name = ?"), name).Scan(&st.ID)
	if errors.Is(err, sql.ErrNoRows) {
		return st, fmt.Errorf("study %q: %w", name, ErrNoStudy)
	}
	if err != nil {
		return st, fmt.Errorf("study %q: %v", name, err)
	}
	rows, err := s.db.QueryContext(ctx, s.q("SELECT direction, objective FROM study_directions WHERE study_id = ? ORDER BY objective"), st.ID)
	if err != nil {
		return st, fmt.Errorf("study %q: %v", name, err)
	}
	defer rows.Close()
	for rows.Next() {
		var dir string
		var obj int
		if err := rows.Scan(&dir, &obj); err != nil {
			return st, fmt.Errorf("study %q: %v", name, err)
		}
		d, err := parseDirection(dir)
		if err != nil {
			return st, fmt.Errorf("study %q objective %d: %v", name, obj, err)
		}
		if obj != len(st.Directions) {
			return st, fmt.Errorf("study %q: study_directions objectives are not 0..k-1 (found %d)", name, obj)
		}
		st.Directions = append(st.Directions, d)
	}
	if err := rows.Err(); err != nil {
		return st, err
	}
	if len(st.Directions) == 0 {
		return st, fmt.Errorf("study %q has no study_directions rows", name)
	}
	return st, nil
}

// StudySummary is one line of a study listing.
type StudySummary struct {
	Study
	Trials map[string]int // count by state name
}

// ListStudies returns every study in the database with trial counts by state.
func (s *Storage) ListStudies(ctx context.Context) ([]StudySummary, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT study_name FROM studies ORDER BY study_id")
	if err != nil {
		return nil, err
	}
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return nil, err
		}
		names = append(names, n)
	}
	rows.Close()
	var out []StudySummary
	for _, n := range names {
		st, err := s.LoadStudy(ctx, n)
		if err != nil {
			return nil, err
		}
		counts, err := s.StateCounts(ctx, st.ID)
		if err != nil {
			return nil, err
		}
		out = append(out, StudySummary{Study: st, Trials: counts})
	}
	return out, nil
}

// StateCounts counts a study's trials by state name.
func (s *Storage) StateCounts(ctx context.Context, studyID int64) (map[string]int, error) {
	rows, err := s.db.QueryContext(ctx, s.q("SELECT state, count(*) FROM trials WHERE study_id = ? GROUP BY state"), studyID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var state string
		var n int
		if err := rows.Scan(&state, &n); err != nil {
			return nil, err
		}
		out[state] = n
	}
	return out, rows.Err()
}

// SetStudySystemAttr upserts a study system attribute (JSON-encoded).
func (s *Storage) SetStudySystemAttr(ctx context.Context, studyID int64, key string, value any) error {
	return s.setAttr(ctx, "study_system_attributes", "study_id", studyID, key, value)
}

// SetStudyUserAttr upserts a study user attribute (JSON-encoded).
func (s *Storage) SetStudyUserAttr(ctx context.Context, studyID int64, key string, value any) error {
	return s.setAttr(ctx, "study_user_attributes", "study_id", studyID, key, value)
}

// StudySystemAttrs reads all system attributes of a study.
func (s *Storage) StudySystemAttrs(ctx context.Context, studyID int64) (map[string]any, error) {
	return s.attrs(ctx, "study_system_attributes", studyID)
}

// StudyUserAttrs reads all user attributes of a study.
func (s *Storage) StudyUserAttrs(ctx context.Context, studyID int64) (map[string]any, error) {
	return s.attrs(ctx, "study_user_attributes", studyID)
}

func (s *Storage) setAttr(ctx context.Context, table, owner string, id int64, key string, value any) error {
	js, err := EncodeJSON(value)
	if err != nil {
		return fmt.Errorf("attribute %q: %v", key, err)
	}
	keyCol := `"key"`
	stmt := fmt.Sprintf(`INSERT INTO %s (%s, %s, value_json) VALUES (?, ?, ?) ON CONFLICT (%s, %s) DO UPDATE SET value_json = excluded.value_json`,
		table, owner, keyCol, owner, keyCol)
	return s.tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, s.q(stmt), id, key, js)
		return err
	})
}

func (s *Storage) attrs(ctx context.Context, table string, studyID int64) (map[string]any, error) {
	rows, err := s.db.QueryContext(ctx, s.q(fmt.Sprintf(`SELECT "key", value_json FROM %s WHERE study_id = ?`, table)), studyID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]any{}
	for rows.Next() {
		var k, js string
		if err := rows.Scan(&k, &js); err != nil {
			return nil, err
		}
		v, err := DecodeJSON(js)
		if err != nil {
			return nil, fmt.Errorf("%s %q: %v", table, k, err)
		}
		out[k] = v
	}
	return out, rows.Err()
}
