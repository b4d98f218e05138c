// Command imctl is a command-line client of actorim for people and scripts.
//
//	imctl register USER --password P          create an account (POST /v1/register)
//	imctl login USER --password P             get a token and save it in the profile <home>/USER.json
//	imctl token USER --secret-file F [--save] mint a token locally, as an application server does
//	imctl provision USER --admin-secret-file F  create a user with an admin token (POST /v1/admin/users)
//	imctl revoke USER --admin-secret-file F   revoke the user's tokens, disconnecting their devices
//	imctl [--app A] users list|search Q       list an app's users by id, or find them by id or nickname prefix (--after, --limit)
//	imctl [--app A] users disable|enable USER disable a user (logins refused, devices disconnected), or enable them
//	imctl [--app A] users kick USER [--device D]  disconnect one device of a user, or all of them
//	imctl --as USER send TO TEXT...           send text (or --emoji CODE, or --custom TYPE --data JSON); --group for a group
//	imctl --as USER send TO --file PATH       upload a file (resumable) and send it as an image, audio, video or file
//	                                          by its sniffed type; --caption TEXT, --voice for a voice note
//	imctl --as USER download FILE_ID --msg ID [-o PATH]  download a file, resuming a partial one; checks its SHA-256
//	imctl --as USER listen                    print incoming entries as they arrive, acknowledging them
//	imctl --as USER sync [--after SEQ]        read the timeline after a seq
//	imctl --as USER history --with PEER       page a conversation backwards, newest first
//	imctl --as USER profile set --nickname N  change your profile (also --avatar URL, --extra JSON; only those given)
//	imctl --as USER profile get USER...       print users' profiles (--admin: any user's whole profile)
//	imctl --as USER profile search QUERY      find users by exact id or nickname prefix (--limit, --cursor)
//
// A profile keeps the user's token, a device id generated once, and the last
// seq listen acknowledged, so the next listen resumes where this one stopped.
// An upload cut short is remembered beside it (<home>/USER.uploads.json),
// so the same send --file resumes it; a download resumes into the partial
// file it left. listen shows media as "[image cat.jpg 1024x768 120 KiB
// file=<id> msg=<id>] caption".
// Global flags (--server, --home, --as, --json, --codec, --insecure,
// --timeout) may come before or after the command name and can be set by
// environment variables: IMCTL_SERVER, IMCTL_HOME, IMCTL_AS, and so on. With
// --json every command prints one JSON document (listen: one entry per line)
// and errors are printed to stderr as {"error": {"code": ..., "message": ...}}.
// Any failure exits with status 1.
//
// Secrets come from files or the environment ($ACTORIM_AUTH_SECRET,
// $ACTORIM_ADMIN_SECRET), never from the command line. The admin commands
// (provision, revoke, users, apps, analytics) talk to --server, which is the node's
// --admin-listen address when it has one.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
