// Package cli is the ragtune command-line application. Each command group
// lives in its own file and adds itself to the application with register.
package cli

import (
	"errors"
	"sort"

	ucli "github.com/urfave/cli/v2"
)

var commands []*ucli.Command

// register adds a top-level command; files call it from init.
func register(c *ucli.Command) { commands = append(commands, c) }

// NewApp builds the ragtune application with every registered command.
func NewApp() *ucli.App {
	cmds := append([]*ucli.Command(nil), commands...)
	sort.Slice(cmds, func(i, j int) bool { return cmds[i].Name < cmds[j].Name })
	return &ucli.App{
		Name:                 "ragtune",
		Usage:                "fine-tune text-embedding models for retrieval",
		Commands:             cmds,
		EnableBashCompletion: true,
		// Errors are printed once, by main, with the right exit code.
		ExitErrHandler: func(*ucli.Context, error) {},
	}
}

// Run runs the application on os.Args-style arguments. Flags may follow
// positional arguments (see NormalizeArgs).
func Run(args []string) error {
	app := NewApp()
	return app.Run(NormalizeArgs(app, args))
}

// ExitError carries a process exit code with its message.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string { return e.Err.Error() }
func (e *ExitError) Unwrap() error { return e.Err }

// ExitCode maps an error from Run to the process exit status: 1 unless the
// error says otherwise.
func ExitCode(err error) int {
	var ee *ExitError
	if errors.As(err, &ee) {
		return ee.Code
	}
	var ue ucli.ExitCoder
	if errors.As(err, &ue) && ue.ExitCode() != 0 {
		return ue.ExitCode()
	}
	return 1
}
