package media

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"actorim/protos/clientpb"
)

func TestCollectorDeletesUnsentFiles(t *testing.T) {
	env := newTestService(t)
	ctx := t.Context()
	img := pngBytes(t, 200, 100)
	first := env.upload(t, "alice", "first.png", img) // unsent, collected at 25 h
	sent := env.upload(t, "alice", "sent.bin", randomBytes(3000, 1))
	if err := env.store.MarkMediaSent(ctx, sent.FileID, 1); err != nil {
		t.Fatal(err)
	}
	env.clock.advance(20 * time.Hour)
	second := env.upload(t, "bob", "second.png", img) // the same bytes, 20 h younger
	rec := env.fileOf(t, first.FileID)
	total := first.Size + sent.Size
	if n := env.usage(t, "alice"); n != total {
		t.Fatalf("usage %d, want %d", n, total)
	}

	env.clock.advance(5 * time.Hour) // first is 25 h old, second 5 h
	env.svc.collect(ctx)
	if _, err := env.store.GetMediaFile(ctx, first.FileID); err == nil {
		t.Fatal("unsent file older than the TTL kept")
	}
	env.fileOf(t, second.FileID)
	env.fileOf(t, sent.FileID)
	if n := env.usage(t, "alice"); n != sent.Size {
		t.Fatalf("usage %d after collection, want %d", n, sent.Size)
	}
	// The content and thumbnail objects are bob's now too: kept.
	keys := env.objectKeys(t)
	if !slices.Contains(keys, rec.Blob) || !slices.Contains(keys, rec.ThumbBlob) {
		t.Fatalf("objects %v: %s or %s deleted while referenced", keys, rec.Blob, rec.ThumbBlob)
	}
	res, body := env.request(t, "GET", "/v1/media/"+second.FileID, "bob", nil)
	if res.StatusCode != 200 || sha(body) != sha(img) {
		t.Fatalf("bob's file: %d", res.StatusCode)
	}

	env.clock.advance(20 * time.Hour) // second is 25 h old
	env.svc.collect(ctx)
	env.svc.collect(ctx) // again: nothing more to do, nothing breaks
	keys = env.objectKeys(t)
	if slices.Contains(keys, rec.Blob) || slices.Contains(keys, rec.ThumbBlob) {
		t.Fatalf("objects %v: the last reference went, the objects stay", keys)
	}
	if n := env.usage(t, "bob"); n != 0 {
		t.Fatalf("bob's usage %d", n)
	}
	env.fileOf(t, sent.FileID)
	if res, body := env.request(t, "GET", "/v1/media/"+sent.FileID, "alice", nil); res.StatusCode != 200 || int64(len(body)) != sent.Size {
		t.Fatalf("sent file: %d", res.StatusCode)
	}
	// A new upload of the collected bytes writes a new object.
	again := env.upload(t, "alice", "again.png", img)
	if r := env.fileOf(t, again.FileID); r.Blob == rec.Blob || !slices.Contains(env.objectKeys(t), r.Blob) {
		t.Fatalf("re-upload stored under %s (old %s)", r.Blob, rec.Blob)
	}
}

func TestCollectorRemovesAbandonedUploads(t *testing.T) {
	env := newTestService(t)
	ctx := t.Context()
	old := env.tusCreate(t, "alice", "old.bin", 1000)
	env.tusPatch(t, "alice", old, 0, randomBytes(300, 1))
	fresh := env.tusCreate(t, "alice", "fresh.bin", 500)
	env.svc.collect(ctx)
	if n, _ := env.tusOffset(t, "alice", old); n != 300 {
		t.Fatalf("upload younger than the TTL: offset %d", n)
	}
	// An upload's age is that of its files: make old's a day and an hour old.
	id := old[len(old)-fileIDLen:]
	then := env.clock.Now().Add(-25 * time.Hour)
	for _, p := range []string{id, id + ".info"} {
		if err := os.Chtimes(filepath.Join(env.svc.cfg.Dir, p), then, then); err != nil {
			t.Fatal(err)
		}
	}
	env.svc.collect(ctx)
	if _, status := env.tusOffset(t, "alice", old); status != 404 {
		t.Fatalf("abandoned upload: HEAD %d", status)
	}
	if n := env.usage(t, "alice"); n != 500 {
		t.Fatalf("usage %d, want 500 (fresh's charge only)", n)
	}
	if n, _ := env.tusOffset(t, "alice", fresh); n != 0 {
		t.Fatalf("fresh upload: offset %d", n)
	}
}

// TestMediaFileIDReadsAnyMediaKind: the file id a message carries is the
// file_id of any Media kind, and nothing from other kinds.
func TestMediaFileIDReadsAnyMediaKind(t *testing.T) {
	for _, kind := range []string{clientpb.MediaImage, clientpb.MediaAudio, clientpb.MediaVideo, clientpb.MediaFile} {
		m := &clientpb.Message{Content: clientpb.MediaContent(kind, &clientpb.Media{FileId: "id-" + kind})}
		if got := fileIDOf(m); got != "id-"+kind {
			t.Errorf("%s: %q, want %q", kind, got, "id-"+kind)
		}
	}
	for name, c := range map[string]*clientpb.Content{
		"text":          {Kind: &clientpb.Content_Text{Text: "id-text"}},
		"custom":        {Kind: &clientpb.Content_Custom{Custom: &clientpb.Custom{Type: "file_id", Json: `{"file_id":"x"}`}}},
		"empty content": {},
		"no content":    nil,
	} {
		if got := fileIDOf(&clientpb.Message{Content: c}); got != "" {
			t.Errorf("%s: %q, want none", name, got)
		}
	}
}
