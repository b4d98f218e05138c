package auth

// WithDefaults returns c with every zero field set to its default: the
// bounds a Hasher made from c works with. Concurrency depends on GOMAXPROCS.
func (c HasherConfig) WithDefaults() HasherConfig {
	c.setDefaults()
	return c
}
