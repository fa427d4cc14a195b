package train

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/ragtune/ragtune/bindings/safefile"
)

// state is what a checkpoint restores besides the parameters: where the run
// is, and what validation has seen so far.
type state struct {
	ConfigHash string        `json:"config_hash"`
	Step       int           `json:"step"`  // optimizer steps done
	Epoch      int           `json:"epoch"` // epochs finished
	Batch      int           `json:"batch"` // next micro-batch of the current epoch
	Loss       float64       `json:"loss"`
	Base       *EpochResult  `json:"base,omitempty"`
	Best       *EpochResult  `json:"best,omitempty"`
	History    []EpochResult `json:"history,omitempty"`
}

// configHash identifies a run's configuration and base model, so a run
// directory resumes only the run that wrote it.
func (r *run) configHash() string {
	b, _ := json.Marshal(struct {
		C Config
		M string
	}{r.cfg, r.path})
	sum := sha256.Sum256(b)
	return fmt.Sprintf("%x", sum[:8])
}

func (r *run) checkpointDir() string { return filepath.Join(r.dir, "checkpoint") }

// checkpoint writes the parameters with their AdamW moments, then the state
// that points at them; each file is written atomically and the state last,
// so a run killed at any moment resumes from a consistent checkpoint.
func (r *run) checkpoint(st state) error {
	r.step.SyncHost()
	dir := r.checkpointDir()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	st.ConfigHash = r.configHash()
	name := fmt.Sprintf("params-%d.bin", st.Step)
	err := safefile.Write(filepath.Join(dir, name), func(w io.Writer) error {
		for _, p := range r.params {
			for _, v := range p.checkpointed() {
				if err := binary.Write(w, binary.LittleEndian, v); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	b, err := json.MarshalIndent(struct {
		state
		Params string `json:"params"`
	}{st, name}, "", "  ")
	if err != nil {
		return err
	}
	if err := safefile.WriteBytes(filepath.Join(dir, "state.json"), b); err != nil {
		return err
	}
	// Older parameter files are no longer referenced.
	old, _ := filepath.Glob(filepath.Join(dir, "params-*.bin"))
	for _, o := range old {
		if filepath.Base(o) != name {
			os.Remove(o)
		}
	}
	return nil
}

// resume loads the checkpoint of this run's directory, if any.
func (r *run) resume() (state, error) {
	path := filepath.Join(r.checkpointDir(), "state.json")
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return state{}, nil
	}
	if err != nil {
		return state{}, err
	}
	var st struct {
		state
		Params string `json:"params"`
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return state{}, fmt.Errorf("%s: %w", path, err)
	}
	if st.ConfigHash != r.configHash() {
		return state{}, fmt.Errorf("%s holds a checkpoint of another configuration or model; use a new --out folder", r.dir)
	}
	if strings.ContainsAny(st.Params, "/\\") {
		return state{}, fmt.Errorf("%s: bad params file name %q", path, st.Params)
	}
	f, err := os.Open(filepath.Join(r.checkpointDir(), st.Params))
	if err != nil {
		return state{}, err
	}
	defer f.Close()
	br := bufio.NewReader(f)
	for _, p := range r.params {
		for _, v := range p.checkpointed() {
			if err := binary.Read(br, binary.LittleEndian, v); err != nil {
				return state{}, fmt.Errorf("%s: parameter %s: %w", st.Params, p.Name, err)
			}
		}
	}
	if err := r.step.LoadState(); err != nil {
		return state{}, err
	}
	return st.state, nil
}

// csvLog is the per-step training log, train_log.csv. A resumed run drops
// rows after its checkpoint and appends.
type csvLog struct{ f *os.File }

const csvHeader = "step,epoch,loss,lr,grad_norm,pairs_per_s,elapsed_s,tokens_per_s\n"

func openCSVLog(path string, fromStep int) (*csvLog, error) {
	var keep []string
	if b, err := os.ReadFile(path); err == nil {
		for _, line := range strings.Split(string(b), "\n")[1:] {
			fields := strings.SplitN(line, ",", 2)
			if n, err := strconv.Atoi(fields[0]); err == nil && n <= fromStep {
				keep = append(keep, line)
			}
		}
	}
	content := csvHeader
	for _, l := range keep {
		content += l + "\n"
	}
	if err := safefile.WriteBytes(path, []byte(content)); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, err
	}
	return &csvLog{f: f}, nil
}

func (l *csvLog) Write(step, epoch int, loss, lr, norm, rate, elapsed, tokenRate float64) error {
	_, err := fmt.Fprintf(l.f, "%d,%d,%.6g,%.6g,%.6g,%.4g,%.3f,%.4g\n", step, epoch, loss, lr, norm, rate, elapsed, tokenRate)
	return err
}

func (l *csvLog) Close() { l.f.Close() }

// appendEvalLog adds one validation row to eval_log.csv.
func appendEvalLog(dir string, er EpochResult) error {
	path := filepath.Join(dir, "eval_log.csv")
	var b []byte
	if old, err := os.ReadFile(path); err == nil && er.Epoch > 0 {
		b = old
	}
	keys := make([]string, 0, len(er.Scores))
	for k := range er.Scores {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if len(b) == 0 {
		b = []byte("epoch,step," + strings.Join(keys, ",") + "\n")
	}
	row := []string{strconv.Itoa(er.Epoch), strconv.Itoa(er.Step)}
	for _, k := range keys {
		row = append(row, strconv.FormatFloat(er.Scores[k], 'f', 6, 64))
	}
	b = append(b, strings.Join(row, ",")+"\n"...)
	return safefile.WriteBytes(path, b)
}

// PeakRSS is the process's peak resident set size (VmHWM), in bytes.
func PeakRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb * 1024
		}
	}
	return 0
}
