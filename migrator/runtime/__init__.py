"""The runtime: carries out what the phase machines decide, on drivers, stores and peers."""
