"""Measure what a course's hub needs, on this machine: the numbers hub/README.md sizes a deployment with.

    sudo .venv/bin/python hub/measure.py                 # everything (about half an hour: full-mode notebooks)
    sudo .venv/bin/python hub/measure.py --only grading  # one part: start, notebooks or grading

Each part starts a class of its own (hub/classroom.py: real users, PAM, the course environment):

- ``start``: the hub's start, one student server's spawn, then four spawned at once, and an idle
  server's memory;
- ``notebooks``: every lecture notebook run top to bottom in full mode (as in class, not RLCOURSE_FAST)
  in a kernel of a student's own server, started through its REST API; the peak resident memory of the
  kernel and of the server (``VmHWM``), the notebook's time and its slowest cell;
- ``grading``: nbgrader's autograde on copies of the solution of each assignment, one process for all
  of them (seconds per submission), then the heaviest assignment's submissions split over 1, 2 and 4
  autograde processes at once, checking that every submission is in the gradebook with full marks
  (does the SQLite gradebook cope with concurrent writers?).

Results go to hub/results/measurements.json (merged: a part run alone replaces only its own entry), with
the machine, the versions and the command.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import classroom as cr  # noqa: E402

RESULTS = HERE / "results" / "measurements.json"
GUIDE = HERE / "README.md"
BEGIN, END = "<!-- measurements: begin (hub/measure.py writes this) -->", "<!-- measurements: end -->"
NOTEBOOKS = cr.REPO / "notebooks"


def _status(pid: int, key: str) -> float:
    """A ``/proc/<pid>/status`` memory field, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    raise KeyError(key)


def _pids_of(user: str, needle: str) -> list[int]:
    done = subprocess.run(["pgrep", "-u", user, "-f", needle], capture_output=True, text=True)
    return [int(p) for p in done.stdout.split()]


def _server_pid(user: str) -> int:
    pids = _pids_of(user, "jupyterhub-singleuser")
    if len(pids) != 1:
        raise cr.ClassroomError(f"expected one server process of {user}, found {pids}")
    return pids[0]


# ------------------------------------------------------------------------------------------ parts


def measure_start(prefix: Path) -> dict:
    students = [f"rlc-m{i}" for i in range(5)]
    with cr.Classroom("rlc-mteach", students, prefix=prefix, log=lambda *a: None) as room:
        one = room.spawn(students[0])[students[0]]
        time.sleep(5)  # let it settle, then read its memory
        idle = _status(_server_pid(students[0]), "VmRSS")
        four = room.spawn(*students[1:])
        return {
            "hub_start_s": round(room.timings["hub_start_s"], 2),
            "spawn_one_s": round(one, 2),
            "spawn_four_at_once_s": round(max(four.values()), 2),
            "idle_server_rss_mib": round(idle, 1),
        }


def run_notebook(room: cr.Classroom, user: str, notebook: Path, timeout: float) -> dict:
    """Run ``notebook`` top to bottom in a fresh kernel of ``user``'s server; return time and memory."""
    from jupyter_client import BlockingKernelClient

    kernel = room.server(user, "POST", "api/kernels", {"name": "python3"})
    home = room.users[user].home
    connection = home / ".local" / "share" / "jupyter" / "runtime" / f"kernel-{kernel['id']}.json"
    deadline = time.monotonic() + 60
    while not connection.exists():
        if time.monotonic() > deadline:
            raise cr.ClassroomError(f"no connection file {connection}")
        time.sleep(0.2)
    client = BlockingKernelClient(connection_file=str(connection))
    client.load_connection_file()
    client.start_channels()
    errors, cells = [], []
    try:
        client.wait_for_ready(timeout=60)
        client.execute_interactive(f"import os; os.chdir({str(home / 'lecture')!r})", timeout=60)
        nb = json.loads(notebook.read_text(encoding="utf-8"))
        start = time.perf_counter()
        for index, cell in enumerate(c for c in nb["cells"] if c["cell_type"] == "code"):
            code = "".join(cell["source"])
            t = time.perf_counter()

            def hook(msg, index=index):
                if msg["msg_type"] == "error":
                    errors.append(f"cell {index}: {msg['content']['ename']}: {msg['content']['evalue']}")

            client.execute_interactive(code, timeout=timeout, output_hook=hook)
            cells.append(time.perf_counter() - t)
        total = time.perf_counter() - start
        kernel_pid = _pids_of(user, f"kernel-{kernel['id']}.json")[0]
        result = {
            "seconds": round(total, 1),
            "slowest_cell_s": round(max(cells), 1),
            "slowest_cell": cells.index(max(cells)),
            "kernel_peak_mib": round(_status(kernel_pid, "VmHWM"), 1),
            "server_peak_mib": round(_status(_server_pid(user), "VmHWM"), 1),
            "errors": errors,
            "date": time.strftime("%Y-%m-%d"),  # per notebook: a partial run keeps the others' dates
        }
    finally:
        client.stop_channels()
        room.server(user, "DELETE", f"api/kernels/{kernel['id']}")
    return result


def measure_notebooks(prefix: Path, names: list[str] | None) -> dict:
    student = "rlc-mstudent"
    paths = sorted(NOTEBOOKS.glob("0*.ipynb"))
    if names:
        paths = [p for p in paths if any(p.name.startswith(n) for n in names)]
    out = {}
    with cr.Classroom("rlc-mteach", [student], prefix=prefix, lecture=True, log=lambda *a: None) as room:
        room.spawn(student)
        for path in paths:
            print(f"  {path.name} ...", flush=True)
            out[path.name] = run_notebook(room, student, path, timeout=900)
            print(f"  {path.name}: {out[path.name]}", flush=True)
    return out


def _solved_copies(room: cr.Classroom, assignment: str, students: list[str]) -> None:
    """Put the instructor's solution, as a student would type it, in ``submitted/<student>/`` of each."""
    sys.path.insert(0, str(cr.REPO / "tests"))
    import test_exercises as te  # the exercises' test helpers: solved() strips the markers like a student

    teacher = room.users[room.instructor]
    course = teacher.home / cr.COURSE_ID
    source = te.build.read_notebook(course / "source" / assignment / f"{assignment}.ipynb")
    release = te.build.read_notebook(course / "release" / assignment / f"{assignment}.ipynb")
    text = json.dumps(te.solved(release, source))
    for student in students:
        cr.write_as(teacher, course / "submitted" / student / assignment / f"{assignment}.ipynb", text)


def _graded(course: Path, assignment: str, students: list[str]) -> tuple[int, int]:
    """How many of ``students`` the gradebook has with full marks, and how many at all."""
    from nbgrader.api import Gradebook, MissingEntry

    full = present = 0
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        for student in students:
            try:
                sub = gb.find_submission(assignment, student)
            except MissingEntry:
                continue
            present += 1
            full += sub.score == sub.max_score
    return full, present


def measure_grading(prefix: Path, per_assignment: int, parallel_submissions: int, heaviest: str) -> dict:
    assignments = sorted(p.name for p in cr.SOURCES.iterdir() if p.is_dir())
    out = {"serial": {}, "parallel": {}}
    with cr.Classroom("rlc-mteach", [], prefix=prefix, log=lambda *a: None) as room:
        course = room.users[room.instructor].home / cr.COURSE_ID

        def nbgrader(args: str) -> tuple[float, subprocess.CompletedProcess]:
            t = time.perf_counter()
            done = room.as_user(room.instructor, f"nbgrader {args}", cwd=f"~/{cr.COURSE_ID}", timeout=1800)
            return time.perf_counter() - t, done

        for assignment in assignments:
            seconds, done = nbgrader(f"generate_assignment {assignment} --force")
            if done.returncode:
                raise cr.ClassroomError(done.stdout + done.stderr)
            students = [f"s{i:03d}" for i in range(per_assignment)]
            _solved_copies(room, assignment, students)
            seconds, done = nbgrader(f"autograde {assignment} --force")
            full, present = _graded(course, assignment, students)
            out["serial"][assignment] = {
                "submissions": per_assignment,
                "seconds": round(seconds, 1),
                "per_submission_s": round(seconds / per_assignment, 2),
                "full_marks": full,
            }
            print(f"  serial {assignment}: {out['serial'][assignment]}", flush=True)

        for processes in (1, 2, 4):
            # Process g grades the students whose names match its glob, p<processes>g<g>-*
            groups = [f"p{processes}g{g}-" for g in range(processes)]
            students = [groups[i % processes] + f"{i:03d}" for i in range(parallel_submissions)]
            _solved_copies(room, heaviest, students)

            def grade(group: str) -> tuple[float, subprocess.CompletedProcess]:
                return nbgrader(f"autograde {heaviest} --force --student '{group}*'")

            t = time.perf_counter()
            with ThreadPoolExecutor(processes) as pool:
                done = list(pool.map(grade, groups))
            seconds = time.perf_counter() - t
            full, present = _graded(course, heaviest, students)
            log = "".join(d.stdout + d.stderr for _, d in done)
            out["parallel"][str(processes)] = {
                "assignment": heaviest,
                "submissions": parallel_submissions,
                "seconds": round(seconds, 1),
                "per_submission_s": round(seconds / parallel_submissions, 2),
                "in_gradebook": present,
                "full_marks": full,
                "address_in_use": log.count("Address already in use"),
                "database_locked": log.count("database is locked"),
            }
            print(f"  {processes} processes: {out['parallel'][str(processes)]}", flush=True)
    return out


# ------------------------------------------------------------------------------------------ tables


def _table(header: list[str], rows: list[list]) -> list[str]:
    """A markdown table: the header, its rule, one line per row."""
    return [f"| {' | '.join(header)} |", "|" + "---|" * len(header)] + [
        f"| {' | '.join(map(str, row))} |" for row in rows
    ]


def tables(results: dict) -> str:
    """The guide's measured tables and the arithmetic for 300 students, from the stored results."""
    machine, versions = results["machine"], results["versions"]
    lines = [
        f"Measured on {machine['cpus']} cores, {machine['memory_gib']} GiB ({machine['system']}); JupyterHub "
        f"{versions['jupyterhub']}, JupyterLab {versions['jupyterlab']}, nbgrader {versions['nbgrader']}, "
        f"torch {versions['torch']}. Stored in `hub/results/measurements.json`, with each part's command and date."
    ]
    if "start" in results:
        s = results["start"]["value"]
        header = ["hub start", "one server's spawn", "four spawned at once", "an idle server's memory"]
        row = [f"{s['hub_start_s']:.1f} s", f"{s['spawn_one_s']:.1f} s", f"{s['spawn_four_at_once_s']:.1f} s"]
        lines += ["", *_table(header, [row + [f"{s['idle_server_rss_mib']:.0f} MiB"]])]
    if "notebooks" in results:
        lines += [
            "",
            "Each lecture notebook run top to bottom in full mode (as in class), in a fresh kernel of a student's",
            "server; peak resident memory (`VmHWM`) of the kernel and of the server:",
            "",
            *_table(
                ["notebook", "kernel peak (MiB)", "server peak (MiB)", "run time (s)", "slowest cell (s)", "measured"],
                [
                    [
                        name.removesuffix(".ipynb"),
                        f"{n['kernel_peak_mib']:.0f}",
                        f"{n['server_peak_mib']:.0f}",
                        f"{n['seconds']:.0f}",
                        f"{n['slowest_cell_s']:.0f}",
                        n.get("date", results["notebooks"]["date"]),
                    ]  # fmt: skip
                    for name, n in results["notebooks"]["value"].items()
                ],
            ),
        ]
    if "grading" in results:
        grading = results["grading"]["value"]
        parallel = grading["parallel"]
        lines += [
            "",
            "`nbgrader autograde` on copies of each assignment's solution, all in one process:",
            "",
            *_table(
                ["assignment", "seconds per submission", "submissions", "full marks"],
                [
                    [a, f"{g['per_submission_s']:.2f}", g["submissions"], g["full_marks"]]
                    for a, g in grading["serial"].items()
                ],  # fmt: skip
            ),
            "",
            f"The same {next(iter(parallel.values()))['assignment']} submissions split over several autograde "
            "processes at once, one gradebook:",
            "",
            *_table(
                [
                    "processes",
                    "submissions",
                    "wall seconds",
                    "per submission",
                    "in the gradebook",
                    "full marks",
                    "'address in use'",
                    "'database is locked'",
                ],  # fmt: skip
                [
                    [
                        k,
                        g["submissions"],
                        f"{g['seconds']:.1f}",
                        f"{g['per_submission_s']:.2f}",
                        g["in_gradebook"],
                        g["full_marks"],
                        g["address_in_use"],
                        g["database_locked"],
                    ]
                    for k, g in parallel.items()
                ],  # fmt: skip
            ),
        ]
    if {"start", "notebooks", "grading"} <= results.keys():
        lines += ["", *arithmetic(results)]
    return "\n".join(lines)


def arithmetic(results: dict, students: int = 300) -> list[str]:
    """What the measurements say about a course of ``students`` before a deadline (hub/README.md)."""
    start = results["start"]["value"]
    notebooks = results["notebooks"]["value"]
    heaviest = max(notebooks, key=lambda n: notebooks[n]["kernel_peak_mib"])
    kernel = notebooks[heaviest]["kernel_peak_mib"]
    server = max(n["server_peak_mib"] for n in notebooks.values())
    grading = results["grading"]["value"]
    serial = grading["serial"]
    slowest = max(serial, key=lambda a: serial[a]["per_submission_s"])
    per = serial[slowest]["per_submission_s"]
    parallel = grading["parallel"]
    split = min(parallel, key=lambda k: parallel[k]["per_submission_s"])
    speedup = parallel["1"]["per_submission_s"] / parallel[split]["per_submission_s"]
    cores = results["machine"]["cpus"]
    beyond = [k for k in parallel if int(k) > cores and str(cores) in parallel]
    if beyond:
        better = any(parallel[k]["seconds"] < 0.95 * parallel[str(cores)]["seconds"] for k in beyond)
        beyond_note = "; more processes than cores " + ("helped further" if better else "gained nothing")
    else:
        beyond_note = ""
    course = sum(g["per_submission_s"] for g in serial.values())
    return [
        f"**{students} students before a deadline, from these numbers.**",
        "",
        f"- *Memory.* A student working in the heaviest notebook ({heaviest.removesuffix('.ipynb')}) holds "
        f"{server:.0f} + {kernel:.0f} MiB: {students} at once need {students * (server + kernel) / 1024:.0f} GiB, "
        f"{students} idle servers {students * start['idle_server_rss_mib'] / 1024:.0f} GiB. Culling idle servers "
        "gives the difference back.",
        f"- *Logging in.* One spawn takes {start['spawn_one_s']:.1f} s here, four at once "
        f"{start['spawn_four_at_once_s']:.1f} s (on {cores} cores a spawn is CPU-bound: each server imports "
        f"JupyterLab). {students} students arriving over the last hour are one spawn every "
        f"{3600 / students:.0f} s on average; on Kubernetes the pod start, not the hub, sets the pace.",
        f"- *Grading one assignment.* The slowest to grade, {slowest}, takes {per:.2f} s per submission in one "
        f"process: {students * per / 60:.1f} min for {students} submissions. Split over {split} processes, "
        f"{parallel[split]['assignment']} graded {speedup:.1f}x faster here ({cores} cores{beyond_note}), "
        f"so {slowest} would take about {students * per / speedup / 60:.1f} min; on 8 "
        f"cores with 8 processes about {students * per / 8 / 60:.1f} min if each core keeps its rate (not "
        "measured here). The SQLite gradebook took every concurrent writer's grades (table above).",
        f"- *The whole course.* Grading all six assignments costs {course:.1f} s per student: "
        f"{students * course / 3600:.1f} h of one core for {students} students.",
    ]


def write_guide(results: dict) -> None:
    """Replace the measured block of hub/README.md (between its markers) with the tables."""
    text = GUIDE.read_text(encoding="utf-8")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    GUIDE.write_text(f"{head}{BEGIN}\n{tables(results)}\n{END}{tail}", encoding="utf-8")


# ------------------------------------------------------------------------------------------ main


def versions() -> dict:
    env = cr.course_environment(log=lambda *a: None)
    script = "import importlib.metadata as m; import json; print(json.dumps({p: m.version(p) for p in " \
             "['jupyterhub', 'jupyterlab', 'nbgrader', 'torch', 'rlcourse']}))"  # fmt: skip
    done = cr._run([str(env / "bin" / "python"), "-c", script])
    return json.loads(done.stdout)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=["start", "notebooks", "grading"], action="append")
    parser.add_argument("--notebooks", nargs="*", help="only these notebooks (name prefixes, e.g. 02 08)")
    parser.add_argument("--per-assignment", type=int, default=6, help="solution copies graded per assignment")
    parser.add_argument("--parallel-submissions", type=int, default=12)
    parser.add_argument("--heaviest", default="ex6_grpo", help="the assignment graded in parallel")
    parser.add_argument("--prefix", type=Path, default=cr.PREFIX)
    parser.add_argument("--guide-only", action="store_true", help="rewrite hub/README.md's tables, measure nothing")
    args = parser.parse_args(argv)
    if args.guide_only:
        write_guide(json.loads(RESULTS.read_text()))
        return 0
    reason = cr.unavailable()
    if reason:
        print(f"measure: cannot start a class here: {reason}", file=sys.stderr)
        return 2
    parts = args.only or ["start", "notebooks", "grading"]
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results["machine"] = {
        "cpus": os.cpu_count(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "cpu": platform.processor() or platform.machine(),
        "system": platform.platform(),
    }
    results["versions"] = versions()
    for part in parts:
        print(f"{part} ...", flush=True)
        t = time.perf_counter()
        if part == "start":
            value = measure_start(args.prefix)
        elif part == "notebooks":
            value = measure_notebooks(args.prefix, args.notebooks)
            if args.notebooks:  # a partial run only replaces the notebooks it ran
                value = {**results.get("notebooks", {}).get("value", {}), **value}
        else:
            value = measure_grading(args.prefix, args.per_assignment, args.parallel_submissions, args.heaviest)
        results[part] = {
            "value": value,
            "date": time.strftime("%Y-%m-%d"),
            "command": "sudo .venv/bin/python hub/measure.py " + " ".join(argv if argv is not None else sys.argv[1:]),
            "took_s": round(time.perf_counter() - t, 1),
        }
        RESULTS.parent.mkdir(exist_ok=True)
        RESULTS.write_text(json.dumps(results, indent=1) + "\n")
        print(json.dumps(results[part], indent=1), flush=True)
    write_guide(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
