package cli

import (
	"reflect"
	"testing"

	ucli "github.com/urfave/cli/v2"
)

func testApp(got *[]string, gotType *string, gotForce *bool) *ucli.App {
	return &ucli.App{
		Name: "ragtune",
		Commands: []*ucli.Command{{
			Name: "model",
			Subcommands: []*ucli.Command{{
				Name: "quantize",
				Flags: []ucli.Flag{
					&ucli.StringFlag{Name: "type"},
					&ucli.BoolFlag{Name: "force"},
				},
				Action: func(c *ucli.Context) error {
					*got = c.Args().Slice()
					*gotType = c.String("type")
					*gotForce = c.Bool("force")
					return nil
				},
			}},
		}},
	}
}

func TestFlagsBeforeAndAfterPositionals(t *testing.T) {
	for _, args := range [][]string{
		{"ragtune", "model", "quantize", "--type", "q8_0", "in.gguf", "out.gguf", "--force"},
		{"ragtune", "model", "quantize", "in.gguf", "out.gguf", "--type", "q8_0", "--force"},
		{"ragtune", "model", "quantize", "in.gguf", "--force", "out.gguf", "--type=q8_0"},
	} {
		var pos []string
		var typ string
		var force bool
		app := testApp(&pos, &typ, &force)
		if err := app.Run(NormalizeArgs(app, args)); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		if !reflect.DeepEqual(pos, []string{"in.gguf", "out.gguf"}) || typ != "q8_0" || !force {
			t.Errorf("%v: positional %v type %q force %v", args, pos, typ, force)
		}
	}
}

func TestDoubleDashKeepsFlagLikePositionals(t *testing.T) {
	var pos []string
	var typ string
	var force bool
	app := testApp(&pos, &typ, &force)
	args := []string{"ragtune", "model", "quantize", "--type", "f16", "--", "-odd.gguf", "out.gguf"}
	if err := app.Run(NormalizeArgs(app, args)); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(pos, []string{"-odd.gguf", "out.gguf"}) || typ != "f16" {
		t.Errorf("positional %v type %q", pos, typ)
	}
}
