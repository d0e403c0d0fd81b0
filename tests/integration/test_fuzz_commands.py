"""Bad input, fuzzed (issue 11): generated bad command lines for every HMC command, run
against the real lab the way its SSH endpoint runs them. Each one must be refused: a non-zero
exit, a code of lpmlab's registry on stderr (with that code's exit status), no traceback, and
nothing in the lab changed. The strategies and runner: tests/integration/fuzzing.py; the
long run: benchmarks/fuzz_bench.py (docs/hmc.md, "Bad input, fuzzed").
"""

from __future__ import annotations

import os
from collections import Counter

import pytest
from hypothesis import given, settings

from .fuzzing import (
    STRATEGIES,
    Command,
    Fuzzer,
    commands,
    differences,
    keep_hypothesis_files_in,
    problems,
    run_console_script,
)

pytestmark = pytest.mark.integration

# ~30 ms a command with its state check; LPMLAB_FUZZ_EXAMPLES runs more
EXAMPLES = int(os.environ.get("LPMLAB_FUZZ_EXAMPLES", "1000"))


@pytest.fixture(scope="module")
def fuzzer(lab, tmp_path_factory):
    work = tmp_path_factory.mktemp("fuzz")
    keep_hypothesis_files_in(work)
    f = Fuzzer.start(work)
    yield f
    f.close()


def test_bad_input_is_refused_and_changes_nothing(fuzzer):
    before = fuzzer.probe.snapshot(full=True)
    cheap = fuzzer.probe.snapshot()
    ran: Counter[str] = Counter()
    samples: dict[str, Command] = {}

    @settings(settings.get_profile("lpmlab-fuzz"), max_examples=EXAMPLES)
    @given(cmd=commands(fuzzer.names))
    def refused(cmd: Command) -> None:
        result = fuzzer.server.run(cmd.argv)
        ran[cmd.name] += 1
        samples.setdefault(cmd.name, cmd)
        found = problems(result)
        assert not found, (f"{cmd} ({cmd.poison}): {', '.join(found)}; exit {result.rc}\n"
                           f"stdout: {result.stdout[-1500:]}\nstderr: {result.stderr[-3000:]}")
        after = fuzzer.probe.snapshot()
        assert after == cheap, f"{cmd} ({cmd.poison}) changed the lab: " + "; ".join(
            differences(cheap, after))

    refused()
    assert set(ran) == set(STRATEGIES), f"commands never run: {set(STRATEGIES) - set(ran)}"
    after = fuzzer.probe.snapshot(full=True)
    assert after == before, "the lab changed: " + "; ".join(differences(before, after))
    # what ran is what a user runs: one command of each kind, as its console script
    for cmd in samples.values():
        served, script = fuzzer.server.run(cmd.argv), run_console_script(cmd.argv)
        assert (served.rc, served.stdout, served.stderr.splitlines()[:1]) == \
            (script.rc, script.stdout, script.stderr.splitlines()[:1]), str(cmd)
