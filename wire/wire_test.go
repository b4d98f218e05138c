package wire

import (
	"encoding/json"
	"reflect"
	"testing"

	"google.golang.org/protobuf/proto"

	"actorim/protos/clientpb"
)

func seedFrames() []*clientpb.Frame {
	last := uint64(7)
	return []*clientpb.Frame{
		{Id: 1, Body: &clientpb.Frame_Login{Login: &clientpb.Login{Token: "t", DeviceId: "web", Platform: clientpb.Platform_PLATFORM_WEB, LastSeq: &last}}},
		{Id: 2, Body: &clientpb.Frame_Send{Send: &clientpb.Send{ClientMsgId: "c1", To: "bob", Content: &clientpb.Content{Kind: &clientpb.Content_Text{Text: "hi 😀"}}}}},
		{Id: 3, Body: &clientpb.Frame_Send{Send: &clientpb.Send{ClientMsgId: "c2", To: "bob", Content: &clientpb.Content{Kind: &clientpb.Content_Custom{Custom: &clientpb.Custom{Type: "loc", Json: `{"a":1}`}}}}}},
		{Body: &clientpb.Frame_PushAck{PushAck: &clientpb.PushAck{Seq: 42}}},
		{Id: 4, Body: &clientpb.Frame_Sync{Sync: &clientpb.SyncRequest{AfterSeq: 10, Limit: 50}}},
		{Id: 5, Body: &clientpb.Frame_History{History: &clientpb.HistoryRequest{ConversationId: "p:alice:bob", BeforeSeq: 9}}},
		{Id: 6, Body: &clientpb.Frame_Ping{Ping: &clientpb.Ping{}}},
		{Body: &clientpb.Frame_Push{Push: &clientpb.Push{Entries: []*clientpb.Entry{{Seq: 1, Item: &clientpb.Entry_Message{Message: &clientpb.Message{Id: 9, From: "a"}}}}}}},
		{Id: 7, Body: &clientpb.Frame_Error{Error: &clientpb.Error{Code: clientpb.ErrorCode_ERR_RATE_LIMITED, RetryAfterMs: 10}}},
		{Id: 8, Body: &clientpb.Frame_Send{Send: &clientpb.Send{ClientMsgId: "c3", To: "bob", Content: &clientpb.Content{Kind: &clientpb.Content_Image{Image: &clientpb.Media{
			FileId: "01hq3v6xkz8m4c2n7p9r5t0w1y", Name: "cat.jpg", MimeType: "image/jpeg", Size: 1 << 40, Sha256: "ab12", Width: 1024, Height: 768,
			Thumbnail: &clientpb.Thumbnail{MimeType: "image/jpeg", Width: 320, Height: 240, Size: 9000}, Blurhash: "LEHV6n", Caption: "my cat 🐱"}}}}}},
		{Id: 9, Body: &clientpb.Frame_Send{Send: &clientpb.Send{ClientMsgId: "c4", To: "bob", Content: &clientpb.Content{Kind: &clientpb.Content_Audio{Audio: &clientpb.Media{
			FileId: "01hq3v6xkz8m4c2n7p9r5t0w1z", DurationMs: 86_400_000, Voice: true}}}}}},
		{Id: 10, Body: &clientpb.Frame_Send{Send: &clientpb.Send{ClientMsgId: "c5", To: "g1", Content: &clientpb.Content{Kind: &clientpb.Content_Video{Video: &clientpb.Media{
			FileId: "01hq3v6xkz8m4c2n7p9r5t0w20", Width: 1920, Height: 1080, DurationMs: 61_000}}}}}},
		{Id: 11, Body: &clientpb.Frame_Send{Send: &clientpb.Send{ClientMsgId: "c6", To: "bob", Content: &clientpb.Content{Kind: &clientpb.Content_File{File: &clientpb.Media{
			FileId: "01hq3v6xkz8m4c2n7p9r5t0w21", Name: "report.pdf"}}}}}},
		{Id: 12, Body: &clientpb.Frame_Error{Error: &clientpb.Error{Code: clientpb.ErrorCode_ERR_MEDIA_TYPE_REFUSED, Message: "no executables"}}},
	}
}

// TestJSONMediaNames: media content in JSON uses the oneof field's name as
// its key and lowerCamelCase fields, 64-bit sizes as strings; the proto
// names are accepted on input, as for every message.
func TestJSONMediaNames(t *testing.T) {
	f := &clientpb.Frame{Id: 1, Body: &clientpb.Frame_Send{Send: &clientpb.Send{ClientMsgId: "c1", To: "bob", Content: &clientpb.Content{
		Kind: &clientpb.Content_Image{Image: &clientpb.Media{FileId: "01hq3v6xkz8m4c2n7p9r5t0w1y", MimeType: "image/jpeg", Size: 123,
			Sha256: "ab", DurationMs: 5, Thumbnail: &clientpb.Thumbnail{MimeType: "image/jpeg", Size: 9}}}}}}}
	enc, err := JSONCodec{}.Encode(f)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"id":1,"send":{"clientMsgId":"c1","to":"bob","content":{"image":{"fileId":"01hq3v6xkz8m4c2n7p9r5t0w1y",` +
		`"mimeType":"image/jpeg","size":"123","sha256":"ab","durationMs":5,"thumbnail":{"mimeType":"image/jpeg","size":"9"}}}}}`
	// protojson varies its white space on purpose: compare documents.
	var gotDoc, wantDoc any
	if err := json.Unmarshal(enc, &gotDoc); err != nil {
		t.Fatal(err)
	}
	_ = json.Unmarshal([]byte(want), &wantDoc)
	if !reflect.DeepEqual(gotDoc, wantDoc) {
		t.Fatalf("encoded\n%s\nwant\n%s", enc, want)
	}
	for kind, in := range map[string]string{
		"image": `{"id":1,"send":{"client_msg_id":"c1","to":"bob","content":{"image":{"file_id":"01hq3v6xkz8m4c2n7p9r5t0w1y","mime_type":"image/jpeg","size":123,"sha256":"ab","duration_ms":5,"thumbnail":{"mime_type":"image/jpeg","size":"9"}}}}}`,
		"audio": `{"send":{"content":{"audio":{"fileId":"x","voice":true}}}}`,
		"video": `{"send":{"content":{"video":{"fileId":"x","width":1920}}}}`,
		"file":  `{"send":{"content":{"file":{"fileId":"x","name":"a.pdf","caption":"see"}}}}`,
	} {
		got, err := JSONCodec{}.Decode([]byte(in))
		if err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		if kind == "image" && !proto.Equal(got, f) {
			t.Fatalf("proto names decoded to %v, want %v", got, f)
		}
		if fd := got.GetSend().GetContent().ProtoReflect().WhichOneof(
			got.GetSend().GetContent().ProtoReflect().Descriptor().Oneofs().ByName("kind")); fd == nil || string(fd.Name()) != kind {
			t.Fatalf("%s decoded as %v", kind, fd)
		}
	}
	if _, err := (JSONCodec{}).Decode([]byte(`{"send":{"content":{"image":{"fileId":"x"},"file":{"fileId":"y"}}}}`)); err == nil {
		t.Fatal("two kinds of content decoded")
	}
}

func TestRoundTrip(t *testing.T) {
	for _, c := range []Codec{ProtoCodec{}, JSONCodec{}} {
		for _, f := range seedFrames() {
			data, err := c.Encode(f)
			if err != nil {
				t.Fatal(err)
			}
			got, err := c.Decode(data)
			if err != nil || !proto.Equal(got, f) {
				t.Fatalf("%s: %v -> %s -> %v, %v", c.Name(), f, data, got, err)
			}
		}
	}
	if _, err := (JSONCodec{}).Decode([]byte(`{"id":1,"unknownField":{"x":1},"ping":{}}`)); err != nil {
		t.Fatalf("unknown JSON fields must be ignored: %v", err)
	}
	if CodecFor("").Name() != SubprotocolJSON || CodecFor(SubprotocolProto).Name() != SubprotocolProto {
		t.Fatal("CodecFor")
	}
}

// FuzzDecodeFrame feeds arbitrary bytes to both decoders: they must never
// panic, and whatever they accept must survive a re-encode unchanged.
// `go test` runs the seed corpus (the seeds below and testdata/fuzz);
// `go test -fuzz FuzzDecodeFrame ./wire` explores further.
func FuzzDecodeFrame(f *testing.F) {
	for _, fr := range seedFrames() {
		b, _ := ProtoCodec{}.Encode(fr)
		f.Add(b)
		j, _ := JSONCodec{}.Encode(fr)
		f.Add(j)
	}
	for _, s := range []string{"", "{}", "null", "[", `{"id":-1}`, `{"id":4294967296}`, `{"send":{"content":{"text":"a","emoji":"b"}}}`,
		"\xff\xff\xff\xff\x0f", "\x0a\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01", `{"login":{"lastSeq":"18446744073709551616"}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, c := range []Codec{ProtoCodec{}, JSONCodec{}} {
			fr, err := c.Decode(data)
			if err != nil {
				continue
			}
			enc, err := c.Encode(fr)
			if err != nil {
				t.Fatalf("%s: decoded frame does not encode: %v", c.Name(), err)
			}
			again, err := c.Decode(enc)
			if err != nil || !proto.Equal(again, fr) {
				t.Fatalf("%s: re-encoded frame differs: %v vs %v (%v)", c.Name(), fr, again, err)
			}
		}
	})
}

// BenchmarkCodec measures encoding and decoding of a typical Push frame.
func BenchmarkCodec(b *testing.B) {
	push := &clientpb.Frame{Body: &clientpb.Frame_Push{Push: &clientpb.Push{Entries: []*clientpb.Entry{{Seq: 1234,
		Item: &clientpb.Entry_Message{Message: &clientpb.Message{Id: 99887, ConversationId: "p:alice-1234:bob-5678",
			ConversationType: clientpb.ConversationType_CONVERSATION_TYPE_PRIVATE, From: "alice-1234", To: "bob-5678",
			FromDevice: "web", ClientMsgId: "c-123456", SentAtMs: 1795359015892,
			Content: &clientpb.Content{Kind: &clientpb.Content_Text{Text: "hello there, how are you today?"}}}}}}}}}
	data, _ := ProtoCodec{}.Encode(push)
	for _, c := range []Codec{ProtoCodec{}, JSONCodec{}} {
		enc, _ := c.Encode(push)
		b.Run(c.Name()+"/encode", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_, _ = c.Encode(push)
			}
		})
		b.Run(c.Name()+"/decode", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_, _ = c.Decode(enc)
			}
		})
	}
	b.Run("reflection/encode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = proto.Marshal(push)
		}
	})
	b.Run("reflection/decode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = proto.Unmarshal(data, &clientpb.Frame{})
		}
	})
}
