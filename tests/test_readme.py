"""The README's quick start is what CI runs."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    quick_start = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"```bash\n(.+?)\n```", quick_start)
    assert len(commands) == 2, "the quick start has exactly two commands"
    main_job, tests = commands
    assert main_job.endswith("seqbench run") and tests.endswith("pytest")
    assert tests in (ROOT / ".ci" / "run").read_text().splitlines()
