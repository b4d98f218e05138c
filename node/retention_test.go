package node

import (
	"context"
	"strconv"
	"testing"
	"time"

	"actorim/apps"
	"actorim/persistence"
	"actorim/persistence/embedded"
	"actorim/protos/clientpb"
)

type fixedApps []apps.App

func (f fixedApps) List(context.Context) ([]apps.App, error) { return f, nil }

// TestRetentionTrim: a pass trims each timeline of an app with a retention
// below its first entry sent at or after the cutoff, keeps the newest entry
// when all are older, leaves other apps' timelines and a fresh timeline
// alone, and trims nothing more when run again.
func TestRetentionTrim(t *testing.T) {
	ctx := context.Background()
	st, err := embedded.Open(t.TempDir(), embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, u := range []string{"acme:bob", "acme:old", "acme:fresh", "beta:bob", "carol", "#g:team"} {
		if err := st.CreateAccount(ctx, persistence.Account{UserID: u}); err != nil {
			t.Fatal(err)
		}
	}
	var sent []uint64 // times of acme:bob's entries
	appendTo := func(user string, i int) {
		t.Helper()
		res, err := st.Append(ctx, &persistence.AppendRequest{Message: &clientpb.Message{ConversationId: "s:news", ConversationType: clientpb.ConversationType_CONVERSATION_TYPE_SYSTEM,
			Content: &clientpb.Content{Kind: &clientpb.Content_Text{Text: strconv.Itoa(i)}}}, Timelines: []string{user}})
		if err != nil {
			t.Fatal(err)
		}
		if user == "acme:bob" {
			sent = append(sent, res.Entries[0].GetMessage().GetSentAtMs())
		}
		time.Sleep(3 * time.Millisecond) // distinct times
	}
	appendTo("acme:old", 1)
	appendTo("acme:old", 2)
	for i := 1; i <= 3; i++ { // the default app's user and group
		appendTo("carol", i)
		appendTo("#g:team", i)
	}
	for i := 1; i <= 9; i++ {
		appendTo("acme:bob", i)
		appendTo("beta:bob", i)
	}
	// The cutoff falls after entry 6 of acme:bob: entries 1 to 6 go.
	now := time.UnixMilli(int64(sent[6]) + 1000)
	r := newRetention(st, fixedApps{{ID: "default", Settings: apps.Settings{RetentionMs: 1000}},
		{ID: "acme", Settings: apps.Settings{RetentionMs: 1000}}, {ID: "beta"}}, time.Hour, nil, nil)
	// acme:old's, carol's and #g:team's entries are older still; acme:fresh
	// has none.
	if n, err := r.pass(ctx, now); err != nil || n != 4 {
		t.Fatalf("pass: %d timelines trimmed, %v; want 4", n, err)
	}
	first := func(user string) uint64 {
		es, err := st.ReadTimeline(ctx, user, 0, 100)
		if err != nil || len(es) == 0 {
			t.Fatalf("%s: %v %v", user, es, err)
		}
		return es[0].GetSeq()
	}
	if got := first("acme:bob"); got != 7 {
		t.Fatalf("acme:bob starts at seq %d, want 7", got)
	}
	if got := first("acme:old"); got != 2 {
		t.Fatalf("acme:old starts at seq %d, want 2 (its newest entry stays)", got)
	}
	if got := first("#g:team"); got != 3 {
		t.Fatalf("the default app's group #g:team starts at seq %d, want 3", got)
	}
	if got := first("carol"); got != 3 {
		t.Fatalf("the default app's carol starts at seq %d, want 3", got)
	}
	if got := first("beta:bob"); got != 1 {
		t.Fatalf("beta:bob starts at seq %d: an app without retention was trimmed", got)
	}
	if n, err := r.pass(ctx, now); err != nil || n != 0 {
		t.Fatalf("second pass: %d trimmed, %v; want none", n, err)
	}
	// Everything older: acme:bob keeps its newest entry only.
	if _, err := r.pass(ctx, now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got := first("acme:bob"); got != 9 {
		t.Fatalf("acme:bob starts at seq %d after all expired, want 9", got)
	}
}
