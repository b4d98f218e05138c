package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"

	"github.com/peterbourgon/ff/v3/ffcli"

	"actorim/client"
	"actorim/protos/clientpb"
)

// profileCmd groups the user profile commands: set, get and search. (Not to
// be confused with imctl's own login profiles, profile.go.)
func (a *app) profileCmd() *ffcli.Command {
	fs := a.flagSet("profile")
	return &ffcli.Command{
		Name:       "profile",
		ShortUsage: "imctl profile set|get|search [flags] [args]",
		ShortHelp:  "set your profile (nickname, avatar, extra JSON), read profiles, search users",
		FlagSet:    fs,
		UsageFunc:  commandUsage,
		Subcommands: []*ffcli.Command{
			a.profileSetCmd(), a.profileGetCmd(), a.profileSearchCmd(),
		},
		Exec: func(context.Context, []string) error {
			return errors.New("usage: imctl profile set|get|search (see imctl profile -h)")
		},
	}
}

func (a *app) profileSetCmd() *ffcli.Command {
	fs := a.flagSet("set")
	nick := fs.String("nickname", "", "the nickname (\"\" clears it)")
	avatar := fs.String("avatar", "", "the avatar's http(s) `URL` (\"\" clears it)")
	extra := fs.String("extra", "", "a JSON object the app owns (\"\" clears it)")
	admin := fs.Bool("admin", false, "set USER's profile through the admin API (with --admin-secret-file)")
	platform := platformFlag(fs)
	mint := a.secretFlags(fs)
	return a.command(fs, "--as USER profile set [--nickname N] [--avatar URL] [--extra JSON]  |  profile set --admin USER ...",
		"change a profile: only the flags given change", 0, 1,
		func(ctx context.Context, args []string) error {
			sp := &clientpb.SetProfile{}
			fs.Visit(func(f *flag.Flag) {
				switch f.Name {
				case "nickname":
					sp.Nickname = nick
				case "avatar":
					sp.AvatarUrl = avatar
				case "extra":
					sp.Extra = extra
				}
			})
			if sp.Nickname == nil && sp.AvatarUrl == nil && sp.Extra == nil {
				return errors.New("give --nickname, --avatar or --extra")
			}
			var p *clientpb.Profile
			var err error
			if *admin != (len(args) == 1) {
				return errors.New("a USER argument goes with --admin, and only with it")
			}
			if *admin {
				err = a.withAdmin(ctx, mint, func(ctx context.Context, h *client.HTTP) (err error) {
					p, err = h.SetProfileOf(ctx, args[0], sp)
					return err
				})
			} else {
				err = a.withConn(ctx, *platform, func(ctx context.Context, c *client.Conn) (err error) {
					p, err = c.SetProfile(ctx, sp)
					return err
				})
			}
			if err != nil {
				return err
			}
			return a.print(p, "%s\n", profileLine(p))
		})
}

func (a *app) profileGetCmd() *ffcli.Command {
	fs := a.flagSet("get")
	admin := fs.Bool("admin", false, "read through the admin API (with --admin-secret-file): the whole profile of each USER")
	platform := platformFlag(fs)
	mint := a.secretFlags(fs)
	return a.command(fs, "--as USER profile get USER...  |  profile get --admin USER...",
		"print the profiles of users (those who do not exist or blocked you are left out)", 1, 100,
		func(ctx context.Context, args []string) error {
			var ps []*clientpb.Profile
			var err error
			if *admin {
				err = a.withAdmin(ctx, mint, func(ctx context.Context, h *client.HTTP) error {
					for _, u := range args {
						p, err := h.Profile(ctx, u)
						if err != nil {
							return err
						}
						ps = append(ps, p)
					}
					return nil
				})
			} else {
				err = a.withConn(ctx, *platform, func(ctx context.Context, c *client.Conn) (err error) {
					ps, err = c.GetProfiles(ctx, args...)
					return err
				})
			}
			if err != nil {
				return err
			}
			if a.g.json {
				return a.print(&clientpb.ProfileList{Profiles: ps}, "")
			}
			for _, p := range ps {
				fmt.Fprintln(a.stdout, profileLine(p))
			}
			return nil
		})
}

func (a *app) profileSearchCmd() *ffcli.Command {
	fs := a.flagSet("search")
	limit := fs.Uint("limit", 0, "at most `N` users by nickname, 1 to 50 (0: the server's default, 20)")
	cursor := fs.String("cursor", "", "continue after the page that printed this cursor")
	platform := platformFlag(fs)
	return a.command(fs, "--as USER profile search QUERY... [--limit N] [--cursor C]",
		"find users by exact id or nickname prefix, case-insensitively", 1, -1,
		func(ctx context.Context, args []string) error {
			var res *clientpb.UserSearchResult
			err := a.withConn(ctx, *platform, func(ctx context.Context, c *client.Conn) (err error) {
				res, err = c.SearchUsers(ctx, strings.Join(args, " "), uint32(*limit), *cursor)
				return err
			})
			if err != nil {
				return err
			}
			if a.g.json {
				return a.print(res, "")
			}
			for _, p := range res.GetUsers() {
				fmt.Fprintln(a.stdout, profileLine(p))
			}
			if len(res.GetUsers()) == 0 {
				fmt.Fprintln(a.stdout, "no users found")
			}
			if res.GetNextCursor() != "" {
				fmt.Fprintf(a.stdout, "more: --cursor %s\n", res.GetNextCursor())
			}
			return nil
		})
}

// withAdmin runs fn with an admin HTTP client within the command's deadline.
func (a *app) withAdmin(ctx context.Context, mint minter, fn func(context.Context, *client.HTTP) error) error {
	h, err := a.adminHTTP(mint)
	if err != nil {
		return err
	}
	ctx, cancel := a.deadline(ctx)
	defer cancel()
	return fn(ctx, h)
}

// profileLine is a profile on one line: `alice "Alice W." avatar=... extra=...`.
func profileLine(p *clientpb.Profile) string {
	var b strings.Builder
	b.WriteString(p.GetUserId())
	if p.GetNickname() != "" {
		fmt.Fprintf(&b, " %q", p.GetNickname())
	}
	if p.GetAvatarUrl() != "" {
		b.WriteString(" avatar=" + p.GetAvatarUrl())
	}
	if p.GetExtra() != "" {
		b.WriteString(" extra=" + p.GetExtra())
	}
	return b.String()
}
