package gateway

// WithDefaults returns c with every zero field that has a default set to
// it, Hashing's included: the configuration the gateway runs with.
// cmd/imnode takes its flags' defaults from it, so that each default is
// written once (in setDefaults). MaxConnections depends on this process's
// open-files limit.
func (c Config) WithDefaults() Config {
	c.setDefaults()
	c.Hashing = c.Hashing.WithDefaults()
	return c
}
