package cli

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/term"
)

// progress draws a one-line status on a terminal and stays silent otherwise,
// so piped output and --json stay clean. Long-running commands call Update
// often; the line is redrawn at most ten times a second.
type progress struct {
	w       io.Writer
	enabled bool
	label   string
	total   int
	start   time.Time
	last    time.Time
}

func newProgress(label string, total int, quiet bool) *progress {
	f := os.Stderr
	return &progress{
		w:       f,
		enabled: !quiet && term.IsTerminal(int(f.Fd())),
		label:   label,
		total:   total,
		start:   time.Now(),
	}
}

// Update redraws the line for done items out of total with an extra status text.
func (p *progress) Update(done int, extra string) {
	if !p.enabled {
		return
	}
	now := time.Now()
	if now.Sub(p.last) < 100*time.Millisecond && done < p.total {
		return
	}
	p.last = now
	elapsed := now.Sub(p.start)
	var b strings.Builder
	fmt.Fprintf(&b, "\r%s ", p.label)
	if p.total > 0 {
		frac := float64(done) / float64(p.total)
		const width = 24
		n := int(frac * width)
		fmt.Fprintf(&b, "[%s%s] %d/%d", strings.Repeat("=", n), strings.Repeat(" ", width-n), done, p.total)
		if done > 0 && done < p.total {
			eta := time.Duration(float64(elapsed) / frac * (1 - frac))
			fmt.Fprintf(&b, " ETA %s", eta.Round(time.Second))
		}
	} else {
		fmt.Fprintf(&b, "%d", done)
	}
	if extra != "" {
		b.WriteString(" " + extra)
	}
	b.WriteString("\x1b[K")
	io.WriteString(p.w, b.String())
}

// Done clears the line.
func (p *progress) Done() {
	if p.enabled {
		io.WriteString(p.w, "\r\x1b[K")
	}
}
