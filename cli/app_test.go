package cli

import (
	"bytes"
	"testing"
)

// runApp runs the real application with args (flags may trail) and returns
// what it printed on stdout and stderr.
func runApp(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	app := NewApp()
	var out, errOut bytes.Buffer
	app.Writer, app.ErrWriter = &out, &errOut
	err = app.Run(NormalizeArgs(app, append([]string{"ragtune"}, args...)))
	return out.String(), errOut.String(), err
}

// runCLI is runApp's stdout.
func runCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	out, _, err := runApp(t, args...)
	return out, err
}

// runCLICombined is runApp's stdout followed by its stderr.
func runCLICombined(t *testing.T, args ...string) (string, error) {
	t.Helper()
	out, errOut, err := runApp(t, args...)
	return out + errOut, err
}
