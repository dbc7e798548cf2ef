"""``zoo new-method NAME [--dir DIR]``: write a plugin repository for a new method, ready to install and test.

    zoo new-method ssf                  # writes ./zoo-ssf/
    zoo new-method my_scale --dir plugins/my-scale

The repository holds ``pyproject.toml`` (the ``zoo.methods`` entry point), the method module
``zoo_NAME.py`` (a small real method to change: a per-feature scale and shift of each targeted
layer's output, mergeable except a shift on a layer without a bias), ``tests/test_formula.py``
(the formula against a hand computation), a ``README.md`` and ``.github/workflows/ci.yml``,
which runs ``pytest --zoo-contract=NAME``. It is written from the templates in
``zoo/runner/plugin_template/`` into a new or empty folder, all at once: a folder that holds
anything is refused, never written into.
"""

from __future__ import annotations

import argparse
import errno
import os
import shutil
import string
import sys
from pathlib import Path

from zoo.registry import get_method, list_methods
from zoo.runtime.atomic import staging_dir
from zoo.version import __version__

TEMPLATES = Path(__file__).with_name("plugin_template")
FILES = {
    "pyproject.toml": "pyproject.toml.tmpl",
    "README.md": "README.md.tmpl",
    "{module}.py": "method.py.tmpl",
    "tests/test_formula.py": "test_formula.py.tmpl",
    ".github/workflows/ci.yml": "ci.yml.tmpl",
    ".gitignore": "gitignore.tmpl",
}
"""Where each template goes in the plugin repository."""
DISTRIBUTION = "zoo-peft"


def check_name(name: str) -> None:
    """Refuse a method name zoo cannot register, or one already registered.

    Raises:
        ValueError: naming the valid forms, or the method that has the name.
    """
    if not name.isascii() or not name.isidentifier() or not name[:1].isalpha() or name != name.lower():
        raise ValueError(
            f"method name {name!r} is invalid: use lower-case letters, digits and '_', starting with a letter "
            "(e.g. 'ssf', 'scale_shift', 'lora2'); it becomes method=<name> and the module zoo_<name>"
        )
    if name in list_methods():
        raise ValueError(f"method name {name!r} is already registered (by {get_method(name).source}); choose another name")


def zoo_requirement() -> str:
    """The zoo releases a new plugin depends on: this minor version (the stable API's promise while zoo is 0.x)."""
    major, minor = (int(part) for part in __version__.split(".")[:2])
    upper = f"{major}.{minor + 1}" if major == 0 else f"{major + 1}"
    return f">={major}.{minor},<{upper}"


def plugin_files(name: str) -> dict[str, str]:
    """``{path in the repository: content}`` of the plugin repository of method ``name``."""
    check_name(name)
    values = {
        "name": name,
        "Name": "".join(part.capitalize() for part in name.split("_")),
        "module": f"zoo_{name}",
        "dist": f"zoo-{name.replace('_', '-')}",
        "zoo_requirement": DISTRIBUTION + zoo_requirement(),
        "zoo_test_requirement": f"{DISTRIBUTION}[test]{zoo_requirement()}",
    }
    return {
        path.format(module=values["module"]): string.Template((TEMPLATES / template).read_text()).substitute(values)
        for path, template in FILES.items()
    }


def _refuse_non_empty(folder: Path) -> None:
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        what = "a file" if not folder.is_dir() else "a folder that is not empty"
        raise FileExistsError(
            f"{str(folder)!r} is {what}; zoo new-method writes a new plugin repository only into a new "
            "or empty folder (choose another with --dir)"
        )


def write_plugin(name: str, folder: str | Path | None = None) -> Path:
    """Write the plugin repository of method ``name`` into ``folder`` (default: ``./zoo-<name>``); return the folder.

    The files are written into a staging folder beside it, which is then renamed to ``folder``: a rename replaces
    nothing but an empty folder, so files that appear there meanwhile are never overwritten.

    Raises:
        ValueError: an invalid or taken name. FileExistsError: ``folder`` is a file or holds anything.
    """
    files = plugin_files(name)
    target = Path(folder) if folder is not None else Path(f"zoo-{name.replace('_', '-')}")
    _refuse_non_empty(target)
    staging = staging_dir(target)
    try:
        for path, content in files.items():
            (staging / path).parent.mkdir(parents=True, exist_ok=True)
            (staging / path).write_text(content)
        os.rename(staging, target)
    except BaseException as err:
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(err, OSError) and err.errno in (errno.ENOTEMPTY, errno.EEXIST):
            _refuse_non_empty(target)
        raise
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="zoo new-method", description=__doc__.splitlines()[0].split(": ", 1)[1])
    parser.add_argument("name", help="the method's name: lower-case letters, digits and '_', starting with a letter")
    parser.add_argument("--dir", type=Path, help="where to write the repository (a new or empty folder); default ./zoo-NAME")
    args = parser.parse_args(argv)
    try:
        folder = write_plugin(args.name, args.dir)
    except (ValueError, FileExistsError) as err:
        print(f"zoo new-method: {err}", file=sys.stderr)
        return 2
    print(
        f"wrote the plugin repository of method {args.name!r} to {folder}\n"
        f"next: cd {folder} && pip install -e '.[test]' && pytest --zoo-contract={args.name}"
    )
    return 0
