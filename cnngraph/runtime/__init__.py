"""Executing a compiled network: generated step code over planned buffers, per target."""
