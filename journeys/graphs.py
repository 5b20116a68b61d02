"""Cycles in a graph of ids (a journey's steps, a plan's tasks), for validation to name them."""

from __future__ import annotations

from collections.abc import Callable, Iterable


def cycles(nodes: Iterable[str], successors: Callable[[str], Iterable[str]]) -> list[list[str]]:
    """Every cycle a depth-first search from `nodes` (in their order: stable output) meets, each
    as the path around it back to its first node. The search keeps its own stack, so a graph of
    thousands of nodes in a row neither runs out of Python's recursion nor copies the path at
    every node."""
    found: list[list[str]] = []
    done: set[str] = set()
    for start in nodes:
        if start in done:
            continue
        path, on_path = [start], {start: 0}  # node -> its place in `path`
        stack = [iter(successors(start))]
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                stack.pop()
                done.add(path[-1])
                del on_path[path.pop()]
            elif nxt in on_path:
                found.append([*path[on_path[nxt] :], nxt])
            elif nxt not in done:
                on_path[nxt] = len(path)
                path.append(nxt)
                stack.append(iter(successors(nxt)))
    return found
