package main

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"actorim/ids"
)

// profile is what login (or token --save) keeps for one user in
// <home>/<user>.json, readable by the owner only.
type profile struct {
	UserID    string    `json:"user_id"`
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expires_at"`
	// DeviceID is generated once, so that every login of this profile is the
	// same device to the server.
	DeviceID string `json:"device_id"`
	// LastSeq is the highest seq listen printed and acknowledged; absent
	// until then, so the first listen starts at the end of the timeline.
	LastSeq *uint64 `json:"last_seq,omitempty"`
}

func profilePath(home, user string) (string, error) {
	if home == "" {
		return "", errors.New("no profile directory: set --home or $HOME")
	}
	if !ids.ValidUser(user) {
		return "", fmt.Errorf("invalid user id %q: 1 to 64 characters [A-Za-z0-9_.@-]", user)
	}
	return filepath.Join(home, user+".json"), nil
}

// loadProfile reads the profile of user, which login must have created.
func loadProfile(home, user string) (*profile, error) {
	path, err := profilePath(home, user)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("no profile for %s in %s: run imctl login %s", user, home, user)
	}
	if err != nil {
		return nil, err
	}
	p := &profile{}
	if err := json.Unmarshal(data, p); err != nil {
		return nil, fmt.Errorf("profile %s: %w", path, err)
	}
	return p, nil
}

// openProfile returns the profile of user, or a new one with a fresh device id.
func openProfile(home, user string) (*profile, error) {
	path, err := profilePath(home, user)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return &profile{UserID: user, DeviceID: "imctl-" + randomHex(4)}, nil
	}
	return loadProfile(home, user)
}

// save replaces the profile file atomically: listen saves after every ack,
// and an interrupted write must not lose the token.
func (p *profile) save(home string) error {
	path, err := profilePath(home, p.UserID)
	if err != nil {
		return err
	}
	data, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(home, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(home, "."+p.UserID+"-*.json") // mode 0600
	if err != nil {
		return err
	}
	_, err = f.Write(append(data, '\n'))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		_ = os.Remove(f.Name())
		return fmt.Errorf("save profile: %w", err)
	}
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails on supported platforms
	return hex.EncodeToString(b)
}
