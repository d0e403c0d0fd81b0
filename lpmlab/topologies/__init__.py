"""Built-in lab topologies (package data)."""
