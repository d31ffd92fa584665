"""The library installs alone: its own requirements, and an import without the CLI's packages."""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata

from packaging.requirements import Requirement

#: Only the command line needs these (the ``cli`` extra).
CLI_ONLY = {"typer", "rich", "matplotlib"}

# A meta path finder that makes the CLI's packages impossible to import, as in
# a venv where only `pip install tenantkv` ran.
_WITHOUT_CLI_PACKAGES = f"""
import importlib.abc, sys
class Missing(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in {sorted(CLI_ONLY | {"click"})!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None
sys.meta_path.insert(0, Missing())
for name in list(sys.modules):
    if name.partition(".")[0] in {sorted(CLI_ONLY | {"click"})!r}:
        del sys.modules[name]
"""


def _requirements() -> list[Requirement]:
    return [Requirement(text) for text in metadata.requires("tenantkv") or []]


def test_core_requirements_are_redis_and_sortedcontainers_only() -> None:
    core = {r.name for r in _requirements() if r.marker is None}
    assert core == {"redis", "sortedcontainers"}


def test_cli_packages_come_with_the_cli_extra() -> None:
    extras = {r.name for r in _requirements() if r.marker and r.marker.evaluate({"extra": "cli"})}
    assert extras >= CLI_ONLY


def test_the_library_imports_and_works_without_the_cli_packages() -> None:
    code = _WITHOUT_CLI_PACKAGES + (
        "import asyncio, tenantkv\n"
        "async def main():\n"
        "    async with tenantkv.open_store('memory://', tenant='t') as store:\n"
        "        await store.set('k', 1)\n"
        "        print(await store.keys())\n"
        "asyncio.run(main())\n"
        "assert not {'typer', 'rich', 'matplotlib'} & set(sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['k']"


def test_the_console_script_says_how_to_install_the_cli() -> None:
    code = _WITHOUT_CLI_PACKAGES + "from tenantkv.cli import main\nmain(['--help'])\n"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "pip install 'tenantkv[cli]'" in done.stderr
    assert "Traceback" not in done.stderr
