"""nbgrader's configuration for the course's graded exercises (notebooks/exercises/README.md explains the workflow).

nbgrader reads this file when it runs in this folder. Everything else here is generated from source/:
release/, submitted/, autograded/, feedback/, gradebook.db (all ignored by git).
"""

import os

c = get_config()  # noqa: F821 (nbgrader defines get_config when it loads this file)

HERE = os.path.dirname(os.path.abspath(__file__))

c.CourseDirectory.course_id = "rlcourse"
c.CourseDirectory.root = HERE  # absolute, so any working directory gives the same course

# Autograding runs students' code. A cell that runs longer than this (an infinite loop, say) is interrupted
# and scores 0; the other cells are still graded. Each notebook's solution runs in a few seconds.
c.Execute.timeout = 30

# A submission that deleted a test cell is graded with the cell put back, rather than losing its points.
c.OverwriteCells.add_missing_cells = True

# `nbgrader release_assignment` / `collect` go through an exchange folder; this one keeps a single-machine
# course self-contained. A course on a shared JupyterHub points it at the shared exchange instead.
c.Exchange.root = os.path.join(HERE, "exchange")
