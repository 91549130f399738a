package main

import (
	"fmt"
	"strings"

	"github.com/cpuguy83/go-md2man/v2/md2man"
	"github.com/urfave/cli/v2"
)

// bashCompletion asks bale itself for the words that fit (urfave/cli answers
// --generate-bash-completion with the commands and flags of the command line so far).
const bashCompletion = `# bash completion for bale: source it, or put it in /etc/bash_completion.d/bale
_bale_complete() {
	local cur opts
	COMPREPLY=()
	cur="${COMP_WORDS[COMP_CWORD]}"
	if [[ "$cur" == -* ]]; then
		opts=$("${COMP_WORDS[@]:0:$COMP_CWORD}" "$cur" --generate-bash-completion 2>/dev/null)
	else
		opts=$("${COMP_WORDS[@]:0:$COMP_CWORD}" --generate-bash-completion 2>/dev/null)
	fi
	COMPREPLY=($(compgen -W "$opts" -- "$cur"))
	return 0
}
complete -o default -o bashdefault -F _bale_complete bale
`

func completionCommand() *cli.Command {
	return &cli.Command{
		Name:      "completion",
		Usage:     "print shell completion (bash, zsh, fish) or the manual (man, markdown), made from the command definitions",
		ArgsUsage: "bash|zsh|fish|man|markdown",
		Description: `Examples:
   source <(bale completion bash)
   bale completion zsh > "${fpath[1]}/_bale"
   bale completion fish > ~/.config/fish/completions/bale.fish
   bale completion man > /usr/local/share/man/man1/bale.1`,
		Action: func(cx *cli.Context) error {
			if err := checkArgs(cx, 1, "bash|zsh|fish|man|markdown"); err != nil {
				return err
			}
			var out string
			var err error
			switch cx.Args().First() {
			case "bash":
				out = bashCompletion
			case "zsh":
				out = "#compdef bale\nautoload -U +X bashcompinit && bashcompinit\n" + bashCompletion
			case "fish":
				out, err = cx.App.ToFishCompletion()
			case "man":
				out = string(md2man.Render([]byte(manual(cx.App, true))))
			case "markdown":
				out = manual(cx.App, false)
			default:
				return usagef("completion %q: want bash, zsh, fish, man or markdown", cx.Args().First())
			}
			if err != nil {
				return err
			}
			_, err = fmt.Fprint(cx.App.Writer, out)
			return err
		},
	}
}

// manual is the reference of every command, with its whole help text, as Markdown (man: with
// the title block go-md2man turns into the man page header).
func manual(app *cli.App, man bool) string {
	var b strings.Builder
	if man {
		fmt.Fprintf(&b, "%% BALE 1 \"\" \"bale %s\"\n\n# NAME\n\nbale - %s\n\n", version, app.Usage)
	} else {
		fmt.Fprintf(&b, "# bale\n\n%s. Made by `bale completion markdown` (`make docs`) from the command definitions; `bale COMMAND --help` says the same.\n\n", app.Usage)
	}
	fmt.Fprintf(&b, "# SYNOPSIS\n\n```\nbale [--help] [--version] COMMAND [OPTIONS] ARGUMENTS\n```\n\n# DESCRIPTION\n\n```text\n%s\n```\n\n# COMMANDS\n\n", app.Description)
	for _, c := range app.Commands {
		if c.Hidden || c.Name == "help" {
			continue
		}
		name := c.Name
		if len(c.Aliases) > 0 {
			name += " (" + strings.Join(c.Aliases, ", ") + ")"
		}
		fmt.Fprintf(&b, "## bale %s\n\n%s.\n\n```\nbale %s [OPTIONS] %s\n```\n\n", name, c.Usage, c.Name, c.ArgsUsage)
		if c.Description != "" {
			fmt.Fprintf(&b, "```text\n%s\n```\n\n", strings.TrimSpace(c.Description))
		}
		if len(c.Flags) > 0 {
			b.WriteString("Options:\n\n")
			for _, f := range c.Flags {
				names, usage, _ := strings.Cut(f.String(), "\t")
				fmt.Fprintf(&b, "* `%s`: %s\n", names, usage)
			}
			b.WriteString("\n")
		}
	}
	return b.String()
}
