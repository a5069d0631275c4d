"""The migration cookie: features, msgpack wire form, libvirt-compatible XML form, signing."""
