package cluster

// WithDefaults returns c with every zero field that has a default set to
// it: the configuration a member started with c runs with. cmd/imnode takes
// its flags' defaults from it, so that each default is written once (in
// setDefaults).
func (c Config) WithDefaults() Config {
	c.setDefaults()
	return c
}
