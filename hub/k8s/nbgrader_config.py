"""nbgrader's configuration inside the course image (/etc/jupyter/nbgrader_config.py; hub/k8s/Dockerfile).

Every student's server and the instructor's read it: one course, and the exchange on the shared volume that
hub/k8s/values.yaml mounts at /srv/nbgrader/exchange. The instructor's course folder (~/rlcourse, with the
course's own notebooks/exercises/nbgrader_config.py copied into it) adds the grading settings.
"""

c = get_config()  # noqa: F821 (nbgrader defines get_config when it loads this file)

c.CourseDirectory.course_id = "rlcourse"
c.Exchange.root = "/srv/nbgrader/exchange"
