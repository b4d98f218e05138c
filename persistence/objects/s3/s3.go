// Package s3 is a persistence.Objects on an S3-compatible service (AWS S3,
// MinIO, SeaweedFS, ...), through minio-go.
//
// Put streams: an object up to Config.PartSize goes in one PUT straight from
// the reader; a larger one in a multipart upload that holds one part in
// memory at a time (minio-go's buffer, PartSize bytes), aborted if anything
// fails, so that nothing is stored. Open makes one HEAD request and reads
// lazily: http.ServeContent's Seek and Range reads become range GETs, each
// pinned with If-Match to the version Open saw, so that a reader never mixes
// two versions of an overwritten object.
package s3

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"actorim/persistence"
)

// Config says where the objects live. Zero values are the defaults
// WithDefaults names.
type Config struct {
	// Endpoint is the service's host:port, without a scheme. Required.
	Endpoint string
	// Bucket holds the objects. Default "actorim-media".
	Bucket string
	// CreateBucket creates Bucket at Open when it does not exist. Off, a
	// missing bucket fails Open.
	CreateBucket bool
	// Region signs the requests (and places a bucket Open creates).
	// Default "us-east-1", which S3-compatible services accept.
	Region string
	// AccessKey and SecretKey authenticate; both empty: anonymous requests.
	// SecretKeyFile, instead of SecretKey, names a file holding the secret
	// (surrounding white space ignored), so that it stays off command lines.
	AccessKey     string
	SecretKey     string
	SecretKeyFile string
	// UseTLS speaks HTTPS to Endpoint. CAFile, if set, is a PEM file of CA
	// certificates trusted besides the system's (a private CA).
	UseTLS bool
	CAFile string
	// Prefix starts every object name: key "ab/cd" is Prefix+"ab/cd". Set
	// it (e.g. "media/") to share a bucket. Default empty.
	Prefix string
	// PartSize is the size of the parts of a multipart upload, and so the
	// memory one Put of a larger object holds. Default 16 MiB; S3's minimum
	// is 5 MiB.
	PartSize uint64
}

const (
	defaultBucket   = "actorim-media"
	defaultRegion   = "us-east-1"
	defaultPartSize = 16 << 20
	minPartSize     = 5 << 20
)

// WithDefaults returns c with every zero field that has a default set to it
// (Endpoint has none: it is required).
func (c Config) WithDefaults() Config {
	if c.Bucket == "" {
		c.Bucket = defaultBucket
	}
	if c.Region == "" {
		c.Region = defaultRegion
	}
	if c.PartSize == 0 {
		c.PartSize = defaultPartSize
	}
	return c
}

// Store is a persistence.Objects in an S3 bucket. Create it with Open; it is
// safe for concurrent use.
type Store struct {
	mc  *minio.Client
	cfg Config
}

var _ persistence.Objects = (*Store)(nil)

// Open connects to cfg.Endpoint and checks that the bucket exists (creating
// it if cfg.CreateBucket), which also checks the credentials.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	cfg = cfg.WithDefaults()
	if cfg.Endpoint == "" {
		return nil, errors.New("objects/s3: no endpoint configured")
	}
	if cfg.PartSize < minPartSize {
		return nil, fmt.Errorf("objects/s3: part size %d below S3's minimum of 5 MiB", cfg.PartSize)
	}
	secret := cfg.SecretKey
	if cfg.SecretKeyFile != "" {
		if secret != "" {
			return nil, errors.New("objects/s3: both SecretKey and SecretKeyFile are set")
		}
		b, err := os.ReadFile(cfg.SecretKeyFile)
		if err != nil {
			return nil, fmt.Errorf("objects/s3: secret key: %w", err)
		}
		secret = strings.TrimSpace(string(b))
	}
	transport, err := minio.DefaultTransport(cfg.UseTLS)
	if err != nil {
		return nil, fmt.Errorf("objects/s3: %w", err)
	}
	if cfg.CAFile != "" {
		if !cfg.UseTLS {
			return nil, errors.New("objects/s3: CAFile set without UseTLS")
		}
		if transport.TLSClientConfig, err = caConfig(cfg.CAFile); err != nil {
			return nil, err
		}
	}
	mc, err := minio.New(cfg.Endpoint, &minio.Options{
		Creds:     credentials.NewStaticV4(cfg.AccessKey, secret, ""),
		Secure:    cfg.UseTLS,
		Region:    cfg.Region,
		Transport: transport,
	})
	if err != nil {
		return nil, fmt.Errorf("objects/s3: %w", err)
	}
	exists, err := mc.BucketExists(ctx, cfg.Bucket)
	if err != nil {
		return nil, fmt.Errorf("objects/s3: bucket %s at %s: %w", cfg.Bucket, cfg.Endpoint, err)
	}
	if !exists {
		if !cfg.CreateBucket {
			return nil, fmt.Errorf("objects/s3: bucket %s does not exist at %s", cfg.Bucket, cfg.Endpoint)
		}
		err := mc.MakeBucket(ctx, cfg.Bucket, minio.MakeBucketOptions{Region: cfg.Region})
		if code := minio.ToErrorResponse(err).Code; err != nil && code != "BucketAlreadyOwnedByYou" && code != "BucketAlreadyExists" {
			return nil, fmt.Errorf("objects/s3: create bucket %s at %s: %w", cfg.Bucket, cfg.Endpoint, err)
		}
	}
	return &Store{mc: mc, cfg: cfg}, nil
}

func caConfig(file string) (*tls.Config, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("objects/s3: CA file: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("objects/s3: CA file %s holds no PEM certificate", file)
	}
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}

// Put stores size bytes of r under key. See persistence.Objects.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) error {
	if err := checkKey(key); err != nil {
		return err
	}
	if size < 0 {
		return fmt.Errorf("objects/s3: put %s: negative size %d", key, size)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("objects/s3: put %s: %w", key, err)
	}
	er := &exactReader{ctx: ctx, r: r, left: size}
	_, err := s.mc.PutObject(ctx, s.cfg.Bucket, s.cfg.Prefix+key, er, size, minio.PutObjectOptions{
		ContentType: contentType, // minio-go sends application/octet-stream for ""
		PartSize:    s.cfg.PartSize,
	})
	if er.err != nil { // the reader's fault, whatever minio-go made of it
		err = er.err
	}
	if err != nil {
		return fmt.Errorf("objects/s3: put %s: %w", key, err)
	}
	return nil
}

// Open returns the object under key. Its reads are requests made with ctx:
// they fail once ctx is done, so open it with the context of the request
// that reads it.
func (s *Store) Open(ctx context.Context, key string) (persistence.Object, error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	o, err := s.mc.GetObject(ctx, s.cfg.Bucket, s.cfg.Prefix+key, minio.GetObjectOptions{})
	if err != nil {
		return nil, fmt.Errorf("objects/s3: open %s: %w", key, mapErr(err))
	}
	// The first Stat is a HEAD request; later reads are GETs pinned to the
	// ETag it saw (minio-go sets If-Match).
	st, err := o.Stat()
	if err != nil {
		_ = o.Close()
		return nil, fmt.Errorf("objects/s3: open %s: %w", key, mapErr(err))
	}
	return &object{o: o, info: s.info(key, st)}, nil
}

// Stat returns the info of the object under key.
func (s *Store) Stat(ctx context.Context, key string) (persistence.ObjectInfo, error) {
	if err := checkKey(key); err != nil {
		return persistence.ObjectInfo{}, err
	}
	st, err := s.mc.StatObject(ctx, s.cfg.Bucket, s.cfg.Prefix+key, minio.StatObjectOptions{})
	if err != nil {
		return persistence.ObjectInfo{}, fmt.Errorf("objects/s3: stat %s: %w", key, mapErr(err))
	}
	return s.info(key, st), nil
}

// Delete removes the object under key; a missing key is not an error.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := checkKey(key); err != nil {
		return err
	}
	err := s.mc.RemoveObject(ctx, s.cfg.Bucket, s.cfg.Prefix+key, minio.RemoveObjectOptions{})
	if err != nil && !errors.Is(mapErr(err), persistence.ErrObjectNotFound) {
		return fmt.Errorf("objects/s3: delete %s: %w", key, err)
	}
	return nil
}

func (s *Store) info(key string, st minio.ObjectInfo) persistence.ObjectInfo {
	return persistence.ObjectInfo{Key: key, Size: st.Size, ContentType: st.ContentType, ModTime: st.LastModified}
}

// mapErr turns S3's "no such key" into persistence.ErrObjectNotFound,
// keeping the service's message.
func mapErr(err error) error {
	if err == nil {
		return nil
	}
	if r := minio.ToErrorResponse(err); r.Code == minio.NoSuchKey || (r.Code == "" && r.StatusCode == http.StatusNotFound) {
		return fmt.Errorf("%w (%v)", persistence.ErrObjectNotFound, err)
	}
	return err
}

// object is an open S3 object; Info is what Open's HEAD saw (minio's own
// Stat reports the size left to read).
type object struct {
	o    *minio.Object
	info persistence.ObjectInfo
}

func (o *object) Read(p []byte) (int, error) {
	n, err := o.o.Read(p)
	if err != nil && err != io.EOF {
		err = mapErr(err)
	}
	return n, err
}

// ReadAt reads len(p) bytes at off with one range GET.
func (o *object) ReadAt(p []byte, off int64) (int, error) {
	n, err := o.o.ReadAt(p, off)
	if err != nil && err != io.EOF {
		err = mapErr(err)
	}
	return n, err
}

func (o *object) Seek(off int64, whence int) (int64, error) { return o.o.Seek(off, whence) }
func (o *object) Close() error                              { return o.o.Close() }
func (o *object) Info() persistence.ObjectInfo              { return o.info }

// exactReader yields exactly left bytes of r and fails, recording why, if r
// has fewer or more or ctx ends. It checks for more before handing over
// the last byte, so that the upload fails before it can complete.
type exactReader struct {
	ctx  context.Context
	r    io.Reader
	left int64
	err  error
}

func (e *exactReader) Read(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	if err := e.ctx.Err(); err != nil {
		return e.fail(err)
	}
	if e.left == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > e.left {
		p = p[:e.left]
	}
	n, err := e.r.Read(p)
	e.left -= int64(n)
	switch {
	case e.left == 0:
		var one [1]byte
		if m, err := io.ReadFull(e.r, one[:]); m > 0 {
			return e.fail(errors.New("reader has more bytes than the size given"))
		} else if err != io.EOF {
			return e.fail(err)
		}
		return n, nil
	case err == io.EOF:
		return e.fail(fmt.Errorf("reader ended %d bytes short of the size given: %w", e.left, io.ErrUnexpectedEOF))
	case err != nil:
		return e.fail(err)
	}
	return n, nil
}

// fail records err and returns it with no bytes: minio-go must not treat a
// short part as the last one.
func (e *exactReader) fail(err error) (int, error) {
	e.err = err
	return 0, err
}

// checkKey returns an error for a key that is not a '/'-joined path of
// segments of [A-Za-z0-9._-], none empty or starting with '.' (the rule
// of persistence/objects/fs, so that a bucket's keys fit on a disk too).
func checkKey(key string) error {
	if key == "" {
		return errors.New("objects/s3: empty key")
	}
	for seg := range strings.SplitSeq(key, "/") {
		if seg == "" || seg[0] == '.' {
			return fmt.Errorf("objects/s3: bad key %q: empty segment or one starting with '.'", key)
		}
		if i := strings.IndexFunc(seg, func(c rune) bool {
			return !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-')
		}); i >= 0 {
			return fmt.Errorf("objects/s3: bad key %q: character %q", key, seg[i])
		}
	}
	return nil
}
