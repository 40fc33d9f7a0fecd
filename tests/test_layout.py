"""The house a newcomer reads: the README's Layout is the tree, src imports only downwards (data below learning below
reporting below the experiments below the entry points), src writes no prose, tools are tooling only, and nothing
outside src changes src from outside."""
import ast
import re

from src.settings import PROJECT_ROOT

SRC = PROJECT_ROOT / "src"
# Each module's layer; a module may import its own layer and those below, never one above.
LAYERS = {"settings": 0, "data": 1, "model": 2, "augment": 2, "train": 2, "checkpoints": 2, "resume": 2,
          "noisy_labels": 2, "decoding": 2, "analysis": 3, "figures": 3, "recipes": 4, "task1": 4, "task2": 4,
          "task3": 4, "evaluate": 5, "recognise": 5, "__main__": 5}


def layer_of(path) -> int:
    parts = path.relative_to(SRC).with_suffix("").parts
    return LAYERS[parts[0]]


def imported_layers(path) -> dict[str, int]:
    """{imported src module: its layer} for every relative import of a src file."""
    found, here = {}, path.relative_to(SRC).parts[:-1]  # () for src/x.py, ("data",) for src/data/x.py
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = list(here[:len(here) - (node.level - 1)]) + (node.module.split(".") if node.module else [])
            for parts in [base] if base else [[alias.name] for alias in node.names]:
                found[".".join(parts)] = LAYERS[parts[0]]
    return found


def test_src_imports_only_downwards_and_the_data_layer_never_imports_training():
    upward = {}
    for path in SRC.rglob("*.py"):
        if path.name == "__init__.py" and path.parent == SRC:
            continue
        mine = layer_of(path)
        above = {module: layer for module, layer in imported_layers(path).items() if layer > mine}
        if above:
            upward[path.relative_to(PROJECT_ROOT).as_posix()] = above
    assert not upward, f"these import a layer above their own: {upward}"
    data_imports = {module for path in (SRC / "data").rglob("*.py") for module in imported_layers(path)}
    assert not {module for module in data_imports if LAYERS[module.split(".")[0]] > 1}


def test_no_module_exceeds_400_lines():
    lengths = {path.relative_to(PROJECT_ROOT).as_posix(): len(path.read_text().splitlines()) for path in SRC.rglob("*.py")}
    assert max(lengths.values()) <= 400, {name: n for name, n in lengths.items() if n > 400}


def test_src_returns_numbers_not_paragraphs():
    """No function in src builds sentences for a reader: long string literals in src are docstrings, error messages
    (raised or warned) and progress lines, never returned text."""
    offenders = []
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Return) and isinstance(node.value, (ast.JoinedStr, ast.Constant)):
                text = ast.unparse(node.value)
                if len(re.findall(r"[A-Za-z]+ ", text)) > 12:
                    offenders.append(f"{path.name}:{node.lineno}")
    assert not offenders


def test_the_layout_section_lists_exactly_the_modules_in_the_tree():
    section = (PROJECT_ROOT / "README.md").read_text().split("## Layout", 1)[1].split("```", 2)[1]
    listed = set(re.findall(r"\b((?:src|bench|tools)/[\w./]+\.(?:py|sh))\b", section))
    in_tree = {path.relative_to(PROJECT_ROOT).as_posix() for folder in ("src", "bench", "tools")
               for pattern in ("**/*.py", "*.sh") for path in (PROJECT_ROOT / folder).glob(pattern)
               if path.name != "__init__.py"}
    assert listed == in_tree, f"README Layout lacks {sorted(in_tree - listed)}, names missing {sorted(listed - in_tree)}"
    assert "explorations/" in section and (PROJECT_ROOT / "explorations" / "README.md").exists()


def assignments_into_src(path) -> list[str]:
    """Where a file changes src from outside: an assignment to an attribute of an imported src name, a setattr on
    one, or any mock.patch."""
    tree = ast.parse(path.read_text())
    names = {alias.asname or alias.name.split(".")[0] for node in ast.walk(tree)
             if isinstance(node, (ast.Import, ast.ImportFrom)) and (getattr(node, "module", "") or "src").startswith("src")
             for alias in node.names if isinstance(node, ast.ImportFrom) or alias.name.startswith("src")}
    found = []
    for node in ast.walk(tree):
        targets = getattr(node, "targets", None) or [getattr(node, "target", None)]
        found += [f"{path.name}:{node.lineno}" for target in targets if isinstance(target, ast.Attribute)
                  and ast.unparse(target).split(".")[0] in names]
        if isinstance(node, ast.Call) and ("patch" in ast.unparse(node.func).split(".")[-1] or (
                ast.unparse(node.func) == "setattr" and ast.unparse(node.args[0]).split(".")[0] in names)):
            found.append(f"{path.name}:{node.lineno}")
    return found


def test_nothing_outside_src_patches_src_and_tools_hold_only_tooling():
    files = [path for folder in ("tools", "explorations", "bench") for path in (PROJECT_ROOT / folder).glob("*.py")]
    patched = {str(path.relative_to(PROJECT_ROOT)): found for path in files if (found := assignments_into_src(path))}
    assert not patched, f"these change src from outside (give src a parameter instead): {patched}"
    assert not [path.name for path in (PROJECT_ROOT / "tools").glob("explor*")], "explorations belong in explorations/"
