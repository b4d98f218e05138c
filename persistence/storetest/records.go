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

// RecordStore is what the Records suite runs over.
type RecordStore interface {
	persistence.Records
	io.Closer
}

// Records is the conformance suite of persistence.Records.
func Records(t *testing.T, open func(t *testing.T) RecordStore, known ...Known) {
	runSuite(t, open, known, []test[RecordStore]{
		{"State", testState},
		{"Sets", testSets},
		{"CanceledContext", func(t *testing.T, s RecordStore) { checkCanceled(t, recordCalls(s)) }},
		{"Closed", func(t *testing.T, s RecordStore) { checkClosed(t, s, recordCalls(s)) }},
	})
}

// recordCalls returns a call of every Records method, by name.
func recordCalls(s persistence.Records) map[string]call {
	return map[string]call{
		"GetState": func(ctx context.Context) error {
			_, err := s.GetState(ctx, "us/alice")
			return err
		},
		"PutState": func(ctx context.Context) error {
			return s.PutState(ctx, "us/alice", []byte("v"))
		},
		"DeleteState": func(ctx context.Context) error {
			return s.DeleteState(ctx, "us/alice")
		},
		"AddToSet": func(ctx context.Context) error {
			return s.AddToSet(ctx, "rc/p:a:b", "1")
		},
		"SetMembers": func(ctx context.Context) error {
			_, err := s.SetMembers(ctx, "rc/p:a:b")
			return err
		},
	}
}

func testState(t *testing.T, s RecordStore) {
	ctx := context.Background()
	if _, err := s.GetState(ctx, "us/alice"); !errors.Is(err, persistence.ErrNotFound) {
		t.Fatalf("GetState(missing) = %v, want ErrNotFound", err)
	}
	for _, v := range []string{"one", "two, longer"} {
		if err := s.PutState(ctx, "us/alice", []byte(v)); err != nil {
			t.Fatalf("PutState: %v", err)
		}
		got, err := s.GetState(ctx, "us/alice")
		if err != nil || string(got) != v {
			t.Fatalf("GetState = %q, %v; want %q", got, err, v)
		}
	}
	if err := s.DeleteState(ctx, "us/alice"); err != nil {
		t.Fatalf("DeleteState: %v", err)
	}
	if _, err := s.GetState(ctx, "us/alice"); !errors.Is(err, persistence.ErrNotFound) {
		t.Fatalf("GetState(deleted) = %v, want ErrNotFound", err)
	}
	if err := s.DeleteState(ctx, "us/nobody"); err != nil {
		t.Fatalf("DeleteState(missing) = %v, want nil", err)
	}
}

func testSets(t *testing.T, s RecordStore) {
	ctx := context.Background()
	if m, err := s.SetMembers(ctx, "rc/p:a:b"); err != nil || len(m) != 0 {
		t.Fatalf("SetMembers(missing) = %v, %v", m, err)
	}
	// Concurrent adds never lose a member.
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.AddToSet(ctx, "rc/p:a:b", fmt.Sprint(1000+i)); err != nil {
				t.Errorf("AddToSet: %v", err)
			}
		}()
	}
	wg.Wait()
	if err := s.AddToSet(ctx, "rc/p:a:b", "1000"); err != nil { // again: no duplicate
		t.Fatal(err)
	}
	if err := s.AddToSet(ctx, "rc/p:a:bb", "other"); err != nil { // a set whose name extends the first
		t.Fatal(err)
	}
	m, err := s.SetMembers(ctx, "rc/p:a:b")
	if err != nil || len(m) != 50 || !slices.IsSorted(m) || m[0] != "1000" || m[49] != "1049" {
		t.Fatalf("SetMembers = %v (%d), %v; want 1000..1049 sorted", m, len(m), err)
	}
}
