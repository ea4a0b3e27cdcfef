"""Imports every rule module of the package, so `translate` sees their rules (one import line per module)."""
