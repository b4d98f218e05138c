package clickhouse

import "time"

// WithDefaults returns c with every zero field that has a default set to
// it (Addr has none: it is required).
func (c Config) WithDefaults() Config {
	c.setDefaults()
	return c
}

// WithDefaults returns c with every zero field that has a default set to it.
func (c ArchiverConfig) WithDefaults() ArchiverConfig {
	c.setDefaults()
	return c
}

// WithDefaults returns c with every zero field that has a default set to it
// (Retention has none: zero disables trimming).
func (c TrimmerConfig) WithDefaults() TrimmerConfig {
	c.setDefaults()
	return c
}

func (c *TrimmerConfig) setDefaults() {
	if c.Interval <= 0 {
		c.Interval = time.Minute
	}
}
