"""A class, end to end, on a real JupyterHub: what a course does with one graded assignment.

hub/classroom.py starts JupyterHub on 127.0.0.1 with PAM logins and one server per real unix user: an
instructor and four students, created here and removed at the end. Through nbgrader's exchange (a shared
folder) the course runs as it would in a semester:

1. the instructor generates and releases ``ex4_importance`` (nbgrader's commands, as the instructor);
2. each student's own server fetches it: alice through the hub's login page and JupyterLab's Assignment
   List in chromium, the others through their server's REST API;
3. alice solves it, bob makes a typical mistake, carol hands in the blank notebook, dave delegates every
   function to the package; each submits from their own server;
4. the instructor collects, autogrades, generates and releases feedback, and exports grades to CSV;
5. the students fetch their feedback.

The asserts: exact points per student and per cell (gradebook and CSV), feedback naming the failed
case, students unable to read each other's or the instructor's files, and nothing left behind.
"""

from __future__ import annotations

import ast
import csv
import importlib.util
import json
import os
import pwd
import re
import secrets
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ASSIGNMENT = "ex4_importance"
MODULE = "rlcourse.importance"  # where the package's own versions of its functions live
MISTAKE = "variance without subtracting mu^2"  # bob's: one of the typical wrong answers of tests/test_exercises.py

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("RLCOURSE_CHROMIUM", "/usr/bin/chromium")
# The exercises' own test helpers: the solved notebook, the typical wrong answers, the points per cell.
_spec = importlib.util.spec_from_file_location("exercises_tests", ROOT / "tests" / "test_exercises.py")
exercises = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = exercises  # dataclasses look their module up there
_spec.loader.exec_module(exercises)
build = exercises.build


def delegating(release: dict) -> dict:
    """The student version with every function handed to the package's own implementation."""
    nb = json.loads(json.dumps(release))
    for cell in exercises.cells_by_id(nb).values():
        if not build.nbgrader_meta(cell).get("solution"):
            continue
        text = build.cell_source(cell)
        function = next(n for n in ast.parse(text).body if isinstance(n, ast.FunctionDef))
        names = [a.arg for a in function.args.args]
        call = (
            f"from {MODULE} import {function.name} as package_version\n    return package_version({', '.join(names)})"
        )
        cell["source"] = text.replace("raise NotImplementedError()", call)
    return nb


def feedback_html(home, assignment: str) -> str:
    files = sorted(home.glob(f"{assignment}/feedback/*/{assignment}.html"))
    assert files, f"no feedback fetched into {home / assignment / 'feedback'}"
    return files[-1].read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def course(classroom):
    """Run the whole class once; return what the asserts read (the hub and the users are gone after it).

    It runs in a thread of its own: Playwright's sync API refuses to start where an event loop runs, and
    the browser tests keep one running in this worker's main thread for the whole session.
    """
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(run_class, classroom).result()


def run_class(classroom) -> dict:
    """The semester in minutes (this module's docstring); returns what the tests assert on."""
    from playwright.sync_api import sync_playwright

    suffix = secrets.token_hex(2)
    teacher = f"teach-{suffix}"
    alice, bob, carol, dave = (f"{name}-{suffix}" for name in ("alice", "bob", "carol", "dave"))
    students = [alice, bob, carol, dave]
    out = {"names": dict(teacher=teacher, alice=alice, bob=bob, carol=carol, dave=dave), "timings": {}}
    # Screenshots and the feedback files stay for a look after the run (the hub's folders do not).
    artifacts = Path(os.environ.get("RLCOURSE_ARTIFACTS", ROOT / "tests" / "hub" / "artifacts"))
    artifacts.mkdir(parents=True, exist_ok=True)
    source = build.read_notebook(build.source_notebook(ASSIGNMENT, ROOT / "notebooks" / "exercises"))

    with classroom.Classroom(teacher, students, assignments=[ASSIGNMENT], log=lambda *a: None) as room:
        out["timings"].update(room.timings)
        folder = room.folder

        def instructor(command: str) -> subprocess.CompletedProcess:
            done = room.as_user(teacher, command, cwd="~/rlcourse")
            assert done.returncode == 0, f"{command}: {done.stdout}{done.stderr}"
            return done

        # 1. Generate and release
        instructor(f"nbgrader generate_assignment {ASSIGNMENT} --force")
        instructor(f"nbgrader release_assignment {ASSIGNMENT}")
        release = json.loads((room.users[teacher].home / "rlcourse" / "release" / ASSIGNMENT /
                              f"{ASSIGNMENT}.ipynb").read_text())  # fmt: skip
        solution = exercises.solved(release, source)
        wrong = next(w for w in exercises.WRONG[ASSIGNMENT] if w.mistake == MISTAKE)
        answers = {
            alice: solution,
            bob: exercises.edit(solution, wrong.cell, wrong.old, wrong.new),
            carol: None,  # hands in the notebook as fetched
            dave: delegating(release),
        }
        out["lost_by_bob"] = wrong.caught_by

        # Private homes: no student reads another's work or the instructor's solutions
        out["bob_reads_alice"] = room.as_user(bob, f"ls ~{alice}").returncode
        out["bob_reads_sources"] = room.as_user(bob, f"cat ~{teacher}/rlcourse/source/{ASSIGNMENT}/*.ipynb")

        # 2. Servers for the students; alice logs in through the browser, which spawns hers
        t = time.perf_counter()
        out["timings"]["spawn_s"] = room.spawn(bob, carol, dave)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(f"{room.url}/hub/login")
            page.fill("#username_input", alice)
            page.fill("#password_input", room.users[alice].password)
            page.click("#login_submit")
            page.wait_for_url(f"**/user/{alice}/lab**", timeout=120_000)
            page.wait_for_selector("#jp-main-dock-panel", timeout=120_000)
            out["timings"]["browser_login_s"] = time.perf_counter() - t
            page.locator(".lm-MenuBar-item", has_text="Nbgrader").click()
            page.locator(".lm-Menu-itemLabel", has_text="Assignment List").click()
            released = page.locator("#released_assignments_list .list_item", has_text=ASSIGNMENT)
            released.locator("button", has_text="Fetch").click()
            fetched = page.locator("#fetched_assignments_list .list_item", has_text=ASSIGNMENT).first
            fetched.wait_for(timeout=60_000)
            page.screenshot(path=str(artifacts / "alice-fetched.png"))

            # The others fetch from their servers' API (what the panel's button calls)
            ids = {"course_id": classroom.COURSE_ID, "assignment_id": ASSIGNMENT}
            for name in (bob, carol, dave):
                listed = room.server(name, "POST", "assignments/fetch", ids)
                assert listed["success"], listed
            # 3. Each writes their answer into their own copy, through their own server
            path = f"api/contents/{ASSIGNMENT}/{ASSIGNMENT}.ipynb"
            for name, nb in answers.items():
                if nb is not None:
                    room.server(name, "PUT", path, {"type": "notebook", "format": "json", "content": nb})
            out["alice_owns_her_copy"] = (room.users[alice].home / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").owner()
            # alice submits from the panel, the others through the API
            fetched.locator("button", has_text="Submit").click()
            page.locator("#submitted_assignments_list .list_item", has_text=ASSIGNMENT).first.wait_for(timeout=60_000)
            for name in (bob, carol, dave):
                done = room.server(name, "POST", "assignments/submit", ids)
                assert done["success"], done

            # 4. The instructor grades
            t = time.perf_counter()
            instructor(f"nbgrader collect {ASSIGNMENT}")
            instructor(f"nbgrader autograde {ASSIGNMENT}")
            out["timings"]["autograde_s"] = time.perf_counter() - t
            instructor(f"nbgrader generate_feedback {ASSIGNMENT}")
            instructor(f"nbgrader release_feedback {ASSIGNMENT}")
            instructor("nbgrader export --to grades.csv")
            course_folder = room.users[teacher].home / "rlcourse"
            with (course_folder / "grades.csv").open() as f:
                out["csv"] = {row["student_id"]: row for row in csv.DictReader(f)}
            from nbgrader.api import Gradebook

            with Gradebook(f"sqlite:///{course_folder / 'gradebook.db'}") as gb:
                out["cells"] = {
                    name: {g.name: g.score for g in gb.find_submission_notebook(ASSIGNMENT, ASSIGNMENT, name).grades}
                    for name in students
                }
            out["points"] = exercises.points_of(course_folder, ASSIGNMENT)

            # 5. Feedback: alice from the panel, the others through the API
            page.locator("#refresh_assignments_list").click()
            page.locator("#submitted_assignments_list button", has_text="Fetch Feedback").first.click()
            for name in (bob, carol, dave):
                done = room.server(name, "POST", "assignments/fetch_feedback", ids)
                assert done["success"], done
            deadline = time.monotonic() + 60
            while not list(room.users[alice].home.glob(f"{ASSIGNMENT}/feedback/*/{ASSIGNMENT}.html")):
                assert time.monotonic() < deadline, "alice's feedback did not arrive from the panel's button"
                time.sleep(0.5)
            page.locator("#refresh_assignments_list").click()
            page.locator("#submitted_assignments_list a", has_text="view feedback").wait_for(timeout=30_000)
            page.screenshot(path=str(artifacts / "alice-feedback.png"))
            browser.close()
        out["feedback"] = {name: feedback_html(room.users[name].home, ASSIGNMENT) for name in students}
        for name, html in out["feedback"].items():
            (artifacts / f"feedback-{name.split('-')[0]}.html").write_text(html, encoding="utf-8")

    out["folder"] = folder
    out["users_left"] = [n for n in [teacher, *students] if _exists(n)]
    out["processes_left"] = subprocess.run(["pgrep", "-f", str(folder)], capture_output=True, text=True).stdout
    return out


def _exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def test_grades_per_student_are_exact(course):
    names, points = course["names"], course["points"]
    full = sum(points.values())
    assert full == 10
    expected_cells = {
        names["alice"]: points,
        names["bob"]: {cell: 0.0 if cell in course["lost_by_bob"] else p for cell, p in points.items()},
        names["carol"]: {cell: 0.0 for cell in points},
        names["dave"]: {cell: 0.0 for cell in points},  # every function delegates: every cell scores 0
    }
    for student, cells in expected_cells.items():
        assert course["cells"][student] == cells, f"{student}: per-cell scores {course['cells'][student]}"
        row = course["csv"][student]
        assert float(row["score"]) == sum(cells.values()), row
        assert float(row["max_score"]) == full, row
    assert float(course["csv"][names["bob"]]["score"]) == 5.0  # 10 - (3 + 2): both variance cells lost


def test_feedback_names_the_failed_case(course):
    names, feedback = course["names"], course["feedback"]
    for student, html in feedback.items():  # each file states the student's score as the gradebook has it
        score = float(course["csv"][student]["score"])
        assert f"{ASSIGNMENT} (Score: {score:.1f} / 10.0)" in html, student
    raised = r'<span class="ansi-red-fg">(\w+Error)</span>'  # how an exception's name is shown in an output
    assert re.findall(raised, feedback[names["alice"]]) == []
    # bob: the case that failed, what was expected and what he got (the message is HTML-escaped)
    bob = feedback[names["bob"]].replace("&#x27;", "'")
    assert re.search(r"case '[^']+': estimator_variance is wrong: expected [-\d.e]+, got [-\d.e]+", bob)
    # carol: her cells raise where she was to write the code
    assert set(re.findall(raised, feedback[names["carol"]])) == {"NotImplementedError"}
    # dave: why his delegating cells scored nothing
    dave = feedback[names["dave"]].replace("&#x27;", "'")
    for function in ("importance_weighted_estimate", "effective_sample_size", "estimator_variance"):
        assert f"{function} called rlcourse's own {function} ({MODULE}): write it yourself" in dave


def test_students_cannot_read_each_other_or_the_solutions(course):
    assert course["bob_reads_alice"] != 0
    assert course["bob_reads_sources"].returncode != 0
    assert "Permission denied" in course["bob_reads_sources"].stderr
    assert course["alice_owns_her_copy"] == course["names"]["alice"]


def test_everything_made_is_removed(course):
    assert course["users_left"] == []
    assert course["processes_left"] == ""
    assert not course["folder"].exists()
