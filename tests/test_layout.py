"""The house a newcomer reads: the README's Layout is the tree, the modules import in one direction, tools are
tooling only, and nothing outside src changes src from outside (experiments use train()'s hooks instead)."""
import ast
import re

from src.runs import PROJECT_ROOT


def test_the_layout_section_lists_exactly_the_modules_in_the_tree():
    section = (PROJECT_ROOT / "README.md").read_text().split("## Layout", 1)[1].split("```", 2)[1]
    listed = set(re.findall(r"\b((?:src|bench|tools)/[\w.]+\.(?:py|sh))\b", section))
    in_tree = {path.relative_to(PROJECT_ROOT).as_posix() for folder in ("src", "bench", "tools")
               for pattern in ("*.py", "*.sh") for path in (PROJECT_ROOT / folder).glob(pattern)
               if path.name != "__init__.py"}
    assert listed == in_tree, f"README Layout lacks {sorted(in_tree - listed)}, names missing {sorted(listed - in_tree)}"
    assert "explorations/" in section and (PROJECT_ROOT / "explorations" / "README.md").exists()


def test_tools_hold_only_tooling():
    assert not [path.name for path in (PROJECT_ROOT / "tools").glob("explor*")], "explorations belong in explorations/"


def src_module_names(tree: ast.AST) -> set[str]:
    """The names a file binds to src or its modules (import src.train as t; from src import train; import src)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.asname or alias.name.split(".")[0] for alias in node.names if alias.name.split(".")[0] == "src"}
        elif isinstance(node, ast.ImportFrom) and node.module == "src":
            names |= {alias.asname or alias.name for alias in node.names}
    return names


def assignments_into_src(path) -> list[str]:
    """Where a file changes a src module from outside: assigns to an attribute of one, setattr on one, or mock.patch."""
    tree = ast.parse(path.read_text())
    modules, found = src_module_names(tree), []

    def root(node):
        while isinstance(node, ast.Attribute):
            node = node.value
        return node.id if isinstance(node, ast.Name) else None
    for node in ast.walk(tree):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(
            node, (ast.AugAssign, ast.AnnAssign)) else []
        found += [f"{path.name}:{node.lineno}" for target in targets
                  if isinstance(target, ast.Attribute) and root(target) in modules]
        if isinstance(node, ast.Call):
            called = ast.unparse(node.func)
            if "patch" in called.split(".")[-1] or (called == "setattr" and root(node.args[0]) in modules):
                found.append(f"{path.name}:{node.lineno} ({called})")
    return found


def test_nothing_outside_src_patches_src():
    files = [path for folder in ("tools", "explorations", "bench") for path in (PROJECT_ROOT / folder).glob("*.py")]
    patched = {str(path.relative_to(PROJECT_ROOT)): found for path in files if (found := assignments_into_src(path))}
    assert not patched, f"these change src from outside (give train() a hook, or src a parameter): {patched}"
