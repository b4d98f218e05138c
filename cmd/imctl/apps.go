package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/peterbourgon/ff/v3/ffcli"

	"actorim/apps"
	"actorim/client"
)

// appsCmd groups the admin commands about applications (tenants).
func (a *app) appsCmd() *ffcli.Command {
	fs := a.flagSet("apps")
	return &ffcli.Command{
		Name:       "apps",
		ShortUsage: "imctl apps list|get|create|set|disable|enable|rotate-secret|rotate-webhook-secret|test-webhook [flags] [APP]",
		ShortHelp:  "manage the deployment's applications (tenants) through the admin API",
		FlagSet:    fs,
		UsageFunc:  commandUsage,
		Subcommands: []*ffcli.Command{
			a.appsCall("list", "", "list the apps, the default one first", 0, func(ctx context.Context, h *client.HTTP, _ string, _ *apps.Settings) (any, error) {
				return h.Apps(ctx)
			}),
			a.appsCall("get", "APP", "print an app: its settings and secrets", 1, func(ctx context.Context, h *client.HTTP, id string, _ *apps.Settings) (any, error) {
				return h.GetApp(ctx, id)
			}),
			a.appsCall("create", "APP [--settings JSON | --settings-file F]", "create an app; prints its first token and webhook secrets", 1,
				func(ctx context.Context, h *client.HTTP, id string, s *apps.Settings) (any, error) {
					return h.CreateApp(ctx, id, *s)
				}),
			a.appsCall("set", "APP (--settings JSON | --settings-file F)", "replace an app's settings (see README: Applications)", 1,
				func(ctx context.Context, h *client.HTTP, id string, s *apps.Settings) (any, error) {
					return h.SetAppSettings(ctx, id, *s)
				}),
			a.appsCall("disable", "APP", "disable an app: its logins and tokens are refused and its sockets closed", 1, func(ctx context.Context, h *client.HTTP, id string, _ *apps.Settings) (any, error) {
				return h.DisableApp(ctx, id)
			}),
			a.appsCall("enable", "APP", "enable a disabled app", 1, func(ctx context.Context, h *client.HTTP, id string, _ *apps.Settings) (any, error) {
				return h.EnableApp(ctx, id)
			}),
			a.appsCall("rotate-secret", "APP", "give an app a new token secret (the previous one stays valid until the next rotation)", 1,
				func(ctx context.Context, h *client.HTTP, id string, _ *apps.Settings) (any, error) {
					return h.RotateAppSecret(ctx, id)
				}),
			a.appsCall("rotate-webhook-secret", "APP", "give an app a new webhook signing secret (both sign until the next rotation)", 1,
				func(ctx context.Context, h *client.HTTP, id string, _ *apps.Settings) (any, error) {
					return h.RotateWebhookSecret(ctx, id)
				}),
			a.appsCall("test-webhook", "APP", "send the app's webhook a signed webhook.test event; fails unless it answers 2xx", 1,
				func(ctx context.Context, h *client.HTTP, id string, _ *apps.Settings) (any, error) {
					res, err := h.TestWebhook(ctx, id)
					if err == nil && !res.OK {
						err = fmt.Errorf("the webhook failed the test (status %d after %d ms): %s", res.Status, res.LatencyMs, res.Error)
					}
					return res, err
				}),
		},
		Exec: func(context.Context, []string) error {
			return errors.New("usage: imctl apps list|get|create|set|disable|enable|rotate-secret|rotate-webhook-secret|test-webhook (see imctl apps -h)")
		},
	}
}

// appsCall builds one apps subcommand taking nargs arguments (0 or the
// app id); create and set read --settings.
func (a *app) appsCall(name, usage, help string, nargs int, call func(context.Context, *client.HTTP, string, *apps.Settings) (any, error)) *ffcli.Command {
	fs := a.flagSet(name)
	var settings, settingsFile *string
	if name == "create" || name == "set" {
		settings = fs.String("settings", "", "the app's settings, a `JSON` object (see README: Applications)")
		settingsFile = fs.String("settings-file", "", "read the settings JSON from this `file`")
	}
	mint := a.secretFlags(fs)
	return a.command(fs, "apps "+name+" "+usage+" [--admin-secret-file F]", help, nargs, nargs,
		func(ctx context.Context, args []string) error {
			var s apps.Settings
			if settings != nil {
				raw := *settings
				if *settingsFile != "" {
					b, err := os.ReadFile(*settingsFile)
					if err != nil {
						return err
					}
					raw = string(b)
				}
				if raw == "" && name == "set" {
					return errors.New("give --settings or --settings-file")
				}
				if raw != "" {
					dec := json.NewDecoder(strings.NewReader(raw))
					dec.DisallowUnknownFields()
					if err := dec.Decode(&s); err != nil {
						return fmt.Errorf("settings: %w", err)
					}
				}
			}
			var id string
			if nargs == 1 {
				id = args[0]
			}
			var out any
			err := a.withAdmin(ctx, mint, func(ctx context.Context, h *client.HTTP) (err error) {
				out, err = call(ctx, h, id, &s)
				return err
			})
			if err != nil {
				return err
			}
			if list, ok := out.([]apps.App); ok && !a.g.json {
				for _, ap := range list {
					state := "enabled"
					if ap.Disabled {
						state = "disabled"
					}
					fmt.Fprintf(a.stdout, "%s\t%s\twebhook=%s\n", ap.ID, state, orNone(ap.Settings.Webhook.URL))
				}
				return nil
			}
			b, err := json.MarshalIndent(out, "", "  ")
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(a.stdout, "%s\n", b)
			return err
		})
}

func orNone(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// deleteMessageCmd removes a message for everyone through the admin API.
func (a *app) deleteMessageCmd() *ffcli.Command {
	fs := a.flagSet("delete-message")
	mint := a.secretFlags(fs)
	return a.command(fs, "delete-message CONVERSATION MSG_ID [--admin-secret-file F]",
		"remove a message for everyone (moderation): its participants see it recalled by #moderator", 2, 2,
		func(ctx context.Context, args []string) error {
			id, err := strconv.ParseUint(args[1], 10, 64)
			if err != nil {
				return fmt.Errorf("MSG_ID: %w", err)
			}
			if err := a.withAdmin(ctx, mint, func(ctx context.Context, h *client.HTTP) error {
				return h.DeleteMessage(ctx, args[0], id)
			}); err != nil {
				return err
			}
			return a.print(map[string]any{"conversation_id": args[0], "msg_id": args[1], "deleted": true}, "deleted message %s of %s\n", args[1], args[0])
		})
}
