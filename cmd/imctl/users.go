package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/peterbourgon/ff/v3/ffcli"

	"actorim/client"
)

// usersCmd groups the admin commands about --app's users.
func (a *app) usersCmd() *ffcli.Command {
	fs := a.flagSet("users")
	return &ffcli.Command{
		Name:       "users",
		ShortUsage: "imctl [--app A] users list|search|disable|enable|kick [flags] [args]",
		ShortHelp:  "list, search, disable, enable and kick an app's users through the admin API",
		FlagSet:    fs,
		UsageFunc:  commandUsage,
		Subcommands: []*ffcli.Command{
			a.usersPageCmd("list", "[--after USER] [--limit N]", "list the app's users by id, a page at a time", 0),
			a.usersPageCmd("search", "QUERY [--after NEXT] [--limit N]", "find the app's users by exact id or nickname prefix", 1),
			a.usersKickCmd("disable", "USER", "disable a user: their logins are refused and their devices disconnected", false,
				func(ctx context.Context, h *client.HTTP, user, _ string) (int, error) {
					return h.DisableUser(ctx, user)
				}),
			a.usersKickCmd("enable", "USER", "let a disabled user log in again", false,
				func(ctx context.Context, h *client.HTTP, user, _ string) (int, error) {
					return 0, h.EnableUser(ctx, user)
				}),
			a.usersKickCmd("kick", "USER [--device D]", "disconnect one device of a user, or all of them (they may log in again)", true,
				func(ctx context.Context, h *client.HTTP, user, device string) (int, error) {
					return h.Kick(ctx, user, device)
				}),
		},
		Exec: func(context.Context, []string) error {
			return errors.New("usage: imctl users list|search|disable|enable|kick (see imctl users -h)")
		},
	}
}

// usersPageCmd builds list (nargs 0) or search (nargs 1, the query).
func (a *app) usersPageCmd(name, usage, help string, nargs int) *ffcli.Command {
	fs := a.flagSet(name)
	after := fs.String("after", "", "start after this user id (list) or the previous page's next (search)")
	limit := fs.Int("limit", 0, "users per page, 1 to 1000 (default: the server's, 100)")
	mint := a.secretFlags(fs)
	return a.command(fs, "users "+name+" "+usage+" [--admin-secret-file F]", help, nargs, nargs,
		func(ctx context.Context, args []string) error {
			var page client.UserPage
			err := a.withAdmin(ctx, mint, func(ctx context.Context, h *client.HTTP) (err error) {
				if nargs == 1 {
					page, err = h.SearchUsers(ctx, args[0], *after, *limit)
				} else {
					page, err = h.Users(ctx, *after, *limit)
				}
				return err
			})
			if err != nil {
				return err
			}
			if a.g.json {
				return a.print(page, "")
			}
			for _, u := range page.Users {
				state := ""
				if u.Disabled {
					state = "\tdisabled"
				}
				fmt.Fprintf(a.stdout, "%s\t%s%s\n", u.UserID, orNone(u.Nickname), state)
			}
			if page.Next != "" {
				fmt.Fprintf(a.stdout, "next: --after %s\n", page.Next)
			}
			return nil
		})
}

// usersKickCmd builds disable, enable and kick (with --device).
func (a *app) usersKickCmd(name, usage, help string, device bool, call func(ctx context.Context, h *client.HTTP, user, device string) (int, error)) *ffcli.Command {
	fs := a.flagSet(name)
	var dev *string
	if device {
		dev = fs.String("device", "", "the device id to disconnect (default: all the user's devices)")
	} else {
		dev = new(string)
	}
	mint := a.secretFlags(fs)
	return a.command(fs, "users "+name+" "+usage+" [--admin-secret-file F]", help, 1, 1,
		func(ctx context.Context, args []string) error {
			var kicked int
			err := a.withAdmin(ctx, mint, func(ctx context.Context, h *client.HTTP) (err error) {
				kicked, err = call(ctx, h, args[0], *dev)
				return err
			})
			if err != nil {
				return err
			}
			out := map[string]any{"user_id": args[0], "kicked": kicked}
			if name != "kick" {
				out["disabled"] = name == "disable"
			}
			return a.print(out, "%s: %sd; %d device(s) disconnected\n", args[0], name, kicked)
		})
}

// groupsCmd lists --app's groups through the admin API.
func (a *app) groupsCmd() *ffcli.Command {
	fs := a.flagSet("groups")
	return &ffcli.Command{
		Name:        "groups",
		ShortUsage:  "imctl [--app A] groups list [--after GROUP] [--limit N]",
		ShortHelp:   "list an app's groups through the admin API",
		FlagSet:     fs,
		UsageFunc:   commandUsage,
		Subcommands: []*ffcli.Command{a.groupsListCmd()},
		Exec: func(context.Context, []string) error {
			return errors.New("usage: imctl groups list (see imctl groups -h)")
		},
	}
}

func (a *app) groupsListCmd() *ffcli.Command {
	fs := a.flagSet("list")
	after := fs.String("after", "", "start after this group id")
	limit := fs.Int("limit", 0, "groups per page, 1 to 1000 (default: the server's, 100)")
	mint := a.secretFlags(fs)
	return a.command(fs, "groups list [--after GROUP] [--limit N] [--admin-secret-file F]", "list the app's groups by id, a page at a time", 0, 0,
		func(ctx context.Context, _ []string) error {
			var page client.GroupPage
			err := a.withAdmin(ctx, mint, func(ctx context.Context, h *client.HTTP) (err error) {
				page, err = h.Groups(ctx, *after, *limit)
				return err
			})
			if err != nil {
				return err
			}
			if a.g.json {
				return a.print(page, "")
			}
			for _, g := range page.Groups {
				state := ""
				if g.Dissolved {
					state = "\tdissolved"
				}
				fmt.Fprintf(a.stdout, "%s\t%s\t%d members\t%s%s\n", g.GroupID, orNone(g.Name), g.Members, orNone(g.Owner), state)
			}
			if page.Next != "" {
				fmt.Fprintf(a.stdout, "next: --after %s\n", page.Next)
			}
			return nil
		})
}
