package clickhouse

import (
	"context"
	"reflect"
	"testing"
	"time"

	"actorim/persistence"
	"actorim/protos/clientpb"
)

// TestAnalytics runs every query on a small hand-made archive whose answers
// are worked out below, with duplicate rows (as at-least-once archiving
// leaves them), an event and messages outside the range.
func TestAnalytics(t *testing.T) {
	ctx := context.Background()
	db, _ := newDB(t)
	day := time.Date(2026, 3, 10, 0, 0, 0, 0, time.UTC)
	at := func(d, h, m int) uint64 {
		return uint64(day.AddDate(0, 0, d).Add(time.Duration(h)*time.Hour + time.Duration(m)*time.Minute).UnixMilli())
	}
	type msg struct {
		id             uint64
		conv, from, to string
		content        *clientpb.Content
		at             uint64
	}
	txt := text("hi")
	emoji := &clientpb.Content{Kind: &clientpb.Content_Emoji{Emoji: "👍"}}
	loc := &clientpb.Content{Kind: &clientpb.Content_Custom{Custom: &clientpb.Custom{Type: "location", Json: "{}"}}}
	event := &clientpb.Content{Kind: &clientpb.Content_Event{Event: &clientpb.Event{Type: clientpb.EventType_EVENT_MEMBER_JOINED}}}
	msgs := []msg{
		{1, "p:a:b", "a", "b", txt, at(0, 9, 10)},
		{2, "p:a:b", "b", "a", txt, at(0, 9, 50)},
		{7, "g:g1", "a", "g1", event, at(0, 9, 20)}, // an event: never counted
		{3, "g:g1", "a", "g1", emoji, at(0, 10, 5)},
		{4, "g:g1", "c", "g1", loc, at(0, 10, 30)},
		{5, "g:g2", "c", "g2", txt, at(1, 8, 0)},
		{6, "p:a:c", "a", "c", txt, at(1, 8, 30)},
		{8, "p:a:z", "z", "a", txt, at(0, 0, 0) - 1}, // a millisecond before the range
		{9, "p:a:z", "z", "a", txt, at(2, 0, 0)},     // at its end, which is excluded
		{1, "p:a:b", "a", "b", txt, at(0, 9, 10)},    // archived twice
		{3, "g:g1", "a", "g1", emoji, at(0, 10, 5)},  // archived twice
	}
	var r rows
	for _, m := range msgs {
		ctype := clientpb.ConversationType_CONVERSATION_TYPE_PRIVATE
		if m.conv[0] == 'g' {
			ctype = clientpb.ConversationType_CONVERSATION_TYPE_GROUP
		}
		r.add(&persistence.OutboxItem{AtMs: m.at, Entry: &clientpb.Entry{Item: &clientpb.Entry_Message{Message: &clientpb.Message{
			Id: m.id, ConversationId: m.conv, ConversationType: ctype, From: m.from, To: m.to, SentAtMs: m.at, Content: m.content}}},
			Timelines: []persistence.TimelineSeq{{User: m.from, Seq: m.id}}})
	}
	if err := db.insert(ctx, &r); err != nil {
		t.Fatal(err)
	}
	d := NewDeliveries(db, 0, nil, nil)
	for i, lat := range []uint64{10, 20, 30, 40, 50, 1000} {
		m := msgs[[]int{0, 1, 3, 4, 5, 6}[i]]
		d.Record(Delivery{MsgID: m.id, UserID: m.to, DeviceID: "d", SentAtMs: m.at, AckedAtMs: m.at + lat})
	}
	d.Record(Delivery{MsgID: 1, UserID: "b", DeviceID: "d", SentAtMs: at(0, 9, 10), AckedAtMs: at(0, 9, 10) + 10})  // recorded twice
	d.Record(Delivery{MsgID: 1, UserID: "b", DeviceID: "d2", SentAtMs: at(0, 9, 10), AckedAtMs: at(0, 9, 10) + 10}) // another device
	d.Record(Delivery{MsgID: 8, UserID: "a", DeviceID: "d", SentAtMs: at(0, 0, 0) - 1, AckedAtMs: at(0, 0, 0) + 99999})
	d.Start()
	if err := d.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}

	rg := Range{From: day, To: day.AddDate(0, 0, 2)}
	h := func(d, hr int) time.Time { return day.AddDate(0, 0, d).Add(time.Duration(hr) * time.Hour) }
	tests := []struct {
		query, bucket string
		limit         int
		want          any
	}{
		{"messages", "hour", 0, []Point{{h(0, 9), 2}, {h(0, 10), 2}, {h(1, 8), 2}}},
		{"messages", "day", 0, []Point{{h(0, 0), 4}, {h(1, 0), 2}}},
		{"active-users", "day", 0, []Point{{h(0, 0), 3}, {h(1, 0), 2}}},
		{"active-users", "month", 0, []Point{{time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), 3}}},
		{"top-conversations", "", 3, []Count{{"g:g1", 2}, {"p:a:b", 2}, {"g:g2", 1}}},
		{"top-groups", "", 10, []Count{{"g:g1", 2}, {"g:g2", 1}}},
		{"content-mix", "", 0, []Count{{"text", 4}, {"custom:location", 1}, {"emoji", 1}}},
		{"conversation-share", "", 0, []Count{{"group", 3}, {"private", 3}}},
		// Latencies 10 10 20 30 40 50 1000: rank floor(0.5*7)=3 is 30.
		{"delivery-latency", "", 0, Latency{Deliveries: 7, P50: 30, P90: 1000, P99: 1000, P999: 1000, Max: 1000}},
	}
	for _, tc := range tests {
		t.Run(tc.query+"-"+tc.bucket, func(t *testing.T) {
			got, err := db.Query(ctx, tc.query, rg, tc.bucket, tc.limit)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
	if _, err := db.Query(ctx, "nope", rg, "", 0); err == nil {
		t.Fatal("unknown query accepted")
	}
	if _, err := db.Query(ctx, "messages", rg, "week", 0); err == nil {
		t.Fatal("bad bucket accepted")
	}
}

// TestContentKinds: messages and bytes per day and kind, media counted by
// their file sizes, everything else by its content's length; events, rows
// archived twice and messages outside the range count as in the other
// queries.
func TestContentKinds(t *testing.T) {
	ctx := context.Background()
	db, _ := newDB(t)
	day := time.Date(2026, 3, 10, 0, 0, 0, 0, time.UTC)
	at := func(d, h int) uint64 {
		return uint64(day.AddDate(0, 0, d).Add(time.Duration(h) * time.Hour).UnixMilli())
	}
	media := func(kind string, size uint64) *clientpb.Content {
		m := &clientpb.Media{FileId: "f", MimeType: kind + "/x", Size: size, Caption: "a caption not counted"}
		switch kind {
		case "image":
			return &clientpb.Content{Kind: &clientpb.Content_Image{Image: m}}
		case "audio":
			return &clientpb.Content{Kind: &clientpb.Content_Audio{Audio: m}}
		case "video":
			return &clientpb.Content{Kind: &clientpb.Content_Video{Video: m}}
		}
		return &clientpb.Content{Kind: &clientpb.Content_File{File: m}}
	}
	msgs := []struct {
		id      uint64
		content *clientpb.Content
		at      uint64
	}{
		{1, text("hi"), at(0, 1)},
		{1, text("hi"), at(0, 1)}, // archived twice
		{2, &clientpb.Content{Kind: &clientpb.Content_Emoji{Emoji: "👍"}}, at(0, 2)},
		{3, &clientpb.Content{Kind: &clientpb.Content_Custom{Custom: &clientpb.Custom{Type: "loc", Json: "{}"}}}, at(0, 3)},
		{4, media("image", 5000), at(0, 4)},
		{5, media("image", 7000), at(0, 5)},
		{5, media("image", 7000), at(0, 5)}, // archived twice
		{6, &clientpb.Content{Kind: &clientpb.Content_Event{Event: &clientpb.Event{Type: clientpb.EventType_EVENT_RECALLED}}}, at(0, 6)},
		{7, media("file", 100), at(1, 1)},
		{8, media("audio", 300), at(1, 2)},
		{9, media("video", 1<<40), at(2, 0)}, // at the range's end, excluded
	}
	var r rows
	for _, m := range msgs {
		r.add(&persistence.OutboxItem{AtMs: m.at, Entry: &clientpb.Entry{Item: &clientpb.Entry_Message{Message: &clientpb.Message{
			Id: m.id, ConversationId: "p:a:b", From: "a", To: "b", SentAtMs: m.at, Content: m.content}}},
			Timelines: []persistence.TimelineSeq{{User: "a", Seq: m.id}}})
	}
	if err := db.conn.Exec(ctx, "SYSTEM STOP MERGES messages"); err != nil {
		t.Fatal(err)
	}
	if err := db.insert(ctx, &r); err != nil {
		t.Fatal(err)
	}
	rg := Range{From: day, To: day.AddDate(0, 0, 2)}
	d1 := day.AddDate(0, 0, 1)
	want := []KindDay{
		{day, "custom", 1, 2}, // the JSON "{}"; the type is not counted
		{day, "emoji", 1, 4},
		{day, "image", 2, 12000},
		{day, "text", 1, 2},
		{d1, "audio", 1, 300},
		{d1, "file", 1, 100},
	}
	for _, name := range []string{"content-kinds"} {
		got, err := db.Query(ctx, name, rg, "", 0)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s:\ngot  %+v\nwant %+v", name, got, want)
		}
	}
	mix, err := db.Query(ctx, "content-mix", rg, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if wantMix := []Count{{"image", 2}, {"audio", 1}, {"custom:loc", 1}, {"emoji", 1}, {"file", 1}, {"text", 1}}; !reflect.DeepEqual(mix, wantMix) {
		t.Fatalf("content-mix: %+v, want %+v", mix, wantMix)
	}
}
