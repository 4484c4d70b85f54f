"""report.html: self-contained, written at the end of a run, and whole in a real browser."""
import json
import re
import shutil
import subprocess

import numpy as np
import pytest

import cnngraph
from cnngraph.train import checkpoint
from cnngraph.train.config import resolve
from cnngraph.train.loader import Normalizer
from cnngraph.train.report import _crop, _probe, _stages, top_patches
from cnngraph.train.runner import train

from helpers import TRAINING_SPEC, make_quadrants

# Run in the page by the browser test only (a copy of the report): whether every image
# decoded, and every resource the page fetched.
PROBE = """<script>
window.addEventListener("load", () => {
  const images = Array.from(document.images);
  const result = {images: images.length,
                  broken: images.filter(i => !i.complete || i.naturalWidth === 0).length,
                  fetched: performance.getEntriesByType("resource").map(e => e.name),
                  svgs: document.querySelectorAll("svg").length};
  document.body.setAttribute("data-probe", JSON.stringify(result));
});
</script>"""


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One finished run of the tiny spec, its report written by `train` itself."""
    root = tmp_path_factory.mktemp("report")
    spec = root / "spec.yaml"
    spec.write_text(TRAINING_SPEC.replace("  epochs: 4\n", "  epochs: 2\n"))
    data = make_quadrants(root / "data")
    net = cnngraph.load(spec)
    train(net, spec.read_text(), resolve(net.train), root / "run", str(data), quiet=True)
    return net, root / "run"


def test_train_writes_a_self_contained_report(trained):
    net, out = trained
    page = (out / "report.html").read_text()
    assert not re.search(r"https?://", page)              # nothing to fetch
    assert "<script" not in page and "<link" not in page
    for section in ("Network", "Training", "Test set", "Misclassified", "Filters of conv1",
                    "Feature maps of test image 0", "What the stages respond to"):
        assert section in page, section
    assert page.count("data:image/png;base64,") > 10
    assert all(layer in page for layer in _stages(net))
    assert "train_loss" in page and "val_acc" in page     # the curves' legends


def test_top_activation_patches_are_receptive_fields(trained):
    net, out = trained
    stage = _stages(net)[0]
    node = net.node(stage)
    model = cnngraph.compile(_probe(net, [stage]))     # the stage as an output of its own
    params, buffers, _, meta = checkpoint.load(out / "best.npz")
    checkpoint.restore(model, params, buffers, out / "best.npz")
    normalizer = Normalizer.from_record(meta["normalizer"])
    images = np.random.default_rng(0).integers(0, 256, (12, 1, 8, 8), dtype=np.uint8)
    found = top_patches(net, model, stage, normalizer(images), images, channels=2, each=3)
    size = tuple(min(int(r), 8) for r in node.receptive_field)
    assert len(found) == 2 and all(len(p) == 3 for _, p in found)
    assert all(p.shape == (1, *size) for _, patches in found for p in patches)
    # a unit in the middle of the map sees the patch around its place in the image
    crop = _crop(images[0], 1, 1, node)
    assert crop.shape == (1, *size)


def test_report_command_writes_elsewhere(trained, cli, tmp_path):
    _, out = trained
    result = cli("report", out, "-o", tmp_path / "page.html")
    assert result.exit_code == 0 and (tmp_path / "page.html").read_text().startswith(
        "<!DOCTYPE html>")
    missing = cli("report", tmp_path)
    assert missing.exit_code == 1 and "no checkpoint" in missing.output


def test_the_report_loads_whole_in_a_headless_browser(trained, tmp_path):
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or \
        shutil.which("google-chrome")
    if browser is None:
        pytest.skip("no chromium to open the report in (make test installs Debian's)")
    _, out = trained
    page = tmp_path / "probe.html"
    page.write_text((out / "report.html").read_text().replace("</body>", PROBE + "</body>"))
    result = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom",
         "--host-resolver-rules=MAP * ~NOTFOUND", "--virtual-time-budget=5000",
         page.as_uri()], capture_output=True, text=True, timeout=120)
    found = re.search(r'data-probe="([^"]*)"', result.stdout)
    assert found, result.stderr[-2000:]
    probe = json.loads(found.group(1).replace("&quot;", '"'))
    assert probe["images"] > 10 and probe["broken"] == 0
    assert probe["fetched"] == [] and probe["svgs"] >= 3   # the charts and the diagram


def test_a_head_with_other_classes_than_the_data_is_reported_by_number(trained, tmp_path):
    net, out = trained
    wider = tmp_path / "wider.yaml"
    wider.write_text(TRAINING_SPEC.replace("dense: {out: 4}", "dense: {out: 6}")
                     .replace("  epochs: 4\n", "  epochs: 1\n"))
    data = out.parent / "data"
    six = cnngraph.load(wider)
    train(six, wider.read_text(), resolve(six.train), tmp_path / "run", str(data), quiet=True)
    page = (tmp_path / "run" / "report.html").read_text()
    assert "<th>5</th>" in page and "Test set" in page      # six outputs, four class names
