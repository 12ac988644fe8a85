"""The ``numbers`` app stands in for the standard library's module, whatever was imported first.

Each check runs in a fresh interpreter, since import order is the point.
"""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

ABCS = ["Number", "Complex", "Real", "Rational", "Integral"]

# How pytest and Celery start: the standard module (through decimal and
# fractions) is imported before the project root is on sys.path, then config.
STDLIB_FIRST = f"""
import sys
assert "" not in sys.path  # -P: the checkout is not on sys.path yet
import decimal, fractions, numbers as early
assert not hasattr(early, "__path__"), early
sys.path[:0] = [{str(ROOT)!r}, ""]
import config
import numbers
assert numbers is not early and hasattr(numbers, "__path__"), numbers
for name in {ABCS!r}:
    assert getattr(numbers, name) is getattr(early, name), name
"""

# A plain ``python -c`` in the checkout: sys.path[0] is '', our package wins.
PACKAGE_FIRST = """
import sys
assert "decimal" not in sys.modules and "numbers" not in sys.modules
import numbers
assert hasattr(numbers, "__path__"), numbers
import decimal, fractions
assert fractions.numbers is numbers
"""

ORDERS = {"stdlib_first": (["-P"], STDLIB_FIRST), "package_first": ([], PACKAGE_FIRST)}


def run_in_project(order: str, *snippets: str, stdin: str = "") -> subprocess.CompletedProcess:
    """Runs ``snippets`` after ``order``'s imports, in the checkout; fails the test if they fail."""
    flags, preamble = ORDERS[order]
    environ = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTEST_VERSION")}
    code = preamble + "".join(textwrap.dedent(snippet) for snippet in snippets)
    return _run(
        [sys.executable, *flags, "-c", code],
        cwd=ROOT,
        env={**environ, "DJANGO_SETTINGS_MODULE": "config.settings"},
        input=stdin,
    )


def run_outside(code: str, cwd: Path, *, stdin: str = "") -> subprocess.CompletedProcess:
    """Runs ``code`` with the standard library only: isolated, no site, outside the checkout."""
    assert not cwd.resolve().is_relative_to(ROOT)
    return _run([sys.executable, "-I", "-S", "-c", textwrap.dedent(code)], cwd=cwd, input=stdin)


def _run(argv: list[str], **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False, **kwargs)
    assert result.returncode == 0, result.stderr
    return result


def last_line(result: subprocess.CompletedProcess) -> str:
    return result.stdout.strip().splitlines()[-1]


ARITHMETIC = f"""
import decimal, fractions, statistics
from decimal import Decimal
from fractions import Fraction
for name in {ABCS!r}:
    abc = getattr(numbers, name)
    assert (abc.__module__, abc.__qualname__) == ("numbers", name), abc
assert sorted(numbers.__all__) == sorted({ABCS!r})
assert isinstance(3, numbers.Integral) and isinstance(0.5, numbers.Real)
assert not isinstance(0.5, numbers.Rational)
assert isinstance(Fraction(1, 3), numbers.Rational)
assert isinstance(Decimal("1.5"), numbers.Number) and not isinstance(Decimal(1), numbers.Real)
assert Fraction(1, 3) + Fraction(1, 6) == Fraction(1, 2)
assert Fraction(1, 3) * 3 == 1 and 2 ** Fraction(1, 1) == 2
assert Decimal("0.1") + Decimal("0.2") == Decimal("0.3")
assert Decimal(7) / Decimal(4) == Decimal("1.75")
assert statistics.numbers is numbers
assert statistics.mean([Fraction(1, 3), Fraction(2, 3)]) == Fraction(1, 2)
assert statistics.mean([Decimal("1.5"), Decimal("2.5")]) == Decimal(2)
"""


def test_stdlib_imported_first_then_config_gives_the_app_with_the_stdlib_classes():
    run_in_project(
        "stdlib_first",
        ARITHMETIC,
        """
        import django
        django.setup()
        import numbers.models
        assert numbers.models.Number._meta.app_label == "numbers"
        assert sys.modules["numbers"] is numbers
        """,
    )


def test_package_imported_first_serves_decimal_and_fractions_with_the_stdlib_abcs():
    run_in_project(
        "package_first",
        ARITHMETIC,
        """
        import django
        django.setup()  # imports config, which keeps our package
        assert sys.modules["numbers"] is numbers
        import numbers.models
        assert numbers.models.Number._meta.app_label == "numbers"
        """,
    )


PLAIN = """
import numbers
assert not hasattr(numbers, "__path__"), numbers
"""

DUMP_ABCS = f"""
import pickle
print(pickle.dumps([getattr(numbers, name) for name in {ABCS!r}]).hex())
"""

LOAD_ABCS = f"""
import decimal, pickle, sys
loaded = pickle.loads(bytes.fromhex(sys.stdin.read().strip()))
assert loaded == [getattr(numbers, name) for name in {ABCS!r}]
assert all(a is getattr(numbers, n) for a, n in zip(loaded, {ABCS!r}))
assert isinstance(3, loaded[-1]) and isinstance(decimal.Decimal(1), loaded[0])
print(numbers.__file__)
"""


@pytest.mark.parametrize("order", ORDERS)
def test_pickled_abcs_load_in_a_plain_interpreter_outside_the_checkout(order, tmp_path):
    dumped = last_line(run_in_project(order, DUMP_ABCS))
    where = last_line(run_outside(PLAIN + LOAD_ABCS, tmp_path, stdin=dumped))
    assert not Path(where).is_relative_to(ROOT)  # the standard library's own module


@pytest.mark.parametrize("order", ORDERS)
def test_abcs_pickled_in_a_plain_interpreter_load_as_ours(order, tmp_path):
    dumped = last_line(run_outside(PLAIN + DUMP_ABCS, tmp_path))
    where = last_line(run_in_project(order, LOAD_ABCS, stdin=dumped))
    assert Path(where) == ROOT / "numbers" / "__init__.py"
