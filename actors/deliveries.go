package actors

import (
	"time"

	"actorim/protos/clientpb"
)

// DeliveryObserver learns which pushed messages a device acknowledged, for
// delivery latency analytics. Delivered is called on the connection's
// goroutine and must not block.
type DeliveryObserver interface {
	Delivered(userID, deviceID string, msgs []*clientpb.Message, ackedAtMs uint64)
}

// observeAck reports the messages a PushAck of seq acknowledges to the
// configured observer, before the stream forgets them. Events are left out.
func (c *connActor) observeAck(seq uint64) {
	obs := c.d.cfg.Deliveries
	if obs == nil || c.st == nil {
		return
	}
	var msgs []*clientpb.Message
	for _, e := range c.st.unacked {
		if e.GetSeq() > seq {
			break
		}
		if m := e.GetMessage(); m != nil && m.GetContent().GetEvent() == nil {
			msgs = append(msgs, m)
		}
	}
	if len(msgs) > 0 {
		obs.Delivered(c.sess.UserID, c.sess.DeviceID, msgs, uint64(time.Now().UnixMilli()))
	}
}
