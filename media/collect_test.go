package media

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"

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

// TestMediaFileIDReadsAnyMediaKind checks the default Deps.FileIDOf on a
// Content of the protocol's shape (built here: the generated one on this
// branch has no media kinds yet): the file_id of any Media kind, nothing
// from other kinds, even one with a file_id field.
func TestMediaFileIDReadsAnyMediaKind(t *testing.T) {
	str, msg := descriptorpb.FieldDescriptorProto_TYPE_STRING.Enum(), descriptorpb.FieldDescriptorProto_TYPE_MESSAGE.Enum()
	field := func(name string, n int32, typ *descriptorpb.FieldDescriptorProto_Type, typeName string, oneof bool) *descriptorpb.FieldDescriptorProto {
		f := &descriptorpb.FieldDescriptorProto{Name: proto.String(name), Number: proto.Int32(n), Type: typ,
			Label: descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum()}
		if typeName != "" {
			f.TypeName = proto.String(typeName)
		}
		if oneof {
			f.OneofIndex = proto.Int32(0)
		}
		return f
	}
	fd, err := protodesc.NewFile(&descriptorpb.FileDescriptorProto{
		Name: proto.String("t.proto"), Package: proto.String("t"), Syntax: proto.String("proto3"),
		MessageType: []*descriptorpb.DescriptorProto{
			{Name: proto.String("Media"), Field: []*descriptorpb.FieldDescriptorProto{field("file_id", 1, str, "", false)}},
			{Name: proto.String("Custom"), Field: []*descriptorpb.FieldDescriptorProto{field("file_id", 1, str, "", false)}},
			{Name: proto.String("Content"), Field: []*descriptorpb.FieldDescriptorProto{
				field("text", 1, str, "", true),
				field("custom", 3, msg, ".t.Custom", true),
				field("image", 5, msg, ".t.Media", true),
				field("file", 8, msg, ".t.Media", true),
			}, OneofDecl: []*descriptorpb.OneofDescriptorProto{{Name: proto.String("kind")}}},
		},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	content := fd.Messages().ByName("Content")
	for kind, want := range map[string]string{"image": "id-image", "file": "id-file", "text": "", "custom": ""} {
		c := dynamicpb.NewMessage(content)
		f := content.Fields().ByName(protoreflect.Name(kind))
		if f.Message() == nil {
			c.Set(f, protoreflect.ValueOfString("id-"+kind))
		} else {
			m := dynamicpb.NewMessage(f.Message())
			m.Set(f.Message().Fields().ByName("file_id"), protoreflect.ValueOfString("id-"+kind))
			c.Set(f, protoreflect.ValueOfMessage(m))
		}
		if got := contentFileID(c); got != want {
			t.Errorf("%s: %q, want %q", kind, got, want)
		}
	}
	if got := contentFileID(dynamicpb.NewMessage(content)); got != "" {
		t.Errorf("empty content: %q", got)
	}
	if got := mediaFileID(&clientpb.Message{}); got != "" {
		t.Errorf("message without content: %q", got)
	}
}
