package main

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/bale-project/bale/layout/helmchart"
	"github.com/bale-project/bale/layout/release"
)

func imagesCommand() *cli.Command {
	return &cli.Command{
		Name:      "images",
		Usage:     "print the images a Helm chart uses, as an image list",
		ArgsUsage: "CHART",
		Description: `Renders CHART with Helm's own engine (as helm template does: the chart's values, then each
--values file, then each --set; dependencies enabled by their conditions and tags; subcharts
included) and prints, one a line, sorted, each once, every image the rendered workloads name
(the containers, init containers and ephemeral containers of Pods, Deployments, StatefulSets,
DaemonSets, ReplicaSets, ReplicationControllers, Jobs and CronJobs) and every image of the
helm.sh/images annotation of the chart and its subcharts. An image without tag or digest is
printed with :latest. The output is an image list: bale pack --images takes it back.

CHART is a chart directory, a .tgz, oci://HOST[:PORT]/REPO (with --version, exact or a semver
range), or NAME with --repo URL, a classic chart repository (--version as for oci://; none: the
newest). --src-* flags reach the repository or registry as for docker://.

Examples:
   bale images ./charts/ks-core
   bale images -f site-values.yaml --set image.tag=1.2 --repo https://charts.example.com/stable demo --version ">=0.1 <0.2"
   bale images oci://registry.example.com/charts/redis --version 19.0.1 > redis-images.txt

` + exitCodesHelp,
		Flags: append([]cli.Flag{
			&cli.StringSliceFlag{Name: "values", Aliases: []string{"f"}, Usage: "render with the values file `FILE` (repeatable, applied in order)"},
			&cli.StringSliceFlag{Name: "set", Usage: "render with `K=V` (helm's --set syntax; repeatable)"},
			&cli.StringFlag{Name: "repo", Usage: "CHART is a chart of the classic chart repository at `URL`"},
			&cli.StringFlag{Name: "version", Usage: "the chart `VERSION` (exact, or a semver range: the newest match) of --repo or oci://"},
		}, remoteFlags("src")...),
		Action: func(cx *cli.Context) error {
			if err := checkArgs(cx, 1, "CHART"); err != nil {
				return err
			}
			c, err := chartArg(cx)
			if err != nil {
				return err
			}
			_, tgz, err := fetchChart(cx, c, nil)
			if err != nil {
				return err
			}
			ch, err := helmchart.LoadArchive(tgz)
			if err != nil {
				return err
			}
			imgs, err := helmchart.Images(ch, helmchart.Values{Files: cx.StringSlice("values"), Set: cx.StringSlice("set")})
			if err != nil {
				return err
			}
			for _, i := range imgs {
				fmt.Fprintln(cx.App.Writer, i)
			}
			return nil
		},
	}
}

// chartArg is the chart CHART, --repo and --version name, as a release file would.
func chartArg(cx *cli.Context) (release.Chart, error) {
	arg, repo, version := cx.Args().First(), cx.String("repo"), cx.String("version")
	c := release.Chart{Version: version}
	switch {
	case repo != "":
		c.Repo, c.Name = repo, arg
	case strings.HasPrefix(arg, "oci://"):
		c.OCI = strings.TrimPrefix(arg, "oci://")
	default:
		c.Path = arg
	}
	if c.Path != "" && version != "" {
		return c, usagef("--version picks a chart of --repo or oci://; %s is a chart directory or .tgz", arg)
	}
	return c, nil
}
