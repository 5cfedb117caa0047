"""pytest (nbval) collects every notebook under notebooks/: keep it to the lecture and the exercise sources.

The exercise sources (exercises/source/, with their solutions) run top to bottom like any lecture notebook.
The folders nbgrader generates from them must not be collected: a release has no solutions (every test cell
fails by design), and submitted or autograded copies are students' work.
"""

collect_ignore_glob = [
    "exercises/release/*",
    "exercises/submitted/*",
    "exercises/autograded/*",
    "exercises/feedback/*",
    "exercises/source_with_tests/*",
    "exercises/exchange/*",
]
