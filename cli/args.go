package cli

import (
	"strings"

	ucli "github.com/urfave/cli/v2"
)

// NormalizeArgs moves flags that follow positional arguments in front of
// them, so that `model quantize IN OUT --type q8_0` means the same as
// `model quantize --type q8_0 IN OUT`. urfave/cli v2 alone stops reading flags
// at the first positional argument. Everything after "--" stays positional.
func NormalizeArgs(app *ucli.App, args []string) []string {
	if len(args) < 2 {
		return args
	}
	out := []string{args[0]}
	rest := args[1:]
	flags := app.Flags
	cmds := app.Commands
	// Walk down the command path: leading flags of each level stay where they
	// are; a token naming a subcommand descends.
	for len(rest) > 0 {
		n := leadingFlags(rest, flags)
		out = append(out, rest[:n]...)
		rest = rest[n:]
		if len(rest) == 0 {
			return out
		}
		c := findCommand(cmds, rest[0])
		if c == nil {
			break
		}
		out = append(out, rest[0])
		rest = rest[1:]
		flags, cmds = c.Flags, c.Subcommands
	}
	var trailingFlags, positional []string
	for i := 0; i < len(rest); i++ {
		a := rest[i]
		if a == "--" {
			positional = append(positional, rest[i:]...)
			break
		}
		if isFlag(a) {
			trailingFlags = append(trailingFlags, a)
			if takesValue(a, flags) && i+1 < len(rest) {
				i++
				trailingFlags = append(trailingFlags, rest[i])
			}
			continue
		}
		positional = append(positional, a)
	}
	out = append(out, trailingFlags...)
	if len(positional) > 0 && positional[0] != "--" && needsSeparator(positional) {
		out = append(out, "--")
	}
	return append(out, positional...)
}

// leadingFlags counts the tokens at the front of args that are flags or flag values.
func leadingFlags(args []string, flags []ucli.Flag) int {
	i := 0
	for i < len(args) && isFlag(args[i]) {
		if takesValue(args[i], flags) {
			i++
		}
		i++
	}
	if i > len(args) {
		i = len(args)
	}
	return i
}

func isFlag(a string) bool { return len(a) > 1 && a[0] == '-' && a != "--" && !isNumber(a) }

// isNumber keeps negative numbers positional.
func isNumber(a string) bool {
	for i, r := range a {
		if i == 0 && r == '-' {
			continue
		}
		if (r < '0' || r > '9') && r != '.' && r != 'e' {
			return false
		}
	}
	return true
}

// takesValue reports whether the flag token consumes the next argument.
func takesValue(tok string, flags []ucli.Flag) bool {
	name := strings.TrimLeft(tok, "-")
	if strings.Contains(name, "=") {
		return false
	}
	for _, f := range flags {
		for _, n := range f.Names() {
			if n != name {
				continue
			}
			if _, ok := f.(*ucli.BoolFlag); ok {
				return false
			}
			return true
		}
	}
	if name == "help" || name == "h" {
		return false
	}
	return true
}

func findCommand(cmds []*ucli.Command, name string) *ucli.Command {
	for _, c := range cmds {
		if c.HasName(name) {
			return c
		}
	}
	return nil
}

// needsSeparator reports whether a positional argument could be read as a flag.
func needsSeparator(pos []string) bool {
	for _, p := range pos {
		if strings.HasPrefix(p, "-") && p != "-" {
			return true
		}
	}
	return false
}
