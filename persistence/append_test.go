package persistence

import (
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"actorim/protos/clientpb"
)

// TestCopyMessageCoversAllFields fails when a field is added to Message
// and CopyMessage is not taught to keep it.
func TestCopyMessageCoversAllFields(t *testing.T) {
	m := &clientpb.Message{}
	r := m.ProtoReflect()
	fields := r.Descriptor().Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		switch {
		case fd.IsList():
			r.Set(fd, protoreflect.ValueOfList(r.NewField(fd).List()))
			r.Mutable(fd).List().Append(protoreflect.ValueOfString(string(fd.Name())))
		case fd.Kind() == protoreflect.StringKind:
			r.Set(fd, protoreflect.ValueOfString(string(fd.Name())))
		case fd.Kind() == protoreflect.Uint64Kind:
			r.Set(fd, protoreflect.ValueOfUint64(uint64(i+1)))
		case fd.Kind() == protoreflect.EnumKind:
			r.Set(fd, protoreflect.ValueOfEnum(1))
		case fd.Kind() == protoreflect.BoolKind:
			r.Set(fd, protoreflect.ValueOfBool(true))
		case fd.Kind() == protoreflect.MessageKind:
			r.Mutable(fd)
		default:
			t.Fatalf("field %s has kind %v: extend this test", fd.Name(), fd.Kind())
		}
	}
	got := CopyMessage(m)
	// Assigned by the store, or set by reads only.
	got.Id, got.SentAtMs, got.Recalled = m.Id, m.SentAtMs, m.Recalled
	if !proto.Equal(got, m) {
		t.Fatalf("CopyMessage(%v) = %v: a field is not copied", m, got)
	}
}
