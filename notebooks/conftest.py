"""pytest (nbval) collects every notebook under notebooks/: keep it to the lecture and the exercise
sources.

The exercise sources (exercises/source/, with their solutions) run top to bottom like any lecture
notebook. The folders nbgrader generates from them must not be collected: a release has no
solutions (every test cell fails by design), and submitted or autograded copies are students' work.

Like tests/conftest.py, a test run takes the fast budgets of rlcourse.budgets unless told
otherwise (RLCOURSE_FAST=0 runs the notebooks as in class); the kernels inherit the variable.
"""

import os

os.environ.setdefault("RLCOURSE_FAST", "1")

collect_ignore_glob = [
    "exercises/release/*",
    "exercises/submitted/*",
    "exercises/autograded/*",
    "exercises/feedback/*",
    "exercises/source_with_tests/*",
    "exercises/exchange/*",
]
