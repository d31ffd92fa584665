"""The ``tenantkv`` command line: ops commands and the load test.

``tenantkv.cli.app`` holds the typer application and the console-script entry
point ``main``; the ops commands live in :mod:`tenantkv.cli.ops`, the load
test in the :mod:`tenantkv.cli.loadtest` subpackage.
"""
