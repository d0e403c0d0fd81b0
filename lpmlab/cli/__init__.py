"""Thin command-line functions: parse HMC-style arguments, call the core, print, exit."""
