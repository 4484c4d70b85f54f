"""`cnngraph report RUN_DIR`: one self-contained HTML page about a training run.

Everything is in the file: images as `data:` URIs (PNG, written by train/png.py), charts and
the network diagram as inline SVG; no script, no style sheet or font from elsewhere, so it
opens offline. Sections: the run; the network diagram (when Graphviz is installed) and the
summary table; loss and accuracy (or PSNR) by epoch with the learning rate; on the test
split, the confusion matrix, per-class accuracy and a grid of misclassified images; the
first convolution's filters; a test image's feature maps at every stage (the last layer
before each change of map size); and, per stage, the test images' patches that activate
its most active channels most, each the size of a unit's receptive field (Zeiler & Fergus).
`train` writes `report.html` at the end of every run.
"""
from __future__ import annotations

import base64
import html
import re
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..errors import CnngraphError
from ..ir import MAIN, Network, Output
from . import checkpoint
from .loader import Normalizer
from .png import as_pixels, png_bytes

SAMPLES = 500          # test images the activations are ranked over
STYLE = """body{font-family:Helvetica,Arial,sans-serif;margin:2em;max-width:1100px;color:#222}
h1{font-size:1.6em}h2{font-size:1.25em;margin-top:2em;border-bottom:1px solid #ccc}
pre{font-size:11px;overflow-x:auto;background:#f7f7f7;padding:.8em}
table.confusion td{width:2.6em;text-align:right;font-size:11px;padding:2px}
figure{display:inline-block;margin:4px;text-align:center;font-size:11px}
img.pixels{image-rendering:pixelated}.note{color:#777}.diagram{overflow-x:auto}"""


def _image(pixels: np.ndarray, scale: int = 1, title: str = "") -> str:
    """An <img> of uint8 pixels (C, H, W), shown `scale` times larger, as a data: URI (the
    first channel alone where there are neither 1 nor 3)."""
    if pixels.shape[0] not in (1, 3):
        pixels = pixels[:1]
    data = base64.b64encode(png_bytes(pixels)).decode("ascii")
    height, width = pixels.shape[1:]
    return (f'<img class="pixels" src="data:image/png;base64,{data}" width="{width * scale}" '
            f'height="{height * scale}" alt="{html.escape(title)}" title="{html.escape(title)}">')


def _stretched(values: np.ndarray) -> np.ndarray:
    """Values of any range as uint8 pixels, their minimum black and maximum white."""
    low, high = float(values.min()), float(values.max())
    return as_pixels((values - low) / (high - low) if high > low else values * 0)


def _chart(history: list[dict], keys: tuple[str, ...], title: str) -> str:
    """An inline SVG line chart of `keys` by epoch (the ones the rows have)."""
    keys = tuple(k for k in keys if all(k in row for row in history))
    if not keys or not history:
        return ""
    width, height, pad = 420, 220, 40
    epochs = [row["epoch"] for row in history]
    values = [row[k] for k in keys for row in history]
    low, high = min(values), max(values)
    high = high if high > low else low + 1

    def point(epoch: float, value: float) -> str:
        x = pad + (epoch - epochs[0]) / max(epochs[-1] - epochs[0], 1) * (width - 2 * pad)
        y = height - pad - (value - low) / (high - low) * (height - 2 * pad)
        return f"{x:.1f},{y:.1f}"

    colours = ("#1f77b4", "#ff7f0e", "#2ca02c")
    lines = [f'<svg width="{width}" height="{height}" '
             f'role="img" aria-label="{html.escape(title)}">',
             f'<text x="{pad}" y="16" font-size="13">{html.escape(title)}</text>',
             f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" '
             'stroke="#999"/>', f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{height - pad}" '
             'stroke="#999"/>',
             f'<text x="4" y="{pad + 4}" font-size="10">{high:.3g}</text>',
             f'<text x="4" y="{height - pad}" font-size="10">{low:.3g}</text>',
             f'<text x="{width / 2:.0f}" y="{height - 8}" font-size="10">epoch '
             f'{epochs[0]}..{epochs[-1]}</text>']
    for k, key in enumerate(keys):
        points = " ".join(point(row["epoch"], row[key]) for row in history)
        lines += [f'<polyline fill="none" stroke="{colours[k]}" stroke-width="2" '
                  f'points="{points}"/>',
                  f'<text x="{width - pad - 90}" y="{30 + 14 * k}" font-size="11" '
                  f'fill="{colours[k]}">{key}</text>']
    return "\n".join([*lines, "</svg>"])


def _stages(net: Network) -> list[str]:
    """The layers whose (C, H, W) output is the last at its map size: each stage's output."""
    maps = [n for n in net.for_output(MAIN).nodes if len(n.shape) == 3]
    return [n.name for k, n in enumerate(maps)
            if k + 1 == len(maps) or maps[k + 1].shape[1:] != n.shape[1:]]


def _probe(net: Network, layers: list[str]) -> Network:
    """`net` with every layer of `layers` an output of its own, read in evaluation mode."""
    heads = tuple(Output(f"probe_{k}", layer, "mse") for k, layer in enumerate(layers))
    return replace(net, heads=(*net.outputs, *heads))


def _crop(image: np.ndarray, row: int, col: int, node) -> np.ndarray:
    """The input patch a unit at (row, col) of `node`'s map sees: its receptive field,
    centred on the unit's centre, zero beyond the image (at most the image's size)."""
    size = [min(int(round(float(r))), d) for r, d in zip(node.receptive_field, image.shape[1:],
                                                         strict=True)]
    jump = [float(j) for j in node.jump]
    centre = [int(round((i + 0.5) * j - 0.5)) for i, j in zip((row, col), jump, strict=True)]
    top, left = (c - s // 2 for c, s in zip(centre, size, strict=True))
    padded = np.zeros((image.shape[0], size[0], size[1]), image.dtype)
    y0, x0 = max(top, 0), max(left, 0)
    y1, x1 = min(top + size[0], image.shape[1]), min(left + size[1], image.shape[2])
    padded[:, y0 - top:y1 - top, x0 - left:x1 - left] = image[:, y0:y1, x0:x1]
    return padded


def top_patches(net: Network, model, layer: str, x: np.ndarray, images: np.ndarray,
                channels: int = 4, each: int = 6) -> list[tuple[int, list[np.ndarray]]]:
    """For the `channels` channels of `layer` most active on average over `x` (normalised
    images; `images` the same as shown), the `each` input patches whose unit activates the
    channel most (one per image): [(channel, [patch (C, h, w), ...]), ...]."""
    name = next(o.name for o in model.net.outputs if o.node == layer)
    maps = np.concatenate([model.forward(x[s:s + 128], output=name)
                           for s in range(0, len(x), 128)])
    maps = maps.reshape(len(x), *net.node(layer).shape)
    strongest = np.argsort(-maps.mean(axis=(0, 2, 3)), kind="stable")[:channels]
    found = []
    for channel in strongest:
        flat = maps[:, channel].reshape(len(x), -1)
        best = np.argsort(-flat.max(axis=1), kind="stable")[:each]
        patches = [_crop(images[i], *divmod(int(flat[i].argmax()), maps.shape[3]),
                         net.node(layer)) for i in best]
        found.append((int(channel), patches))
    return found


class ReportError(CnngraphError):
    """A folder that holds no run to report on."""


def _network(meta: dict) -> Network:
    """The network the run trained: its spec file where it still is, else the spec's text
    the checkpoint holds."""
    from ..api import load, loads
    params = meta.get("spec_params") or None
    path = meta.get("spec_file")
    if path and Path(path).is_file():
        return load(path, params=params)
    return loads(meta["spec"], params=params, name="spec.yaml")


def _diagram(net: Network) -> str:
    from ..tools.draw import dot_source
    missing = ("<p class=\"note\">(the diagram needs Graphviz: pip install "
               "'cnngraph[draw]' and the dot program)</p>")
    try:
        import graphviz
    except ImportError:
        return missing
    try:
        rankdir = "TB" if net.groups else "LR"     # a plain chain reads across the page
        svg = graphviz.Source(dot_source(net, depth=1, rankdir=rankdir)).pipe(format="svg",
                                                                               engine="dot")
    except graphviz.ExecutableNotFound:
        return missing
    text = svg.decode("utf-8")
    # inline in HTML: no XML prologue, DOCTYPE or namespaces (their URLs are names, but a page
    # with no URL in it is easier to trust offline)
    text = re.sub(r'\s+xmlns(:xlink)?="[^"]*"', "", text[text.index("<svg"):])
    return text


def write_report(folder: str | Path, out: str | Path | None = None,
                 net: Network | None = None) -> Path:
    """Write the report of the run in `folder` (to `out`, by default `folder/report.html`)
    from its best checkpoint (else its last) and its test split; returns the path."""
    from ..api import compile as compile_net
    from ..tools.summary import analyse, render
    from .metrics import Accumulator
    from .readers import load_dataset
    folder = Path(folder)
    weights = folder / "best.npz" if (folder / "best.npz").exists() else folder / "last.npz"
    if not weights.exists():
        raise ReportError(f"{folder}: no checkpoint (best.npz or last.npz) to report on")
    params, buffers, _, meta = checkpoint.load(weights)
    net = net or _network(meta)
    history = checkpoint.load(folder / "last.npz")[3]["history"] \
        if (folder / "last.npz").exists() else meta["history"]
    stages = _stages(net)
    model = compile_net(_probe(net, stages))
    checkpoint.restore(model, params, buffers, weights)
    normalizer = Normalizer.from_record(meta["normalizer"])
    options = meta.get("data_options", {})
    resize = options.get("resize")
    data = load_dataset(meta["data"], "test", options.get("layout", "nchw"),
                        tuple(resize) if resize else None)
    x = normalizer(data.x[:SAMPLES])
    shown = as_pixels(data.x[:SAMPLES] / normalizer.scale)
    body = [f"<h1>{html.escape(net.name)}: training report</h1>",
            f"<p>{len(history)} epochs on {html.escape(str(meta['data']))}; weights "
            f"{html.escape(weights.name)} (epoch {meta['epoch'] + 1}); "
            + ", ".join(f"{k} {v:.4g}" for k, v in (meta.get("best") or {}).items()
                        if k.startswith("val_") and isinstance(v, float)) + "</p>",
            "<h2>Network</h2>", f'<div class="diagram">{_diagram(net)}</div>',
            f"<pre>{html.escape(render(analyse(net), depth=2))}</pre>",
            "<h2>Training</h2>",
            _chart(history, ("train_loss", "val_loss"), "loss"),
            _chart(history, ("train_acc", "val_acc", "train_psnr", "val_psnr")[
                0 if "train_acc" in history[0] else 2:][:2], "accuracy" if "train_acc"
                in history[0] else "PSNR (dB)"),
            _chart(history, ("lr",), "learning rate")]
    if not data.regression:
        totals = Accumulator(net.output_shape[0])
        predicted = []
        for start in range(0, len(data), 256):
            logits = model.forward(normalizer(data.x[start:start + 256]))
            totals.add(logits, data.y[start:start + 256])
            predicted.append(logits.argmax(axis=1))
        body += _test_sections(totals.result(), np.concatenate(predicted), data, shown,
                               meta.get("classes") or [])
    body += _filter_sections(net, model)
    body += _map_sections(net, model, x, shown, stages)
    page = ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(net.name)} report</title><style>{STYLE}</style></head>"
            "<body>\n" + "\n".join(body) + "\n</body></html>\n")
    path = Path(out) if out else folder / "report.html"
    path.write_text(page, encoding="utf-8")
    return path


def _test_sections(result: dict, predicted: np.ndarray, data, shown: np.ndarray,
                   classes: list[str]) -> list[str]:
    outputs = len(result["per_class"])       # the data's class names, where the head has theirs
    names = classes if len(classes) == outputs else [str(i) for i in range(outputs)]
    confusion = np.array(result["confusion"])
    peak = max(int(confusion.max()), 1)
    rows = ["<tr><th></th>" + "".join(f"<th>{html.escape(n[:6])}</th>" for n in names)
            + "<th>accuracy</th></tr>"]
    for name, row, acc in zip(names, confusion, result["per_class"], strict=True):
        cells = "".join(f'<td style="background:rgba(31,119,180,{v / peak:.2f})">{v}</td>'
                        for v in row)
        rows.append(f"<tr><th>{html.escape(name)}</th>{cells}<td>{acc:.3f}</td></tr>")
    wrong = np.flatnonzero(predicted[:len(shown)] != data.y[:len(shown)])[:24]
    grid = "".join(f"<figure>{_image(shown[i], 2, f'test image {i}')}<figcaption>"
                   f"{html.escape(names[data.y[i]])} → {html.escape(names[predicted[i]])}"
                   "</figcaption></figure>" for i in wrong)
    return [f"<h2>Test set</h2><p>{result['count']:,} images: loss {result['loss']:.4f}, "
            f"top-1 {result['acc']:.4f}, top-5 {result['top5']:.4f}</p>",
            "<table class=\"confusion\">" + "".join(rows) + "</table>",
            "<p>rows: true class; columns: predicted</p>",
            f"<h3>Misclassified ({len(wrong)} of the first {len(shown)}: true → predicted)</h3>",
            grid]


def _filter_sections(net: Network, model) -> list[str]:
    first = next((n for n in net.nodes if n.op == "conv"), None)
    if first is None:
        return []
    weights = np.asarray(model.host_params()[f"{first.name}.weight"])
    colour = weights.shape[1] == 3
    figures = "".join(
        f"<figure>{_image(_stretched(w if colour else w[:1]), 8, f'filter {k}')}"
        f"<figcaption>{k}</figcaption></figure>" for k, w in enumerate(weights[:64]))
    return [f"<h2>Filters of {html.escape(first.name)}</h2>", figures]


def _map_sections(net: Network, model, x: np.ndarray, shown: np.ndarray,
                  stages: list[str]) -> list[str]:
    out = ["<h2>Feature maps of test image 0</h2>", f"<p>{_image(shown[0], 3, 'input')}</p>"]
    for k, layer in enumerate(stages):
        maps = model.forward(x[:1], output=f"probe_{k}").reshape(net.node(layer).shape)
        scale = max(1, 48 // maps.shape[1])
        out.append(f"<h3>{html.escape(layer)} {'×'.join(map(str, maps.shape))}</h3>" + "".join(
            _image(_stretched(m[None]), scale, f"channel {c}") for c, m in enumerate(maps[:16])))
    out.append("<h2>What the stages respond to</h2><p>For each stage, its four channels most "
               f"active on average over {len(x)} test images, and the six images' patches "
               "that drive each most: a unit's receptive field around it.</p>")
    for layer in stages:
        node = net.node(layer)
        if node.receptive_field is None:
            continue
        found = top_patches(net, model, layer, x, shown)
        size = "×".join(str(d) for d in found[0][1][0].shape[1:])
        out.append(f"<h3>{html.escape(layer)} (patches {size})</h3>" + "".join(
            "<div>" + "".join(_image(p, max(1, 40 // p.shape[1]), f"channel {c}")
                              for p in patches) + f" channel {c}</div>"
            for c, patches in found))
    return out

