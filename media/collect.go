package media

// The collector, every GCInterval: files no message ever carried, older
// than UnsentTTL, lose their record, their charge and their references to
// objects (an object goes with its last reference); tus uploads on this
// node's disk untouched for UnsentTTL are removed and their charge
// released, as are leftovers of simple uploads a crash interrupted. Several
// nodes may collect at once: DeleteUnsentMedia lets one of them take each
// file, and uploads are each node's own.

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"time"

	"actorim/persistence"
)

// gcBatch is how many unsent files one store call lists.
const gcBatch = 100

// lockWait bounds how long the collector waits for an upload's lock.
const lockWait = time.Second

func (s *Service) collectLoop(ctx context.Context) {
	defer close(s.done)
	t := time.NewTicker(s.cfg.GCInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.collect(ctx)
		}
	}
}

// collect runs the collector once.
func (s *Service) collect(ctx context.Context) {
	s.collectUnsent(ctx)
	s.collectUploads(ctx)
}

func (s *Service) collectUnsent(ctx context.Context) {
	before := uint64(s.cfg.Now().Add(-s.cfg.UnsentTTL).UnixMilli())
	for ctx.Err() == nil {
		batch, err := s.store.UnsentMedia(ctx, before, gcBatch)
		if err != nil {
			s.log.Warn("media: list unsent files", "err", err)
			return
		}
		taken := 0
		for _, f := range batch {
			if s.collectFile(ctx, f.ID) {
				taken++
			}
		}
		// Stop at the end, or when nothing could be taken (other nodes
		// took them, or the store fails): the next run goes on.
		if len(batch) < gcBatch || taken == 0 {
			return
		}
	}
}

// collectFile deletes one unsent file, if no one sent or collected it
// meanwhile, and releases what it held.
func (s *Service) collectFile(ctx context.Context, id string) bool {
	f, err := s.store.DeleteUnsentMedia(ctx, id)
	switch {
	case errors.Is(err, persistence.ErrMediaSent), errors.Is(err, persistence.ErrNotFound):
		return false
	case err != nil:
		s.log.Warn("media: delete unsent file", "id", id, "err", err)
		return false
	}
	s.uncharge(ctx, f.Owner, f.Size)
	s.releaseBlobs(ctx, f.SHA256, f.ThumbSHA256)
	s.metrics.collected.WithLabelValues("file").Inc()
	return true
}

func (s *Service) collectUploads(ctx context.Context) {
	cutoff := s.cfg.Now().Add(-s.cfg.UnsentTTL)
	entries, err := os.ReadDir(s.cfg.Dir)
	if err != nil {
		s.log.Warn("media: list uploads", "err", err)
		return
	}
	for _, e := range entries {
		id, ok := strings.CutSuffix(e.Name(), ".info")
		if !ok || !validFileID(id) || ctx.Err() != nil {
			continue
		}
		if s.untouchedSince(cutoff, id, id+".info") {
			s.collectUpload(ctx, id, cutoff)
		}
	}
	simple, err := os.ReadDir(s.simpleDir)
	if err != nil {
		return
	}
	for _, e := range simple {
		if validFileID(e.Name()) && s.untouchedSince(cutoff, filepath.Join("simple", e.Name())) {
			_ = os.Remove(filepath.Join(s.simpleDir, e.Name()))
		}
	}
}

// collectUpload removes an abandoned tus upload under its lock (so no
// request is writing it) and releases its charge, unless it was finished
// (a crash between storing the file and removing the upload).
func (s *Service) collectUpload(ctx context.Context, id string, cutoff time.Time) {
	lock, err := s.locker.NewLock(id)
	if err != nil {
		return
	}
	lctx, cancel := context.WithTimeout(ctx, lockWait)
	defer cancel()
	if lock.Lock(lctx, func() {}) != nil {
		return // in use
	}
	defer lock.Unlock()
	if !s.untouchedSince(cutoff, id, id+".info") {
		return
	}
	var owner string
	var size int64
	if up, err := s.uploads.GetUpload(ctx, id); err == nil {
		if info, err := up.GetInfo(ctx); err == nil {
			owner, size = info.MetaData[metaOwner], info.Size
		}
	}
	if _, err := s.store.GetMediaFile(ctx, id); err == nil {
		size = 0 // finished: its charge is the file's now
	} else if !errors.Is(err, persistence.ErrNotFound) {
		return // retry on the next run rather than guess
	}
	if err := s.removeUpload(id); err != nil {
		s.log.Warn("media: remove abandoned upload", "id", id, "err", err)
		return
	}
	s.uncharge(ctx, owner, size)
	s.metrics.collected.WithLabelValues("upload").Inc()
}

// untouchedSince reports whether none of the files (paths in Dir) that
// exist was modified after t.
func (s *Service) untouchedSince(t time.Time, names ...string) bool {
	for _, n := range names {
		st, err := os.Stat(filepath.Join(s.cfg.Dir, n))
		if err == nil && st.ModTime().After(t) {
			return false
		}
	}
	return true
}
