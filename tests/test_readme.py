"""README.md runs as written, so it cannot drift from the code.

Every code block in README.md is fenced, and its info string says what the test does with it:

- ```python: run as it stands by this Python, in a fresh process, from a scratch directory that
  holds a copy of examples/ (as the repository root does for a reader).
- ```bash: the commands a reader types into one terminal while `bptt up` runs in another. All
  bash blocks run in README order in one bash process (`set -euo pipefail`; a variable set in one
  block is there in the next), from the same kind of scratch directory, against a real embedded
  stack (the API under gunicorn and a Celery worker process, SQLite as database and broker):
  `bptt submit ... --follow` really trains. The stack listens on a free port rather than on the
  README's http://127.0.0.1:8000 (another service may hold that port), so the test points
  BPTT_URL, and every occurrence of that address in the commands, at the stack; BPTT_DATA_DIR is
  the stack's data directory, as ./data is for a reader beside `bptt up`. Nothing else is given:
  the commands make their own token.
- ```text: output and listings, never run.

The blocks of the Set-up section are never run: they install packages and start the
long-running service. Indented code blocks and any other info string fail the test, and the
numbers of blocks not run are asserted, so that no block escapes unnoticed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.conftest import Stack, start_stack

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
SETUP_SECTION = "Set-up"
README_URL = "http://127.0.0.1:8000"
RUN = {"python", "bash"}
# The blocks that are not run, by reason. A README edit that adds or removes one changes these
# on purpose, in the same commit.
EXPECTED_NOT_RUN = {"set-up": 2, "text": 7}
# Issue 14: the sample file must train as written with exactly this command.
SAMPLE_SUBMIT = re.compile(r"^bptt submit examples/\S+\.csv --horizon 12 --follow$", re.M)
DEADLINE_S = 600  # a block that hangs (a job that never ends under --follow) fails, not waits

_FENCE = re.compile(r"^(?P<indent> *)(?P<fence>`{3,}|~{3,})(?P<info>[^`]*)$")


@dataclass(frozen=True)
class Block:
    """One code block of README.md."""

    line: int  # README line of the block's first line of code (1-based)
    info: str  # the fence's language; "indented" for an indented code block
    section: str  # the level-2 heading the block is under
    code: str

    @property
    def kind(self) -> str:
        """What the test does with it: python, bash, set-up or text; anything else is an
        error."""
        if self.section == SETUP_SECTION:
            return "set-up"
        return self.info

    def __str__(self) -> str:
        return f"README.md:{self.line}"


def readme_blocks(text: str) -> list[Block]:
    """Fenced and indented code blocks, in order (enough of CommonMark for this README)."""
    lines = text.splitlines()
    blocks, section, i = [], "", 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("## "):
            section = line[3:].strip()
        fence = _FENCE.match(line)
        if fence:
            indent, marker = len(fence["indent"]), fence["fence"]
            end = i + 1
            while end < len(lines) and not lines[end].strip().startswith(marker):
                end += 1
            # A fence inside a list item is indented, and its code by as much.
            code = "\n".join(part[indent:] if not part[:indent].strip() else part.lstrip()
                             for part in lines[i + 1:end])
            info = fence["info"].strip().split(" ")[0]
            blocks.append(Block(i + 2, info, section, code + "\n"))
            i = end + 1
            continue
        # An indented line after a blank one starts an indented code block (a deeper list
        # paragraph would too: counting it as code makes the test fail loudly, never skip it).
        if line.startswith("    ") and line.strip() and i > 0 and not lines[i - 1].strip():
            end = i
            while end < len(lines) and (lines[end].startswith("    ") or not lines[end].strip()):
                end += 1
            while not lines[end - 1].strip():
                end -= 1
            code = "\n".join(part[4:] for part in lines[i:end])
            blocks.append(Block(i + 1, "indented", section, code + "\n"))
            i = end
            continue
        i += 1
    return blocks


BLOCKS = readme_blocks(README.read_text())
PYTHON = [b for b in BLOCKS if b.kind == "python"]
BASH = [b for b in BLOCKS if b.kind == "bash"]


def test_every_block_is_run_or_deliberately_not():
    unknown = [f"{b}: {b.info!r} block" for b in BLOCKS if b.kind not in RUN | {"set-up", "text"}]
    assert not unknown, ("fence every README code block as python, bash (both run) or text "
                         f"(never run): {unknown}")
    not_run = Counter(b.kind for b in BLOCKS if b.kind not in RUN)
    assert dict(not_run) == EXPECTED_NOT_RUN
    assert PYTHON and BASH
    assert any(SAMPLE_SUBMIT.search(b.code) for b in BASH), "the sample CSV's submit command"


def scratch_dir(tmp_path: Path) -> Path:
    """A directory like the repository root for a reader: examples/ (a copy: blocks may write
    files) and nothing of the test run's own."""
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    return tmp_path


def _failure(what: str, run) -> str:
    return f"{what}\n--- stdout ---\n{run.stdout}\n--- stderr ---\n{run.stderr}"


def _run(args: list[str], cwd: Path, env: dict[str, str]):
    """Run a script (stdin closed: no command can read the script's own text); on a timeout,
    fail with what it printed so far."""
    try:
        return subprocess.run(args, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=DEADLINE_S)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(_failure(f"no end after {DEADLINE_S} s", exc))


@pytest.mark.parametrize("block", PYTHON, ids=str)
def test_python_block(block: Block, tmp_path):
    cwd = scratch_dir(tmp_path)
    # Padded with blank lines so that a traceback's line numbers are README.md's.
    script = tmp_path / "README.md.py"
    script.write_text("\n" * (block.line - 1) + block.code)
    run = _run([sys.executable, script.name], cwd, dict(os.environ))
    assert run.returncode == 0, _failure(f"{block} failed", run)


@pytest.fixture(scope="module")
def embedded_stack(tmp_path_factory) -> Iterator[Stack]:
    """The embedded stack `bptt up` runs: API and a worker process, SQLite data and broker."""
    data_dir = tmp_path_factory.mktemp("data")
    yield from start_stack({**os.environ, "BPTT_DATA_DIR": str(data_dir)}, workers=1)


def session_script(blocks: list[Block], url: str) -> str:
    """The bash blocks as one script whose line numbers are README.md's (the blocks are in
    README order), reporting the README line of a failing command."""
    lines = ['set -euo pipefail; trap \'echo "README.md:$LINENO: exit status $?" >&2\' ERR']
    for block in blocks:
        # The fence's line announces the block, so the output shows which block printed what.
        lines += [""] * (block.line - 2 - len(lines)) + [f'echo "# {block}"']
        lines += block.code.replace(README_URL, url).splitlines()
    return "\n".join(lines) + "\n"


def test_bash_blocks_in_one_terminal(embedded_stack: Stack, tmp_path):
    env = {name: value for name, value in embedded_stack.env.items() if name != "BPTT_TOKEN"}
    # `bptt` is the command installed beside this Python, whatever the caller's PATH.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["BPTT_URL"] = embedded_stack.url
    cwd = scratch_dir(tmp_path)
    script = tmp_path / "README.md.sh"
    script.write_text(session_script(BASH, embedded_stack.url))
    run = _run(["bash", script.name], cwd, env)
    assert run.returncode == 0, _failure("README's shell commands failed", run)
