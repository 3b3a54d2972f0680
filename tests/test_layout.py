"""The tree a newcomer reads: few top-level modules, functions a reader can hold, a README that
is a user's door with working links. (The layers themselves are import-linter's contracts in
pyproject.toml, checked by `lint-imports` in CI.)"""

import ast
import re
from pathlib import Path

import pytest

import fastmlp

PACKAGE = Path(fastmlp.__file__).parent
ROOT = PACKAGE.parent
MAX_TOP_LEVEL_MODULES = 14
MAX_FUNCTION_LINES = 80
MAX_README_LINES = 300


def test_the_top_level_holds_few_modules_the_rest_are_layers():
    modules = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(modules) <= MAX_TOP_LEVEL_MODULES, modules
    # every subfolder with code is a package (import-linter and the cache stamp see it)
    for folder in PACKAGE.iterdir():
        if folder.is_dir() and any(folder.glob("*.py")):
            assert (folder / "__init__.py").exists(), folder


def _long_functions(source, path):
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            n = node.end_lineno - node.lineno + 1
            if n > MAX_FUNCTION_LINES:
                yield f"{path}:{node.lineno} {node.name} ({n} lines)"


def test_no_function_is_longer_than_a_reader_can_hold():
    long = [f for p in sorted(PACKAGE.rglob("*.py"))
            for f in _long_functions(p.read_text(), p.relative_to(ROOT))]
    assert not long, long
    # and the check sees one: a function one line too long
    body = "".join(f"    x = {i}\n" for i in range(MAX_FUNCTION_LINES))
    assert list(_long_functions(f"def f():\n{body}", "x.py"))


def test_the_readme_is_short_and_its_links_lead_somewhere():
    readme = ROOT / "README.md"
    if not readme.exists():
        pytest.skip("an installed package without its repository: no README to check")
    text = readme.read_text()
    assert len(text.splitlines()) <= MAX_README_LINES
    pages = [readme, *sorted((ROOT / "docs").glob("*.md"))]
    for page in pages:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
            if "://" in target or target.startswith("mailto:"):
                continue
            assert (page.parent / target).exists(), f"{page.name} links to missing {target}"
