"""docs/scaling.md's GitLab, GitHub Actions and Kubernetes examples, checked and run locally with 3 shards.

No engine runs here (no internet): each example's YAML is parsed with PyYAML and its structure checked against
what the engine documents, then its shell commands are run the way the engine would run them — the engine's
variables set as it sets them, `run:`/`script:` lines through bash, a container's `command`+`args` as argv,
artifacts and caches copied between per-job checkouts by the rules below — against a small pool served by a
LocalServer and a FakeWeCom robot. What is modelled, and only that:

- GitLab: `parallel: N` → CI_NODE_INDEX 1..N, CI_NODE_TOTAL N; `artifacts:paths` globs collected (`when`),
  handed to a job that `needs:` them; `when: always` runs a job after a failed one; `cache:` saved per `when`
  (default on_success); CI/CD variables in every job's environment.
- GitHub Actions: `matrix` values substituted into `${{ }}`; steps' `if:` (success()/always()),
  `continue-on-error`; upload-artifact@v4 (unique names, missing file = warning), download-artifact@v4
  (`pattern`, `merge-multiple`); actions/cache@v4 (restore, then save in its post step only if the job
  succeeded: `post-if: success()` in its action.yml) and actions/cache/restore|save@v4.
- Kubernetes: an Indexed Job's pods get JOB_COMPLETION_INDEX 0..completions-1; a pod killed at every attempt
  makes the Job Failed; a failed merge pod is run again until backoffLimit (default 6) unless a
  `podFailurePolicy` FailJob rule matches its exit code; volumes map to one host folder per PVC; `kubectl` is
  a fake answering only `wait --for=condition=…` (waiting for the other terminal condition ends as kubectl's
  timeout does) and `get job … -o jsonpath={.status.conditions[?(@.status=="True")].type}`.

`pip install` lines are skipped; `pytest -n 2` runs as `-n 0` (the shard command's other options unchanged;
shards under `-n 2` are tested in test_merge.py) and an identical shard command line is run for real once and
replayed from its recorded file and exit code for the other engines, to keep this test within seconds.
"""

from __future__ import annotations

import fnmatch
import json
import re
import shutil
import sqlite3
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from fake_wecom import KEY, FakeWeCom, reports
from localserver import LocalServer
from test_merge import serve_pool

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "docs" / "scaling.md"]  # docs/zh has no copy of these examples (checked below)
ENGINES = {"gitlab": "### GitLab CI", "github": "### GitHub Actions", "kubernetes": "### Kubernetes"}
SERVICES = {"alpha": 3, "beta": 2, "gamma": 2, "delta": 1}  # beta-0 answers 500
INTERFACES = [f"{s}-{i}" for s, n in SERVICES.items() for i in range(n)]
SHIM_DIR_ENV = "DOCFLOW_DIR"


# -- reading the doc ---------------------------------------------------------------------------------------

def engine_blocks(path: Path) -> dict[str, list[str]]:
    """The ```yaml blocks of each engine's section (a `###` heading starting with ENGINES' text)."""
    text = path.read_text("utf-8")
    out: dict[str, list[str]] = {}
    for engine, heading in ENGINES.items():
        start = text.index("\n" + heading)
        end = text.find("\n#", start + 1)
        section = text[start:end if end != -1 else len(text)]
        out[engine] = re.findall(r"```yaml\n(.*?)```", section, re.S)
    return out


def blocks(engine: str) -> list[Any]:
    found = engine_blocks(DOCS[0])[engine]
    assert found, f"no yaml block in the {engine} section of docs/scaling.md"
    docs: list[Any] = []
    for block in found:
        docs.extend(d for d in yaml.safe_load_all(block) if d is not None)
    return docs


def test_only_the_english_doc_has_the_examples() -> None:
    """Keep languages in sync: if the examples are ever copied into docs/zh, add that file to DOCS."""
    for path in (ROOT / "docs" / "zh").glob("*.md"):
        for block in re.findall(r"```ya?ml\n(.*?)```", path.read_text("utf-8"), re.S):
            assert not re.search(r"CI_NODE_INDEX|matrix|JOB_COMPLETION_INDEX|--apimon-shard", block), path


# -- structure, as each engine documents it ------------------------------------------------------------------

def gitlab_jobs() -> tuple[dict, dict, dict]:
    (ci,) = blocks("gitlab")
    shard = next(job for job in ci.values() if isinstance(job, dict) and "parallel" in job)
    merge = next(job for job in ci.values() if isinstance(job, dict) and "merge" in " ".join(job.get("script", [])))
    return ci, shard, merge


def test_gitlab_example_structure() -> None:
    ci, shard, merge = gitlab_jobs()
    name_of = {id(job): name for name, job in ci.items()}
    assert isinstance(shard["parallel"], int) and 2 <= shard["parallel"] <= 200  # GitLab: 1 < parallel <= 200
    assert shard["stage"] in ci["stages"] and merge["stage"] in ci["stages"]
    assert ci["stages"].index(shard["stage"]) < ci["stages"].index(merge["stage"])
    assert merge["needs"] == [name_of[id(shard)]]  # needs: a parallel job = all of its N jobs and their artifacts
    assert merge["when"] == "always"  # runs when a shard job failed
    assert shard["artifacts"]["when"] == "always"  # a failed shard job's file still reaches the merge
    # The state folder must be saved also when the merge fails (exit 1: an interface failed, exit 2: a shard
    # missing); GitLab's default cache:when is on_success, which would forget every alert it just sent.
    assert merge["cache"]["paths"] == [".apimon/"] and merge["cache"].get("when") == "always"
    assert merge["artifacts"]["when"] == "always"
    assert "junit" in merge["artifacts"]["reports"]
    assert "image" in ci.get("default", {}) or all("image" in job for job in (shard, merge))
    for job in (shard, merge):
        assert all(isinstance(line, str) for line in job["script"])


def github_workflow() -> tuple[dict, dict, dict]:
    (wf,) = blocks("github")
    jobs = wf["jobs"]
    shard = next(job for job in jobs.values() if "matrix" in job.get("strategy", {}))
    merge = next(job for job in jobs.values() if "needs" in job)
    return wf, shard, merge


def test_github_example_structure() -> None:
    wf, shard, merge = github_workflow()
    # PyYAML reads the key `on` as YAML 1.1's boolean True; GitHub reads it as "on". A workflow needs it.
    assert True in wf or "on" in wf, "a workflow needs `on:` (its triggers)"
    matrix = shard["strategy"]["matrix"]
    assert list(matrix) == ["shard"] and matrix["shard"] == list(range(1, len(matrix["shard"]) + 1))
    assert shard["strategy"]["fail-fast"] is False  # one shard's failure must not cancel the others
    shard_name = next(name for name, job in wf["jobs"].items() if job is shard)
    assert merge["needs"] in (shard_name, [shard_name]) and merge["if"] == "always()"
    uploads = [s for s in shard["steps"] if s.get("uses", "").startswith("actions/upload-artifact@")]
    downloads = [s for s in merge["steps"] if s.get("uses", "").startswith("actions/download-artifact@")]
    assert len(uploads) == 1 and len(downloads) == 1
    # The upload must run after pytest exited 1: the pytest step continues on error, or the upload runs always().
    (pytest_step,) = [s for s in shard["steps"] if "pytest --apimon" in s.get("run", "")]
    assert uploads[0].get("if") == "always()" or pytest_step.get("continue-on-error") is True
    names = {uploads[0]["with"]["name"].replace("${{ matrix.shard }}", str(k)) for k in matrix["shard"]}
    assert len(names) == len(matrix["shard"])  # upload-artifact@v4: names are unique within a run
    assert all(fnmatch.fnmatchcase(name, downloads[0]["with"]["pattern"]) for name in names)
    assert downloads[0]["with"].get("merge-multiple") is True  # else each artifact lands in a folder of its name
    for step in merge["steps"]:
        if step.get("uses", "").startswith("actions/cache@"):
            pytest.fail("actions/cache@v4 saves in its post step only if the job succeeded (post-if: success()): "
                        "a merge that exits 1 would lose the state; use actions/cache/restore + save with if: always()")
        if step.get("uses", "").startswith("actions/cache/save@"):
            assert step.get("if") == "always()"


def kubernetes_jobs() -> tuple[dict, dict]:
    docs = blocks("kubernetes")
    shard = next(d for d in docs if d["spec"].get("completionMode") == "Indexed")
    merge = next(d for d in docs if d is not shard)
    return shard, merge


def test_kubernetes_example_structure() -> None:
    shard, merge = kubernetes_jobs()
    for job in (shard, merge):
        assert job["apiVersion"] == "batch/v1" and job["kind"] == "Job"
        assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"  # a Job's pods: Never or OnFailure
    spec = shard["spec"]
    assert spec["completions"] == spec["parallelism"] >= 2
    (container,) = spec["template"]["spec"]["containers"]
    assert container["command"] == ["sh", "-c"] and len(container["args"]) == 1
    assert "$((JOB_COMPLETION_INDEX + 1))" in container["args"][0]  # the index is 0-based, K is 1-based
    claims = {v["name"]: v["persistentVolumeClaim"]["claimName"] for v in spec["template"]["spec"]["volumes"]}
    merge_pod = merge["spec"]["template"]["spec"]
    merge_claims = {v["name"]: v["persistentVolumeClaim"]["claimName"] for v in merge_pod["volumes"]}
    assert set(claims.values()) <= set(merge_claims.values())  # the merge mounts the shards' results volume
    (wait,) = merge_pod["initContainers"]
    assert shard["metadata"]["name"] in " ".join(wait["command"] + wait.get("args", []))
    # A merge that exits 1 (an interface failed) or 2 (a shard missing) is a finding, not a crash: without a
    # podFailurePolicy or backoffLimit 0 the Job would run it again (backoffLimit defaults to 6) and record
    # and notify the same run up to 7 times.
    policy = merge["spec"].get("podFailurePolicy", {}).get("rules", [])
    assert merge["spec"].get("backoffLimit") == 0 or any(
        r["action"] == "FailJob" and {1, 2} <= set(r["onExitCodes"]["values"]) for r in policy)
    # The state folder is next to the config in the merge container's working directory.
    (main,) = merge_pod["containers"]
    mounts = {m["mountPath"] for m in main["volumeMounts"]}
    assert f"{main['workingDir']}/.apimon" in mounts


# -- running the examples ------------------------------------------------------------------------------------

SHIM = r'''#!{python}
"""Records each call, then runs the real command (pytest: `-n X` as `-n 0`, replayed if run before)."""
import hashlib, json, os, shutil, subprocess, sys
tool, argv = {tool!r}, sys.argv[1:]
state = os.environ["{env}"]
with open(os.path.join(state, "calls.jsonl"), "a", encoding="utf-8") as log:
    log.write(json.dumps({{"tool": tool, "argv": argv, "cwd": os.getcwd(),
                          "env": {{k: v for k, v in os.environ.items() if k in {watched!r}}}}}) + "\n")
if tool == "apimon":
    code = subprocess.call([sys.executable, "-m", "pytest_apimon", *argv])
    with open(os.path.join(state, "calls.jsonl"), "a", encoding="utf-8") as log:
        log.write(json.dumps({{"tool": "exit", "code": code}}) + "\n")
    sys.exit(code)
if tool == "kubectl":
    import re
    status = open(os.path.join(state, "job-status"), encoding="utf-8").read().strip()
    joined = " ".join(argv)
    if argv[:1] == ["wait"]:
        wanted = re.search(r"--for=condition=(\w+)", joined).group(1).lower()
        if status.lower() == wanted:
            print("job.batch/apimon-shards condition met"); sys.exit(0)
        print("error: timed out waiting for the condition on jobs/apimon-shards", file=sys.stderr); sys.exit(1)
    if argv[:2] == ["get", "job"] and '{{.status.conditions[?(@.status=="True")].type}}' in joined:
        polls = os.path.join(state, "job-polls")  # how many more polls see the Job still running
        left = int(open(polls).read()) if os.path.exists(polls) else 0
        if left:
            open(polls, "w").write(str(left - 1)); sys.exit(0)  # running: no condition yet, empty output
        print(status if argv[2] == "apimon-shards" else "", end=""); sys.exit(0)
    print("fake kubectl: unsupported call: " + joined, file=sys.stderr); sys.exit(2)
out = argv[argv.index("--apimon-json") + 1] if "--apimon-json" in argv else None
key_argv = [a for i, a in enumerate(argv) if not (i and argv[i - 1] == "--apimon-json")]
key = hashlib.sha256(json.dumps(key_argv).encode()).hexdigest()[:16]
cached = os.path.join(state, "replay", key)
target = os.path.join(os.getcwd(), out) if out else None
if not os.path.isdir(cached):
    real = ["0" if i and argv[i - 1] == "-n" else a for i, a in enumerate(argv)]
    code = subprocess.call([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *real])
    os.makedirs(cached)
    with open(os.path.join(cached, "code"), "w") as f:
        f.write(str(code))
    if target and os.path.isfile(target):
        shutil.copy(target, os.path.join(cached, "file"))
    sys.exit(code)
if target and os.path.isfile(os.path.join(cached, "file")):
    os.makedirs(os.path.dirname(target), exist_ok=True)
    shutil.copy(os.path.join(cached, "file"), target)
sys.exit(int(open(os.path.join(cached, "code")).read()))
'''
WATCHED = ["CI_NODE_INDEX", "CI_NODE_TOTAL", "JOB_COMPLETION_INDEX", "WECOM_KEY"]


@dataclass
class Lab:
    """The shared local world: the pool's server, the robot, the repository template, the shims."""

    server: LocalServer
    fake: FakeWeCom
    root: Path
    runs: int = 0

    def checkout(self, name: str) -> Path:
        """A fresh clone of the repository (pool + config.yaml) for one job."""
        self.runs += 1
        path = self.root / "jobs" / f"{self.runs:03d}-{name}"
        shutil.copytree(self.root / "repo", path)
        return path

    def env(self, **extra: str) -> dict[str, str]:
        env = {"PATH": f"{self.root / 'bin'}:{Path(sys.executable).parent}:/usr/bin:/bin",
               "HOME": str(self.root / "home"), "LANG": "C.UTF-8", SHIM_DIR_ENV: str(self.root / "state")}
        env.update(extra)
        return env

    def calls(self, since: int = 0) -> list[dict]:
        path = self.root / "state" / "calls.jsonl"
        lines = path.read_text("utf-8").splitlines() if path.exists() else []
        return [json.loads(line) for line in lines[since:]]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    root = tmp_path_factory.mktemp("docflow")
    with LocalServer() as server, FakeWeCom() as fake:
        services = serve_pool(server, root / "repo" / "Interface-pool", SERVICES)
        (root / "repo" / "config.yaml").write_text(
            "defaults:\n  retries: 0\nservices:\n" + services
            + f"notify:\n  wecom:\n    - name: ops\n      webhook: ${{WECOM_KEY}}\n      base_url: {fake.base_url}\n",
            encoding="utf-8")
        for sub in ("bin", "home", "state"):
            (root / sub).mkdir()
        for tool in ("pytest", "apimon", "kubectl"):
            shim = root / "bin" / tool
            shim.write_text(SHIM.format(python=sys.executable, tool=tool, env=SHIM_DIR_ENV, watched=WATCHED), "utf-8")
            shim.chmod(0o755)
        # A wait loop's sleep: counted, takes no time; past the budget the loop is taken to wait forever (as it
        # would, until a deadline) and its shell is stopped.
        sleep = root / "bin" / "sleep"
        sleep.write_text(f'#!/bin/sh\nd="${{{SHIM_DIR_ENV}}}"\necho "$@" >> "$d/sleeps"\n'
                         'left=$(cat "$d/sleep-budget"); [ "$left" -gt 0 ] || { kill "$PPID"; exit 1; }\n'
                         'echo $((left - 1)) > "$d/sleep-budget"\n', "utf-8")
        sleep.chmod(0o755)
        yield Lab(server, fake, root)


def bash(line: str, cwd: Path, env: dict[str, str]) -> int:
    """One `run:` / `script:` line as the runners do: bash with errexit and pipefail."""
    return subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", line], cwd=cwd, env=env,
                          timeout=300, check=False).returncode


def is_pip(line: str) -> bool:
    if line.strip().startswith("pip install"):
        assert line.split() == ["pip", "install", "pytest-apimon"], line
        return True
    return False


@dataclass
class Flow:
    """What one pipeline run produced."""

    merge_dir: Path | None
    outputs: dict[str, Path]  # junit, report … where the example keeps them
    calls: list[dict]
    state_db: Path | None  # where the state the next run starts from lives

    @property
    def merge_codes(self) -> list[int]:
        return [c["code"] for c in self.calls if c["tool"] == "exit"]


def check_shard_calls(calls: list[dict], total: int, dropped: Collection[int] = ()) -> None:
    """Every shard's pytest ran once with K/N = its own index, and wrote a file named after K."""
    shards = [c for c in calls if c["tool"] == "pytest"]
    ks = sorted(int(c["argv"][c["argv"].index("--apimon-shard") + 1].split("/")[0]) for c in shards)
    assert ks == [k for k in range(1, total + 1) if k not in dropped]
    for call in shards:
        k, n = call["argv"][call["argv"].index("--apimon-shard") + 1].split("/")
        assert n == str(total)
        assert call["argv"][:2] == ["--apimon", "Interface-pool/"] and "-n" in call["argv"]
        assert Path(call["argv"][call["argv"].index("--apimon-json") + 1]).name == f"results-{k}.json"


# GitLab ------------------------------------------------------------------------------------------------------

def run_gitlab(lab: Lab, cache: dict[str, Path], *, dead: Collection[int] = ()) -> Flow:
    _, shard, merge = gitlab_jobs()
    since = len(lab.calls())
    total = shard["parallel"]
    variables = {"WECOM_KEY": KEY}  # a project CI/CD variable: GitLab puts it in every job's environment
    artifacts: list[Path] = []
    failed = False
    for k in range(1, total + 1):
        if k in dead:  # its runner died: the job failed and uploaded nothing
            failed = True
            continue
        job = lab.checkout(f"gitlab-shard-{k}")
        env = lab.env(CI_NODE_INDEX=str(k), CI_NODE_TOTAL=str(total), **variables)
        ok = all(bash(line, job, env) == 0 for line in shard["script"] if not is_pip(line))
        assert ok, "a shard job fails only when its runner does: `|| true` keeps a failing interface from failing it"
        if ok or shard["artifacts"].get("when") in ("always", "on_failure"):
            artifacts += [p for pattern in shard["artifacts"]["paths"] for p in job.glob(pattern)]
    if failed and merge.get("when") != "always":
        return Flow(None, {}, lab.calls(since), None)
    job = lab.checkout("gitlab-merge")
    key = merge["cache"]["key"]
    if key in cache:
        shutil.copytree(cache[key], job / merge["cache"]["paths"][0])
    for path in artifacts:
        shutil.copy(path, job / path.name)
    env = lab.env(**variables)
    code = 0
    for line in merge["script"]:
        if not is_pip(line):
            code = bash(line, job, env)
            if code:
                break
    when = merge["cache"].get("when", "on_success")
    if (job / merge["cache"]["paths"][0]).exists() and (when == "always" or (when == "on_success") == (code == 0)):
        saved = lab.root / "caches" / f"gitlab-{lab.runs}"
        shutil.copytree(job / merge["cache"]["paths"][0], saved)
        cache[key] = saved
    outputs = {"junit": job / merge["artifacts"]["reports"]["junit"], "report": job / "report.md"}
    return Flow(job, outputs, lab.calls(since), cache[key] / "state.db" if key in cache else None)


# GitHub Actions ----------------------------------------------------------------------------------------------

EXPR = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")


def expand(text: Any, context: dict[str, str]) -> Any:
    def one(match: re.Match[str]) -> str:
        assert match.group(1) in context, f"expression not modelled here: {match.group(0)}"
        return context[match.group(1)]
    return EXPR.sub(one, text) if isinstance(text, str) else text


def run_github_job(lab: Lab, job: dict, name: str, context: dict[str, str], artifacts: dict[str, list[Path]],
                   cache: dict[str, Path], env: dict[str, str]) -> tuple[bool, Path]:
    """The job's steps in order; returns (succeeded, workspace). `env`: the workflow's env."""
    ws = lab.checkout(name)
    env = {**env, **{k: expand(v, context) for k, v in job.get("env", {}).items()}}
    ok = True
    post: list[tuple[str, str]] = []
    for step in job["steps"]:
        condition = step.get("if", "success()")
        assert condition in ("success()", "always()"), condition
        if condition == "success()" and not ok:
            continue
        uses, args = step.get("uses", ""), {k: expand(v, context) for k, v in step.get("with", {}).items()}
        step_ok = True
        if uses.startswith(("actions/checkout@", "actions/setup-python@")):
            pass  # the workspace is a checkout already; the runner's Python is this one
        elif uses.startswith("actions/upload-artifact@v4"):
            files = [p for line in args["path"].splitlines() if line.strip() for p in ws.glob(line.strip())
                     if p.is_file()]
            assert args["name"] not in artifacts, "upload-artifact@v4 fails on a name uploaded before in the run"
            if files:  # if-no-files-found: warn (the default) uploads nothing and passes
                artifacts[args["name"]] = files
        elif uses.startswith("actions/download-artifact@v4"):
            for art, files in artifacts.items():
                if fnmatch.fnmatchcase(art, args.get("pattern", args.get("name", "*"))):
                    dest = ws / args.get("path", ".")
                    if args.get("merge-multiple") not in ("true", True):
                        dest = dest / art
                    dest.mkdir(parents=True, exist_ok=True)
                    for path in files:
                        shutil.copy(path, dest / path.name)
        elif uses.startswith(("actions/cache@v4", "actions/cache/restore@v4")):
            hit = cache.get(args["key"]) or next(
                (cache[k] for k in reversed(list(cache)) if k.startswith(args.get("restore-keys", "\0"))), None)
            if hit is not None:
                shutil.copytree(hit, ws / args["path"])
            if uses.startswith("actions/cache@"):
                post.append((args["path"], args["key"]))  # saved after the job, post-if: success()
        elif uses.startswith("actions/cache/save@v4"):
            if args["key"] not in cache and (ws / args["path"]).exists():
                cache[args["key"]] = shutil.copytree(ws / args["path"], lab.root / "caches" / args["key"])
        elif "run" in step:
            if not is_pip(step["run"]):
                step_env = lab.env(**env, **{k: expand(v, context) for k, v in step.get("env", {}).items()})
                step_ok = bash(expand(step["run"], context), ws, step_env) == 0
        else:
            pytest.fail(f"step not modelled here: {step}")
        if not step_ok and not step.get("continue-on-error", False):
            ok = False
    for path, key in post:
        if ok and key not in cache and (ws / path).exists():
            cache[key] = shutil.copytree(ws / path, lab.root / "caches" / key)
    return ok, ws


def run_github(lab: Lab, cache: dict[str, Path], *, dead: Collection[int] = ()) -> Flow:
    wf, shard, merge = github_workflow()
    since = len(lab.calls())
    lab.runs += 1
    base = {"secrets.WECOM_KEY": KEY, "github.run_id": str(lab.runs), "github.run_attempt": "1"}
    env = {k: expand(v, base) for k, v in wf.get("env", {}).items()}
    artifacts: dict[str, list[Path]] = {}
    all_ok = True
    for k in shard["strategy"]["matrix"]["shard"]:
        if k in dead:  # the runner died: the job failed and uploaded nothing
            all_ok = False
            continue
        ok, _ = run_github_job(lab, shard, f"github-shard-{k}", {**base, "matrix.shard": str(k)}, artifacts, cache,
                               env)
        assert ok, "continue-on-error keeps a failing interface from failing the shard job"
        all_ok = all_ok and ok
    if not all_ok and merge.get("if") != "always()":
        return Flow(None, {}, lab.calls(since), None)
    ok, ws = run_github_job(lab, merge, "github-merge", base, artifacts, cache, env)
    key = next((k for k in reversed(list(cache))), None)
    return Flow(ws, {"junit": ws / "junit.xml", "report": ws / "report.md"}, lab.calls(since),
                cache[key] / "state.db" if key else None)


# Kubernetes ----------------------------------------------------------------------------------------------------

def pod_argv(container: dict, mounts: dict[str, Path]) -> list[str]:
    argv = list(container.get("command", [])) + list(container.get("args", []))
    out = []
    for arg in argv:
        for mount, host in sorted(mounts.items(), key=lambda m: -len(m[0])):
            arg = re.sub(r"(?<![\w./-])" + re.escape(mount) + r"(?=/|[\s\"']|$)", str(host), arg)
        out.append(arg)
    return out


def run_pod(lab: Lab, container: dict, volumes: dict[str, str], pvcs: dict[str, Path], name: str,
            env: dict[str, str]) -> int:
    """One container as kubelet starts it: argv = command + args, its env, its volume mounts; the working
    directory is a fresh checkout (the image holds pool and config.yaml) and mounts under it are linked there."""
    ws = lab.checkout(name)
    mounts: dict[str, Path] = {}
    for mount in container.get("volumeMounts", []):
        host = pvcs.setdefault(volumes[mount["name"]], lab.root / "pvc" / f"{lab.runs:03d}-{volumes[mount['name']]}")
        host.mkdir(parents=True, exist_ok=True)
        workdir = container.get("workingDir")
        if workdir and mount["mountPath"].startswith(workdir + "/"):
            link = ws / mount["mountPath"][len(workdir) + 1:]
            shutil.rmtree(link, ignore_errors=True)
            link.symlink_to(host)
        else:
            mounts[mount["mountPath"]] = host
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = item["value"]
        else:
            assert item["valueFrom"]["secretKeyRef"]["key"] == "wecom-key"
            env[item["name"]] = KEY
    for source in container.get("envFrom", []):
        assert "secretRef" in source
        env["WECOM_KEY"] = KEY
    return subprocess.run(pod_argv(container, mounts), cwd=ws, env=lab.env(**env), timeout=300,
                          check=False).returncode


def run_kubernetes(lab: Lab, pvcs: dict[str, Path], *, dead: Collection[int] = ()) -> Flow:
    shard, merge = kubernetes_jobs()
    since = len(lab.calls())
    results = pvcs.get("apimon-results")
    if results is not None:  # "Clear /results before the next run" (the doc)
        shutil.rmtree(results)
        results.mkdir()
    spec, pod = shard["spec"], shard["spec"]["template"]["spec"]
    volumes = {v["name"]: v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"]}
    failures = 0
    status = "Complete"
    for index in range(spec["completions"]):
        if index + 1 in dead:  # its pod is killed (OOM, node lost) at every attempt
            failures += spec.get("backoffLimit", 6) + 1
            status = "Failed"
            continue
        code = run_pod(lab, pod["containers"][0], volumes, pvcs, f"k8s-shard-{index}",
                       {"JOB_COMPLETION_INDEX": str(index)})
        assert code == 0, "a shard pod exits 0 whatever the checks found (`; exit 0`): no retry of a finding"
    (lab.root / "state" / "job-status").write_text(status, "utf-8")
    (lab.root / "state" / "job-polls").write_text("1", "utf-8")  # the first poll still sees the Job running
    sleeps = lab.root / "state" / "sleeps"
    slept = len(sleeps.read_text().splitlines()) if sleeps.exists() else 0
    mspec = merge["spec"]
    mpod = mspec["template"]["spec"]
    mvolumes = {v["name"]: v["persistentVolumeClaim"]["claimName"] for v in mpod["volumes"]}
    codes: list[int] = []
    limit = mspec.get("backoffLimit", 6)
    while True:
        (lab.root / "state" / "sleep-budget").write_text("5", "utf-8")
        if any(run_pod(lab, c, mvolumes, pvcs, "k8s-wait", {}) != 0 for c in mpod.get("initContainers", [])):
            codes.append(-1)  # an init container failed: the pod fails without running the merge
        else:
            codes.append(run_pod(lab, mpod["containers"][0], mvolumes, pvcs, "k8s-merge", {}))
        if codes[-1] == 0:
            break
        rule = next((r for r in mspec.get("podFailurePolicy", {}).get("rules", [])
                     if codes[-1] in r.get("onExitCodes", {}).get("values", [])), None)
        if rule is not None and rule["action"] == "FailJob":
            break
        if sum(c != 0 for c in codes) > limit:
            break
    if any(c != -1 for c in codes):  # (else the test fails on the merge never running)
        # The wait went round once while the Job was running, and only then let the merge start.
        assert sleeps.exists() and len(sleeps.read_text().splitlines()) - slept == 1
    results = pvcs.setdefault("apimon-results", lab.root / "pvc" / f"{lab.runs:03d}-apimon-results")
    return Flow(results, {"junit": results / "junit.xml", "report": results / "report.md"},
                lab.calls(since), pvcs["apimon-state"] / "state.db" if "apimon-state" in pvcs else None)


# the flows --------------------------------------------------------------------------------------------------

def runs_recorded(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT count(*) FROM runs").fetchone()[0]


def junit_cases(path: Path) -> dict[str, str]:
    cases = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        assert case.get("name") not in cases, f"{case.get('name')} twice in {path}"
        kind = "failed" if case.find("failure") is not None else "skipped" if case.find("skipped") is not None \
            else "passed"
        cases[case.get("name")] = kind
    return cases


RUNNERS = {"gitlab": run_gitlab, "github": run_github, "kubernetes": run_kubernetes}


@pytest.mark.integration
@pytest.mark.parametrize("engine", list(RUNNERS))
def test_example_runs_three_shards_then_one_merge(lab: Lab, engine: str) -> None:
    runner = RUNNERS[engine]
    store: dict[str, Path] = {}  # the engine's cache / persistent volumes, kept between pipeline runs
    total = 3

    # Pipeline 1: all shards report; beta-0 is down.
    sent = len(lab.fake.messages)
    flow = runner(lab, store)
    check_shard_calls(flow.calls, total)
    merges = [c for c in flow.calls if c["tool"] == "apimon"]
    assert len(merges) == 1, f"the merge must run exactly once, ran {len(merges)} times"
    assert merges[0]["argv"][0] == "merge" and merges[0]["env"].get("WECOM_KEY") == KEY
    assert all(c["env"].get("WECOM_KEY") == KEY for c in flow.calls if c["tool"] == "pytest"), \
        "the shards read the same config.yaml: an unset ${WECOM_KEY} would make every shard a config error"
    assert flow.merge_codes == [1]  # the merge's exit code when an interface failed
    cases = junit_cases(flow.outputs["junit"])
    assert cases == {name: "failed" if name == "beta-0" else "passed" for name in INTERFACES}
    assert "beta-0" in flow.outputs["report"].read_text("utf-8")
    sent_now = reports_since(lab, sent)
    assert len(sent_now) == 1 and "beta-0" in sent_now[0]  # one notification, from the merge
    assert all(lab.server.count(f"/{s}/i{i}") == 1 for s, n in SERVICES.items() for i in range(n))
    assert flow.state_db is not None and runs_recorded(flow.state_db) == 1, \
        "the state folder must survive a merge that exits 1"

    # Pipeline 2: the job of a shard without beta-0 dies without a file. The merge still runs, names it, exits 2.
    plan = json.loads(next(flow.merge_dir.glob("results-1.json")).read_text("utf-8"))["plan"]
    dead = max(row[4] for row in plan if row[4] != next(r[4] for r in plan if r[3] == "beta-0"))
    lost = {row[3] for row in plan if row[4] == dead}
    sent = len(lab.fake.messages)
    flow = runner(lab, store, dead={dead})
    check_shard_calls(flow.calls, total, {dead})
    assert [c["tool"] for c in flow.calls].count("apimon") == 1
    assert flow.merge_codes == [2]  # the merge's exit code for a missing shard
    cases = junit_cases(flow.outputs["junit"])
    assert set(cases) == set(INTERFACES)
    assert {name for name, kind in cases.items() if kind == "skipped"} == lost
    assert cases["beta-0"] == "failed"
    assert runs_recorded(flow.state_db) == 2  # the state came back from the engine's cache / volume
    # beta-0 is still down (ONGOING), but a part of the pool went unchecked: under send_on: change the merge
    # still tells the group, once, as docs/scaling.md says (then reminders; "分片已恢复" when it is back).
    sent_now = reports_since(lab, sent)
    assert len(sent_now) == 1
    assert f"监控不完整：分片 {dead}/3 未上报结果，{len(lost)} 个接口未检查；1 个失败" in sent_now[0].splitlines()[0]


def reports_since(lab: Lab, n: int) -> list[str]:
    class Tail:
        messages = lab.fake.messages[n:]
    return reports(Tail())  # type: ignore[arg-type]


@pytest.mark.integration
@pytest.mark.parametrize("engine", ["gitlab", "kubernetes"])
def test_every_shard_lost_is_exit_2_and_a_message(lab: Lab, engine: str) -> None:
    """As docs/scaling.md says: no shard file at all leaves the shell's glob unexpanded; the merge takes that as
    no shard reporting, tells the group (N and the pool's size from the last merge, kept in the state folder)
    and exits 2. Not modelled for GitHub: what download-artifact@v4 does when its pattern matches no artifact."""
    store: dict[str, Path] = {}
    assert RUNNERS[engine](lab, store).merge_codes == [1]
    sent = len(lab.fake.messages)
    flow = RUNNERS[engine](lab, store, dead={1, 2, 3})
    check_shard_calls(flow.calls, 3, {1, 2, 3})
    assert flow.merge_codes == [2]
    sent_now = reports_since(lab, sent)
    assert len(sent_now) == 1
    assert f"监控失效：3 个分片都没有上报结果，{len(INTERFACES)} 个接口未检查" in sent_now[0].splitlines()[0]
