"""The Lua scripts of the Redis backends, as shipped in ``lua/`` beside this module.

``set_many_unindexed.lua`` is the one script a store without the key index
runs (its ``set_many``); every other script belongs to the index
(:mod:`.index`) and is sent with the shared prelude ``_common.lua`` after
its shebang line (:func:`script_source`).
"""

from __future__ import annotations

from functools import cache
from importlib import resources

__all__ = ["lua_source", "script_source"]


@cache
def lua_source(name: str) -> str:
    """The text of ``lua/<name>.lua``."""
    return resources.files(__package__).joinpath("lua", f"{name}.lua").read_text("utf-8")


@cache
def script_source(name: str) -> str:
    """The text of index script ``name``: its shebang line, the shared prelude, then the rest.

    The shebang carries the script's flags: scripts that only read or remove
    declare ``allow-oom``, so a tenant can still be listed, counted, and
    cleared at ``maxmemory``; the writes that grow memory are refused whole.
    """
    shebang, _, body = lua_source(name).partition("\n")
    if not shebang.startswith("#!lua"):
        raise AssertionError(f"lua/{name}.lua must start with its #!lua line")
    return f"{shebang}\n{lua_source('_common')}\n{body}"
