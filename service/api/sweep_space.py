"""A sweep's search space: which specs its trials train, by grid or by random search.

The space maps dotted spec paths to what they may take:

    {"model.hidden_size": [16, 32, 64],                   # a list: these values
     "training.learning_rate": {"log_uniform": [1e-3, 1e-2]},
     "training.dropout": {"uniform": [0.0, 0.3]},
     "window.input_size": {"int_uniform": [12, 48]}}

Grid search takes every combination of lists (distributions are refused: a grid needs finite
choices); random search draws `budget` trials from a seeded generator, so the same request
always gives the same trials. No Flask here: the rules are plain functions over JSON data.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np

STRATEGIES = ("grid", "random")
DISTRIBUTIONS = ("uniform", "log_uniform", "int_uniform")
MAX_CHOICES = 100  # values of one list; more is a typo more often than a plan


class SpaceError(ValueError):
    """The space is unusable; `errors` lists {"loc", "msg"} entries (loc inside the space)."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__("; ".join(e["msg"] for e in errors))
        self.errors = errors


def check(space: Any, strategy: str) -> None:
    """Raise SpaceError for a space that is not a map of paths to lists or distributions."""
    if not isinstance(space, dict) or not space:
        raise SpaceError([{"loc": [], "msg": "must be a non-empty object of spec paths"}])
    errors = []
    for path, choice in space.items():
        problem = _choice_problem(choice, strategy)
        if problem:
            errors.append({"loc": [path], "msg": problem})
        elif not all(part for part in path.split(".")):
            errors.append({"loc": [path], "msg": "must be a dotted spec path like model.cell"})
    if errors:
        raise SpaceError(errors)


def trials(space: dict[str, Any], strategy: str, budget: int, seed: int
           ) -> list[dict[str, Any]]:
    """The trials' settings ({path: value}), in trial order. A grid larger than the budget
    is refused rather than cut: which part to drop is the user's choice, not ours."""
    check(space, strategy)
    if strategy == "grid":
        size = math.prod(len(v) for v in space.values())
        if size > budget:
            raise SpaceError([{"loc": [], "msg": f"the grid has {size} combinations, more than "
                                                 f"the budget of {budget}"}])
        paths = list(space)
        return [dict(zip(paths, combo, strict=True))
                for combo in itertools.product(*(space[p] for p in paths))]
    rng = np.random.default_rng(seed)
    return [{path: _draw(choice, rng) for path, choice in space.items()} for _ in range(budget)]


def apply(spec: dict[str, Any], settings: dict[str, Any]) -> dict[str, Any]:
    """A copy of a job request's spec part with each dotted path set (nested objects made as
    needed)."""
    out = _copy(spec)
    for path, value in settings.items():
        *parents, leaf = path.split(".")
        node = out
        for part in parents:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        node[leaf] = value
    return out


def _choice_problem(choice: Any, strategy: str) -> str | None:
    """What is wrong with one dimension of the space (None: nothing)."""
    if isinstance(choice, list):
        if not 1 <= len(choice) <= MAX_CHOICES:
            return f"must list 1 to {MAX_CHOICES} values"
        return None
    if not isinstance(choice, dict) or len(choice) != 1 or next(iter(choice)) not in DISTRIBUTIONS:
        return f"must be a list of values or one of {{{', '.join(DISTRIBUTIONS)}: [low, high]}}"
    if strategy == "grid":
        return "a grid needs lists of values; distributions are for random search"
    kind, bounds = next(iter(choice.items()))
    numbers = (isinstance(bounds, list) and len(bounds) == 2
               and all(isinstance(b, int | float) and not isinstance(b, bool)
                       and math.isfinite(b) for b in bounds))
    if not numbers or bounds[0] > bounds[1]:
        return f"{kind} needs [low, high] with low <= high"
    if kind == "log_uniform" and bounds[0] <= 0:
        return "log_uniform needs low > 0"
    if kind == "int_uniform" and not all(isinstance(b, int) for b in bounds):
        return "int_uniform needs integer bounds"
    return None


def _draw(choice: Any, rng: np.random.Generator) -> Any:
    """One value from a list (uniformly) or a distribution, as a plain JSON value."""
    if isinstance(choice, list):
        return choice[int(rng.integers(len(choice)))]
    kind, (low, high) = next(iter(choice.items()))
    if kind == "uniform":
        return float(rng.uniform(low, high))
    if kind == "log_uniform":
        return float(math.exp(rng.uniform(math.log(low), math.log(high))))
    return int(rng.integers(low, high + 1))


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    return value
