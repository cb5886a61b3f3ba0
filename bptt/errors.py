"""Errors the engine raises on purpose."""


class NonFiniteError(FloatingPointError):
    """Training produced NaN or inf; `where` says what ("loss" or "gradient"), `step` when."""

    def __init__(self, where: str, step: int | None = None, detail: str = "") -> None:
        self.where = where
        self.step = step
        at = f" at step {step}" if step is not None else ""
        super().__init__(f"non-finite {where}{at}" + (f": {detail}" if detail else ""))
