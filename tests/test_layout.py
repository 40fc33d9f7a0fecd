"""The house a newcomer reads: the README's Layout is the tree, and the modules import in one direction."""
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


def test_src_has_no_import_cycle():
    graph = {}
    for path in (PROJECT_ROOT / "src").glob("*.py"):
        imports = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                imports |= {node.module.split(".")[0]} if node.module else {alias.name for alias in node.names}
        graph[path.stem] = imports
    finished, on_path = set(), []

    def visit(module):
        assert module not in on_path, f"import cycle: {' -> '.join(on_path[on_path.index(module):] + [module])}"
        if module in finished:
            return
        on_path.append(module)
        for imported in graph.get(module, ()):
            visit(imported)
        on_path.pop()
        finished.add(module)
    for module in graph:
        visit(module)
