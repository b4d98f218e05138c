package embedded

// WithDefaults returns o with its zero CacheBytes and MaxBatch set to the
// defaults Open uses (defaultCacheBytes, defaultMaxBatch).
func (o Options) WithDefaults() Options {
	if o.CacheBytes <= 0 {
		o.CacheBytes = defaultCacheBytes
	}
	if o.MaxBatch <= 0 {
		o.MaxBatch = defaultMaxBatch
	}
	return o
}
