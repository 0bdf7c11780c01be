"""Fake time for training, so that what a budget allows depends on the training loop, not on
how loaded this machine is."""


class SlowingClock:
    """``fast`` seconds a step for the first ``after`` steps, then ``slow`` (the machine got busy
    mid-run). A step's time passes in ``step``, given to training as its ``on_step``: ``fit``
    calls it after each step, before it reads the clock for the budget."""

    def __init__(self, fast: float, slow: float, after: int = 60) -> None:
        self.fast, self.slow, self.after = fast, slow, after
        self.now, self.steps = 0.0, 0

    def __call__(self) -> float:
        return self.now

    def step(self, _done: int, _total: int) -> None:
        self.steps += 1
        self.now += self.fast if self.steps <= self.after else self.slow
