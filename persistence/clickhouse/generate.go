package clickhouse

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	"actorim/protos/clientpb"
)

// GenerateConfig describes synthetic archive data, for benchmarks of the
// analytics queries.
type GenerateConfig struct {
	// Messages to insert; Users send them, a GroupShare of them in Groups
	// groups, the rest in private chats; over Days days ending at End.
	Messages, Users, Groups int
	GroupShare              float64
	Days                    int
	End                     time.Time
	// FirstID is the first message id. Default 1.
	FirstID uint64
	// Seed makes the data reproducible.
	Seed uint64
	// Deliveries also records one delivery per message with a latency.
	Deliveries bool
}

// Generate inserts synthetic messages (and timeline positions of the sender
// and one recipient, and optionally deliveries) in batches of 100,000; it
// calls progress after each batch.
func (db *DB) Generate(ctx context.Context, g GenerateConfig, progress func(done int)) error {
	if g.Users < 2 || g.Days < 1 || g.Messages < 1 {
		return fmt.Errorf("clickhouse: generate: need at least 2 users, 1 day and 1 message")
	}
	if g.FirstID == 0 {
		g.FirstID = 1
	}
	rng := rand.New(rand.NewPCG(g.Seed, g.Seed^0x9e3779b97f4a7c15))
	span := int64(g.Days) * 24 * int64(time.Hour/time.Millisecond)
	start := g.End.UnixMilli() - span
	kinds := []string{"text", "text", "text", "text", "text", "text", "emoji", "emoji", "custom", "image"}
	const batch = 100_000
	const contacts = 20
	var r rows
	var d struct {
		ids, sent, acked []uint64
		users, devs      []string
		days             []time.Time
	}
	for done := 0; done < g.Messages; {
		r.reset()
		d.ids, d.sent, d.acked, d.users, d.devs, d.days = d.ids[:0], d.sent[:0], d.acked[:0], d.users[:0], d.devs[:0], d.days[:0]
		n := min(batch, g.Messages-done)
		for i := range n {
			id := g.FirstID + uint64(done+i)
			// Times grow with ids, as the store hands them out.
			at := uint64(start + span*int64(done+i)/int64(g.Messages))
			// Skewed senders: a few users write much more than most.
			fromIdx := int(float64(g.Users) * rng.Float64() * rng.Float64())
			from := fmt.Sprintf("u%d", fromIdx)
			m := &r.m
			var conv, to string
			var ctype uint8
			if g.Groups > 0 && rng.Float64() < g.GroupShare {
				to = fmt.Sprintf("grp%d", int(float64(g.Groups)*rng.Float64()*rng.Float64()))
				conv, ctype = "g:"+to, 2
			} else {
				// Each user talks to a few contacts, as people do.
				peer := (fromIdx*7919 + 1 + rng.IntN(contacts)*104729) % g.Users
				to = fmt.Sprintf("u%d", peer)
				a, b := from, to
				if b < a {
					a, b = b, a
				}
				conv, ctype = "p:"+a+":"+b, 1
			}
			kind := kinds[rng.IntN(len(kinds))]
			custom, body := "", "hello there, this is message "+fmt.Sprint(id)
			var media *clientpb.Media
			switch kind {
			case "custom":
				custom, body = "location", `{"lat":59.3,"lon":18.1}`
			case "emoji":
				body = "😀"
			case "image":
				media = &clientpb.Media{FileId: fmt.Sprintf("%026d", id), Name: "photo.jpg", MimeType: "image/jpeg",
					Size: uint64(20_000 + rng.IntN(2_000_000)), Sha256: fmt.Sprintf("%064x", id), Width: 1024, Height: 768}
				js, _ := protojson.Marshal(media)
				body = string(js)
			}
			sentAt := time.UnixMilli(int64(at)).UTC()
			m.id = append(m.id, id)
			m.conv = append(m.conv, conv)
			m.ctype = append(m.ctype, ctype)
			m.from = append(m.from, from)
			m.to = append(m.to, to)
			m.dev = append(m.dev, "dev1")
			m.cmid = append(m.cmid, fmt.Sprintf("c%d", id))
			m.sentAtMs = append(m.sentAtMs, at)
			m.sentAt = append(m.sentAt, sentAt.Truncate(time.Second))
			m.sentDate = append(m.sentDate, sentAt.Truncate(24*time.Hour))
			m.kind = append(m.kind, kind)
			m.customType = append(m.customType, custom)
			m.content = append(m.content, body)
			m.addMedia(media)
			if g.Deliveries {
				d.ids = append(d.ids, id)
				d.users = append(d.users, to)
				d.devs = append(d.devs, "dev1")
				d.sent = append(d.sent, at)
				d.acked = append(d.acked, at+uint64(rng.ExpFloat64()*20))
				d.days = append(d.days, sentAt.Truncate(24*time.Hour))
			}
		}
		if err := db.insert(ctx, &r); err != nil {
			return err
		}
		if g.Deliveries {
			if err := db.sendColumns(ctx, insertDeliveries, d.ids, d.users, d.devs, d.sent, d.acked, d.days); err != nil {
				return err
			}
		}
		done += n
		if progress != nil {
			progress(done)
		}
	}
	return nil
}
