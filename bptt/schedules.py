"""Learning-rate schedules, stepped once per epoch, as torch.optim.lr_scheduler's.

Each schedule is a small object whose whole state is `state_dict()`, so a resumed run continues
the same schedule. `next(metric)` ends an epoch and returns the learning rate for the next one.
"""

import math


class Constant:
    """The same learning rate every epoch."""

    def __init__(self, lr: float) -> None:
        self.lr = lr
        self.epoch = 0

    def next(self, metric: float | None = None) -> float:
        self.epoch += 1
        return self.lr

    def state_dict(self) -> dict:
        return dict(vars(self))

    def load_state_dict(self, state: dict) -> None:
        vars(self).update(state)


class StepDecay(Constant):
    """Multiply the rate by gamma every step_size epochs (StepLR)."""

    def __init__(self, lr: float, step_size: int = 30, gamma: float = 0.1) -> None:
        super().__init__(lr)
        self.base_lr, self.step_size, self.gamma = lr, step_size, gamma

    def next(self, metric: float | None = None) -> float:
        self.epoch += 1
        self.lr = self.base_lr * self.gamma ** (self.epoch // self.step_size)
        return self.lr


class Cosine(Constant):
    """Cosine annealing from the base rate to eta_min over t_max epochs (CosineAnnealingLR)."""

    def __init__(self, lr: float, t_max: int = 100, eta_min: float = 0.0) -> None:
        super().__init__(lr)
        self.base_lr, self.t_max, self.eta_min = lr, t_max, eta_min

    def next(self, metric: float | None = None) -> float:
        self.epoch += 1
        progress = min(self.epoch, self.t_max) / self.t_max
        cosine = (1 + math.cos(math.pi * progress)) / 2
        self.lr = self.eta_min + (self.base_lr - self.eta_min) * cosine
        return self.lr


class ReduceOnPlateau(Constant):
    """Multiply the rate by factor after `patience` epochs without relative improvement
    of more than `threshold` in the metric (ReduceLROnPlateau, mode "min", threshold "rel")."""

    def __init__(self, lr: float, factor: float = 0.5, patience: int = 10,
                 threshold: float = 1e-4, cooldown: int = 0, min_lr: float = 0.0) -> None:
        super().__init__(lr)
        self.factor, self.patience, self.threshold = factor, patience, threshold
        self.cooldown, self.min_lr = cooldown, min_lr
        self.best = math.inf
        self.bad_epochs = 0
        self.cooldown_left = 0

    def next(self, metric: float | None = None) -> float:
        if metric is None:
            raise ValueError("reduce-on-plateau needs the epoch's metric")
        self.epoch += 1
        if metric < self.best * (1 - self.threshold):
            self.best, self.bad_epochs = metric, 0
        else:
            self.bad_epochs += 1
        if self.cooldown_left > 0:
            self.cooldown_left -= 1
            self.bad_epochs = 0
        if self.bad_epochs > self.patience:
            self.lr = max(self.lr * self.factor, self.min_lr)
            self.cooldown_left, self.bad_epochs = self.cooldown, 0
        return self.lr


SCHEDULES = {"constant": Constant, "step": StepDecay, "cosine": Cosine, "plateau": ReduceOnPlateau}


def make_schedule(name: str, lr: float, **options):
    """Build a schedule by name: constant, step, cosine, plateau."""
    if name not in SCHEDULES:
        raise ValueError(f"schedule must be one of {sorted(SCHEDULES)}, not {name!r}")
    return SCHEDULES[name](lr, **options)
