"""The package's structure, read from its sources with :mod:`ast` (nothing is imported).

Three rules of docs/architecture.md:

* the modules' imports of each other form no cycle (imports inside functions
  count: they are cycles that only wait for the first call);
* no module reads another module's underscore-prefixed names: neither
  ``from .x import _y`` nor ``x._y`` on an imported module, nor ``obj._attr``
  where ``_attr`` is a private attribute that only other modules' classes
  define (a method, or an attribute set on ``self``);
* every numba-compiled function lives under ``skimgcluster/_kernels/``;
* every exception and warning class is defined in ``exceptions.py``.

Each checker runs on small planted sources too, so a checker that can no
longer fail is caught.
"""

import ast
from pathlib import Path

PACKAGE = Path(__file__).parents[1] / "skimgcluster"
NUMBA_DECORATORS = {"njit", "jit", "vectorize", "guvectorize", "cfunc", "stencil"}


def _module_name(path, root):
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def read_package(root=PACKAGE):
    """``{module name: source}`` of every module of the package under ``root``."""
    return {
        _module_name(path, root): path.read_text(encoding="utf-8")
        for path in sorted(root.rglob("*.py"))
    }


def _is_package(name, sources):
    return name == "" or any(other.startswith(name + ".") for other in sources)


def _resolve(module, level, target, sources):
    """The package module named by a relative import in ``module``, or None."""
    if level == 0:
        return None  # absolute imports name other packages (the package uses relative ones)
    base = module.split(".") if module else []
    if not _is_package(module, sources):
        base = base[:-1]
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join(base + ([target] if target else []))


def _imports(module, tree, sources):
    """``(imported module, names or None, node)`` of every relative import of a module."""
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = _resolve(module, node.level, node.module, sources)
            for alias in node.names:
                sub = f"{base}.{alias.name}" if base else alias.name
                if sub in sources:  # ``from . import _plotting``: a module
                    yield sub, None, node
                else:
                    yield base, alias.name, node


def import_graph(sources):
    """``{module: set of package modules it imports}``."""
    graph = {name: set() for name in sources}
    for name, text in sources.items():
        for target, _, _ in _imports(name, ast.parse(text), sources):
            if target in sources and target != name:
                graph[name].add(target)
    return graph


def find_cycle(graph):
    """A list of modules that import each other in a ring, or None."""
    state = {}

    def visit(node, path):
        state[node] = "open"
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state:
                found = visit(nxt, path)
                if found:
                    return found
        path.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node, [])
            if found:
                return found
    return None


def _private(name):
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _own_private_attributes(tree):
    """Private names a module's classes define: methods, class attributes, ``self._x = ...``."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    names.add(item.name)
                elif isinstance(item, ast.Assign):
                    names.update(t.id for t in item.targets if isinstance(t, ast.Name))
                elif isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                    names.add(item.target.id)
            for sub in ast.walk(node):
                if (
                    isinstance(sub, ast.Attribute)
                    and isinstance(sub.ctx, ast.Store)
                    and isinstance(sub.value, ast.Name)
                    and sub.value.id == "self"
                ):
                    names.add(sub.attr)
    return {n for n in names if _private(n)}


def private_reach_through(sources):
    """``(module, line, what)`` of every read of another module's private names."""
    trees = {name: ast.parse(text) for name, text in sources.items()}
    defined = {name: _own_private_attributes(tree) for name, tree in trees.items()}
    found = []
    for name, tree in trees.items():
        others = set().union(*(d for m, d in defined.items() if m != name)) - defined[name]
        modules = {}  # local name -> package module, for ``x._y``
        for target, imported, node in _imports(name, tree, sources):
            if imported is None:
                modules[target.rsplit(".", 1)[-1]] = target
            elif target != name and _private(imported) and target in sources:
                found.append((name, node.lineno, f"from {target} import {imported}"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Attribute) or not _private(node.attr):
                continue
            value = node.value
            if isinstance(value, ast.Name) and value.id in modules:
                if modules[value.id] != name:
                    found.append((name, node.lineno, f"{value.id}.{node.attr}"))
            elif isinstance(value, ast.Name) and value.id in ("self", "cls"):
                continue
            elif node.attr in others:
                found.append((name, node.lineno, f"{ast.unparse(value)}.{node.attr}"))
    return found


def _decorator_name(decorator):
    if isinstance(decorator, ast.Call):
        decorator = decorator.func
    if isinstance(decorator, ast.Attribute):
        return decorator.attr
    if isinstance(decorator, ast.Name):
        return decorator.id
    return None


def kernels_outside(sources, folder="_kernels"):
    """``(module, function)`` of every numba-decorated function not under ``folder``."""
    found = []
    for name, text in sources.items():
        if name.split(".")[0] == folder:
            continue
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and any(
                _decorator_name(d) in NUMBA_DECORATORS for d in node.decorator_list
            ):
                found.append((name, node.name))
    return found


def _is_exception_base(base):
    name = base.attr if isinstance(base, ast.Attribute) else getattr(base, "id", "")
    return name.endswith(("Error", "Warning", "Exception")) or name in {"BaseException"}


def exceptions_outside(sources, home="exceptions"):
    """``(module, class)`` of every exception or warning class not defined in ``home``."""
    found = []
    for name, text in sources.items():
        if name == home:
            continue
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ClassDef) and any(map(_is_exception_base, node.bases)):
                found.append((name, node.name))
    return found


# -- the package -----------------------------------------------------------------


def test_package_imports_form_no_cycle():
    cycle = find_cycle(import_graph(read_package()))
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_no_module_reads_another_modules_private_names():
    assert private_reach_through(read_package()) == []


def test_every_compiled_kernel_lives_under_kernels():
    sources = read_package()
    assert any(name.startswith("_kernels.") for name in sources)
    assert kernels_outside(sources) == []


def test_every_exception_class_lives_in_exceptions():
    assert exceptions_outside(read_package()) == []


def test_exceptions_are_importable_where_they_were():
    import skimgcluster
    from skimgcluster import _sampler, _validation, exceptions

    assert skimgcluster.DegenerateDataWarning is exceptions.DegenerateDataWarning
    assert skimgcluster.SparseSamplingWarning is _sampler.SparseSamplingWarning
    assert skimgcluster.InsufficientMemoryError is _validation.InsufficientMemoryError
    assert set(exceptions.__all__) >= {
        "DegenerateDataWarning", "InsufficientMemoryError", "SparseSamplingWarning"
    }  # fmt: skip


# -- the checkers, on planted violations -------------------------------------------


def test_cycle_checker_finds_a_planted_cycle():
    sources = {
        "": "",
        "_a": "from ._b import thing\n",
        "_b": "def f():\n    from . import _c\n",
        "_c": "from ._a import other\n",
        "_d": "from ._a import thing\n",
    }
    assert find_cycle(import_graph(sources)) == ["_a", "_b", "_c", "_a"]
    sources["_c"] = ""
    assert find_cycle(import_graph(sources)) is None


def test_cycle_checker_resolves_subpackages():
    sources = {
        "": "",
        "_kernels": "",
        "_kernels.sampler": "from .._sampler import x\n",
        "_sampler": "from ._kernels.sampler import y\n",
    }
    assert find_cycle(import_graph(sources)) == ["_kernels.sampler", "_sampler", "_kernels.sampler"]


def test_private_checker_finds_planted_reach_through():
    sources = {
        "": "",
        "_a": (
            "class Sampler:\n"
            "    def _analyse(self):\n"
            "        self._data = 1\n"
            "        return self._data\n"
            "_HIDDEN = 1\n"
        ),
        "_b": (
            "from ._a import _HIDDEN\n"
            "from . import _a\n"
            "def f(sampler, maps):\n"
            "    sampler._analyse()\n"
            "    return _a._OTHER, maps._data, maps.__class__, maps._unknown\n"
        ),
    }
    found = {what for _, _, what in private_reach_through(sources)}
    assert found == {"from _a import _HIDDEN", "_a._OTHER", "sampler._analyse", "maps._data"}
    clean = {"": "", "_a": sources["_a"], "_b": "from ._a import Sampler\n"}
    assert private_reach_through(clean) == []


def test_kernel_checker_finds_a_planted_kernel():
    sources = {
        "_kernels.sampler": (
            "from numba import njit\n@njit(cache=True)\ndef draw(x):\n    return x\n"
        ),
        "_sampler": (
            "import numba\n@numba.njit\ndef hidden(x):\n    return x\ndef plain(x):\n    return x\n"
        ),
    }
    assert kernels_outside(sources) == [("_sampler", "hidden")]


def test_exception_checker_finds_a_planted_class():
    sources = {
        "exceptions": "class FineWarning(UserWarning):\n    pass\n",
        "_io": "class _LayoutError(ValueError):\n    pass\nclass Reader:\n    pass\n",
    }
    assert exceptions_outside(sources) == [("_io", "_LayoutError")]
