package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"actorim/apps"
)

// TestImctlApps: imctl creates, lists, configures, disables, enables and
// rotates apps through the admin API, and with --app registers, logs in,
// provisions and mints tokens for an app's users, who chat in their app.
func TestImctlApps(t *testing.T) {
	bin := buildImctl(t)
	adm := newImctl(t, bin)
	adm.env = []string{"ACTORIM_ADMIN_SECRET=" + testAdminSecret}
	id := newAppID("cli")
	var created apps.App
	adm.okJSON(&created, "apps", "create", id, "--settings", `{"device_policy":"multi","max_content_bytes":500}`)
	if created.ID != id || len(created.Secrets) != 1 || created.Settings.MaxContentBytes != 500 {
		t.Fatalf("created %+v", created)
	}
	if out := adm.ok("apps", "list"); !strings.Contains(out, id+"\tenabled") || !strings.HasPrefix(out, "default\t") {
		t.Fatalf("apps list printed %q", out)
	}
	if _, stderr, err := adm.run("apps", "set", id, "--settings", `{"device_policy":"some"}`); exitCode(err) != 1 || !strings.Contains(stderr, "ERR_BAD_REQUEST") {
		t.Fatalf("bad settings: exit %d, stderr %q", exitCode(err), stderr)
	}
	var got apps.App
	adm.okJSON(&got, "apps", "get", id)
	if got.Settings.MaxContentBytes != 500 {
		t.Fatalf("get %+v", got)
	}

	// An app's users, named by --app.
	alice, bob := newImctl(t, bin), newImctl(t, bin)
	alice.ok("--app", id, "register", "alice", "--password", "pw-alice-1")
	bob.ok("--app", id, "register", "bob", "--password", "pw-bob-1")
	alice.ok("--app", id, "login", "alice", "--password", "pw-alice-1")
	if _, err := os.Stat(filepath.Join(alice.home, "apps", id, "alice.json")); err != nil {
		t.Fatalf("the app user's login profile: %v", err)
	}
	alice.ok("--app", id, "--as", "alice", "send", "bob", "hello", "in", "the", "app")

	secretFile := filepath.Join(t.TempDir(), "app.secret")
	if err := os.WriteFile(secretFile, []byte(created.Secrets[0]), 0o600); err != nil {
		t.Fatal(err)
	}
	carol := newImctl(t, bin)
	carol.env = adm.env
	carol.ok("--app", id, "provision", "carol")
	carol.ok("--app", id, "token", "carol", "--secret-file", secretFile, "--save")
	carol.ok("--app", id, "--as", "carol", "send", "alice", "hi", "from", "carol")

	adm.ok("apps", "disable", id)
	if _, stderr, err := bob.run("--app", id, "login", "bob", "--password", "pw-bob-1"); exitCode(err) != 1 || !strings.Contains(stderr, "ERR_FORBIDDEN") {
		t.Fatalf("login to a disabled app: exit %d, stderr %q", exitCode(err), stderr)
	}
	adm.ok("apps", "enable", id)
	bob.ok("--app", id, "login", "bob", "--password", "pw-bob-1")
	var rotated apps.App
	if err := json.Unmarshal([]byte(adm.ok("apps", "rotate-secret", id)), &rotated); err != nil || len(rotated.Secrets) != 2 || rotated.Secrets[1] != created.Secrets[0] {
		t.Fatalf("rotate-secret: %+v %v", rotated, err)
	}

	// delete-user erases an app's user; a second time it is unknown.
	if out := adm.ok("--app", id, "delete-user", "carol"); !strings.Contains(out, "deleted user carol") {
		t.Fatalf("delete-user printed %q", out)
	}
	if _, stderr, err := adm.run("--app", id, "delete-user", "carol"); exitCode(err) != 1 || !strings.Contains(stderr, "ERR_NOT_FOUND") {
		t.Fatalf("delete-user of an erased user: exit %d, stderr %q", exitCode(err), stderr)
	}

	// Without the admin secret, nothing is sent.
	if _, stderr, err := newImctl(t, bin).run("apps", "list"); exitCode(err) != 1 || !strings.Contains(stderr, "admin") {
		t.Fatalf("apps list without the admin secret: exit %d, stderr %q", exitCode(err), stderr)
	}
}
