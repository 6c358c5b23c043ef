"""A clear ImportError when gdfast's compiled extensions are missing.

Imported by gdfast/__init__.py, which keeps the error for the first use of anything that
runs the kernels (gdfast.Adam, ...): gdfast.reference and the catalogue need no build.
The usual cause: Python found the source folder `gdfast/` of a clone (the current
directory comes first on sys.path) where nothing was built, instead of the installed
package.
"""

from __future__ import annotations

import importlib.machinery
from pathlib import Path

EXTENSIONS = (
    "gdfast._kernels",
    "gdfast._hogwild",
    "gdfast._formats",
    "gdfast.distributed._server_kernels",
)


def missing_extensions() -> list[str]:
    """The compiled modules of gdfast missing from the folder this gdfast was imported from.

    Looked up in that folder only (not through every finder on sys.meta_path): an editable
    install elsewhere maps the name `gdfast._kernels` to its own build, which this source
    tree's `gdfast/__init__.py` would not find at import time.
    """
    package_dir = Path(__file__).resolve().parent
    return [
        name
        for name in EXTENSIONS
        # a subpackage's module is looked up in the subpackage's folder
        if importlib.machinery.PathFinder.find_spec(
            name, [str(package_dir.joinpath(*name.split(".")[1:-1]))]
        )
        is None
    ]


def message(missing: list[str], package_dir: Path) -> str:
    """What went wrong and what to run, for the folder gdfast was imported from."""
    names = ", ".join(missing)
    source_tree = package_dir.parent
    if (source_tree / "setup.py").is_file() and (source_tree / "src_c").is_dir():
        return (
            f"gdfast was imported from its source tree ({package_dir}), where its compiled "
            f"extension ({names}) is not built. Build it there:\n"
            f"    cd {source_tree} && python -m pip install -e .\n"
            f"(or `python setup.py build_ext --inplace`), or run Python from another folder "
            f"to use an installed gdfast."
        )
    return (
        f"gdfast at {package_dir} has no compiled extension ({names}): the installation is "
        f"incomplete. Reinstall it: python -m pip install --force-reinstall --no-deps gdfast "
        f"(from a clone: python -m pip install .)"
    )


def require_extensions() -> None:
    """Raise ImportError saying what to run when an extension module is missing."""
    missing = missing_extensions()
    if missing:
        raise ImportError(message(missing, Path(__file__).resolve().parent))


require_extensions()
