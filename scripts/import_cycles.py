#!/usr/bin/env python3
"""Lists the rings of source files that import each other inside each crate.

A file imports another when a path in it (`use crate::a::b::X`, `super::Y`, `self::z::W`,
or the same path written inline) names an item the other file defines. A name that the crate
root (or a `mod.rs`) only re-exports is followed to the file that defines it, so re-exports
alone make no ring, and a file reaching into its own submodules (`lib.rs` or a `mod.rs`
calling its children) is the module tree, not an import. Exits 1 when a ring exists. Run from the workspace root:

    python3 scripts/import_cycles.py
"""

import re
import sys
from pathlib import Path

COMMENT = re.compile(r"//.*?$|/\*.*?\*/", re.S | re.M)
STRING = re.compile(r'"(?:\\.|[^"\\])*"')
PATH = re.compile(r"\b(crate|super|self)((?:::\w+)+)")
CHILD_PATH = re.compile(r"(?<![:\w])([a-z_]\w*)((?:::\w+)+)")
USE = re.compile(r"\b(?:pub(?:\([^)]*\))?\s+)?use\s+([^;]+);")
MOD = re.compile(r"^\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+(\w+)\s*;", re.M)
INLINE_MOD = re.compile(r"^\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+(\w+)\s*\{", re.M)


def strip(text):
    return STRING.sub('""', COMMENT.sub("", text))


def crate_modules(src):
    """Module path (tuple) -> file, for every module file of one crate's src/."""
    modules = {}
    roots = [p for p in (src / "lib.rs", src / "main.rs") if p.exists()]
    for root in roots:
        walk(root, (), modules)
    for binary in sorted((src / "bin").glob("*.rs")) if (src / "bin").exists() else []:
        walk(binary, ("bin", binary.stem), modules)
    return modules


def walk(path, module, modules):
    modules[module] = path
    text = strip(path.read_text())
    base = path.parent if path.name in ("lib.rs", "main.rs", "mod.rs") else path.with_suffix("")
    for name in MOD.findall(text):
        for candidate in (base / f"{name}.rs", base / name / "mod.rs"):
            if candidate.exists():
                walk(candidate, module + (name,), modules)
                break


def use_paths(tree):
    """Expands a `use` tree (`a::{b, c::{d as e}}`) into its paths."""
    tree = re.sub(r"\s+as\s+\w+", "", tree)
    tree = re.sub(r"\s+", "", tree)
    depth, start, parts = 0, None, []
    if "{" not in tree:
        return [tree]
    head, rest = tree.split("{", 1)
    body = rest[: rest.rfind("}")]
    for i, ch in enumerate(body):
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(body[start or 0 : i])
            start = i + 1
    parts.append(body[start or 0 :])
    paths = []
    for part in parts:
        if part:
            paths += [head + p for p in use_paths(part)]
    return paths


def inline_modules(text):
    """(name, start, end) of each `mod name { ... }` written inside a file."""
    blocks = []
    for hit in INLINE_MOD.finditer(text):
        depth, end = 0, len(text)
        for i in range(hit.end() - 1, len(text)):
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            if depth == 0:
                end = i
                break
        blocks.append((hit.group(1), hit.end(), end))
    return blocks


def resolve(path, module, modules):
    """The module a path starting in `module` lands in, and the names after it."""
    segments = path.split("::")
    if segments[0] == "crate":
        at, segments = (), segments[1:]
    elif segments[0] in ("super", "self"):
        at = module
        while segments and segments[0] in ("super", "self"):
            if segments[0] == "super":
                at = at[:-1]
            segments = segments[1:]
    elif module + (segments[0],) in modules:
        # A path may start at a child module of the file it is written in.
        at = module
    else:
        return None
    while at not in modules:
        at = at[:-1]
    while segments and at + (segments[0],) in modules:
        at, segments = at + (segments[0],), segments[1:]
    return at, segments


def main():
    found = False
    for manifest in sorted(Path(".").glob("**/Cargo.toml")):
        src = manifest.parent / "src"
        if "target" in manifest.parts or not src.exists():
            continue
        modules = crate_modules(src)
        texts = {m: strip(p.read_text()) for m, p in modules.items()}
        # Names each module re-exports: name -> the path it re-exports.
        reexports = {m: {} for m in modules}
        for m, text in texts.items():
            for tree in USE.findall(text):
                for path in use_paths(tree):
                    name = path.split("::")[-1]
                    if name not in ("*", "self"):
                        reexports[m][name] = path

        def target(path, module, seen=()):
            landed = resolve(path, module, modules)
            if landed is None:
                return None
            at, rest = landed
            if rest and rest[0] in reexports[at] and (at, rest[0]) not in seen:
                followed = target(reexports[at][rest[0]], at, seen + ((at, rest[0]),))
                if followed is not None:
                    return followed
            return at

        edges = {m: set() for m in modules}
        for m, text in texts.items():
            blocks = inline_modules(text)
            # A `pub use` only re-exports (followed above); the file itself does not use it.
            paths = [
                (p, hit.start())
                for hit in USE.finditer(text)
                if not hit.group(0).startswith("pub")
                for p in use_paths(hit.group(1))
            ]
            paths += [("".join(hit.groups()), hit.start()) for hit in PATH.finditer(text)]
            # Inline paths through a child module (`child::item(...)`).
            paths += [
                ("".join(hit.groups()), hit.start())
                for hit in CHILD_PATH.finditer(text)
                if m + (hit.group(1),) in modules
            ]
            for path, at in paths:
                # Inside `mod tests { ... }`, `super` is this file.
                inner = tuple(name for name, start, end in blocks if start <= at < end)
                to = target(path, m + inner)
                # A module's own submodules are part of it: reaching down is no import.
                if to is not None and to[: len(m)] != m:
                    edges[m].add(to)
        for ring in rings(edges):
            found = True
            print(f"{manifest.parent}: files that import each other:")
            for m in ring:
                inside = sorted(str(modules[t].relative_to(src)) for t in edges[m] if t in ring)
                print(f"  {modules[m].relative_to(src)} -> {', '.join(inside)}")
    sys.exit(1 if found else 0)


def rings(edges):
    """Strongly connected components with more than one file (Tarjan)."""
    index, low, on, stack, out, counter = {}, {}, set(), [], [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    sys.setrecursionlimit(10000)
    for v in list(edges):
        if v not in index:
            visit(v)
    return out


if __name__ == "__main__":
    main()
