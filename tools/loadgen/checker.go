package loadgen

import (
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
)

// Violation kinds, as they appear in CheckResult.Examples.
const (
	KindLoss      = "loss"
	KindDuplicate = "duplicate"
	KindReorder   = "reorder"
	KindGap       = "gap"
	// KindCorrupt is a file (media workload) whose downloaded bytes, or the
	// node's hash of them, differ from the bytes uploaded.
	KindCorrupt = "corrupt"
)

// maxHoles bounds the skipped seq ranges remembered per device; past it the
// oldest are forgotten (a late arrival into a forgotten hole then passes as a
// re-push). Only a badly broken stream gets there.
const maxHoles = 64

// maxSkipped bounds the seqs a sending device's stream may skip at once and
// still have each one settled by its own SendAck; a longer jump is reported
// as a gap at once. Only a badly broken stream gets there.
const maxSkipped = 1 << 16

// Checker verifies the delivery guarantees of docs/protocol.md while a load
// runs: every message acknowledged to a sender reaches each recipient device
// exactly once, in sequence order, without gaps.
//
// The workload tells it two things per message and device: Expect when a
// SendAck names the message (the recipient must get it), and Deliver for every
// pushed entry. Both may come in either order and from different goroutines.
// Per event the work is a few map operations under the device's own lock;
// memory is the messages in flight plus what was delivered since the
// second-last Rotate.
type Checker struct {
	examples int

	mu      sync.Mutex
	devices map[string]*Device
	samples map[string][]Violation

	// Counts of violations found so far (losses are only known at the end).
	duplicates, reorders, gaps, corrupt atomic.Int64
}

// NewChecker returns a Checker that keeps up to examples examples of each
// kind of violation.
func NewChecker(examples int) *Checker {
	return &Checker{examples: examples, devices: map[string]*Device{}, samples: map[string][]Violation{}}
}

// Device returns the state of one recipient device, creating it with nothing
// processed yet (the device must log in with Login.lastSeq = Last(), so its
// stream starts at seq 1 for a new user).
func (c *Checker) Device(user, device string) *Device {
	return c.device(user, device, false)
}

// SendingDevice is Device for a device that also sends. The push stream
// skips the device's own sends (docs/protocol.md), so the seqs it skips are
// not gaps at once: each must be named by one of the device's SendAcks (Own)
// by the end, and a skipped seq no SendAck claimed is reported by Result as a
// gap.
func (c *Checker) SendingDevice(user, device string) *Device {
	return c.device(user, device, true)
}

func (c *Checker) device(user, device string, sends bool) *Device {
	key := user + "/" + device
	c.mu.Lock()
	defer c.mu.Unlock()
	d := c.devices[key]
	if d == nil {
		d = &Device{c: c, user: user, id: device,
			pending: map[uint64]struct{}{}, early: map[uint64]uint64{},
			done: map[uint64]uint64{}, old: map[uint64]uint64{}}
		if sends {
			d.own, d.missing = map[uint64]struct{}{}, map[uint64]struct{}{}
		}
		c.devices[key] = d
	}
	return d
}

func (c *Checker) note(v Violation) {
	switch v.Kind {
	case KindDuplicate:
		c.duplicates.Add(1)
	case KindReorder:
		c.reorders.Add(1)
	case KindGap:
		c.gaps.Add(1)
	case KindCorrupt:
		c.corrupt.Add(1)
	}
	c.mu.Lock()
	if len(c.samples[v.Kind]) < c.examples {
		c.samples[v.Kind] = append(c.samples[v.Kind], v)
	}
	c.mu.Unlock()
}

// Violations is the number of duplicates, reorderings and gaps found so far
// (losses are decided by Result).
func (c *Checker) Violations() int64 {
	return c.duplicates.Load() + c.reorders.Load() + c.gaps.Load() + c.corrupt.Load()
}

// Corrupt records a file whose bytes did not come back as uploaded (the
// media workload): detail says how.
func (c *Checker) Corrupt(user, fileID, detail string) {
	c.note(Violation{Kind: KindCorrupt, User: user, Detail: "file " + fileID + ": " + detail})
}

// Outstanding is the number of expected deliveries still missing.
func (c *Checker) Outstanding() int {
	n := 0
	for _, d := range c.snapshot() {
		n += d.Pending()
	}
	return n
}

// Rotate forgets the messages delivered and acknowledged before the previous
// Rotate. Call it periodically (imbench does every 15 s) to bound memory: a
// message delivered again at a new seq is recognised as a duplicate until two
// Rotates have passed, and after that counts as an unacknowledged delivery.
func (c *Checker) Rotate() {
	for _, d := range c.snapshot() {
		d.mu.Lock()
		d.old, d.done = d.done, d.old
		clear(d.done)
		d.mu.Unlock()
	}
}

func (c *Checker) snapshot() []*Device {
	c.mu.Lock()
	defer c.mu.Unlock()
	ds := make([]*Device, 0, len(c.devices))
	for _, d := range c.devices {
		ds = append(ds, d)
	}
	return ds
}

// Result reports what was found. Messages still expected count as lost, so
// call it after the load has stopped and deliveries have drained.
func (c *Checker) Result() CheckResult {
	ds := c.snapshot()
	sort.Slice(ds, func(i, j int) bool { return ds[i].user+"/"+ds[i].id < ds[j].user+"/"+ds[j].id })
	r := CheckResult{Devices: len(ds)}
	var losses, skipped []Violation
	for _, d := range ds {
		d.mu.Lock()
		if d.missing != nil && !d.detached {
			r.Gaps += int64(len(d.missing))
			seqs := make([]uint64, 0, len(d.missing))
			for s := range d.missing {
				seqs = append(seqs, s)
			}
			sort.Slice(seqs, func(i, j int) bool { return seqs[i] < seqs[j] })
			for _, s := range seqs[:min(len(seqs), c.examples-len(skipped))] {
				skipped = append(skipped, Violation{Kind: KindGap, User: d.user, Device: d.id, Seq: s,
					Detail: "skipped by the push stream and not one of the device's own sends"})
			}
		}
		r.Delivered += d.delivered
		r.Repushed += d.repushed
		r.Unacked += int64(len(d.early))
		if d.detached {
			r.Unverified += d.unverified
		} else {
			r.Losses += int64(len(d.pending))
			for id := range d.pending {
				if len(losses) >= c.examples {
					break
				}
				losses = append(losses, Violation{Kind: KindLoss, User: d.user, Device: d.id, MsgID: id,
					Detail: fmt.Sprintf("acknowledged to the sender, never delivered; device processed up to seq %d", d.last)})
			}
		}
		d.mu.Unlock()
	}
	r.Duplicates, r.Reorders, r.Gaps = c.duplicates.Load(), c.reorders.Load(), r.Gaps+c.gaps.Load()
	r.Corrupt = c.corrupt.Load()
	c.mu.Lock()
	r.Examples = append(r.Examples, losses...)
	for _, k := range []string{KindDuplicate, KindReorder, KindGap, KindCorrupt} {
		r.Examples = append(r.Examples, c.samples[k]...)
	}
	c.mu.Unlock()
	r.Examples = append(r.Examples, skipped[:min(len(skipped), max(0, c.examples-len(c.samples[KindGap])))]...)
	return r
}

// Device is the checker's state for one recipient device. Its methods are
// safe for concurrent use.
type Device struct {
	c        *Checker
	user, id string

	mu       sync.Mutex
	last     uint64 // highest seq processed
	holes    []span // seqs skipped by a gap and not seen since
	pending  map[uint64]struct{}
	early    map[uint64]uint64 // delivered, not (yet) acknowledged: msg id -> seq
	done     map[uint64]uint64 // delivered and acknowledged since the last Rotate
	old      map[uint64]uint64 // ... in the Rotate before
	detached bool
	// A sending device's own sends (see SendingDevice): own holds the seqs
	// its SendAcks named beyond last, missing the seqs its stream skipped
	// that no SendAck has named (yet). Both nil for other devices.
	own, missing map[uint64]struct{}

	delivered, repushed, unverified int64
}

type span struct{ lo, hi uint64 }

// Last is the highest seq processed: the lastSeq to resume with.
func (d *Device) Last() uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.last
}

// Pending is the number of acknowledged messages not yet delivered.
func (d *Device) Pending() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.pending)
}

// Expect records that msgID was acknowledged to its sender with this
// device's user as recipient, so the device must receive it.
func (d *Device) Expect(msgID uint64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.detached {
		d.unverified++
		return
	}
	if seq, ok := d.early[msgID]; ok {
		delete(d.early, msgID)
		d.done[msgID] = seq
		return
	}
	if _, ok := d.done[msgID]; ok {
		return // acknowledged twice (a retried send): nothing more to expect
	}
	if _, ok := d.old[msgID]; ok {
		return
	}
	d.pending[msgID] = struct{}{}
}

// Deliver records a pushed entry and reports whether it was new to the
// device (false for a re-push of a seq already processed, which the protocol
// allows and the client must ignore).
func (d *Device) Deliver(seq, msgID uint64) (fresh bool) { return d.deliver(seq, msgID, true) }

// Pass records a pushed entry that is not a checked message (a system event,
// say): it takes its place in the seq order, but is neither expected nor
// counted as delivered. It reports whether the seq was new to the device.
func (d *Device) Pass(seq uint64) (fresh bool) { return d.deliver(seq, 0, false) }

// Own records that seq of this sending device's timeline holds one of its
// own sends (from its SendAck, or an entry pushed back to it): the stream
// may skip it. Idempotent; a no-op on a device made with Device.
func (d *Device) Own(seq uint64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.own == nil {
		return
	}
	if seq > d.last {
		d.own[seq] = struct{}{}
	} else {
		delete(d.missing, seq)
	}
}

func (d *Device) deliver(seq, msgID uint64, isMsg bool) (fresh bool) {
	d.mu.Lock()
	var found []Violation
	switch {
	case seq <= d.last && !d.fillHole(seq):
		d.repushed++
		d.mu.Unlock()
		return false
	case seq <= d.last: // an unseen seq below one already processed
		found = append(found, Violation{Kind: KindReorder, Seq: seq, MsgID: msgID,
			Detail: fmt.Sprintf("arrived after seq %d", d.last)})
	case seq > d.last+1:
		if v, ok := d.skip(d.last+1, seq-1); !ok {
			v.Seq, v.MsgID = seq, msgID
			found = append(found, v)
		}
		d.last = seq
	default:
		d.last = seq
	}
	if !isMsg {
		d.mu.Unlock()
		d.noteAll(found)
		return true
	}
	d.delivered++
	if first, ok := d.seen(msgID); ok {
		found = append(found, Violation{Kind: KindDuplicate, Seq: seq, MsgID: msgID,
			Detail: fmt.Sprintf("already delivered at seq %d", first)})
	} else if _, ok := d.pending[msgID]; ok {
		delete(d.pending, msgID)
		d.done[msgID] = seq
	} else {
		d.early[msgID] = seq
	}
	d.mu.Unlock()
	d.noteAll(found)
	return true
}

func (d *Device) noteAll(found []Violation) {
	for _, v := range found {
		v.User, v.Device = d.user, d.id
		d.c.note(v)
	}
}

// skip records that the stream jumped over seqs lo..hi. For a sending device
// the seqs its own sends hold are fine and the others are remembered as
// missing, to be settled by Own or judged by Result; otherwise (or when the
// jump is too long to track) it is a gap, returned with ok false.
func (d *Device) skip(lo, hi uint64) (v Violation, ok bool) {
	if d.own != nil && hi-lo < maxSkipped {
		for s := lo; s <= hi; s++ {
			if _, mine := d.own[s]; mine {
				delete(d.own, s)
			} else {
				d.missing[s] = struct{}{}
			}
		}
		return Violation{}, true
	}
	d.holes = append(d.holes, span{lo, hi})
	if len(d.holes) > maxHoles {
		d.holes = d.holes[1:]
	}
	return Violation{Kind: KindGap, Detail: fmt.Sprintf("seqs %d-%d skipped", lo, hi)}, false
}

// seen returns the seq at which msgID was delivered before, if remembered.
func (d *Device) seen(msgID uint64) (uint64, bool) {
	if s, ok := d.early[msgID]; ok {
		return s, true
	}
	if s, ok := d.done[msgID]; ok {
		return s, true
	}
	s, ok := d.old[msgID]
	return s, ok
}

// fillHole removes seq from the skipped seqs and reports whether it was one.
func (d *Device) fillHole(seq uint64) bool {
	if _, ok := d.missing[seq]; ok {
		delete(d.missing, seq)
		return true
	}
	for i, h := range d.holes {
		if seq < h.lo || seq > h.hi {
			continue
		}
		switch {
		case h.lo == h.hi:
			d.holes = append(d.holes[:i], d.holes[i+1:]...)
		case seq == h.lo:
			d.holes[i].lo++
		case seq == h.hi:
			d.holes[i].hi--
		default:
			d.holes[i].hi = seq - 1
			d.holes = append(d.holes, span{seq + 1, h.hi})
		}
		return true
	}
	return false
}

// Detach takes the device out of the loss accounting: it stopped receiving
// for good (its reconnect failed), so what it misses proves nothing. Its
// outstanding and later expected messages count as unverified.
func (d *Device) Detach() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.detached {
		d.detached = true
		d.unverified += int64(len(d.pending))
		clear(d.pending)
	}
}

// Violation is one example of a broken guarantee.
type Violation struct {
	Kind   string `json:"kind"`
	User   string `json:"user"`
	Device string `json:"device"`
	// Seq is the recipient's seq the entry arrived at (0 for a loss).
	Seq    uint64 `json:"seq,omitempty"`
	MsgID  uint64 `json:"msg_id"`
	Detail string `json:"detail"`
}

// String formats the example for people: kind, user, device, seq, msg id, detail.
func (v Violation) String() string {
	if v.Seq == 0 {
		return fmt.Sprintf("%s: user %s device %s msg %d: %s", v.Kind, v.User, v.Device, v.MsgID, v.Detail)
	}
	return fmt.Sprintf("%s: user %s device %s seq %d msg %d: %s", v.Kind, v.User, v.Device, v.Seq, v.MsgID, v.Detail)
}

// CheckResult is what a Checker found.
type CheckResult struct {
	Devices int `json:"devices"`
	// Delivered counts entries processed (first deliveries of a seq);
	// Repushed the re-pushes of seqs already processed (legitimate retries).
	Delivered int64 `json:"delivered"`
	Repushed  int64 `json:"repushed"`
	// Unacked counts deliveries whose send was never acknowledged (it timed
	// out or failed without an answer, or a duplicate older than the Rotate
	// window): informational, not a violation.
	Unacked int64 `json:"unacked_deliveries"`
	// Unverified counts messages for detached devices.
	Unverified int64 `json:"unverified"`

	Losses     int64 `json:"losses"`
	Duplicates int64 `json:"duplicates"`
	Reorders   int64 `json:"reorderings"`
	Gaps       int64 `json:"gaps"`
	// Corrupt counts files that did not come back as uploaded (media).
	Corrupt  int64       `json:"corrupt,omitempty"`
	Examples []Violation `json:"examples,omitempty"`
}

// Violations is the total number of broken guarantees.
func (r CheckResult) Violations() int64 {
	return r.Losses + r.Duplicates + r.Reorders + r.Gaps + r.Corrupt
}

// Summary is a one-line account of the violations.
func (r CheckResult) Summary() string {
	verdict := "PASS"
	if r.Violations() > 0 {
		verdict = "FAIL"
	}
	corrupt := ""
	if r.Corrupt > 0 {
		corrupt = fmt.Sprintf(", corrupt files %d", r.Corrupt)
	}
	return fmt.Sprintf("violations: %d (losses %d, duplicates %d, reorderings %d, gaps %d%s): %s",
		r.Violations(), r.Losses, r.Duplicates, r.Reorders, r.Gaps, corrupt, verdict)
}

// merge adds o to r, keeping at most examples examples of each kind.
func (r *CheckResult) merge(o CheckResult, examples int) {
	r.Devices += o.Devices
	r.Delivered += o.Delivered
	r.Repushed += o.Repushed
	r.Unacked += o.Unacked
	r.Unverified += o.Unverified
	r.Losses += o.Losses
	r.Duplicates += o.Duplicates
	r.Reorders += o.Reorders
	r.Gaps += o.Gaps
	r.Corrupt += o.Corrupt
	per := map[string]int{}
	for _, v := range r.Examples {
		per[v.Kind]++
	}
	for _, v := range o.Examples {
		if per[v.Kind] < examples {
			per[v.Kind]++
			r.Examples = append(r.Examples, v)
		}
	}
}
