"""msgpack-RPC between clients and daemons and between daemons: unix sockets and mutual TLS."""
