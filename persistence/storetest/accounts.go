package storetest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"testing"

	"actorim/persistence"
)

// AccountStore is what the Accounts suite runs over.
type AccountStore interface {
	persistence.Accounts
	io.Closer
}

// Accounts is the conformance suite of persistence.Accounts.
func Accounts(t *testing.T, open func(t *testing.T) AccountStore, known ...Known) {
	runSuite(t, open, known, []test[AccountStore]{
		{"CreateAndGet", testAccounts},
		{"ConcurrentCreate", testConcurrentCreate},
		{"InvalidIDs", testInvalidIDs},
		{"Users", testUsers},
		{"CanceledContext", func(t *testing.T, s AccountStore) { checkCanceled(t, accountCalls(s)) }},
		{"Closed", func(t *testing.T, s AccountStore) { checkClosed(t, s, accountCalls(s)) }},
	})
}

// accountCalls returns a call of every Accounts method, by name.
func accountCalls(s persistence.Accounts) map[string]call {
	return map[string]call{
		"CreateAccount": func(ctx context.Context) error {
			return s.CreateAccount(ctx, persistence.Account{UserID: "carol"})
		},
		"GetAccount": func(ctx context.Context) error {
			_, err := s.GetAccount(ctx, "alice")
			return err
		},
		"Users": func(ctx context.Context) error {
			_, err := s.Users(ctx, "", 10)
			return err
		},
	}
}

func testAccounts(t *testing.T, s AccountStore) {
	ctx := context.Background()
	want := persistence.Account{UserID: "alice", PasswordHash: "$argon2id$v=19$m=65536,t=3,p=2$c2FsdA$aGFzaA", CreatedAtMs: 1700000000123}
	if err := s.CreateAccount(ctx, want); err != nil {
		t.Fatalf("CreateAccount: %v", err)
	}
	if err := s.CreateAccount(ctx, persistence.Account{UserID: "app.user@x-1_2", CreatedAtMs: 5}); err != nil {
		t.Fatalf("CreateAccount with every allowed character: %v", err)
	}
	got, err := s.GetAccount(ctx, "alice")
	if err != nil || got != want {
		t.Fatalf("GetAccount = %+v, %v; want %+v", got, err, want)
	}
	err = s.CreateAccount(ctx, persistence.Account{UserID: "alice", PasswordHash: "other"})
	if !errors.Is(err, persistence.ErrExists) {
		t.Fatalf("duplicate CreateAccount error = %v, want ErrExists", err)
	}
	if got, err := s.GetAccount(ctx, "alice"); err != nil || got != want {
		t.Fatalf("after duplicate CreateAccount, GetAccount = %+v, %v; want the original %+v", got, err, want)
	}
	if _, err := s.GetAccount(ctx, "nobody"); !errors.Is(err, persistence.ErrNotFound) {
		t.Fatalf("GetAccount(unknown) error = %v, want ErrNotFound", err)
	}
	// A prefix of an existing id is a different, unknown account.
	if _, err := s.GetAccount(ctx, "alic"); !errors.Is(err, persistence.ErrNotFound) {
		t.Fatalf("GetAccount(alic) error = %v, want ErrNotFound", err)
	}
}

// testConcurrentCreate: of concurrent creations of one id, exactly one
// succeeds, and the account holds what it stored.
func testConcurrentCreate(t *testing.T, s AccountStore) {
	const racers = 16
	errs := make([]error, racers)
	var wg sync.WaitGroup
	for i := range racers {
		wg.Go(func() {
			errs[i] = s.CreateAccount(context.Background(), persistence.Account{UserID: "dave", PasswordHash: fmt.Sprint(i), CreatedAtMs: 1})
		})
	}
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Fatalf("racers %d and %d both created dave", winner, i)
		case err == nil:
			winner = i
		case !errors.Is(err, persistence.ErrExists):
			t.Fatalf("racer %d: %v, want ErrExists", i, err)
		}
	}
	if winner < 0 {
		t.Fatal("no racer created dave")
	}
	if a, err := s.GetAccount(context.Background(), "dave"); err != nil || a.PasswordHash != fmt.Sprint(winner) {
		t.Fatalf("GetAccount(dave) = %+v, %v; want the winner's (%d)", a, err, winner)
	}
}

// testInvalidIDs: no account can have an id that persistence.ValidID refuses.
func testInvalidIDs(t *testing.T, s AccountStore) {
	for _, id := range []string{"", "a/b"} {
		if err := s.CreateAccount(context.Background(), persistence.Account{UserID: id}); err == nil {
			t.Errorf("CreateAccount(%q) succeeded", id)
		}
	}
}

func testUsers(t *testing.T, s AccountStore) {
	ctx := context.Background()
	CreateAccounts(t, s, "bob", "alice", "#g:team", "carol", "dave")
	got, err := s.Users(ctx, "", 3)
	if err != nil || !slices.Equal(got, []string{"alice", "bob", "carol"}) {
		t.Fatalf("Users(\"\", 3) = %v, %v", got, err)
	}
	got, err = s.Users(ctx, "carol", 10)
	if err != nil || !slices.Equal(got, []string{"dave"}) {
		t.Fatalf("Users(carol, 10) = %v, %v", got, err)
	}
	// The internal accounts are listed apart.
	CreateAccounts(t, s, "#g:alpha", "#broadcast", "#g:beta")
	got, err = s.InternalAccounts(ctx, "", 10)
	if err != nil || !slices.Equal(got, []string{"#broadcast", "#g:alpha", "#g:beta", "#g:team"}) {
		t.Fatalf("InternalAccounts(\"\", 10) = %v, %v", got, err)
	}
	got, err = s.InternalAccounts(ctx, "#g:", 2)
	if err != nil || !slices.Equal(got, []string{"#g:alpha", "#g:beta"}) {
		t.Fatalf("InternalAccounts(#g:, 2) = %v, %v", got, err)
	}
	got, err = s.InternalAccounts(ctx, "#g:team", 10)
	if err != nil || len(got) != 0 {
		t.Fatalf("InternalAccounts(#g:team, 10) = %v, %v", got, err)
	}
}
