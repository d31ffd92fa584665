"""The Lua scripts of the Redis backends, as shipped in ``tenantkv/lua/``.

``set_many_unindexed.lua`` is the one script a store without the key index
runs (its ``set_many``); every other script belongs to the index and is
sent with the shared prelude ``_common.lua`` after its shebang line (see
:func:`tenantkv.backends.redisindex.script_source`).
"""

from __future__ import annotations

from functools import cache
from importlib import resources

__all__ = ["lua_source"]


@cache
def lua_source(name: str) -> str:
    """The text of ``tenantkv/lua/<name>.lua``."""
    return resources.files("tenantkv").joinpath("lua", f"{name}.lua").read_text("utf-8")
