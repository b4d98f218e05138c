package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/peterbourgon/ff/v3"
	"github.com/peterbourgon/ff/v3/ffcli"
	"google.golang.org/protobuf/proto"

	"actorim/auth"
	"actorim/client"
	"actorim/ids"
	"actorim/protos/clientpb"
	"actorim/wire"
)

// errHelpShown ends a command whose usage the flag package already printed.
var errHelpShown = errors.New("help shown")

// globals are the flags every command accepts, before or after its name.
type globals struct {
	server, home, as, codec string
	// app is the application (tenant) of the users named: register,
	// login, token and the admin calls about users address its users.
	app            string
	json, insecure bool
	timeout        time.Duration
}

type app struct {
	g              globals
	defaultHome    string
	stdout, stderr io.Writer
}

// run executes one imctl command line and returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	a := &app{stdout: stdout, stderr: stderr}
	if h, err := os.UserHomeDir(); err == nil {
		a.defaultHome = filepath.Join(h, ".config", "imctl")
	}
	err := a.root().ParseAndRun(ctx, args)
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp), errors.Is(err, errHelpShown):
		return 0
	}
	a.fail(err)
	return 1
}

func (a *app) root() *ffcli.Command {
	root := &ffcli.Command{
		Name:       "imctl",
		ShortUsage: "imctl [global flags] <command> [flags] [args]",
		LongHelp: "A command-line client of actorim. login saves a profile (token, device id, last seq seen)\n" +
			"in --home; --as USER acts with it. Global flags may follow the command too, and\n" +
			"IMCTL_SERVER, IMCTL_HOME, IMCTL_AS (IMCTL_ and any global flag) set them from the environment.",
		FlagSet: a.flagSet("imctl"),
		Options: []ff.Option{ff.WithEnvVarPrefix("IMCTL")},
		Subcommands: []*ffcli.Command{
			a.registerCmd(), a.loginCmd(), a.tokenCmd(), a.provisionCmd(), a.revokeCmd(), a.deleteUserCmd(),
			a.sendCmd(), a.downloadCmd(), a.listenCmd(), a.syncCmd(), a.historyCmd(), a.analyticsCmd(),
			a.profileCmd(), a.appsCmd(), a.usersCmd(), a.groupsCmd(), a.pushCmd(), a.deleteMessageCmd(),
		},
	}
	root.Exec = func(_ context.Context, args []string) error {
		if len(args) == 0 {
			fmt.Fprint(a.stderr, ffcli.DefaultUsageFunc(root))
			return errors.New("missing command")
		}
		return fmt.Errorf("unknown command %q (see imctl -h)", args[0])
	}
	return root
}

// flagSet returns a command's flag set with the global flags bound.
func (a *app) flagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(a.stderr)
	g := &a.g
	fs.StringVar(&g.server, "server", "http://127.0.0.1:8080", "`URL` of the node's HTTP API; the WebSocket URL is derived (ws or wss, path /ws)")
	fs.StringVar(&g.home, "home", a.defaultHome, "profile `directory`")
	fs.StringVar(&g.as, "as", "", "act as `USER` with the token saved by login")
	fs.StringVar(&g.app, "app", "", "the application (tenant) of the users named, on a deployment of several (default: the default app)")
	fs.BoolVar(&g.json, "json", false, "print JSON: one document, or one object per line for listen")
	fs.StringVar(&g.codec, "codec", "proto", "WebSocket subprotocol: proto or json")
	fs.BoolVar(&g.insecure, "insecure", false, "skip TLS certificate verification (self-signed certificates in development)")
	fs.DurationVar(&g.timeout, "timeout", 10*time.Second, "time limit of the command (of connecting, for listen; file transfers are not limited)")
	return fs
}

// command builds a subcommand that takes minArgs to maxArgs arguments (-1:
// any number); its flags may also follow the arguments.
func (a *app) command(fs *flag.FlagSet, usage, help string, minArgs, maxArgs int, exec func(context.Context, []string) error) *ffcli.Command {
	return &ffcli.Command{
		Name:       fs.Name(),
		ShortUsage: "imctl " + usage,
		ShortHelp:  help,
		FlagSet:    fs,
		UsageFunc:  commandUsage,
		Exec: func(ctx context.Context, args []string) error {
			args, err := interspersed(fs, args)
			if err != nil {
				return err
			}
			if len(args) < minArgs || (maxArgs >= 0 && len(args) > maxArgs) {
				return fmt.Errorf("usage: imctl %s", usage)
			}
			return exec(ctx, args)
		},
	}
}

// commandUsage is ffcli's usage of a subcommand without the global flags.
func commandUsage(c *ffcli.Command) string {
	own := flag.NewFlagSet(c.Name, flag.ContinueOnError)
	c.FlagSet.VisitAll(func(f *flag.Flag) {
		if !globalFlags[f.Name] {
			own.Var(f.Value, f.Name, f.Usage)
		}
	})
	short := *c
	short.FlagSet = own
	return ffcli.DefaultUsageFunc(&short) + "\nThe global flags (imctl -h) may follow the command too.\n"
}

var globalFlags = map[string]bool{"server": true, "home": true, "as": true, "app": true, "json": true, "codec": true, "insecure": true, "timeout": true}

// interspersed parses the flags among args, so that "login alice --password
// p" works like "login --password p alice". A "--" ends the flags.
func interspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
			return nil, errHelpShown
		} else if err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			return append(pos, rest...), nil
		}
		pos, args = append(pos, rest[0]), rest[1:]
	}
}

func (a *app) registerCmd() *ffcli.Command {
	fs := a.flagSet("register")
	password := fs.String("password", "", "password of the new account, 6 to 256 bytes")
	return a.command(fs, "register USER --password P", "create an account", 1, 1, func(ctx context.Context, args []string) error {
		ctx, cancel := a.deadline(ctx)
		defer cancel()
		if err := a.http("").Register(ctx, args[0], *password); err != nil {
			return err
		}
		return a.print(map[string]string{"user_id": args[0]}, "registered %s\n", args[0])
	})
}

func (a *app) loginCmd() *ffcli.Command {
	fs := a.flagSet("login")
	password := fs.String("password", "", "the account's password")
	return a.command(fs, "login USER --password P", "log in and save the token in the profile", 1, 1, func(ctx context.Context, args []string) error {
		ctx, cancel := a.deadline(ctx)
		defer cancel()
		tok, err := a.http("").Login(ctx, args[0], *password)
		if err != nil {
			return err
		}
		p, err := a.saveToken(args[0], tok.Token, tok.ExpiresAt)
		if err != nil {
			return err
		}
		return a.print(map[string]any{"user_id": p.UserID, "device_id": p.DeviceID, "expires_at": p.ExpiresAt},
			"logged in as %s (device %s), token expires %s\n", p.UserID, p.DeviceID, p.ExpiresAt.Format(time.RFC3339))
	})
}

func (a *app) tokenCmd() *ffcli.Command {
	fs := a.flagSet("token")
	admin := fs.Bool("admin", false, "mint an admin token, for the admin API (signed with the admin secret)")
	ttl := fs.Duration("ttl", 24*time.Hour, "lifetime of the token (at most the nodes' --token-max-lifetime)")
	save := fs.Bool("save", false, "save the token in USER's profile, as login does")
	mint := a.secretFlags(fs)
	return a.command(fs, "token USER [--admin] [--ttl 24h] [--save] [--secret-file F | --admin-secret-file F]",
		"mint a token locally with the nodes' secret, as an application server does", 1, 1,
		func(_ context.Context, args []string) error {
			tok, exp, err := mint(args[0], *admin, *ttl)
			if err != nil {
				return err
			}
			if *save {
				if _, err := a.saveToken(args[0], tok, exp); err != nil {
					return err
				}
			}
			return a.print(map[string]any{"user_id": args[0], "admin": *admin, "token": tok, "expires_at": exp}, "%s\n", tok)
		})
}

func (a *app) provisionCmd() *ffcli.Command {
	fs := a.flagSet("provision")
	password := fs.String("password", "", "optional password; without one the user logs in with minted tokens only")
	mint := a.secretFlags(fs)
	return a.command(fs, "provision USER [--password P] [--admin-secret-file F]",
		"create a user through the admin API (succeeds if it exists)", 1, 1,
		func(ctx context.Context, args []string) error {
			h, err := a.adminHTTP(mint)
			if err != nil {
				return err
			}
			ctx, cancel := a.deadline(ctx)
			defer cancel()
			if err := h.Provision(ctx, args[0], *password); err != nil {
				return err
			}
			return a.print(map[string]string{"user_id": args[0]}, "provisioned %s\n", args[0])
		})
}

func (a *app) revokeCmd() *ffcli.Command {
	fs := a.flagSet("revoke")
	before := fs.String("before", "", "revoke the tokens issued before this time, RFC 3339 (default: now)")
	mint := a.secretFlags(fs)
	return a.command(fs, "revoke USER [--before T] [--admin-secret-file F]",
		"revoke a user's tokens through the admin API and disconnect the devices using them", 1, 1,
		func(ctx context.Context, args []string) error {
			var at time.Time
			if *before != "" {
				var err error
				if at, err = time.Parse(time.RFC3339, *before); err != nil {
					return fmt.Errorf("--before: %w", err)
				}
			}
			h, err := a.adminHTTP(mint)
			if err != nil {
				return err
			}
			ctx, cancel := a.deadline(ctx)
			defer cancel()
			res, err := h.RevokeTokens(ctx, args[0], at)
			if err != nil {
				return err
			}
			return a.print(map[string]any{"user_id": args[0], "revoked_before": res.RevokedBefore, "kicked": res.Kicked},
				"revoked the tokens of %s issued before %s; %d device(s) disconnected\n", args[0], res.RevokedBefore.Format(time.RFC3339), res.Kicked)
		})
}

// deleteUserCmd erases a user and their data through the admin API.
func (a *app) deleteUserCmd() *ffcli.Command {
	fs := a.flagSet("delete-user")
	mint := a.secretFlags(fs)
	return a.command(fs, "delete-user USER [--admin-secret-file F]",
		"erase a user and their data (the right to erasure): devices disconnected, groups and friends left,\n"+
			"records, timeline, sessions and account deleted; the id is free again. Repeat it if it fails midway", 1, 1,
		func(ctx context.Context, args []string) error {
			if err := a.withAdmin(ctx, mint, func(ctx context.Context, h *client.HTTP) error {
				return h.DeleteUser(ctx, args[0])
			}); err != nil {
				return err
			}
			return a.print(map[string]any{"user_id": args[0], "deleted": true}, "deleted user %s\n", args[0])
		})
}

// minter mints a token (see secretFlags).
type minter func(user string, admin bool, ttl time.Duration) (string, time.Time, error)

// adminHTTP returns an HTTP client of the admin API with a fresh admin
// token, valid for a minute.
func (a *app) adminHTTP(mint minter) (*client.HTTP, error) {
	tok, _, err := mint("imctl", true, time.Minute)
	if err != nil {
		return nil, err
	}
	return a.http(tok), nil
}

// profileHome is where the login profiles of --app's users are kept: the
// default app's in --home, another app's in <home>/apps/<app>.
func (a *app) profileHome() string {
	if a.g.app == "" || a.g.app == ids.DefaultApp || a.g.home == "" {
		return a.g.home
	}
	return filepath.Join(a.g.home, "apps", a.g.app)
}

// saveToken keeps a token in user's profile, creating the profile if needed.
func (a *app) saveToken(user, token string, expires time.Time) (*profile, error) {
	p, err := openProfile(a.profileHome(), user)
	if err != nil {
		return nil, err
	}
	p.Token, p.ExpiresAt = token, expires
	return p, p.save(a.profileHome())
}

// secretFlags binds --secret-file and --admin-secret-file and returns a
// function that mints tokens: user tokens with the auth secret (the file, or
// $ACTORIM_AUTH_SECRET as imnode reads it), admin tokens with the admin
// secret (the file, or $ACTORIM_ADMIN_SECRET). Secrets are never taken from
// the command line, where every local user can read them (ps).
func (a *app) secretFlags(fs *flag.FlagSet) minter {
	file := fs.String("secret-file", "", "file holding the nodes' user token secret, e.g. <data>/auth.secret of a standalone node (default $ACTORIM_AUTH_SECRET)")
	adminFile := fs.String("admin-secret-file", "", "file holding the nodes' admin secret, e.g. <data>/admin.secret (default $ACTORIM_ADMIN_SECRET)")
	issuer := fs.String("issuer", "", "iss of the token, when the nodes require one (--token-issuer)")
	audience := fs.String("audience", "", "aud of the token, when the nodes require one (--token-audience)")
	return func(user string, admin bool, ttl time.Duration) (string, time.Time, error) {
		path, env, flagName := *file, "ACTORIM_AUTH_SECRET", "--secret-file"
		if admin {
			path, env, flagName = *adminFile, "ACTORIM_ADMIN_SECRET", "--admin-secret-file"
		}
		s := os.Getenv(env)
		if path != "" {
			b, err := os.ReadFile(path)
			if err != nil {
				return "", time.Time{}, err
			}
			s = strings.TrimSpace(string(b))
		}
		if s == "" {
			return "", time.Time{}, fmt.Errorf("no signing secret: give %s or $%s", flagName, env)
		}
		opts := []auth.Option{auth.WithMaxLifetime(max(ttl, auth.DefaultMaxLifetime))}
		if !admin {
			opts = append(opts, auth.WithIssuer(*issuer), auth.WithAudience(*audience))
		}
		tokens, err := auth.NewTokens([]byte(s), 0, opts...)
		if err != nil {
			return "", time.Time{}, err
		}
		if !admin && a.g.app != "" {
			// An app's users' tokens carry its id and are signed with its
			// secret (the secret file is then the app's).
			return tokens.IssueApp(a.g.app, user, ttl)
		}
		return tokens.IssueFor(user, admin, ttl)
	}
}

func (a *app) sendCmd() *ffcli.Command {
	fs := a.flagSet("send")
	emoji := fs.String("emoji", "", "send this emoji or sticker `CODE` instead of text")
	custom := fs.String("custom", "", "send an application payload of this `TYPE` (with --data)")
	data := fs.String("data", "", "the custom payload, a `JSON` document")
	var mf mediaFlags
	fs.StringVar(&mf.path, "file", "", "upload the file at `PATH` (resumably, progress on stderr) and send it: as an image, audio, video or file by the type the node sniffs")
	fs.StringVar(&mf.fileID, "file-id", "", "send the file of this `ID`, uploaded before (by send --file), instead of uploading")
	fs.StringVar(&mf.caption, "caption", "", "with --file: a `TEXT` shown with it")
	fs.BoolVar(&mf.voice, "voice", false, "with --file: an audio file sent as a voice note")
	fs.DurationVar(&mf.duration, "duration", 0, "with --file: the audio's or video's `length`, as the client declares it")
	group := fs.Bool("group", false, "TO is a group id, not a user")
	silent := fs.Bool("silent", false, "deliver without alerting: no notification, no offline push")
	cmid := fs.String("client-msg-id", "", "client message `ID`; reuse a printed one to retry without a duplicate (default: random)")
	platform := platformFlag(fs)
	return a.command(fs, "--as USER send TO (TEXT... | --emoji CODE | --custom TYPE --data JSON | (--file PATH | --file-id ID) [--caption TEXT] [--voice]) [--group] [--silent]",
		"send a message, or upload a file and send it", 1, -1,
		func(ctx context.Context, args []string) error {
			var content *clientpb.Content
			var file *client.File
			var err error
			if mf.path != "" || mf.fileID != "" {
				if len(args) > 1 || *emoji != "" || *custom != "" || *data != "" || (mf.path != "" && mf.fileID != "") {
					return errors.New("--file (or --file-id) goes alone: give its text with --caption")
				}
				var f client.File
				if content, f, err = a.uploadContent(ctx, mf); err != nil {
					return err
				}
				file = &f
			} else {
				if mf.caption != "" || mf.voice || mf.duration != 0 {
					return errors.New("--caption, --voice and --duration go with --file or --file-id")
				}
				if content, err = messageContent(args[1:], *emoji, *custom, *data); err != nil {
					return err
				}
			}
			id := *cmid
			if id == "" {
				id = "imctl-" + randomHex(8)
			}
			s := &clientpb.Send{ClientMsgId: id, To: args[0], Content: content, Silent: *silent}
			if *group {
				s.ConversationType = clientpb.ConversationType_CONVERSATION_TYPE_GROUP
			}
			var ack *clientpb.SendAck
			err = a.withConn(ctx, *platform, func(ctx context.Context, c *client.Conn) error {
				ack, err = sendRetrying(ctx, c, s)
				return err
			})
			var e *client.Error
			if err != nil && (!errors.As(err, &e) || e.Code == clientpb.ErrorCode_ERR_UNAVAILABLE) {
				if file != nil { // uploaded already: no need to again
					return fmt.Errorf("%w (retry with --file-id %s --client-msg-id %s)", err, file.ID, id)
				}
				return fmt.Errorf("%w (retry with --client-msg-id %s)", err, id)
			} else if err != nil {
				return err
			}
			dup := ""
			if ack.GetDuplicate() {
				dup = " (duplicate: sent before)"
			}
			if file != nil {
				ackJSON, err := wire.MarshalJSON(ack)
				if err != nil {
					return err
				}
				return a.print(map[string]any{"file": file, "ack": json.RawMessage(ackJSON)},
					"sent %s %s (%s, %s) as file %s: seq %d, msg %d in %s, client msg id %s%s\n",
					client.MediaKind(file.MIMEType), file.Name, file.MIMEType, humanBytes(file.Size), file.ID,
					ack.GetSeq(), ack.GetMsgId(), ack.GetConversationId(), ack.GetClientMsgId(), dup)
			}
			return a.print(ack, "sent seq %d, msg %d in %s, client msg id %s%s\n",
				ack.GetSeq(), ack.GetMsgId(), ack.GetConversationId(), ack.GetClientMsgId(), dup)
		})
}

// messageContent builds the one kind of content the send flags ask for.
func messageContent(words []string, emoji, custom, data string) (*clientpb.Content, error) {
	kinds := 0
	for _, given := range []bool{len(words) > 0, emoji != "", custom != ""} {
		if given {
			kinds++
		}
	}
	switch {
	case kinds != 1:
		return nil, errors.New("send needs exactly one of TEXT, --emoji CODE or --custom TYPE --data JSON")
	case (custom != "") != (data != ""):
		return nil, errors.New("--custom and --data go together")
	case custom != "":
		return client.Custom(custom, data), nil
	case emoji != "":
		return client.Emoji(emoji), nil
	}
	return client.Text(strings.Join(words, " ")), nil
}

// sendRetrying sends s, waiting out rate limits. Retries keep the client
// message id, so the server never stores the message twice.
func sendRetrying(ctx context.Context, c *client.Conn, s *clientpb.Send) (*clientpb.SendAck, error) {
	for {
		ack, err := c.Send(ctx, s)
		var e *client.Error
		if !errors.As(err, &e) || e.Code != clientpb.ErrorCode_ERR_RATE_LIMITED {
			return ack, err
		}
		select {
		case <-time.After(e.RetryAfter):
		case <-ctx.Done():
			return nil, err
		}
	}
}

func (a *app) listenCmd() *ffcli.Command {
	fs := a.flagSet("listen")
	fromStart := fs.Bool("from-start", false, "replay the timeline from seq 1 instead of resuming after the last seq seen")
	count := fs.Int("count", 0, "exit after `N` entries (0: no limit)")
	limit := fs.Duration("for", 0, "exit after this `duration` (0: no limit)")
	platform := platformFlag(fs)
	return a.command(fs, "--as USER listen [--from-start] [--count N] [--for DURATION]",
		"print entries as they arrive and acknowledge them", 0, 0,
		func(ctx context.Context, _ []string) error {
			p, err := a.asProfile()
			if err != nil {
				return err
			}
			lastSeq := p.LastSeq
			if *fromStart {
				lastSeq = new(uint64)
			}
			dctx, cancel := a.deadline(ctx)
			c, ok, err := a.dial(dctx, p, p.DeviceID, *platform, lastSeq)
			cancel()
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stderr, "imctl: listening as %s (device %s) from seq %d; Ctrl-C to stop\n",
				p.UserID, p.DeviceID, ok.GetStreamFromSeq())
			var seen uint64
			if lastSeq != nil {
				seen = *lastSeq
			}
			return a.listen(ctx, c, p, seen, *count, *limit)
		})
}

// listen prints entries after seen until count entries, the time limit, or
// ctx (Ctrl-C) end it cleanly, or the server closes the connection.
func (a *app) listen(ctx context.Context, c *client.Conn, p *profile, seen uint64, count int, limit time.Duration) error {
	var timeUp <-chan time.Time
	if limit > 0 {
		t := time.NewTimer(limit)
		defer t.Stop()
		timeUp = t.C
	}
	for n := 0; count == 0 || n < count; {
		select {
		case <-ctx.Done():
			_ = c.Close()
			return nil
		case <-timeUp:
			_ = c.Close()
			return nil
		case push, ok := <-c.Pushes():
			if !ok {
				return closeError(c)
			}
			var last uint64
			for _, e := range push.GetEntries() {
				if e.GetSeq() <= seen || (count > 0 && n == count) {
					continue // resent after a lost ack, or beyond --count
				}
				if err := a.print(e, "%s\n", entryLine(e)); err != nil {
					return err
				}
				last, seen = e.GetSeq(), e.GetSeq()
				n++
			}
			if last == 0 {
				continue
			}
			if err := c.Ack(last); err != nil {
				return fmt.Errorf("ack seq %d: %w", last, err)
			}
			p.LastSeq = &last
			if err := p.save(a.profileHome()); err != nil {
				return err
			}
		}
	}
	_ = c.Close()
	return nil
}

// closeError says why the server ended the connection.
func closeError(c *client.Conn) error {
	code, reason, kick := c.CloseStatus()
	switch {
	case kick != nil:
		return fmt.Errorf("kicked (close %d): %s: %s", code, kick.GetReason(), kick.GetMessage())
	case code != 0:
		return fmt.Errorf("connection closed by the server: %d %s", code, reason)
	}
	return errors.New("connection lost")
}

func (a *app) syncCmd() *ffcli.Command {
	fs := a.flagSet("sync")
	after := fs.Uint64("after", 0, "read the entries after this `seq`")
	limit := fs.Uint("limit", 0, "at most `N` entries, 1 to 500 (0: the server's default, 100)")
	platform := platformFlag(fs)
	return a.command(fs, "--as USER sync [--after SEQ] [--limit N]", "read the timeline after a seq, oldest first", 0, 0,
		func(ctx context.Context, _ []string) error {
			var res *clientpb.SyncResult
			err := a.withConn(ctx, *platform, func(ctx context.Context, c *client.Conn) (err error) {
				res, err = c.Sync(ctx, *after, uint32(*limit))
				return err
			})
			if err != nil {
				return err
			}
			if a.g.json {
				return a.print(res, "")
			}
			for _, e := range res.GetEntries() {
				fmt.Fprintln(a.stdout, entryLine(e))
			}
			fmt.Fprintf(a.stdout, "latest seq %d", res.GetLatestSeq())
			if es := res.GetEntries(); res.GetHasMore() && len(es) > 0 {
				fmt.Fprintf(a.stdout, ", more after seq %d (--after %d)", es[len(es)-1].GetSeq(), es[len(es)-1].GetSeq())
			}
			_, err = fmt.Fprintln(a.stdout)
			return err
		})
}

func (a *app) historyCmd() *ffcli.Command {
	fs := a.flagSet("history")
	with := fs.String("with", "", "the other `USER` of a private conversation")
	before := fs.Uint64("before", 0, "entries with seq below this `seq` (0: from the newest)")
	limit := fs.Uint("limit", 0, "at most `N` entries, 1 to 500 (0: the server's default, 50)")
	usage := "--as USER history (--with PEER | CONVERSATION_ID) [--before SEQ] [--limit N]"
	return a.command(fs, usage, "page a conversation backwards, newest first", 0, 1,
		func(ctx context.Context, args []string) error {
			p, err := a.asProfile()
			if err != nil {
				return err
			}
			var conv string
			switch {
			case *with != "" && len(args) == 0:
				conv = ids.Private(p.UserID, *with)
			case *with == "" && len(args) == 1:
				conv = args[0]
			default:
				return fmt.Errorf("usage: imctl %s", usage)
			}
			ctx, cancel := a.deadline(ctx)
			defer cancel()
			res, err := a.http(p.Token).History(ctx, conv, *before, uint32(*limit))
			if err != nil {
				return err
			}
			if a.g.json {
				return a.print(res, "")
			}
			es := res.GetEntries()
			for _, e := range es {
				fmt.Fprintln(a.stdout, entryLine(e))
			}
			if res.GetHasMore() && len(es) > 0 {
				fmt.Fprintf(a.stdout, "more before seq %d (--before %d)\n", es[len(es)-1].GetSeq(), es[len(es)-1].GetSeq())
			}
			return nil
		})
}

// platformFlag binds --platform; the default is desktop.
func platformFlag(fs *flag.FlagSet) *clientpb.Platform {
	p := clientpb.Platform_PLATFORM_DESKTOP
	fs.Func("platform", "device `platform`: web, ios, android or desktop (default desktop)", func(s string) error {
		v, ok := clientpb.Platform_value["PLATFORM_"+strings.ToUpper(s)]
		if !ok || v == 0 {
			return errors.New("must be web, ios, android or desktop")
		}
		p = clientpb.Platform(v)
		return nil
	})
	return &p
}

// asProfile loads the profile of --as.
func (a *app) asProfile() (*profile, error) {
	if a.g.as == "" {
		return nil, errors.New("this command needs --as USER (or IMCTL_AS)")
	}
	p, err := loadProfile(a.profileHome(), a.g.as)
	if err != nil {
		return nil, err
	}
	if time.Now().After(p.ExpiresAt) {
		return nil, fmt.Errorf("the token of %s expired at %s: run imctl login %s", p.UserID, p.ExpiresAt.Format(time.RFC3339), p.UserID)
	}
	return p, nil
}

// oneShot logs the --as profile in for a command of a few requests. It uses
// a device id of its own (the profile's plus ":cmd") so that it does not
// replace, and kick, a listen of the same profile.
// withConn runs fn on a logged-in one-shot connection within the command's
// deadline, closing the connection afterwards.
func (a *app) withConn(ctx context.Context, platform clientpb.Platform, fn func(context.Context, *client.Conn) error) error {
	ctx, cancel := a.deadline(ctx)
	defer cancel()
	c, err := a.oneShot(ctx, platform)
	if err != nil {
		return err
	}
	defer c.Close()
	return fn(ctx, c)
}

func (a *app) oneShot(ctx context.Context, platform clientpb.Platform) (*client.Conn, error) {
	p, err := a.asProfile()
	if err != nil {
		return nil, err
	}
	c, _, err := a.dial(ctx, p, p.DeviceID+":cmd", platform, nil)
	return c, err
}

// dial opens the WebSocket and logs in as device with p's token.
func (a *app) dial(ctx context.Context, p *profile, device string, platform clientpb.Platform, lastSeq *uint64) (*client.Conn, *clientpb.LoginOK, error) {
	if a.g.codec != "proto" && a.g.codec != "json" {
		return nil, nil, fmt.Errorf("--codec must be proto or json, not %q", a.g.codec)
	}
	u, err := url.Parse(a.g.server)
	if err != nil {
		return nil, nil, fmt.Errorf("--server: %w", err)
	}
	switch u.Scheme {
	case "http":
		u.Scheme = "ws"
	case "https":
		u.Scheme = "wss"
	default:
		return nil, nil, fmt.Errorf("--server must be an http:// or https:// URL, not %q", a.g.server)
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + "/ws"
	c, err := client.Dial(ctx, u.String(), client.Options{JSON: a.g.codec == "json", TLS: a.tlsConfig()})
	if err != nil {
		return nil, nil, err
	}
	ok, err := c.Login(ctx, p.Token, device, platform, lastSeq)
	if err != nil {
		_ = c.Close()
		return nil, nil, err
	}
	return c, ok, nil
}

func (a *app) http(token string) *client.HTTP {
	h := &client.HTTP{BaseURL: strings.TrimSuffix(a.g.server, "/"), Token: token, App: a.g.app}
	if tc := a.tlsConfig(); tc != nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.TLSClientConfig = tc
		h.Client = &http.Client{Transport: t}
	}
	return h
}

func (a *app) tlsConfig() *tls.Config {
	if !a.g.insecure {
		return nil
	}
	return &tls.Config{InsecureSkipVerify: true} // asked for with --insecure
}

func (a *app) deadline(ctx context.Context) (context.Context, context.CancelFunc) {
	if a.g.timeout <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, a.g.timeout)
}

// print writes v as JSON with --json (a protocol message in its protojson
// form), else the formatted text.
func (a *app) print(v any, format string, args ...any) error {
	if !a.g.json {
		_, err := fmt.Fprintf(a.stdout, format, args...)
		return err
	}
	if m, ok := v.(proto.Message); ok {
		data, err := wire.MarshalJSON(m)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(a.stdout, "%s\n", data)
		return err
	}
	return json.NewEncoder(a.stdout).Encode(v)
}

// fail reports err on stderr: "imctl: ERR_CODE: message", or with --json
// {"error": {"code": ..., "message": ...}} as the HTTP API does.
func (a *app) fail(err error) {
	if !a.g.json {
		fmt.Fprintln(a.stderr, "imctl:", err)
		return
	}
	out := map[string]string{"message": err.Error()}
	var e *client.Error
	if errors.As(err, &e) {
		out["code"] = e.Code.String()
		if err == error(e) {
			out["message"] = e.Message
		}
	}
	_ = json.NewEncoder(a.stderr).Encode(map[string]any{"error": out})
}

// entryLine renders an entry for people: "[seq 5] 15:04:05 alice -> bob: hello".
func entryLine(e *clientpb.Entry) string {
	m := e.GetMessage()
	if m == nil {
		return fmt.Sprintf("[seq %d] (an entry kind this imctl does not know)", e.GetSeq())
	}
	t := time.UnixMilli(int64(m.GetSentAtMs()))
	layout := "15:04:05"
	if t.Format(time.DateOnly) != time.Now().Format(time.DateOnly) {
		layout = time.DateTime
	}
	var text string
	switch k := m.GetContent().GetKind().(type) {
	case *clientpb.Content_Text:
		text = k.Text
	case *clientpb.Content_Emoji:
		text = "[emoji] " + k.Emoji
	case *clientpb.Content_Custom:
		text = "[" + k.Custom.GetType() + "] " + k.Custom.GetJson()
	default:
		if line, ok := mediaText(m); ok {
			text = line
		}
	}
	return fmt.Sprintf("[seq %d] %s %s -> %s: %s", e.GetSeq(), t.Format(layout), m.GetFrom(), m.GetTo(), text)
}
