"""Batch chunks on several threads give the serial answer, and repeat it bit for bit."""

import numpy as np
import pytest

from bptt import NetworkSpec, init_parameters, loss_and_gradients, make_loss, predict
from bptt.gradcheck import relative_error
from bptt.parallel import chunk_bounds, run_chunks


def test_chunks_cover_the_batch_without_overlap():
    assert chunk_bounds(64, 2) == [(0, 32), (32, 64)]
    assert chunk_bounds(10, 4) == [(0, 10)]  # too few rows to be worth a second thread
    bounds = chunk_bounds(101, 3)
    assert bounds[0][0] == 0 and bounds[-1][1] == 101
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:], strict=False))


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_threads_match_serial_and_repeat_exactly(cell):
    spec = NetworkSpec(cell=cell, input_size=2, hidden_size=16, num_layers=2, output_size=3)
    params = init_parameters(spec, 0, np.float64)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(20, 37, 2))
    y = rng.normal(size=(5, 37, 3))
    y[1, 3, 0] = np.nan
    loss = make_loss("huber")
    kw = dict(first_output=15, truncate=(4, 8))
    serial = loss_and_gradients(spec, params, x, y, loss, **kw)
    parallel = loss_and_gradients(spec, params, x, y, loss, threads=3, **kw)
    again = loss_and_gradients(spec, params, x, y, loss, threads=3, **kw)
    assert parallel.loss == pytest.approx(serial.loss, rel=1e-12)
    assert relative_error(parallel.grad, serial.grad) < 1e-12
    assert relative_error(parallel.grad_flow, serial.grad_flow) < 1e-12
    assert np.array_equal(parallel.grad, again.grad)
    one, _ = predict(spec, params, x)
    many, states = predict(spec, params, x, threads=2, batch_chunk=10)
    assert relative_error(many, one) < 1e-12 and states[0].h.shape == (37, 16)


# The pool and the BLAS limit are process-wide, and the API enters them from several request
# threads at once (forecasts run there): they must hold under that. Each check runs in a fresh
# process, whose main thread has never set BLAS's thread count: OpenBLAS (0.3.30) ignores what
# other threads set once the main thread has set a count itself, as earlier tests here do.

def _in_a_fresh_process(check: str) -> None:
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", f"from tests.bptt.test_parallel import "
                           f"{check}; {check}()"], cwd=root, capture_output=True, text=True,
                          timeout=120)
    if done.returncode == 3:
        pytest.skip(done.stdout.strip())
    assert done.returncode == 0, done.stdout + done.stderr


def _blas_threads(controller) -> set[int]:
    return {lib.num_threads for lib in controller.select(user_api="blas").lib_controllers}


def _blas_default(controller) -> set[int]:
    """BLAS's own thread count, which the limit must return to; exits 3 (skip) where it is
    one already, as the limit would then change nothing to see."""
    import sys

    import numpy  # noqa: F401  (loads BLAS)
    import scipy.linalg  # noqa: F401  (loads the BLAS the kernels call)

    default = _blas_threads(controller)
    if not default or default == {1}:
        print(f"BLAS runs {default or 'no'} thread(s) here: nothing for a limit to change")
        sys.exit(3)
    return default


def test_the_blas_limit_holds_until_the_last_thread_leaves():
    _in_a_fresh_process("_blas_limit_first_in_first_out")


def _blas_limit_first_in_first_out():
    import threading

    from threadpoolctl import ThreadpoolController

    from bptt.parallel import single_threaded_blas

    controller = ThreadpoolController()
    default = _blas_default(controller)
    seen = {}
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()

    def first():  # in first, out first, while the second is still inside
        with single_threaded_blas():
            first_in.set()
            second_in.wait(10)
        first_out.set()

    def second():
        first_in.wait(10)
        with single_threaded_blas():
            second_in.set()
            first_out.wait(10)
            seen["inside"] = _blas_threads(controller)

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    seen["after"] = _blas_threads(controller)
    assert seen == {"inside": {1}, "after": default}, seen


def test_many_threads_entering_the_blas_limit_and_the_pool_at_once():
    _in_a_fresh_process("_many_threads_at_once")


def _many_threads_at_once():
    import random
    import threading
    import time

    from threadpoolctl import ThreadpoolController

    from bptt.parallel import run_chunks, single_threaded_blas

    controller = ThreadpoolController()
    default = _blas_default(controller)
    problems: list[str] = []

    def work(lo, hi):
        time.sleep(0.002)
        return list(range(lo, hi))

    def request(seed):
        rng = random.Random(seed)
        for _ in range(30):
            size = rng.randint(2, 6)
            bounds = [(k * 10, k * 10 + 10) for k in range(size)]
            with single_threaded_blas():
                if _blas_threads(controller) != {1}:
                    problems.append(f"BLAS at {_blas_threads(controller)} inside the limit")
                got = run_chunks(work, bounds)
            if got != [list(range(lo, hi)) for lo, hi in bounds]:
                problems.append(f"wrong chunks for {size}")

    for size in range(2, 7):  # one after another: each needs a larger pool than the last
        run_chunks(work, [(0, 1)] * size)
    threads = [threading.Thread(target=request, args=(seed,)) for seed in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert problems == [], problems[:5]
    assert _blas_threads(controller) == default
    deadline = time.monotonic() + 10  # a replaced pool's threads end once their work is done
    while time.monotonic() < deadline:
        pool_threads = [t for t in threading.enumerate() if t.name.startswith("bptt")]
        if len(pool_threads) <= 6:
            break
        time.sleep(0.05)
    assert len(pool_threads) <= 6, [t.name for t in pool_threads]  # one pool, not one per size


def test_fewer_workers_than_chunks_take_them_in_turn_and_answer_in_order():
    import threading

    seen = set()

    def work(lo, hi):
        seen.add(threading.get_ident())
        return lo, hi

    bounds = chunk_bounds(400, 40)
    assert len(bounds) == 40
    assert run_chunks(work, bounds, workers=2) == bounds
    assert len(seen) <= 2
    seen.clear()
    assert run_chunks(work, bounds, workers=1) == bounds
    assert seen == {threading.get_ident()}  # one worker: here, in order


def test_predict_in_more_chunks_than_threads_repeats_exactly():
    spec = NetworkSpec(cell="lstm", input_size=1, hidden_size=16, output_size=3)
    params = init_parameters(spec, 0)
    x = np.random.default_rng(1).normal(size=(12, 200, 1)).astype(np.float32)
    serial, _ = predict(spec, params, x, batch_chunk=16)
    for _ in range(3):
        parallel, _ = predict(spec, params, x, threads=2, batch_chunk=16)
        assert np.array_equal(parallel, serial)


def test_the_blas_limit_holds_after_the_main_thread_set_a_count_itself():
    _in_a_fresh_process("_blas_limit_after_the_main_thread_set_one")


def _blas_limit_after_the_main_thread_set_one():
    # threadpoolctl around a whole fit, as benchmarks do: OpenBLAS then ignores the limit's own
    # thread, and a fit's two training threads each ran 2-thread BLAS (2.3x slower at 2 threads).
    from threadpoolctl import ThreadpoolController, threadpool_limits

    from bptt.parallel import single_threaded_blas

    controller = ThreadpoolController()
    default = _blas_default(controller)
    with threadpool_limits(max(default), user_api="blas"):
        with single_threaded_blas():
            inside = _blas_threads(controller)
        after = _blas_threads(controller)
    assert (inside, after) == ({1}, default), (inside, after)


def test_blas_already_at_one_thread_is_left_alone():
    _in_a_fresh_process("_blas_already_at_one_thread")


def _blas_already_at_one_thread():
    # A caller that holds BLAS to one thread itself (and loops over train_step, say) makes no
    # hand-off to the limit's control thread at every step: there is nothing to set or lift.
    from threadpoolctl import ThreadpoolController, threadpool_limits

    from bptt import parallel

    controller = ThreadpoolController()
    default = _blas_default(controller)
    with threadpool_limits(1, user_api="blas"):
        with parallel.single_threaded_blas():
            inside = _blas_threads(controller)
        after = _blas_threads(controller)
    assert (inside, after) == ({1}, {1}), (inside, after)
    assert parallel._blas_caller is None  # never started: no hand-off was made
    assert _blas_threads(controller) == default  # the caller's own limit is lifted as usual
    with parallel.single_threaded_blas():  # and with BLAS at its default, the limit is set
        assert _blas_threads(controller) == {1}
    assert _blas_threads(controller) == default
