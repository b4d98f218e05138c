package media

import (
	"errors"
	"time"
)

// Config tunes the media service. Zero values are the defaults (written once,
// in setDefaults); Dir and LinkSecret have none and are required.
type Config struct {
	// Dir holds the uploads in progress on this node's disk (tus uploads and
	// the temporary files of simple uploads); the node gives it
	// <data>/media/uploads. Required.
	Dir string
	// MaxBytes is the largest file accepted. Default 100 MiB.
	MaxBytes int64
	// QuotaBytes is what one user's files may add up to. Default 1 GiB.
	QuotaBytes int64
	// AllowedTypes and DeniedTypes decide which sniffed MIME types are
	// stored: a type is allowed when it (or a type it is a kind of, as
	// application/x-executable is of application/x-elf) matches an entry of
	// AllowedTypes and none of DeniedTypes. Entries are "type/subtype" or
	// "type/*". Default AllowedTypes: nil, every type. Default DeniedTypes:
	// the executables of DefaultDeniedTypes; a non-nil empty slice denies
	// nothing.
	AllowedTypes []string
	DeniedTypes  []string
	// MaxPixels is the largest image (width times height, read from its
	// header) that is decoded for a thumbnail; a larger one is refused with
	// ERR_PAYLOAD_TOO_LARGE before any pixel is decoded. Default 40,000,000.
	MaxPixels int64
	// ThumbSize bounds a thumbnail's width and height in pixels. Default 320.
	ThumbSize int
	// DecodeConcurrency bounds the images decoded at once on this node (a
	// decoded image takes 4 bytes a pixel, up to 160 MB at MaxPixels).
	// Default 2.
	DecodeConcurrency int
	// UnsentTTL is how long a file no message carries is kept, and how long
	// an abandoned tus upload stays on disk. Default 24h.
	UnsentTTL time.Duration
	// GCInterval is how often the collector runs. Default 10m.
	GCInterval time.Duration
	// LinkTTL is the lifetime of a signed download link. Default 10m.
	LinkTTL time.Duration
	// LinkSecret keys the HMAC of signed links; every node of a cluster
	// needs the same (the node derives it from the auth secret). Required,
	// at least 16 bytes.
	LinkSecret []byte
	// Now is the clock (tests set a fake one). Default time.Now.
	Now func() time.Time
}

// DefaultDeniedTypes are the types refused when Config.DeniedTypes is nil:
// executables.
var DefaultDeniedTypes = []string{
	"application/x-msdownload",
	"application/vnd.microsoft.portable-executable",
	"application/x-elf",
	"application/x-executable",
	"application/x-mach-binary",
	"application/x-sharedlib",
}

// minLinkSecret is the shortest LinkSecret New accepts.
const minLinkSecret = 16

// WithDefaults returns c with every zero field that has a default set to it:
// the configuration the service runs with. cmd/imnode takes its flags'
// defaults from it.
func (c Config) WithDefaults() Config {
	c.setDefaults()
	return c
}

func (c *Config) setDefaults() {
	orDefault(&c.MaxBytes, 100<<20)
	orDefault(&c.QuotaBytes, 1<<30)
	if c.DeniedTypes == nil {
		c.DeniedTypes = append([]string(nil), DefaultDeniedTypes...)
	}
	orDefault(&c.MaxPixels, 40_000_000)
	orDefault(&c.ThumbSize, 320)
	orDefault(&c.DecodeConcurrency, 2)
	orDefault(&c.UnsentTTL, 24*time.Hour)
	orDefault(&c.GCInterval, 10*time.Minute)
	orDefault(&c.LinkTTL, 10*time.Minute)
	if c.Now == nil {
		c.Now = time.Now
	}
}

// check reports what is missing from a configuration with its defaults set.
func (c *Config) check() error {
	switch {
	case c.Dir == "":
		return errors.New("media: Config.Dir is required")
	case len(c.LinkSecret) < minLinkSecret:
		return errors.New("media: Config.LinkSecret must be at least 16 bytes")
	}
	return nil
}

// orDefault sets *v to def unless it is positive.
func orDefault[T int | int64 | time.Duration](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}
