package main

import (
	"flag"
	"strings"

	"actorim/node"
)

// bindMediaFlags binds the flags of uploads, downloads and the object store.
func bindMediaFlags(fs *flag.FlagSet, c *node.Config, d node.Config) {
	m, dm := &c.Media, d.Media
	fs.StringVar(&m.Store, "media-store", dm.Store, "where uploaded files go: fs (--media-dir), s3 (--s3-endpoint) or off (default: s3 when --s3-endpoint is set, else fs for one node and off for a cluster)")
	fs.StringVar(&m.Dir, "media-dir", dm.Dir, "directory of the fs media store (default <data>/media/objects)")
	s, ds := &m.S3, dm.S3
	fs.StringVar(&s.Endpoint, "s3-endpoint", ds.Endpoint, "host:port of the S3-compatible service of the s3 media store")
	fs.StringVar(&s.Bucket, "s3-bucket", ds.Bucket, "bucket of the s3 media store")
	fs.BoolVar(&s.CreateBucket, "s3-create-bucket", ds.CreateBucket, "create the bucket at start when it is missing")
	fs.StringVar(&s.Region, "s3-region", ds.Region, "region of the s3 media store")
	fs.StringVar(&s.AccessKey, "s3-access-key", ds.AccessKey, "access key of the s3 media store")
	fs.StringVar(&s.SecretKeyFile, "s3-secret-key-file", ds.SecretKeyFile, "file holding the secret key of the s3 media store (mode 0600)")
	fs.BoolVar(&s.UseTLS, "s3-tls", ds.UseTLS, "speak HTTPS to the S3 service")
	fs.StringVar(&s.CAFile, "s3-ca", ds.CAFile, "PEM file of CA certificates trusted for the S3 service (a private CA)")
	fs.StringVar(&s.Prefix, "s3-prefix", ds.Prefix, "prefix of every object name (to share a bucket)")
	sv, dsv := &m.Service, dm.Service
	fs.Int64Var(&sv.MaxBytes, "media-max-bytes", dsv.MaxBytes, "largest file accepted, in bytes")
	fs.Int64Var(&sv.QuotaBytes, "media-quota-bytes", dsv.QuotaBytes, "what one user's stored files may add up to, in bytes")
	fs.Int64Var(&sv.MaxPixels, "media-max-pixels", dsv.MaxPixels, "largest image (width times height) decoded for a thumbnail; larger ones are refused")
	fs.IntVar(&sv.DecodeConcurrency, "media-decode-concurrency", dsv.DecodeConcurrency, "images decoded at once (4 bytes a pixel each)")
	fs.DurationVar(&sv.UnsentTTL, "media-unsent-ttl", dsv.UnsentTTL, "delete uploaded files no message carries, and abandoned uploads, after this long")
	fs.DurationVar(&sv.GCInterval, "media-gc-interval", dsv.GCInterval, "how often the media collector runs")
	fs.DurationVar(&sv.LinkTTL, "media-link-ttl", dsv.LinkTTL, "lifetime of signed download links")
	fs.Func("media-types", "comma-separated sniffed types accepted (type/subtype or type/*; default: every type)", func(v string) error {
		sv.AllowedTypes = splitList(v)
		return nil
	})
	fs.Func("media-denied-types", "comma-separated sniffed types refused (default: "+strings.Join(dsv.DeniedTypes, ",")+"; empty: none)", func(v string) error {
		sv.DeniedTypes = append([]string{}, splitList(v)...)
		return nil
	})
}

// splitList splits a comma-separated list, dropping empty items.
func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}
