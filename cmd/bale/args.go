package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/containerd/platforms"
	"github.com/urfave/cli/v2"

	"github.com/bale-project/bale/layout"
)

// reorderArgs moves the options of a command written after its arguments (bale serve B
// --addr :5000) before them, as docker and kubectl accept: urfave/cli stops parsing options
// at the first argument. args is os.Args. An option's value (--addr :5000, not --addr=:5000)
// moves with it; everything after "--" stays an argument, in place; "-" alone is an argument
// (standard input). Options the command does not know move too, so that parsing names them.
// A shell completion request (--generate-bash-completion last) is left as it is.
func reorderArgs(app *cli.App, args []string) []string {
	if len(args) < 2 || args[len(args)-1] == "--generate-bash-completion" {
		return args
	}
	// The command is the first argument that is not a global option (all of them booleans).
	i := 1
	for i < len(args) && strings.HasPrefix(args[i], "-") && args[i] != "-" && args[i] != "--" {
		i++
	}
	if i >= len(args) {
		return args
	}
	var cmd *cli.Command
	for _, c := range app.Commands {
		if c.HasName(args[i]) {
			cmd = c
		}
	}
	if cmd == nil {
		return args
	}
	takesValue := map[string]bool{}
	for _, f := range cmd.Flags {
		tv, ok := f.(cli.DocGenerationFlag)
		for _, n := range f.Names() {
			takesValue[n] = ok && tv.TakesValue()
		}
	}
	var opts, rest []string
	tail := args[i+1:]
	for j := 0; j < len(tail); j++ {
		a := tail[j]
		switch {
		case a == "--":
			rest = append(rest, tail[j:]...)
			j = len(tail)
		case strings.HasPrefix(a, "-") && a != "-":
			opts = append(opts, a)
			name := strings.TrimLeft(a, "-")
			if !strings.Contains(name, "=") && takesValue[name] && j+1 < len(tail) {
				j++
				opts = append(opts, tail[j])
			}
		default:
			rest = append(rest, a)
		}
	}
	out := append([]string{}, args[:i+1]...)
	out = append(out, opts...)
	return append(out, rest...)
}

// usageErrors makes every parse error of the command line (an unknown option, a bad value) a
// usage error of one line that names the command's --help, for app and each of its commands.
func usageErrors(app *cli.App) {
	app.OnUsageError = func(cx *cli.Context, err error, _ bool) error {
		return usagef("%s (see bale --help)", flagError(err))
	}
	for _, c := range app.Commands {
		name := c.Name
		c.OnUsageError = func(cx *cli.Context, err error, _ bool) error {
			return usagef("%s: %s (see bale %s --help)", name, flagError(err), name)
		}
	}
	// bale help WORD: urfave/cli calls this instead of failing; runApp makes it a usage error.
	app.CommandNotFound = func(cx *cli.Context, name string) {
		cx.App.Metadata[unknownCommand] = name
	}
	// bale with a word that is no command: a usage error, not a help page.
	app.Action = func(cx *cli.Context) error {
		if cx.NArg() > 0 {
			return notACommand(cx.Args().First())
		}
		return cli.ShowAppHelp(cx)
	}
}

// unknownCommand is the key of App.Metadata where CommandNotFound leaves the word.
const unknownCommand = "unknown-command"

// notACommand is the usage error for a word that is no bale command.
func notACommand(word string) error {
	return usagef("%q is not a bale command (see bale --help)", word)
}

// flagError says the flag package's "flag provided but not defined: -x" as "unknown option -x".
func flagError(err error) string {
	if name, ok := strings.CutPrefix(err.Error(), "flag provided but not defined: "); ok {
		return "unknown option " + name
	}
	return err.Error()
}

// runApp runs app on args (os.Args) after reorderArgs, and makes "bale help WORD" of an
// unknown WORD a usage error.
func runApp(ctx context.Context, app *cli.App, args []string) error {
	app.Metadata = map[string]any{}
	err := app.RunContext(ctx, reorderArgs(app, args))
	if word, ok := app.Metadata[unknownCommand].(string); ok && err == nil {
		return notACommand(word)
	}
	return err
}

// atLeastOne is the Action of --jobs: 0 or less would wait for ever, whatever the location.
func atLeastOne(_ *cli.Context, n int) error {
	if n < 1 {
		return usagef("--jobs %d: want at least 1 (how many blobs move at once)", n)
	}
	return nil
}

// parsePlatform parses one --platform value with containerd's platforms package, as docker,
// nerdctl and ctr do: the OS and architecture in any case and their aliases (Linux/AMD64,
// linux/x86_64, linux/aarch64), a variant normalized (arm64/8 and arm64/v8 are arm64, which
// matches every variant of it). A variant not given matches every variant. OS/ARCH is
// required: a bare OS or architecture would mean this machine's, which would make the same
// command give other bundles on other machines.
func parsePlatform(s string) (layout.Platform, error) {
	if !strings.Contains(s, "/") {
		return layout.Platform{}, fmt.Errorf("--platform %q: want OS/ARCH[/VARIANT], e.g. linux/amd64: %w", s, layout.ErrInvalid)
	}
	p, err := platforms.Parse(s)
	if err != nil {
		return layout.Platform{}, fmt.Errorf("--platform %q: want OS/ARCH[/VARIANT], e.g. linux/amd64: %v: %w", s, err, layout.ErrInvalid)
	}
	if p.OSVersion != "" {
		return layout.Platform{}, fmt.Errorf("--platform %q: an OS version is not supported: %w", s, layout.ErrInvalid)
	}
	n := platforms.Normalize(p)
	if p.Variant == "" {
		n.Variant = "" // none given: any
	}
	return layout.Platform{OS: n.OS, Architecture: n.Architecture, Variant: n.Variant}, nil
}
