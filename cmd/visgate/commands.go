package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

func (a *app) lsCmd() *cobra.Command {
	var (
		status, cursor string
		limit          int
		deleted        bool
	)
	cmd := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List your deployments, newest first",
		Args:    args(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := a.needAPIKey(); err != nil {
				return err
			}
			q := url.Values{}
			fs := cmd.Flags()
			if fs.Changed("status") {
				q.Set("status", status)
			}
			if fs.Changed("limit") {
				q.Set("limit", strconv.Itoa(limit))
			}
			if cursor != "" {
				q.Set("cursor", cursor)
			}
			if deleted {
				q.Set("include_deleted", "true")
			}
			path := "/v1/deployments"
			if len(q) > 0 {
				path += "?" + q.Encode()
			}
			var l deploymentList
			err := a.table(cmd.Context(), path, &l, "ID\tSTATUS\tMODEL\tGPU\tCREATED", func(w io.Writer) {
				for _, d := range l.Deployments {
					gpu := deref(d.GPUAllocated)
					if gpu == "" {
						gpu = "-"
					}
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", d.ID, d.Status, d.ModelID, gpu, d.CreatedAt.Local().Format(time.DateTime))
				}
			})
			if err != nil {
				return err
			}
			if a.output != "json" && l.NextCursor != nil {
				fmt.Fprintf(a.errOut, "more: visgate ls --cursor %s\n", *l.NextCursor)
			}
			return nil
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&status, "status", "", "only this status (validating, ..., ready, failed, webhook_failed, deleted)")
	fs.IntVar(&limit, "limit", 20, "page size (1..100)")
	fs.StringVar(&cursor, "cursor", "", "the next page, as the previous page said")
	fs.BoolVar(&deleted, "all", false, "include deleted deployments")
	return cmd
}

func (a *app) getCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "get ID",
		Short: "Show a deployment",
		Args:  args(1, 1),
		RunE: func(cmd *cobra.Command, pos []string) error {
			if err := a.needAPIKey(); err != nil {
				return err
			}
			var d deploymentView
			raw, err := a.api.do(cmd.Context(), "GET", deploymentPath(pos[0]), nil, nil, &d)
			if err != nil {
				return err
			}
			if a.output == "json" {
				return a.printJSON(raw)
			}
			a.printDeployment(d)
			return nil
		},
	}
}

func (a *app) printDeployment(d deploymentView) {
	tw := tabwriter.NewWriter(a.out, 0, 4, 2, ' ', 0)
	row := func(k, v string) {
		if v == "" {
			v = "-"
		}
		fmt.Fprintf(tw, "%s:\t%s\n", k, v)
	}
	row("id", d.ID)
	row("status", d.Status)
	row("model", d.ModelID)
	row("task", deref(d.Task))
	row("gpu", deref(d.GPUAllocated))
	row("endpoint", deref(d.EndpointURL))
	if p := d.Progress; p != nil {
		row("progress", fmt.Sprintf("%s %d/%d bytes", p.Phase, p.BytesDone, p.BytesTotal))
	}
	row("scaling", fmt.Sprintf("min %d, max %d workers, idle %ds", d.Scaling.MinWorkers, d.Scaling.MaxWorkers, d.Scaling.IdleTimeoutSeconds))
	if p := d.Price; p != nil {
		row("price", fmt.Sprintf("%.4f USD per worker-hour (%s)", p.PerHourUSD, p.Pool))
	}
	if s := d.Spend; s != nil {
		row("spend", fmt.Sprintf("%.4f USD", s.USD))
	}
	if d.Limits.MaxSpendUSD != nil {
		row("max spend", fmt.Sprintf("%.2f USD", *d.Limits.MaxSpendUSD))
	}
	if d.Limits.ExpiresAt != nil {
		row("expires", d.Limits.ExpiresAt.Local().Format(time.DateTime))
	}
	if d.WebhookURL == nil {
		row("webhook", "none configured")
	} else {
		row("webhook", fmt.Sprintf("%s (delivered %v, %d attempts)", *d.WebhookURL, d.Webhook.Delivered, d.Webhook.Attempts))
	}
	row("error", deref(d.Error))
	row("deleted", deref(d.DeletedReason))
	row("created", d.CreatedAt.Local().Format(time.DateTime))
	_ = tw.Flush()
}

func (a *app) logsCmd() *cobra.Command {
	var follow bool
	cmd := &cobra.Command{
		Use:   "logs ID",
		Short: "Print a deployment's log; -f follows it until the deployment ends or Ctrl-C",
		Args:  args(1, 1),
		RunE: func(cmd *cobra.Command, pos []string) error {
			if err := a.needAPIKey(); err != nil {
				return err
			}
			ctx := cmd.Context()
			seen := 0
			tick := time.NewTicker(a.pollInterval)
			defer tick.Stop()
			for {
				var d deploymentView
				if _, err := a.api.do(ctx, "GET", deploymentPath(pos[0]), nil, nil, &d); err != nil {
					if follow && errors.Is(err, context.Canceled) && ctx.Err() != nil {
						return nil // Ctrl-C ends following
					}
					return err
				}
				if seen > len(d.Logs) {
					seen = 0
				}
				for _, l := range d.Logs[seen:] {
					if a.output == "json" {
						if err := a.printJSONLine(l); err != nil {
							return err
						}
						continue
					}
					fmt.Fprintf(a.out, "%s %-7s %s\n", l.Timestamp.UTC().Format(time.RFC3339), l.Level, l.Message)
				}
				seen = len(d.Logs)
				if !follow || d.Status == "failed" || d.Status == "deleted" {
					return nil
				}
				select {
				case <-ctx.Done():
					return nil
				case <-tick.C:
				}
			}
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new lines")
	return cmd
}

func (a *app) patchCmd() *cobra.Command {
	var lim limitFlags
	cmd := &cobra.Command{
		Use:   "patch ID",
		Short: "Change a deployment's scaling and limits",
		Example: `  visgate patch dep_2026_0a1b2c3d --min-workers 1 --max-workers 2 --idle-timeout 2m
  visgate patch dep_2026_0a1b2c3d --max-spend 5 --ttl 24h`,
		Args: args(1, 1),
		RunE: func(cmd *cobra.Command, pos []string) error {
			if err := a.needAPIKey(); err != nil {
				return err
			}
			body := map[string]any{}
			if err := lim.fields(cmd.Flags(), body); err != nil {
				return err
			}
			if len(body) == 0 {
				return usagef("patch: give at least one of --min-workers, --max-workers, --idle-timeout, --max-spend, --ttl, --expires-at")
			}
			var d deploymentView
			raw, err := a.api.do(cmd.Context(), "PATCH", deploymentPath(pos[0]), body, nil, &d)
			if err != nil {
				return err
			}
			if a.output == "json" {
				return a.printJSON(raw)
			}
			a.printDeployment(d)
			return nil
		},
	}
	lim.add(cmd.Flags())
	return cmd
}

func (a *app) rmCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "rm ID...",
		Aliases: []string{"delete"},
		Short:   "Delete deployments and their RunPod endpoints",
		Args:    args(1, -1),
		RunE: func(cmd *cobra.Command, pos []string) error {
			if err := a.needAPIKey(); err != nil {
				return err
			}
			var firstErr error
			var deleted []string
			for _, id := range pos {
				if _, err := a.api.do(cmd.Context(), "DELETE", deploymentPath(id), nil, nil, nil); err != nil {
					fmt.Fprintf(a.errOut, "visgate: rm %s: %v\n", id, err)
					if firstErr == nil {
						firstErr = err
					}
					continue
				}
				deleted = append(deleted, id)
				if a.output != "json" {
					fmt.Fprintf(a.out, "deleted %s\n", id)
				}
			}
			if a.output == "json" {
				if err := a.printJSON(map[string]any{"deleted": append([]string{}, deleted...)}); err != nil {
					return err
				}
			}
			if firstErr != nil {
				return &exitStatus{exitCode(cmd.Context(), firstErr)}
			}
			return nil
		},
	}
}

func (a *app) gpusCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "gpus",
		Short: "List the GPU pools, their memory and prices",
		Args:  args(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			var l gpuList
			return a.table(cmd.Context(), "/v1/gpus", &l, "POOL\tVRAM\tUSD/HOUR\tCARDS", func(w io.Writer) {
				for _, g := range l.GPUs {
					var cards string
					for i, c := range g.Cards {
						if i > 0 {
							cards += ", "
						}
						cards += c.Name
					}
					fmt.Fprintf(w, "%s\t%d GB\t%.4f\t%s\n", g.Pool, g.VRAMGB, g.PricePerHour, cards)
				}
			})
		},
	}
}

func (a *app) modelsCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "models",
		Short: "List the catalogue's model names (deploy NAME --provider PROVIDER)",
		Args:  args(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			var l modelList
			return a.table(cmd.Context(), "/v1/models", &l, "PROVIDER\tNAME\tHUGGING FACE ID", func(w io.Writer) {
				for _, m := range l.Models {
					fmt.Fprintf(w, "%s\t%s\t%s\n", m.Provider, m.ModelName, m.HFModelID)
				}
			})
		},
	}
}

// table reads the list at path into v and prints it: the API's own JSON
// with -o json, else a table of header and the rows rows writes.
func (a *app) table(ctx context.Context, path string, v any, header string, rows func(w io.Writer)) error {
	raw, err := a.api.do(ctx, "GET", path, nil, nil, v)
	if err != nil {
		return err
	}
	if a.output == "json" {
		return a.printJSON(raw)
	}
	tw := tabwriter.NewWriter(a.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, header)
	rows(tw)
	return tw.Flush()
}
