package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/ragtune/ragtune/tune/hpo"
)

func (s *Storage) forUpdate() string {
	if s.postgres {
		return " FOR UPDATE"
	}
	return "" // SQLite: BEGIN IMMEDIATE already holds the write lock
}

// insertTrial adds a trial row and gives it Optuna's number: the count of the
// study's trials with a smaller trial_id. The caller's transaction holds the
// study lock, so concurrent workers (Go or Python) never share a number.
func (s *Storage) insertTrial(ctx context.Context, tx *sql.Tx, studyID int64, state hpo.TrialState, start, end any) (int64, int, error) {
	var locked int64
	if err := tx.QueryRowContext(ctx, s.q("SELECT study_id FROM studies WHERE study_id = ?"+s.forUpdate()), studyID).Scan(&locked); err != nil {
		return 0, 0, fmt.Errorf("locking study %d: %v", studyID, err)
	}
	var id int64
	if err := tx.QueryRowContext(ctx, s.q("INSERT INTO trials (number, study_id, state, datetime_start, datetime_complete) VALUES (NULL, ?, ?, ?, ?) RETURNING trial_id"),
		studyID, state.String(), start, end).Scan(&id); err != nil {
		return 0, 0, err
	}
	var number int
	if err := tx.QueryRowContext(ctx, s.q("SELECT count(*) FROM trials WHERE study_id = ? AND trial_id < ?"), studyID, id).Scan(&number); err != nil {
		return 0, 0, err
	}
	if _, err := tx.ExecContext(ctx, s.q("UPDATE trials SET number = ? WHERE trial_id = ?"), number, id); err != nil {
		return 0, 0, err
	}
	return id, number, nil
}

// CreateTrial starts a new RUNNING trial (with its first heartbeat) and
// returns its id and number.
func (s *Storage) CreateTrial(ctx context.Context, studyID int64) (id int64, number int, err error) {
	id, number, _, err = s.CreateTrialBelow(ctx, studyID, 0)
	return id, number, err
}

// CreateTrialBelow starts a new RUNNING trial only while the study has fewer
// than limit trials that count or may still count (COMPLETE, PRUNED,
// RUNNING, WAITING); the check and the insert share the study lock, so
// concurrent workers never overshoot a schedule's total. limit ≤ 0 means no
// limit. ok is false when the limit is reached.
func (s *Storage) CreateTrialBelow(ctx context.Context, studyID int64, limit int) (id int64, number int, ok bool, err error) {
	err = s.tx(ctx, func(tx *sql.Tx) error {
		ok = false
		if limit > 0 {
			var locked int64
			if err := tx.QueryRowContext(ctx, s.q("SELECT study_id FROM studies WHERE study_id = ?"+s.forUpdate()), studyID).Scan(&locked); err != nil {
				return fmt.Errorf("locking study %d: %v", studyID, err)
			}
			// RUNNING trials without a heartbeat (Optuna's ask/tell, or a
			// crashed process that never beat) could stay RUNNING forever and
			// would block the study; they do not count.
			var n int
			if err := tx.QueryRowContext(ctx, s.q(`SELECT count(*) FROM trials t WHERE t.study_id = ? AND (t.state IN ('COMPLETE', 'PRUNED', 'WAITING')
OR (t.state = 'RUNNING' AND EXISTS (SELECT 1 FROM trial_heartbeats h WHERE h.trial_id = t.trial_id)))`), studyID).Scan(&n); err != nil {
				return err
			}
			if n >= limit {
				return nil
			}
		}
		id, number, err = s.insertTrial(ctx, tx, studyID, hpo.Running, formatTime(time.Now()), nil)
		if err != nil {
			return err
		}
		ok = true
		return s.beat(ctx, tx, id)
	})
	return id, number, ok, err
}

// beat writes a trial's heartbeat inside a transaction. Trials get their
// first one in the transaction that makes them RUNNING, so they count as
// alive from their first instant.
func (s *Storage) beat(ctx context.Context, tx *sql.Tx, trialID int64) error {
	now := s.nowSQL()
	_, err := tx.ExecContext(ctx, s.q(`INSERT INTO trial_heartbeats (trial_id, heartbeat) VALUES (?, `+now+`)
ON CONFLICT (trial_id) DO UPDATE SET heartbeat = `+now), trialID)
	return err
}

// ClaimWaiting turns the lowest-numbered WAITING trial (an enqueued trial or
// a retry) into a RUNNING one with a first heartbeat, as Optuna's ask() does. ok is false when no
// WAITING trial could be claimed.
func (s *Storage) ClaimWaiting(ctx context.Context, studyID int64) (id int64, number int, ok bool, err error) {
	rows, err := s.db.QueryContext(ctx, s.q("SELECT trial_id, number FROM trials WHERE study_id = ? AND state = 'WAITING' ORDER BY number"), studyID)
	if err != nil {
		return 0, 0, false, err
	}
	type cand struct {
		id     int64
		number int
	}
	var cands []cand
	for rows.Next() {
		var c cand
		if err := rows.Scan(&c.id, &c.number); err != nil {
			rows.Close()
			return 0, 0, false, err
		}
		cands = append(cands, c)
	}
	rows.Close()
	for _, c := range cands {
		claimed := false
		err := s.tx(ctx, func(tx *sql.Tx) error {
			var state string
			if err := tx.QueryRowContext(ctx, s.q("SELECT state FROM trials WHERE trial_id = ?"+s.forUpdate()), c.id).Scan(&state); err != nil {
				return err
			}
			if state != "WAITING" {
				return nil // another worker took it
			}
			claimed = true
			if _, err := tx.ExecContext(ctx, s.q("UPDATE trials SET state = 'RUNNING', datetime_start = ? WHERE trial_id = ?"), formatTime(time.Now()), c.id); err != nil {
				return err
			}
			return s.beat(ctx, tx, c.id)
		})
		if err != nil {
			return 0, 0, false, err
		}
		if claimed {
			return c.id, c.number, true, nil
		}
	}
	return 0, 0, false, nil
}

// checkRunning fails with ErrTrialFinished unless the trial is RUNNING; on
// PostgreSQL it also locks the trial row for the rest of the transaction.
func (s *Storage) checkRunning(ctx context.Context, tx *sql.Tx, trialID int64) error {
	var state string
	err := tx.QueryRowContext(ctx, s.q("SELECT state FROM trials WHERE trial_id = ?"+s.forUpdate()), trialID).Scan(&state)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("trial id %d does not exist", trialID)
	}
	if err != nil {
		return err
	}
	if state != "RUNNING" {
		return fmt.Errorf("trial id %d is %s: %w", trialID, state, ErrTrialFinished)
	}
	return nil
}

// SetParams writes a running trial's parameters (internal values with their
// distributions), refusing a distribution incompatible with one the study
// already stored for that name (Optuna's rule).
func (s *Storage) SetParams(ctx context.Context, trialID int64, params map[string]float64, dists map[string]hpo.Distribution) error {
	names := sortedKeys(params)
	return s.tx(ctx, func(tx *sql.Tx) error {
		if err := s.checkRunning(ctx, tx, trialID); err != nil {
			return err
		}
		for _, name := range names {
			d := dists[name]
			if d == nil {
				return fmt.Errorf("param %q has no distribution", name)
			}
			if !d.Contains(params[name]) {
				return fmt.Errorf("param %q: internal value %v is outside %s", name, params[name], d.JSON())
			}
			if err := s.checkCompatible(ctx, tx, trialID, name, d); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO trial_params (trial_id, param_name, param_value, distribution_json) VALUES (?, ?, ?, ?)
ON CONFLICT (trial_id, param_name) DO UPDATE SET param_value = excluded.param_value, distribution_json = excluded.distribution_json`),
				trialID, name, params[name], d.JSON()); err != nil {
				return err
			}
		}
		return nil
	})
}

// checkCompatible compares with the first stored distribution of the param in the study.
func (s *Storage) checkCompatible(ctx context.Context, tx *sql.Tx, trialID int64, name string, d hpo.Distribution) error {
	var js string
	err := tx.QueryRowContext(ctx, s.q(`SELECT p.distribution_json FROM trial_params p JOIN trials t ON t.trial_id = p.trial_id
WHERE t.study_id = (SELECT study_id FROM trials WHERE trial_id = ?) AND p.param_name = ? ORDER BY p.param_id LIMIT 1`), trialID, name).Scan(&js)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return err
	}
	old, err := hpo.ParseDistributionJSON(js)
	if err != nil {
		return fmt.Errorf("param %q: stored %v", name, err)
	}
	if err := hpo.CheckCompatible(old, d); err != nil {
		return fmt.Errorf("param %q: %v", name, err)
	}
	return nil
}

// ReportIntermediate records a running trial's value at a step (upsert).
func (s *Storage) ReportIntermediate(ctx context.Context, trialID int64, step int, value float64) error {
	if step < 0 {
		return fmt.Errorf("trial id %d: step %d is negative", trialID, step)
	}
	v, typ := valueColumns(value)
	return s.tx(ctx, func(tx *sql.Tx) error {
		if err := s.checkRunning(ctx, tx, trialID); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, s.q(`INSERT INTO trial_intermediate_values (trial_id, step, intermediate_value, intermediate_value_type) VALUES (?, ?, ?, ?)
ON CONFLICT (trial_id, step) DO UPDATE SET intermediate_value = excluded.intermediate_value, intermediate_value_type = excluded.intermediate_value_type`),
			trialID, step, v, typ)
		return err
	})
}

// SetTrialUserAttr upserts a trial user attribute (JSON-encoded).
func (s *Storage) SetTrialUserAttr(ctx context.Context, trialID int64, key string, value any) error {
	return s.setAttr(ctx, "trial_user_attributes", "trial_id", trialID, key, value)
}

// SetTrialSystemAttr upserts a trial system attribute (JSON-encoded).
func (s *Storage) SetTrialSystemAttr(ctx context.Context, trialID int64, key string, value any) error {
	return s.setAttr(ctx, "trial_system_attributes", "trial_id", trialID, key, value)
}

// Finish moves a RUNNING trial to its final state with its values (one per
// objective for COMPLETE; PRUNED may carry the last intermediate value; FAIL
// none). It returns ErrTrialFinished if another worker finished it first.
func (s *Storage) Finish(ctx context.Context, trialID int64, state hpo.TrialState, values []float64) error {
	if !state.IsFinished() {
		return fmt.Errorf("trial id %d: cannot finish as %s", trialID, state)
	}
	for i, v := range values {
		if math.IsNaN(v) {
			return fmt.Errorf("trial id %d: objective %d is NaN (a NaN result fails the trial)", trialID, i)
		}
	}
	return s.tx(ctx, func(tx *sql.Tx) error {
		if err := s.checkRunning(ctx, tx, trialID); err != nil {
			return err
		}
		if err := insertValues(ctx, s, tx, trialID, values); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, s.q("UPDATE trials SET state = ?, datetime_complete = ? WHERE trial_id = ?"),
			state.String(), formatTime(time.Now()), trialID)
		return err
	})
}

// FailTrial moves a RUNNING trial to FAIL and stores why as the user
// attribute key (Optuna 3.1 keeps no reason), in one transaction.
func (s *Storage) FailTrial(ctx context.Context, trialID int64, key, reason string) error {
	js, err := EncodeJSON(reason)
	if err != nil {
		return err
	}
	return s.tx(ctx, func(tx *sql.Tx) error {
		if err := s.checkRunning(ctx, tx, trialID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO trial_user_attributes (trial_id, "key", value_json) VALUES (?, ?, ?)
ON CONFLICT (trial_id, "key") DO UPDATE SET value_json = excluded.value_json`), trialID, key, js); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, s.q("UPDATE trials SET state = 'FAIL', datetime_complete = ? WHERE trial_id = ?"), formatTime(time.Now()), trialID)
		return err
	})
}

func insertValues(ctx context.Context, s *Storage, tx *sql.Tx, trialID int64, values []float64) error {
	for i, v := range values {
		val, typ := valueColumns(v)
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO trial_values (trial_id, objective, value, value_type) VALUES (?, ?, ?, ?)
ON CONFLICT (trial_id, objective) DO UPDATE SET value = excluded.value, value_type = excluded.value_type`), trialID, i, val, typ); err != nil {
			return err
		}
	}
	return nil
}

// Heartbeat stamps a running trial with the database clock, as Optuna's
// heartbeat thread does.
func (s *Storage) Heartbeat(ctx context.Context, trialID int64) error {
	return s.tx(ctx, func(tx *sql.Tx) error { return s.beat(ctx, tx, trialID) })
}

// RunningTrial is a RUNNING trial with what tells whether its worker lives.
type RunningTrial struct {
	ID     int64
	Number int
	// HeartbeatAge is the time since the last heartbeat by the database
	// clock; negative when the trial has no heartbeat row.
	HeartbeatAge time.Duration
	SystemAttrs  map[string]any
}

// RunningTrials lists a study's RUNNING trials with heartbeat ages.
func (s *Storage) RunningTrials(ctx context.Context, studyID int64) ([]RunningTrial, error) {
	var nowV any
	if err := s.db.QueryRowContext(ctx, "SELECT "+s.nowSQL()).Scan(&nowV); err != nil {
		return nil, err
	}
	now, err := parseTime(nowV)
	if err != nil {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT t.trial_id, t.number, h.heartbeat FROM trials t
LEFT JOIN trial_heartbeats h ON h.trial_id = t.trial_id WHERE t.study_id = ? AND t.state = 'RUNNING' ORDER BY t.number`), studyID)
	if err != nil {
		return nil, err
	}
	var out []RunningTrial
	for rows.Next() {
		var rt RunningTrial
		var hb any
		if err := rows.Scan(&rt.ID, &rt.Number, &hb); err != nil {
			rows.Close()
			return nil, err
		}
		rt.HeartbeatAge = -1
		if hb != nil {
			t, err := parseTime(hb)
			if err != nil {
				rows.Close()
				return nil, fmt.Errorf("trial %d heartbeat: %v", rt.Number, err)
			}
			rt.HeartbeatAge = now.Sub(t)
		}
		out = append(out, rt)
	}
	rows.Close()
	for i := range out {
		attrs, err := s.trialAttrs(ctx, "trial_system_attributes", out[i].ID)
		if err != nil {
			return nil, err
		}
		out[i].SystemAttrs = attrs
	}
	return out, nil
}

func (s *Storage) trialAttrs(ctx context.Context, table string, trialID int64) (map[string]any, error) {
	rows, err := s.db.QueryContext(ctx, s.q(fmt.Sprintf(`SELECT "key", value_json FROM %s WHERE trial_id = ?`, table)), trialID)
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

// AddTrial writes a whole trial in one transaction, as Optuna's add_trial
// does: a new number, then params, values, intermediate values and
// attributes, then the trial's state. WAITING trials get no datetimes. It
// is how retries are enqueued and how tests and imports build studies.
func (s *Storage) AddTrial(ctx context.Context, studyID int64, t hpo.FrozenTrial) (id int64, number int, err error) {
	err = s.tx(ctx, func(tx *sql.Tx) error {
		id, number, err = s.addTrial(ctx, tx, studyID, t)
		return err
	})
	return id, number, err
}

// AddTrials is AddTrial for many trials in one transaction (bulk imports).
func (s *Storage) AddTrials(ctx context.Context, studyID int64, ts []hpo.FrozenTrial) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		for _, t := range ts {
			if _, _, err := s.addTrial(ctx, tx, studyID, t); err != nil {
				return err
			}
		}
		return nil
	})
}

func (s *Storage) addTrial(ctx context.Context, tx *sql.Tx, studyID int64, t hpo.FrozenTrial) (int64, int, error) {
	var start, end any
	if t.State != hpo.Waiting {
		if t.Start.IsZero() {
			t.Start = time.Now()
		}
		start = formatTime(t.Start)
		if t.State.IsFinished() {
			if t.End.IsZero() {
				t.End = t.Start
			}
			end = formatTime(t.End)
		}
	}
	if t.State == hpo.Complete && len(t.Values) == 0 {
		return 0, 0, fmt.Errorf("a COMPLETE trial needs its values")
	}
	id, number, err := s.insertTrial(ctx, tx, studyID, t.State, start, end)
	if err != nil {
		return 0, 0, err
	}
	for _, name := range sortedKeys(t.InternalParams) {
		d := t.Distributions[name]
		if d == nil {
			return 0, 0, fmt.Errorf("param %q has no distribution", name)
		}
		if _, err := tx.ExecContext(ctx, s.q("INSERT INTO trial_params (trial_id, param_name, param_value, distribution_json) VALUES (?, ?, ?, ?)"),
			id, name, t.InternalParams[name], d.JSON()); err != nil {
			return 0, 0, err
		}
	}
	if err := insertValues(ctx, s, tx, id, t.Values); err != nil {
		return 0, 0, err
	}
	steps := make([]int, 0, len(t.Intermediate))
	for k := range t.Intermediate {
		steps = append(steps, k)
	}
	sort.Ints(steps)
	for _, step := range steps {
		v, typ := valueColumns(t.Intermediate[step])
		if _, err := tx.ExecContext(ctx, s.q("INSERT INTO trial_intermediate_values (trial_id, step, intermediate_value, intermediate_value_type) VALUES (?, ?, ?, ?)"),
			id, step, v, typ); err != nil {
			return 0, 0, err
		}
	}
	for table, attrs := range map[string]map[string]any{"trial_user_attributes": t.UserAttrs, "trial_system_attributes": t.SystemAttrs} {
		for _, k := range sortedKeys(attrs) {
			js, err := EncodeJSON(attrs[k])
			if err != nil {
				return 0, 0, fmt.Errorf("attribute %q: %v", k, err)
			}
			if _, err := tx.ExecContext(ctx, s.q(fmt.Sprintf(`INSERT INTO %s (trial_id, "key", value_json) VALUES (?, ?, ?)`, table)), id, k, js); err != nil {
				return 0, 0, err
			}
		}
	}
	return id, number, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
