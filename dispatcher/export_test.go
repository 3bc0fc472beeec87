package dispatcher

// Config returns the dispatcher's configuration, defaults filled in: the
// tests check what New made of theirs.
func (d *Dispatcher) Config() Config { return d.cfg }
