"""`treefix inspect RUN --node ID` and `--html FILE` on a real run; the page is checked in a real
headless browser (Debian's chromium through chromedriver, nothing downloaded)."""

import json
import os
import shutil
import subprocess
import sys

import pytest
from conftest import make_repo
from scripted import BUGGY, PLAN, REPAIR, WRONG, critic

TREEFIX = [sys.executable, "-m", "treefix.agent.cli"]
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A finished model run (a replayed cassette): plan → wrong code → repair that fixes it."""
    base = tmp_path_factory.mktemp("inspect")
    repo = make_repo(base / "repo", BUGGY)
    usage = {"input_tokens": 100, "output_tokens": 10, "cached_tokens": 0, "cache_write_tokens": 0}
    replies = [("plan", PLAN), ("code", WRONG), ("critic", critic(0.3)), ("repair", REPAIR), ("critic", critic(0.9))]
    cassette = base / "c.jsonl"
    cassette.write_text("".join(json.dumps({"role": r, "request": "", "completion": {"text": t, "usage": usage}}) + "\n"
                                for r, t in replies * 3))  # fmt: skip
    run_dir = base / "run"
    done = subprocess.run([*TREEFIX, "fix", str(repo), "--issue", "clamp(9, 0, 5) returns 0", "-m", f"replay:{cassette}",
                           "--test-cmd", "python -m pytest -q -p no:cacheprovider", "--max-nodes", "3", "-o", str(run_dir)],
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return run_dir, json.loads((run_dir / "tree.json").read_text())


def inspect(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run([*TREEFIX, "inspect", *args], capture_output=True, text=True, timeout=120, env=env)


def node_of(tree, kind):
    return next(n for n in tree["nodes"] if n["kind"] == kind)


def test_node_shows_plan_diff_tests_output_critic_and_children(run):
    run_dir, tree = run
    code = node_of(tree, "code")
    res = inspect(str(run_dir), "--node", code["id"][:8])
    assert res.returncode == 0, res.stderr
    out = res.stdout
    judged = code["judgement"]
    assert f"code {code['id']}" in out and f"value {judged['value']:.3f}" in out  # the critic's value...
    assert f"reason: {judged['rationale']}" in out  # ...and its reason
    assert "+    if x >= hi:" in out  # the diff
    assert "2 passed, 1 failed" in out and "failed  tests/test_ops.py::test_high" in out  # outcome, failing test
    assert "test output (last" in out and "1 failed, 2 passed" in out  # the output's tail
    repair = node_of(tree, "repair")
    assert "children" in out and repair["id"][:8] in out
    plan = inspect(str(run_dir), "--node", node_of(tree, "plan")["id"][:8]).stdout
    assert "plan" in plan and "ROOT CAUSE: calc/ops.py returns lo when x > hi." in plan  # the plan text


def test_the_tree_says_how_the_run_ended_and_why_its_patch_was_chosen(run):
    run_dir, tree = run
    first = inspect(str(run_dir)).stdout.splitlines()[0]
    assert first.startswith("verified") and f"chosen {tree['best'][:8]} by rule {tree['choice']['rule']}" in first


def test_unknown_node_is_one_message_and_exit_2(run):
    run_dir, _ = run
    res = inspect(str(run_dir), "--node", "nothere")
    assert res.returncode == 2 and "no node 'nothere'" in res.stderr and "Traceback" not in res.stderr


def test_html_page_is_self_contained(run, tmp_path):
    run_dir, tree = run
    page = tmp_path / "tree.html"
    res = inspect(str(run_dir), "--html", str(page))
    assert res.returncode == 0, res.stderr
    text = page.read_text()
    assert "<style>" in text and "<script>" in text
    for fetch in ("<link", " src=", "@import", "url(", "fetch(", "XMLHttpRequest"):
        assert fetch not in text, f"the page would fetch something: {fetch}"
    assert "http://" not in text.replace("http://www.w3.org/2000/svg", "") and "https://" not in text


def _browser():  # type: ignore[no-untyped-def]
    """A headless chromium, or a loud failure in CI (CI set) and a skip that says why elsewhere."""
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not shutil.which(p)]
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        missing.append("the selenium package (dev extras)")
    if missing:
        why = f"the HTML check needs {', '.join(missing)} (.ci/run installs them)"
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why + "; skipped because CI is unset")
    os.environ.setdefault("SE_OFFLINE", "true")  # never look for a driver to download
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)


def test_html_page_in_a_headless_browser(run, tmp_path):
    from selenium.webdriver.common.by import By

    run_dir, tree = run
    page = tmp_path / "tree.html"
    assert inspect(str(run_dir), "--html", str(page)).returncode == 0
    driver = _browser()
    try:
        driver.get(page.resolve().as_uri())
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert errors == [], errors
        rows = driver.find_elements(By.CSS_SELECTOR, ".row")
        assert len(rows) == len(tree["nodes"])
        best = tree["best"]
        path_ids = {r.get_attribute("data-id") for r in driver.find_elements(By.CSS_SELECTOR, ".row.path")}
        assert best in path_ids and tree["nodes"][0]["id"] in path_ids  # root → … → best is marked
        code = node_of(tree, "code")
        driver.find_element(By.CSS_SELECTOR, f'.row[data-id="{code["id"]}"] .title').click()
        panel = driver.find_element(By.ID, "panel")
        diff = panel.find_element(By.CSS_SELECTOR, "pre.diff").text
        assert "+    if x >= hi:" in diff and "-    if x > hi:" in diff
        assert code["judgement"]["rationale"] in panel.text and "tests/test_ops.py::test_high" in panel.text
        # folding the plan hides its children; unfolding shows them again
        plan = node_of(tree, "plan")
        toggle = driver.find_element(By.CSS_SELECTOR, f'.row[data-id="{plan["id"]}"] .toggle')
        child = driver.find_element(By.CSS_SELECTOR, f'.row[data-id="{code["id"]}"]')
        toggle.click()
        assert not child.is_displayed()
        toggle.click()
        assert child.is_displayed()
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert errors == [], errors
    finally:
        driver.quit()
