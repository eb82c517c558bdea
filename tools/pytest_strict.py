"""Run pytest, but fail loudly when it collects no tests (pytest's exit code 5).

A test command that silently runs nothing would look green in CI, so exit code 5
is reported and kept as a failure.
"""

import sys

import pytest

if __name__ == "__main__":
    code = pytest.main(sys.argv[1:])
    if code == pytest.ExitCode.NO_TESTS_COLLECTED:
        print(f"error: pytest collected no tests for {' '.join(sys.argv[1:])}", file=sys.stderr)
    sys.exit(int(code))
