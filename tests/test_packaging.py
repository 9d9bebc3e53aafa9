"""The package as a user installs it: one import root, package data, a regular (non-editable) install
that runs outside the repository, the layer contract, lint, and documentation that resolves."""
from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import jedi
import pytest

from hdfm_bench.methods import list_paths, recipe

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """A wheel built (no build isolation: setuptools of this venv, no network) from a copy of the
    sources, so the build leaves nothing in the working tree."""
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for folder in ("bench", "methods", "tasks"):
        shutil.copytree(ROOT / folder, src / folder, ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path_factory.mktemp("dist")
    res = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                          "--disable-pip-version-check", "-w", str(out), str(src)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    (whl,) = out.glob("hdfm_bench-*.whl")
    return whl


@pytest.fixture(scope="module")
def unpacked(wheel, tmp_path_factory) -> Path:
    dest = tmp_path_factory.mktemp("site")
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(dest)
    return dest


def test_the_wheel_installs_one_import_root_with_its_data(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    assert tops == {"hdfm_bench", f"{wheel.name.split('-')[0]}-{wheel.name.split('-')[1]}.dist-info"}
    specs = sorted(Path(n).name for n in names if n.startswith("hdfm_bench/specs/") and n.endswith(".toml"))
    assert specs == sorted(p.name for p in (ROOT / "bench" / "specs").glob("*.toml")) and len(specs) >= 6
    # every package of the source tree is in the wheel (a package left out of pyproject would be missing)
    for folder, pkg in (("bench", "hdfm_bench"), ("methods", "hdfm_bench/methods"), ("tasks", "hdfm_bench/tasks")):
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.relative_to(ROOT / folder).as_posix()
            assert f"{pkg}/{rel}" in names, f"{folder}/{rel} is not packaged"


def test_a_regular_install_runs_outside_the_repository(wheel, tmp_path):
    """pip install (not editable) into a fresh venv whose only hdfm_bench is the wheel's; the heavy
    dependencies come from this venv's site-packages through a .pth file (no download)."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = next((venv / "lib").glob("python3*/site-packages"))
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")  # .pth files there are not run
    res = subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install",
                          "--no-deps", "--no-index", "-q", "--disable-pip-version-check", str(wheel)],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    env["HDFM_BENCH_DATA"] = str(tmp_path / "data")
    # the example plugin installed in this venv (editable) shows its entry point through deps.pth but cannot
    # be imported there (its finder is a .pth hook, not run): this venv holds the wheel alone
    env["HDFM_BENCH_NO_PLUGINS"] = "1"

    def run(*args):
        return subprocess.run([str(venv / "bin" / "hdfm-bench"), *args], capture_output=True, text=True, cwd=cwd,
                              env=env, timeout=300)

    where = subprocess.run([str(venv / "bin" / "python"), "-c", "import hdfm_bench; print(hdfm_bench.__file__)"],
                           capture_output=True, text=True, cwd=cwd, env=env)
    assert Path(where.stdout.strip()).is_relative_to(venv), where.stdout + where.stderr
    for top in ("methods", "tasks", "bench"):  # nothing generic is installed at top level
        probe = subprocess.run([str(venv / "bin" / "python"), "-c", f"import {top}"], capture_output=True,
                               text=True, cwd=cwd, env=env)
        assert probe.returncode != 0 and "No module named" in probe.stderr
    listed = run("list")
    assert listed.returncode == 0 and "PATHS (6)" in listed.stdout, listed.stderr
    dry = run("sweep", "ablation-mnist", "--executor", "slurm", "--dry-run")  # a shipped spec, by name
    assert dry.returncode == 0, dry.stderr
    assert "sweep 'ablation-mnist'" in dry.stdout and "#SBATCH --array=0-" in dry.stdout
    default = run("sweep", "--executor", "local", "--dry-run")  # the default spec is shipped data too
    assert default.returncode == 0 and "sweep 'digits-mini'" in default.stdout, default.stderr
    helped = run("reproduce", "ablation", "--help")
    assert helped.returncode == 0 and "usage: hdfm-bench reproduce" in helped.stdout
    assert not list(cwd.iterdir())  # dry runs and help write nothing


def test_the_layer_contract_holds_on_the_shipped_tree(unpacked):
    """import-linter on the package as installed (the repository maps methods/ and tasks/ into it,
    so the contract is checked on the unpacked wheel, where the tree is physical)."""
    env = {**os.environ, "PYTHONPATH": str(unpacked)}
    res = subprocess.run([str(VENV_BIN / "lint-imports"), "--config", str(ROOT / "pyproject.toml")],
                         capture_output=True, text=True, env=env, cwd=ROOT)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr
    assert "0 broken" in res.stdout and "Analyzed" in res.stdout


def test_the_layer_contract_holds_in_the_working_tree():
    """import-linter on the checkout as installed by scripts/setup.sh (a strict editable install: a real
    package tree of links), so the contract is checked where developers edit, not only on a wheel."""
    res = subprocess.run([str(VENV_BIN / "lint-imports")], capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr
    assert "0 broken" in res.stdout


def _hdfm_bench_imports() -> set[str]:
    """Every hdfm_bench module named by an absolute import in the checkout's code and tests."""
    names = set()
    for folder in ("bench", "methods", "tasks", "tests"):
        for file in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    names |= {a.name for a in node.names if a.name.split(".")[0] == "hdfm_bench"}
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module \
                        and node.module.split(".")[0] == "hdfm_bench":
                    names.add(node.module)
    return names


def test_a_static_resolver_finds_every_hdfm_bench_import():
    """jedi (what editors use for go-to-definition) resolves each ``hdfm_bench.*`` module of the checkout's
    imports to its file in bench/, methods/ or tasks/ without running any import hook."""
    names = sorted(_hdfm_bench_imports())
    assert {"hdfm_bench.tasks", "hdfm_bench.methods", "hdfm_bench.cli"} <= set(names) and len(names) > 60
    source = "".join(f"import {name}\n" for name in names)
    script = jedi.Script(source, path=str(ROOT / "probe.py"), environment=jedi.create_environment(
        sys.prefix, safe=False), project=jedi.Project(ROOT))
    homes = [ROOT / f for f in ("bench", "methods", "tasks")]
    unresolved = []
    for line, name in enumerate(names, start=1):
        found = script.goto(line, len(f"import {name}"), follow_imports=True)
        files = [Path(d.module_path).resolve() for d in found if d.module_path]
        if not any(f.is_relative_to(home) for f in files for home in homes):
            unresolved.append(name)
    assert not unresolved, f"not resolved statically: {unresolved}"


def test_the_layer_contract_catches_an_upward_import(unpacked, tmp_path):
    """The contract is not vacuous: a methods module importing the trainer breaks it."""
    tree = tmp_path / "site"
    shutil.copytree(unpacked / "hdfm_bench", tree / "hdfm_bench")
    bad = tree / "hdfm_bench" / "methods" / "objective.py"
    bad.write_text(bad.read_text() + "\nfrom hdfm_bench.training import records  # noqa\n")
    env = {**os.environ, "PYTHONPATH": str(tree)}
    res = subprocess.run([str(VENV_BIN / "lint-imports"), "--config", str(ROOT / "pyproject.toml")],
                         capture_output=True, text=True, env=env, cwd=ROOT)
    assert res.returncode != 0 and "hdfm_bench.methods.objective -> hdfm_bench.training.records" in res.stdout


def test_ruff_is_clean():
    res = subprocess.run([str(VENV_BIN / "ruff"), "check", "--no-cache", "."], capture_output=True, text=True,
                         cwd=ROOT)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr


def _doc_sections() -> set[str]:
    text = (ROOT / "docs" / "methods.md").read_text()
    return {m.group(1) for m in re.finditer(r"^#{2,4} (\d+(?:\.\d+)?)[ .]", text, re.M)}


def test_every_section_a_docstring_cites_exists_in_docs():
    sections = _doc_sections()
    cited: dict[str, set[str]] = {}
    for folder in ("bench", "methods", "tasks"):
        for f in (ROOT / folder).rglob("*.py"):
            text = f.read_text()
            assert "../shared" not in text, f"{f} points outside the repository"
            for m in re.finditer(r"(\S*methods\.md) §(\d+(?:\.\d+)?)(?:[–-](\d+(?:\.\d+)?))?", text):
                assert m.group(1).endswith("docs/methods.md"), f"{f}: cites {m.group(1)}, not docs/methods.md"
                for sec in filter(None, (m.group(2), m.group(3))):
                    cited.setdefault(sec, set()).add(f.name)
    assert len(cited) > 20
    missing = {s: sorted(files) for s, files in cited.items() if s not in sections}
    assert not missing, f"cited sections without a heading in docs/methods.md: {missing}"


def test_the_readme_recipe_table_is_the_registry():
    """The README's recipe table lists each suite method's objective and sampler as methods.recipe has them."""
    text = (ROOT / "README.md").read_text()
    rows: dict[str, list[str]] = {}
    for m in re.finditer(r"^\| `(\w+)`[^|]*\|.*$", text, re.M):
        if m.group(1) in list_paths():
            rows.setdefault(m.group(1), []).append(m.group(0))
    for name in ("noise_fm", "hdfm", "blurring_diffusion", "ihdm"):
        r = recipe(name)
        budget = f"{r.steps} steps" if r.steps is not None else "levels"
        found = [row for row in rows.get(name, []) if f"`{r.sampler}`" in row and r.objective() in row]
        assert found, f"README has no row for {name} with `{r.sampler}` and {r.objective()!r}: {rows.get(name)}"
        assert any(budget in row for row in found), f"README's {name} row does not say {budget!r}"
