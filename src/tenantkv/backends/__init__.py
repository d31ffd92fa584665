"""Backends side by side: each implements :class:`tenantkv.backends.base.Backend`."""
