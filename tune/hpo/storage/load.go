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
	return s.loadTrials(ctx, studyID, nil)
}

// TrialCache keeps a study's finished trials between loads: a finished trial
// never changes, so a worker that loads its study before every trial
// re-reads only the running, waiting and new ones (Optuna's _CachedStorage
// does the same). The trials it returns share maps; treat them as read-only.
type TrialCache struct {
	studyID  int64
	finished map[int64]hpo.FrozenTrial
}

// NewTrialCache returns an empty cache for one study.
func NewTrialCache(studyID int64) *TrialCache {
	return &TrialCache{studyID: studyID, finished: map[int64]hpo.FrozenTrial{}}
}

// Load is LoadTrials through the cache.
func (c *TrialCache) Load(ctx context.Context, s *Storage) ([]hpo.FrozenTrial, error) {
	return s.loadTrials(ctx, c.studyID, c)
}

func (s *Storage) loadTrials(ctx context.Context, studyID int64, cache *TrialCache) ([]hpo.FrozenTrial, error) {
	// Datetimes are read separately, for the trials being filled only:
	// parsing them is most of the cost of a cached load.
	rows, err := s.db.QueryContext(ctx, s.q("SELECT trial_id, number, state FROM trials WHERE study_id = ? ORDER BY number, trial_id"), studyID)
	if err != nil {
		return nil, err
	}
	var trials []hpo.FrozenTrial
	index := map[int64]int{} // trials to fill from the other tables
	minFresh := int64(-1)
	for rows.Next() {
		var t hpo.FrozenTrial
		var number sql.NullInt64
		var state string
		if err := rows.Scan(&t.ID, &number, &state); err != nil {
			rows.Close()
			return nil, err
		}
		if !number.Valid {
			rows.Close()
			return nil, fmt.Errorf("trials row %d: number is NULL", t.ID)
		}
		t.Number = int(number.Int64)
		if cache != nil {
			if done, ok := cache.finished[t.ID]; ok {
				trials = append(trials, done)
				continue
			}
		}
		if minFresh < 0 || t.ID < minFresh {
			minFresh = t.ID
		}
		if t.State, err = parseState(state); err != nil {
			rows.Close()
			return nil, fmt.Errorf("trials row %d: %v", t.ID, err)
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
	if len(index) == 0 {
		return trials, nil
	}
	// Only rows of trials being filled matter; the id bound skips most
	// cached ones cheaply, the index lookup the rest.
	join := " JOIN trials t ON t.trial_id = c.trial_id WHERE t.study_id = ? AND c.trial_id >= ?"
	each := func(query string, fn func(*sql.Rows) error) error {
		return s.each(ctx, query, fn, studyID, minFresh)
	}
	err = each("SELECT c.trial_id, c.datetime_start, c.datetime_complete FROM trials c WHERE c.study_id = ? AND c.trial_id >= ?",
		func(r *sql.Rows) error {
			var id int64
			var start, end any
			if err := r.Scan(&id, &start, &end); err != nil {
				return err
			}
			i, fresh := index[id]
			if !fresh {
				return nil
			}
			var err error
			if trials[i].Start, err = parseTime(start); err != nil {
				return fmt.Errorf("trials row %d datetime_start: %v", id, err)
			}
			if trials[i].End, err = parseTime(end); err != nil {
				return fmt.Errorf("trials row %d datetime_complete: %v", id, err)
			}
			return nil
		})
	if err != nil {
		return nil, err
	}

	// Params: distributions repeat across trials, so parse each JSON once.
	dists := map[string]hpo.Distribution{}
	err = each("SELECT c.trial_id, c.param_name, c.param_value, c.distribution_json FROM trial_params c"+join+" ORDER BY c.param_id",
		func(r *sql.Rows) error {
			var id int64
			var name, js string
			var v float64
			if err := r.Scan(&id, &name, &v, &js); err != nil {
				return err
			}
			if _, fresh := index[id]; !fresh {
				return nil
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
	err = each("SELECT c.trial_id, c.objective, c.value, c.value_type FROM trial_values c"+join+" ORDER BY c.trial_id, c.objective",
		func(r *sql.Rows) error {
			var id int64
			var obj int
			var v sql.NullFloat64
			var typ string
			if err := r.Scan(&id, &obj, &v, &typ); err != nil {
				return err
			}
			if _, fresh := index[id]; !fresh {
				return nil
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
	err = each("SELECT c.trial_id, c.step, c.intermediate_value, c.intermediate_value_type FROM trial_intermediate_values c"+join,
		func(r *sql.Rows) error {
			var id int64
			var step int
			var v sql.NullFloat64
			var typ string
			if err := r.Scan(&id, &step, &v, &typ); err != nil {
				return err
			}
			if _, fresh := index[id]; !fresh {
				return nil
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
		err = each(`SELECT c.trial_id, c."key", c.value_json FROM `+a.table+" c"+join,
			func(r *sql.Rows) error {
				var id int64
				var k, js string
				if err := r.Scan(&id, &k, &js); err != nil {
					return err
				}
				if _, fresh := index[id]; !fresh {
					return nil
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
	err = each("SELECT c.trial_id, c.heartbeat FROM trial_heartbeats c"+join,
		func(r *sql.Rows) error {
			var id int64
			var hb any
			if err := r.Scan(&id, &hb); err != nil {
				return err
			}
			if _, fresh := index[id]; !fresh {
				return nil
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
	for _, i := range index {
		t := &trials[i]
		if t.State == hpo.Complete && len(t.Values) == 0 {
			return nil, fmt.Errorf("trial %d is COMPLETE without trial_values", t.Number)
		}
		if cache != nil && t.State.IsFinished() {
			cache.finished[t.ID] = *t
		}
	}
	return trials, nil
}

func (s *Storage) each(ctx context.Context, query string, fn func(*sql.Rows) error, args ...any) error {
	rows, err := s.db.QueryContext(ctx, s.q(query), args...)
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
