package redisstore

// WithDefaults returns o with its zero Addr and Prefix set to the defaults
// Open uses (defaultAddr, defaultPrefix).
func (o Options) WithDefaults() Options {
	if o.Addr == "" {
		o.Addr = defaultAddr
	}
	if o.Prefix == "" {
		o.Prefix = defaultPrefix
	}
	return o
}
