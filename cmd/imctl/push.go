package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/peterbourgon/ff/v3/ffcli"

	"actorim/client"
)

// pushCmd groups the push registration commands: a device's own (register,
// unregister) and the admin API's (list, remove).
func (a *app) pushCmd() *ffcli.Command {
	fs := a.flagSet("push")
	return &ffcli.Command{
		Name:       "push",
		ShortUsage: "imctl push register|unregister|list|remove [flags] [args]",
		ShortHelp:  "register this device's push token; list and remove a user's registrations (admin)",
		FlagSet:    fs,
		UsageFunc:  commandUsage,
		Subcommands: []*ffcli.Command{
			a.pushRegisterCmd(), a.pushUnregisterCmd(), a.pushListCmd(), a.pushRemoveCmd(),
		},
		Exec: func(context.Context, []string) error {
			return errors.New("usage: imctl push register|unregister|list|remove (see imctl push -h)")
		},
	}
}

func (a *app) pushRegisterCmd() *ffcli.Command {
	fs := a.flagSet("register")
	platform := platformFlag(fs)
	return a.command(fs, "--as USER push register PROVIDER TOKEN",
		"record this device's push token (provider apns, fcm or any name of [a-z0-9_.-])", 2, 2,
		func(ctx context.Context, args []string) error {
			err := a.withConn(ctx, *platform, func(ctx context.Context, c *client.Conn) error {
				return c.RegisterPush(ctx, args[0], args[1])
			})
			if err != nil {
				return err
			}
			return a.print(map[string]any{"provider": args[0], "registered": true}, "registered with %s\n", args[0])
		})
}

func (a *app) pushUnregisterCmd() *ffcli.Command {
	fs := a.flagSet("unregister")
	platform := platformFlag(fs)
	return a.command(fs, "--as USER push unregister", "remove this device's push registration", 0, 0,
		func(ctx context.Context, _ []string) error {
			err := a.withConn(ctx, *platform, func(ctx context.Context, c *client.Conn) error {
				return c.UnregisterPush(ctx)
			})
			if err != nil {
				return err
			}
			return a.print(map[string]any{"registered": false}, "unregistered\n")
		})
}

func (a *app) pushListCmd() *ffcli.Command {
	fs := a.flagSet("list")
	mint := a.secretFlags(fs)
	return a.command(fs, "push list USER [--admin-secret-file F]", "list a user's push registrations (admin API)", 1, 1,
		func(ctx context.Context, args []string) error {
			var regs []client.PushRegistration
			err := a.withAdmin(ctx, mint, func(ctx context.Context, h *client.HTTP) (err error) {
				regs, err = h.PushRegistrations(ctx, args[0])
				return err
			})
			if err != nil {
				return err
			}
			if a.g.json {
				if regs == nil {
					regs = []client.PushRegistration{}
				}
				return a.print(map[string]any{"user_id": args[0], "devices": regs}, "")
			}
			for _, r := range regs {
				fmt.Fprintf(a.stdout, "%s\t%s\t%s\t%s\n", r.DeviceID, orNone(r.Platform), r.Provider, r.Token)
			}
			return nil
		})
}

func (a *app) pushRemoveCmd() *ffcli.Command {
	fs := a.flagSet("remove")
	token := fs.String("token", "", "remove only while the device is registered with this token")
	mint := a.secretFlags(fs)
	return a.command(fs, "push remove USER DEVICE [--token T] [--admin-secret-file F]",
		"remove a device's push registration (admin API), e.g. when the provider reports its token dead", 2, 2,
		func(ctx context.Context, args []string) error {
			var removed bool
			err := a.withAdmin(ctx, mint, func(ctx context.Context, h *client.HTTP) (err error) {
				removed, err = h.RemovePushRegistration(ctx, args[0], args[1], *token)
				return err
			})
			if err != nil {
				return err
			}
			what := "removed"
			if !removed {
				what = "nothing to remove"
			}
			return a.print(map[string]any{"user_id": args[0], "device_id": args[1], "removed": removed}, "%s/%s: %s\n", args[0], args[1], what)
		})
}
