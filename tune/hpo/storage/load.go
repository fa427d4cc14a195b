package storage

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/ragtune/ragtune/tune/hpo"
)

// LoadTrials reads every trial of a study, ordered by number, with params,
// values, intermediate values, attributes and heartbeats. It issues one query
// per table (not one per trial), which is what keeps large studies fast.
func (s *Storage) LoadTrials(ctx context.Context, studyID int64) ([]hpo.FrozenTrial, error) {
	rows, err := s.db.QueryContext(ctx, s.q("SELECT trial_id, number, state, datetime_start, datetime_complete FROM trials WHERE study_id = ? ORDER BY number, trial_id"), studyID)
	if err != nil {
		return nil, err
	}
	var trials []hpo.FrozenTrial
	index := map[int64]int{}
	for rows.Next() {
		var t hpo.FrozenTrial
		var number sql.NullInt64
		var state string
		var start, end any
		if err := rows.Scan(&t.ID, &number, &state, &start, &end); err != nil {
			rows.Close()
			return nil, err
		}
		if !number.Valid {
			rows.Close()
			return nil, fmt.Errorf("trials row %d: number is NULL", t.ID)
		}
		t.Number = int(number.Int64)
		if t.State, err = parseState(state); err != nil {
			rows.Close()
			return nil, fmt.Errorf("trials row %d: %v", t.ID, err)
		}
		if t.Start, err = parseTime(start); err != nil {
			rows.Close()
			return nil, fmt.Errorf("trials row %d datetime_start: %v", t.ID, err)
		}
		if t.End, err = parseTime(end); err != nil {
			rows.Close()
			return nil, fmt.Errorf("trials row %d datetime_complete: %v", t.ID, err)
		}
		t.Params = map[string]any{}
		t.InternalParams = map[string]float64{}
		t.Distributions = map[string]hpo.Distribution{}
		t.Intermediate = map[int]float64{}
		t.UserAttrs = map[string]any{}
		t.SystemAttrs = map[string]any{}
		index[t.ID] = len(trials)
		trials = append(trials, t)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(trials) == 0 {
		return trials, nil
	}
	join := " JOIN trials t ON t.trial_id = c.trial_id WHERE t.study_id = ?"

	// Params: distributions repeat across trials, so parse each JSON once.
	dists := map[string]hpo.Distribution{}
	err = s.each(ctx, "SELECT c.trial_id, c.param_name, c.param_value, c.distribution_json FROM trial_params c"+join+" ORDER BY c.param_id", studyID,
		func(r *sql.Rows) error {
			var id int64
			var name, js string
			var v float64
			if err := r.Scan(&id, &name, &v, &js); err != nil {
				return err
			}
			d, ok := dists[js]
			if !ok {
				var err error
				if d, err = hpo.ParseDistributionJSON(js); err != nil {
					return fmt.Errorf("trial_params %q of trial id %d: %v", name, id, err)
				}
				dists[js] = d
			}
			if !d.Contains(v) {
				return fmt.Errorf("trial_params %q of trial id %d: value %v is outside %s", name, id, v, js)
			}
			t := &trials[index[id]]
			t.InternalParams[name] = v
			t.Params[name] = d.ToExternal(v)
			t.Distributions[name] = d
			return nil
		})
	if err != nil {
		return nil, err
	}
	err = s.each(ctx, "SELECT c.trial_id, c.objective, c.value, c.value_type FROM trial_values c"+join+" ORDER BY c.trial_id, c.objective", studyID,
		func(r *sql.Rows) error {
			var id int64
			var obj int
			var v sql.NullFloat64
			var typ string
			if err := r.Scan(&id, &obj, &v, &typ); err != nil {
				return err
			}
			f, err := valueFromColumns(v, typ)
			if err != nil {
				return fmt.Errorf("trial_values of trial id %d objective %d: %v", id, obj, err)
			}
			t := &trials[index[id]]
			for len(t.Values) <= obj {
				t.Values = append(t.Values, 0)
			}
			t.Values[obj] = f
			return nil
		})
	if err != nil {
		return nil, err
	}
	err = s.each(ctx, "SELECT c.trial_id, c.step, c.intermediate_value, c.intermediate_value_type FROM trial_intermediate_values c"+join, studyID,
		func(r *sql.Rows) error {
			var id int64
			var step int
			var v sql.NullFloat64
			var typ string
			if err := r.Scan(&id, &step, &v, &typ); err != nil {
				return err
			}
			f, err := valueFromColumns(v, typ)
			if err != nil {
				return fmt.Errorf("trial_intermediate_values of trial id %d step %d: %v", id, step, err)
			}
			trials[index[id]].Intermediate[step] = f
			return nil
		})
	if err != nil {
		return nil, err
	}
	for _, a := range []struct {
		table string
		get   func(*hpo.FrozenTrial) map[string]any
	}{
		{"trial_user_attributes", func(t *hpo.FrozenTrial) map[string]any { return t.UserAttrs }},
		{"trial_system_attributes", func(t *hpo.FrozenTrial) map[string]any { return t.SystemAttrs }},
	} {
		err = s.each(ctx, `SELECT c.trial_id, c."key", c.value_json FROM `+a.table+" c"+join, studyID,
			func(r *sql.Rows) error {
				var id int64
				var k, js string
				if err := r.Scan(&id, &k, &js); err != nil {
					return err
				}
				v, err := DecodeJSON(js)
				if err != nil {
					return fmt.Errorf("%s %q of trial id %d: %v", a.table, k, id, err)
				}
				a.get(&trials[index[id]])[k] = v
				return nil
			})
		if err != nil {
			return nil, err
		}
	}
	err = s.each(ctx, "SELECT c.trial_id, c.heartbeat FROM trial_heartbeats c"+join, studyID,
		func(r *sql.Rows) error {
			var id int64
			var hb any
			if err := r.Scan(&id, &hb); err != nil {
				return err
			}
			t, err := parseTime(hb)
			if err != nil {
				return fmt.Errorf("trial_heartbeats of trial id %d: %v", id, err)
			}
			trials[index[id]].Heartbeat = t
			return nil
		})
	if err != nil {
		return nil, err
	}
	for i := range trials {
		t := &trials[i]
		if t.State == hpo.Complete && len(t.Values) == 0 {
			return nil, fmt.Errorf("trial %d is COMPLETE without trial_values", t.Number)
		}
	}
	return trials, nil
}

func (s *Storage) each(ctx context.Context, query string, studyID int64, fn func(*sql.Rows) error) error {
	rows, err := s.db.QueryContext(ctx, s.q(query), studyID)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

func parseState(s string) (hpo.TrialState, error) {
	for st := hpo.Running; st <= hpo.Waiting; st++ {
		if st.String() == s {
			return st, nil
		}
	}
	return 0, fmt.Errorf("unknown trial state %q", s)
}
