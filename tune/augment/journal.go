package augment

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/ragtune/ragtune/bindings"
	"github.com/ragtune/ragtune/bindings/safefile"
)

// The journal is JSON lines: a header naming the settings' fingerprint,
// then one line per finished batch with its replies, appended and synced
// as each batch ends. A line cut short by a crash is dropped on resume.
const journalFormat = "ragtune-augment-journal"

type journalHeader struct {
	Format      string `json:"format"`
	Version     int    `json:"version"`
	Fingerprint string `json:"fingerprint"`
	Requests    int    `json:"requests"`
	Batch       int    `json:"batch"`
}

type journalReply struct {
	Text         string  `json:"text"`
	Stop         string  `json:"stop"`
	Tokens       []int32 `json:"tokens"`
	PromptTokens int     `json:"prompt_tokens"`
}

type journalBatch struct {
	Batch   int            `json:"batch"`
	Replies []journalReply `json:"replies"`
}

type journal struct {
	f    *os.File
	path string
}

// fingerprint covers everything a reply depends on: the generator file,
// the sampling, the budget and every prompt with its seed.
func fingerprint(o Options, reqs []bindings.Request) string {
	h := sha256.New()
	st, err := os.Stat(o.Generator)
	size := int64(-1)
	if err == nil {
		size = st.Size()
	}
	fmt.Fprintf(h, "%s\x00%d\x00%+v\x00%d\x00%d\n", filepath.Base(o.Generator), size, o.Sampling, o.Batch, len(reqs))
	for _, r := range reqs {
		fmt.Fprintf(h, "%d\x00%d\x00%q\x00%s\n", r.Seed, r.MaxTokens, r.Stop, r.Prompt)
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}

// openJournal returns the journal ready for appending and the replies of
// the batches it already holds. A journal of other settings is an error:
// its replies would not be this run's.
func openJournal(path, fp string, batch, total int) (*journal, []bindings.Reply, error) {
	head := journalHeader{Format: journalFormat, Version: 1, Fingerprint: fp, Requests: total, Batch: batch}
	raw, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		line, _ := json.Marshal(head)
		if err := safefile.WriteBytes(path, append(line, '\n')); err != nil {
			return nil, nil, err
		}
		raw = append(line, '\n')
	} else if err != nil {
		return nil, nil, err
	}
	var replies []bindings.Reply
	good := 0 // bytes of complete, valid lines
	for n := 1; good < len(raw); n++ {
		end := bytes.IndexByte(raw[good:], '\n')
		if end < 0 {
			break // cut short by a crash
		}
		line := raw[good : good+end]
		if n == 1 {
			var h journalHeader
			if err := json.Unmarshal(line, &h); err != nil || h.Format != journalFormat {
				return nil, nil, fmt.Errorf("%s:1: not an augment journal", path)
			}
			if h != head {
				return nil, nil, fmt.Errorf("%s was written by a run with other settings (data, generator, prompts, sampling, seed or batch): remove it to start over, or choose another --out", path)
			}
		} else {
			var b journalBatch
			if err := json.Unmarshal(line, &b); err != nil {
				if good+end+1 == len(raw) {
					break // the last line, half written
				}
				return nil, nil, fmt.Errorf("%s:%d: %w", path, n, err)
			}
			want := min(batch, total-len(replies))
			if b.Batch != n-2 || len(b.Replies) != want {
				return nil, nil, fmt.Errorf("%s:%d: batch %d of %d replies, want batch %d of %d", path, n, b.Batch, len(b.Replies), n-2, want)
			}
			for _, r := range b.Replies {
				replies = append(replies, bindings.Reply{Text: r.Text, Stop: r.Stop, Tokens: r.Tokens, PromptTokens: r.PromptTokens})
			}
		}
		good += end + 1
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, nil, err
	}
	// Drop a torn last line before appending after it.
	if err := f.Truncate(int64(good)); err != nil {
		f.Close()
		return nil, nil, err
	}
	if _, err := f.Seek(0, io.SeekEnd); err != nil {
		f.Close()
		return nil, nil, err
	}
	return &journal{f: f, path: path}, replies, nil
}

// append writes one finished batch and syncs it to disk.
func (j *journal) append(batch int, replies []bindings.Reply) error {
	b := journalBatch{Batch: batch, Replies: make([]journalReply, len(replies))}
	for i, r := range replies {
		b.Replies[i] = journalReply{Text: r.Text, Stop: r.Stop, Tokens: r.Tokens, PromptTokens: r.PromptTokens}
	}
	line, err := json.Marshal(b)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(j.f)
	w.Write(line)
	w.WriteByte('\n')
	if err := w.Flush(); err != nil {
		return fmt.Errorf("journal %s: %w", j.path, err)
	}
	if err := j.f.Sync(); err != nil {
		return fmt.Errorf("journal %s: %w", j.path, err)
	}
	return nil
}

func (j *journal) Close() error { return j.f.Close() }
