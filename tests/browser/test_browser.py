#!/usr/bin/env python3
"""The report and the review page in a real browser (headless Chromium).

  1. a small run writes its report (export.formats: html); Chromium opens
     index.html from disk: the pictures and plots render, the table sorts and
     filters;
  2. `oddsky serve` on the run: the page shows an object with its picture; a
     click on "Interesting" and the key "0" write the labels file and the page
     moves on; a wrong token gets 403; Ctrl-C (SIGINT) stops the server and
     leaves the labels file whole.

Exits 77 (ctest: skipped) when Chromium, chromedriver or selenium is absent.
Environment: ODDSKY_BIN, ODDSKY_SOURCE_DIR.  Writes only to a temporary folder.
Usage: test_browser.py [--screenshot PNG]  (the report's first screen, for docs)
"""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

SKIP = 77


def need():
    try:
        from selenium import webdriver  # noqa: F401
    except ImportError:
        print("skip: python3-selenium is not installed")
        sys.exit(SKIP)
    for exe in ("chromedriver", "chromium"):
        if not shutil.which(exe, path=os.environ.get("PATH", "") + ":/usr/bin"):
            print(f"skip: {exe} is not installed")
            sys.exit(SKIP)


def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    o = webdriver.ChromeOptions()
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--window-size=1300,1000", "--disable-background-networking"):
        o.add_argument(a)
    return webdriver.Chrome(service=Service(shutil.which("chromedriver") or "/usr/bin/chromedriver"), options=o)


def wait(d, cond, what, timeout=30):
    from selenium.webdriver.support.ui import WebDriverWait
    try:
        return WebDriverWait(d, timeout).until(lambda drv: cond(drv))
    except Exception:
        raise AssertionError(f"timed out waiting for {what}")


def rendered(d, css):
    """Every image matched has loaded with a size."""
    return d.execute_script(
        "var a=document.querySelectorAll(arguments[0]);if(!a.length)return false;"
        "for(var i=0;i<a.length;i++)if(!a[i].complete||a[i].naturalWidth<1)return false;return a.length;", css)


def make_run(tmp, oddsky, src):
    conf = os.path.join(tmp, "run.yaml")
    with open(conf, "w") as f:
        f.write(f"""catalog:
  path: "{src}/catalogs/mock_survey.fits[CATALOG][col *; UG = U - G; GR = G - R; RI = R - I; IZ = I - Z][ID <= 1500]"
  id: ID
  features: [UG, GR, RI, IZ, R, REDSHIFT]
  passthrough: [RA, DEC, CLASS, ANOMALY]
forest:
  n_trees: 30
similarity:
  enabled: true
  top_k: 4
export:
  formats: [fits, csv, html]
report:
  top: 12
labels: labels.csv
output: out
seed: 3
""")
    subprocess.run([oddsky, "-q", "run", conf], check=True)
    return os.path.join(tmp, "out")


def check_report(d, out, shot):
    d.get("file://" + os.path.join(out, "report", "index.html"))
    assert "oddsky" in d.title, d.title
    n = wait(d, lambda drv: rendered(drv, "#obj-1 img, #obj-2 img, #obj-3 img"), "the first cards' pictures")
    assert n >= 3
    wait(d, lambda drv: rendered(drv, ".plots img"), "the plots")
    if shot:
        d.save_screenshot(shot)
    rows = d.find_elements("css selector", "#top tbody tr")
    assert len(rows) == 12, len(rows)
    rank = d.find_element("css selector", "#top thead th")
    rank.click()
    rank.click()  # descending
    first = d.find_element("css selector", "#top tbody tr td").text
    assert first == "12", first
    box = d.find_element("id", "filter")
    box.send_keys("bandspike")
    shown = [r for r in d.find_elements("css selector", "#top tbody tr") if r.is_displayed()]
    expect = sum("bandspike" in r.get_attribute("textContent") for r in rows)
    assert len(shown) == expect and d.find_element("id", "shown").text == str(expect), (len(shown), expect)
    print(f"report: pictures and plots render; table sorts and filters ({expect} bandspike rows)")


def labels(out):
    path = os.path.join(os.path.dirname(out), "labels.csv")
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return f.read().splitlines()[1:]


def check_serve(d, out, oddsky):
    p = subprocess.Popen([oddsky, "serve", out, "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    try:
        url = p.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:") and "?token=" in url, url
        base = url.split("/?")[0]
        try:
            urllib.request.urlopen(base + "/api/next?token=wrong")
            raise AssertionError("a wrong token was accepted")
        except urllib.error.HTTPError as e:
            assert e.code == 403, e.code
        d.get(url)
        cur = d.find_element("id", "current")
        first = wait(d, lambda drv: cur.get_attribute("data-id"), "the first object")
        wait(d, lambda drv: rendered(drv, "#pic"), "the object's picture")
        d.find_element("id", "btn-yes").click()
        wait(d, lambda drv: f"{first},1," in labels(out), "the label in the file")
        second = wait(d, lambda drv: (lambda v: v if v and v != first else None)(cur.get_attribute("data-id")),
                      "the next object")
        wait(d, lambda drv: not d.find_element("id", "btn-no").get_attribute("disabled"), "the buttons")
        d.find_element("tag name", "body").send_keys("0")
        wait(d, lambda drv: f"{second},0," in labels(out), "the key 0 label in the file")
        print(f"serve: clicked {first} interesting and {second} not; both in labels.csv")
    finally:
        p.send_signal(signal.SIGINT)
        rc = p.wait(timeout=20)
    assert rc == 0, (rc, p.stderr.read())
    got = labels(out)
    assert len(got) == 2 and got[0].startswith(first) and got[1].startswith(second), got
    print("serve: Ctrl-C stopped it; the labels file is whole")


def main():
    need()
    shot = sys.argv[sys.argv.index("--screenshot") + 1] if "--screenshot" in sys.argv else None
    here = os.path.dirname(os.path.abspath(__file__))
    src = os.environ.get("ODDSKY_SOURCE_DIR", os.path.join(here, "..", ".."))
    oddsky = os.environ.get("ODDSKY_BIN", os.path.join(src, "build", "oddsky"))
    tmp = tempfile.mkdtemp(prefix="oddsky-browser-")
    d = None
    try:
        out = make_run(tmp, oddsky, src)
        d = browser()
        check_report(d, out, shot)
        check_serve(d, out, oddsky)
    finally:
        if d:
            d.quit()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
