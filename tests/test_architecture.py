"""The package's shape, read from its source: no import cycle (function-level imports included),
layers import only downwards, nobody but the stages imports the CLI, every function-level import
says why, small modules and functions, and scripts one hop from their stage."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.import_graph import LAYERS, cli_imports, find_cycle, layer_violations, read_imports, unit
from tests.helpers.runs import REPO

PACKAGE = REPO / "src" / "imgclf"
MAX_MODULE_LINES, MAX_FUNCTION_LINES = 300, 50


def test_no_import_cycle_no_upward_import_and_the_cli_only_under_the_stages() -> None:
    modules, imports = read_imports(PACKAGE)
    assert len(modules) > 40 and any(i.in_function for i in imports)  # the parser sees the package
    assert find_cycle(modules, imports) is None
    assert layer_violations(imports) == []
    assert cli_imports(imports) == []
    assert {unit(m) for m in modules} - {""} == set(LAYERS)  # every subpackage has its layer


def test_function_level_imports_say_why() -> None:
    _, imports = read_imports(PACKAGE)
    silent = [f"{i.source}:{i.line}" for i in imports if i.in_function and not i.commented]
    assert silent == []


def _copy_with(tmp_path: Path, module: str, line: str, in_function: bool) -> Path:
    """A copy of the package with one import added to ``module`` (a file path under imgclf/)."""
    copy = tmp_path / "imgclf"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    target = copy / module
    added = f"\n\ndef _added() -> None:\n    {line}\n" if in_function else f"\n{line}\n"
    target.write_text(target.read_text() + added)
    return copy


@pytest.mark.parametrize("in_function", [False, True], ids=["module-level", "function-level"])
def test_a_deliberate_cycle_in_a_copy_is_found(tmp_path: Path, in_function: bool) -> None:
    # data.folds <- training.cv already; folds importing cv closes the loop
    copy = _copy_with(tmp_path, "data/folds.py", "import imgclf.training.cv  # deliberate", in_function)
    modules, imports = read_imports(copy)
    cycle = find_cycle(modules, imports)
    assert cycle is not None and cycle[0] == cycle[-1]
    assert {"imgclf.data.folds", "imgclf.training.cv"} <= set(cycle)
    assert any("imgclf.data.folds" in v and "imgclf.training.cv" in v for v in layer_violations(imports))


def test_a_library_module_importing_the_cli_is_found(tmp_path: Path) -> None:
    copy = _copy_with(tmp_path, "ensemble/run.py", "from imgclf.cli import parse_folds  # deliberate", True)
    _, imports = read_imports(copy)
    assert cli_imports(imports) == ["imgclf.ensemble.run:"
                                    f"{len((copy / 'ensemble/run.py').read_text().splitlines())}"]


def test_a_silent_function_level_import_is_found(tmp_path: Path) -> None:
    copy = _copy_with(tmp_path, "ensemble/run.py", "from imgclf.metrics import get_metric", True)
    _, imports = read_imports(copy)
    assert [i.source for i in imports if i.in_function and not i.commented] == ["imgclf.ensemble.run"]


def _long_definitions(tree: ast.Module) -> list[tuple[str, int]]:
    return [(node.name, node.end_lineno - node.lineno + 1) for node in ast.walk(tree)
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES]


def test_modules_and_functions_stay_small() -> None:
    too_long, long_functions = [], []
    for file in sorted(PACKAGE.rglob("*.py")):
        text = file.read_text()
        if len(text.splitlines()) > MAX_MODULE_LINES:
            too_long.append(f"{file.relative_to(PACKAGE)}: {len(text.splitlines())} lines")
        long_functions += [f"{file.relative_to(PACKAGE)}:{name} {n} lines"
                           for name, n in _long_definitions(ast.parse(text))]
    assert too_long == [] and long_functions == []


def _stage_functions() -> set[str]:
    tree = ast.parse((PACKAGE / "stages.py").read_text())
    return {node.name for node in tree.body
            if isinstance(node, ast.FunctionDef) and node.name.endswith("_stage")}


SCRIPTS = sorted(p for p in (REPO / "pipelines").glob("*.py") if p.name != "04_tune.py") + [REPO / "tune.py"]


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_each_script_imports_its_stage_from_the_module_that_defines_it(script: Path) -> None:
    tree = ast.parse(script.read_text())
    internal = [(n.module, a.name) for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)
                and (n.module or "").startswith("imgclf") for a in n.names]
    stages = [name for module, name in internal if module == "imgclf.stages"]
    assert len(stages) == 1 and stages[0] in _stage_functions()
    assert {m for m, _ in internal} == {"imgclf.cli", "imgclf.stages"}  # parsing only


def test_every_stage_has_the_same_signature() -> None:
    tree = ast.parse((PACKAGE / "stages.py").read_text())
    shapes = {node.name: ([a.arg for a in node.args.args], ast.unparse(node.returns))
              for node in tree.body if isinstance(node, ast.FunctionDef) and node.name.endswith("_stage")}
    assert len(shapes) == 9  # 01-08 and 05b_pseudo
    assert set(map(str, shapes.values())) == {str((["args", "cfg", "paths"], "None"))}


def test_the_numbered_tune_script_is_an_alias_of_tune_py() -> None:
    text = (REPO / "pipelines" / "04_tune.py").read_text()
    assert "import imgclf" not in text and "from imgclf" not in text and 'tune.py"' in text


def test_the_stages_that_need_no_model_never_import_torch() -> None:
    """Why stages.py imports inside each stage: the EDA, folds, ensemble and scoring start fast, and
    so do a tuning stage the budget skips and a --tuned training with nothing tuned."""
    code = ("import sys; import imgclf.stages, imgclf.eda.run, imgclf.data.folds, imgclf.data.ingest, "
            "imgclf.ensemble.run, imgclf.ensemble.scoring, imgclf.tuning.budget, imgclf.training.status; "
            "print(sorted(m for m in ('torch', 'timm', 'optuna') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_a_stage_imports_timm_without_wandb_and_the_wandb_tracker_still_gets_it() -> None:
    code = ("import sys; from imgclf.optional import hide_wandb_from_timm, import_wandb; "
            "hide_wandb_from_timm(); import timm; print(sys.modules['wandb'] is None); "
            "print(import_wandb().__name__)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["True", "wandb"]
