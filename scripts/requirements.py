"""Prints pyproject.toml's dependencies (with --dev, the dev extras too), one per line.

The project is run from its checkout, not installed as a package: installing
it would put its ``numbers`` app on every interpreter's path in the venv,
shadowing the standard library module of that name outside the project too.
"""

import sys
import tomllib
from pathlib import Path

project = tomllib.loads((Path(__file__).parent.parent / "pyproject.toml").read_text())["project"]
requirements = list(project["dependencies"])
if "--dev" in sys.argv:
    requirements += project["optional-dependencies"]["dev"]
print("\n".join(requirements))
