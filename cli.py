"""The `cnngraph` command line: a thin front end over the Python API."""
from __future__ import annotations

import json
import math
import sys

import click

import cnngraph
from cnngraph.errors import CnngraphError
from cnngraph.ops.base import numel
from cnngraph.tools.summary import (
    COLUMNS,
    DTYPE_BYTES,
    OPTIMIZER_SLOTS,
    POLICIES,
    analyse,
    render,
)

# A missing path or a folder is a usage error (exit 2); the loader takes only regular
# .yaml/.yml files under a size limit and refuses others (devices, FIFOs) unread (exit 1).
SPEC = click.Path(exists=True, dir_okay=False)


def _fail(error: CnngraphError) -> None:
    click.echo(error.render(), err=True)
    sys.exit(error.exit_code)


def _warn(net) -> None:
    """A valid spec's warnings (`file:line:col: warning: ...`), on stderr: they never fail."""
    for warning in net.warnings:
        click.echo(warning.render(), err=True)


def _sizes(axes: str, example: str, counts: tuple[int, ...]):
    """A click callback reading sizes such as `3,224,224` (or `3x224x224`) for `axes`."""
    def parse(ctx, param, value):
        if value is None:
            return None
        try:
            sizes = tuple(int(v) for v in value.replace("x", ",").split(","))
        except ValueError:
            raise click.BadParameter(f"expected {axes} such as {example}, received "
                                     f"{value!r}") from None
        if len(sizes) not in counts or min(sizes) < 1:
            raise click.BadParameter(f"expected {axes} of positive integers, received "
                                     f"{value!r}")
        return sizes
    return parse


_hw = _sizes("H,W", "32,32", (2,))
_input_shape = _sizes("C,H,W", "3,224,224", (1, 3))


def _columns(ctx, param, value):
    """The summary's columns, `layer,op,params`: names of COLUMNS, in the order given."""
    if value is None:
        return None
    names = tuple(v.strip() for v in value.split(",") if v.strip())
    unknown = [n for n in names if n not in COLUMNS]
    if unknown or not names:
        raise click.BadParameter(f"unknown column {unknown[0] if unknown else value!r}; "
                                 f"choose from {', '.join(COLUMNS)}")
    return names


def _frameworks(ctx, param, value):
    """--compare's comma-separated frameworks, checked."""
    from cnngraph.tools.compare import FRAMEWORKS
    if value is None:
        return None
    names = [name.strip() for name in value.split(",") if name.strip()]
    unknown = [name for name in names if name not in FRAMEWORKS]
    if unknown or not names:
        raise click.BadParameter(f"expected some of {', '.join(FRAMEWORKS)}, "
                                 f"received {value!r}")
    return list(dict.fromkeys(names))


def _parse_params(ctx, param, values):
    """`--param NAME=VALUE` pairs as a dict; a value is read as YAML (`0.5`, `true`, `[1, 2]`)."""
    import yaml
    parsed = {}
    for text in values:
        name, sep, value = text.partition("=")
        if not sep or not name.strip().isidentifier():
            raise click.BadParameter(f"expected NAME=VALUE such as width=0.5, received {text!r}")
        try:
            parsed[name.strip()] = yaml.safe_load(value) if value.strip() else None
        except yaml.YAMLError:
            raise click.BadParameter(f"cannot read the value of {text!r}") from None
    return parsed


def _spec_param_option(command):
    return click.option("--param", "spec_params", multiple=True, callback=_parse_params,
                        metavar="NAME=VALUE",
                        help="Set a parameter of the spec (its top-level `params:`; repeatable), "
                             "e.g. --param width=0.5.")(command)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(cnngraph.__version__, prog_name="cnngraph")
def main():
    """cnngraph: compile declarative YAML specs of convolutional networks.

    \b
    cnngraph check specs/resnet18.yaml        validate, report every error
    cnngraph summary specs/resnet18.yaml      shapes, params, MACs, memory, receptive field
    cnngraph expand specs/resnet50.yaml       the spec with blocks and repeats resolved
    """


GRAD_TOLERANCE = 1e-4


@main.command()
@click.argument("specs", nargs=-1, required=True, type=SPEC)
@click.option("--grad", is_flag=True,
              help="Also check the compiled backward pass against float64 finite differences "
                   f"(fails above {GRAD_TOLERANCE:g} relative error).")
@click.option("--samples", type=click.IntRange(min=1), default=3, show_default=True,
              help="With --grad: coordinates probed per parameter tensor.")
@_spec_param_option
def check(specs, grad, samples, spec_params):
    """Validate specs: schema, blocks, wiring and every shape.

    Prints each problem as file:line:column with the path in the spec and a hint. Exit code 0
    when all are valid, 1 when any is not, 2 for a usage error. With --grad, compiles each spec
    in float64 and reports the worst relative error of its gradients per layer.

    \b
    Examples:
      cnngraph check specs/*.yaml
      cnngraph check --grad specs/lenet.yaml
    """
    failed = False
    for path in specs:
        try:
            net = cnngraph.load(path, params=spec_params)
        except CnngraphError as error:
            click.echo(error.render(), err=True)
            failed = True
            continue
        _warn(net)
        params = sum(numel(s) for s in net.param_shapes().values())
        heads = [o.name for o in net.outputs[1:]]
        click.echo(f"{path}: ok ({len(net.nodes)} layers, {params:,} params, output "
                   f"{'x'.join(map(str, net.output_shape))}"
                   + (f"; heads {', '.join(heads)})" if heads else ")"))
        if grad:
            failed |= not _gradient_report(net, samples)
    sys.exit(1 if failed else 0)


def _gradient_report(net, samples: int) -> bool:
    """Per layer: coordinates compared, those left out at a kink, the worst relative error."""
    from cnngraph.tools.gradcheck import gradient_check
    rows = gradient_check(net, samples=samples)
    width = max(len(r.layer) for r in rows)
    click.echo(f"  {'layer'.ljust(width)}  {'op':<10} probes  at kink  worst rel. error")
    for r in rows:
        verdict = "FAIL" if r.worst > GRAD_TOLERANCE else "partly unchecked" if r.unchecked \
            else "ok"
        worst = f"{r.worst:.2e}" if r.probes else "-"
        click.echo(f"  {r.layer.ljust(width)}  {r.op:<10} {r.probes:>6}  {r.excluded:>7}  "
                   f"{worst:<15}  {verdict}")
    excluded = sum(r.excluded for r in rows)
    if excluded:
        click.echo(f"  {excluded} probe(s) left out: they moved a ReLU's or max pooling's input "
                   "across its kink, where finite differences cannot judge a gradient")
    unchecked = [name for r in rows for name in r.unchecked]
    if unchecked:
        click.echo(f"  not judged (every probe sat on a kink; try more --samples): "
                   f"{', '.join(unchecked)}")
    return all(r.worst <= GRAD_TOLERANCE for r in rows)


@main.command()
@click.argument("spec", type=SPEC)
@click.option("-o", "--out", "out", type=click.Path(dir_okay=False),
              help="The diagram: .svg, .png (Graphviz) or .dot [default: NAME.svg].")
@click.option("--depth", type=click.IntRange(min=0),
              help="Draw blocks nested deeper than this as one box each (0: every block).")
@click.option("--rankdir", type=click.Choice(["TB", "LR"]), default="TB", show_default=True,
              help="Top to bottom, or left to right.")
@click.option("--input", "input_shape", callback=_input_shape, metavar="C,H,W",
              help="Draw it for another input size.")
@_spec_param_option
def draw(spec, out, depth, rankdir, input_shape, spec_params):
    """A diagram of the network: every layer with its op, key attributes and parameters, the
    output shape on every edge, blocks and branches as nested clusters.

    SVG and PNG need Graphviz (pip install 'cnngraph[draw]', and the `dot` program); DOT
    needs nothing.

    \b
    Examples:
      cnngraph draw specs/lenet.yaml
      cnngraph draw specs/resnet18.yaml --depth 1 -o resnet18.png
      cnngraph draw specs/googlenet.yaml --rankdir LR -o googlenet.dot
    """
    from pathlib import Path

    from cnngraph.tools.draw import dot_source, render
    try:
        net = cnngraph.load(spec, input_shape=input_shape, params=spec_params)
        path = Path(out or f"{net.name}.svg")
        render(dot_source(net, depth, rankdir), path)
    except CnngraphError as error:
        _fail(error)
    click.echo(f"wrote {path}")


@main.command()
@click.argument("spec", type=SPEC)
@click.option("--depth", type=click.IntRange(min=1), help="Collapse blocks nested deeper.")
@click.option("--batch", type=click.IntRange(min=1), default=1, show_default=True,
              help="Batch size for the memory figures.")
@click.option("--policy", type=click.Choice(POLICIES), default="paper", show_default=True,
              help="Counting policy (see README).")
@click.option("--dtype", type=click.Choice(sorted(DTYPE_BYTES)), default="float32",
              show_default=True)
@click.option("--optimizer", type=click.Choice(sorted(OPTIMIZER_SLOTS)),
              help="Optimizer for the training-memory estimate [default: the spec's, or "
                   "momentum].")
@click.option("--input", "input_shape", callback=_input_shape, metavar="C,H,W",
              help="Override the spec's input size.")
@click.option("--columns", callback=_columns, metavar="NAME,...",
              help="The table's columns, of: " + ", ".join(COLUMNS) + " [default: all, "
                   "`connected` where the network branches].")
@_spec_param_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output "
                                                     "(format cnngraph-summary/1).")
def summary(spec, depth, batch, policy, dtype, optimizer, input_shape, columns, spec_params,
            as_json):
    """Per-layer shapes, params, MACs, memory and receptive field, with totals.

    \b
    Examples:
      cnngraph summary specs/resnet18.yaml --depth 2
      cnngraph summary specs/vgg16.yaml --batch 64 --policy full
      cnngraph summary specs/resnet50.yaml --input 3,160,160 --json
    """
    from cnngraph.train.finetune import frozen_tensors
    try:
        net = cnngraph.load(spec, input_shape=input_shape, params=spec_params)
    except CnngraphError as error:
        _fail(error)
    _warn(net)
    # the spec's train.freeze and train.bn: what its training computes and keeps
    frozen, unmatched = frozen_tensors(net, net.train.get("freeze", ()),
                                       net.train.get("bn", "train"))
    for problem in unmatched:
        click.echo(problem.render(), err=True)
    net = net.with_frozen(frozen)
    data = analyse(net, policy=policy, batch=batch, dtype=dtype, optimizer=optimizer)
    click.echo(json.dumps(data, indent=1) if as_json else render(data, depth, columns))


@main.command()
@click.argument("spec", type=SPEC)
@_spec_param_option
def expand(spec, spec_params):
    """Print the spec with includes, blocks, repeats and branches resolved.

    The output is a valid spec: `check` accepts it and `summary` counts it identically.

    \b
    Example:
      cnngraph expand specs/resnet50.yaml > resnet50-flat.yaml
    """
    from cnngraph.spec.emit import expanded_yaml
    try:
        net = cnngraph.load(spec, params=spec_params)
    except CnngraphError as error:
        _fail(error)
    click.echo(expanded_yaml(net), nl=False)


@main.command(name="compile")
@click.argument("spec", type=SPEC)
@click.option("--dtype", type=click.Choice(["float32", "float64"]), default="float32",
              show_default=True)
@click.option("--batch", type=click.IntRange(min=1), default=32, show_default=True,
              help="Batch size to compile and plan for.")
@click.option("--optimizer", type=click.Choice(sorted(OPTIMIZER_SLOTS)),
              help="Optimizer whose state the training memory counts [default: the spec's, or "
                   "momentum].")
@click.option("--emit", "emit_dir", type=click.Path(file_okay=False),
              help="Write the generated step code and the kernels it calls to this folder.")
@_spec_param_option
def compile_command(spec, dtype, batch, optimizer, emit_dir, spec_params):
    """Compile a spec's kernels (filling the on-disk cache) and report the memory plan: the
    same figures, part by part, as `cnngraph summary` for the same batch, dtype and optimizer.

    With --emit, writes the generated training and inference step functions (and, where it
    differs, the inference of batches smaller than the kernels' chunks: batch 1), and the
    source of every kernel module they call, as readable Python.

    \b
    Examples:
      cnngraph compile specs/lenet.yaml
      cnngraph compile specs/resnet18-cifar.yaml --emit build/resnet18
    """
    import time

    import numpy as np

    from cnngraph.tools.summary import memory_line, optimizer_slots
    try:
        net = cnngraph.load(spec, params=spec_params)
    except CnngraphError as error:
        _fail(error)
    start = time.perf_counter()
    model = cnngraph.compile(net, dtype=dtype)
    x = np.zeros((batch, *net.input_shape), dtype)
    model.loss_and_grad(x, np.zeros(batch, np.int64))
    model.forward(x)
    name = optimizer_slots(net, optimizer)[0]
    click.echo(f"{spec}: compiled for {dtype} in {time.perf_counter() - start:.1f} s; planned "
               f"memory at batch {batch}:")
    click.echo(memory_line("training", model.memory(batch, True, optimizer).as_dict(), name))
    click.echo(memory_line("inference", model.memory(batch, False).as_dict(), name))
    if emit_dir:
        from cnngraph.runtime.codegen import emit
        for path in emit(model, emit_dir):
            click.echo(f"  wrote {path}")


@main.command()
@click.argument("spec", type=SPEC)
@click.option("--batch", type=click.IntRange(min=1), default=64, show_default=True)
@click.option("--repeat", type=click.IntRange(min=1), default=5, show_default=True,
              help="Timed steps (after two warm-up steps).")
@click.option("--backend", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True)
@click.option("--workers", type=click.IntRange(min=1),
              help="Instead, time data-parallel steps of the batch on 1, 2, 4, ... and N "
                   "workers (through mpirun, as `train --workers`), the allreduce apart, and "
                   "estimate the speed-up on 8 to 64 such nodes on common links.")
@click.option("--reduction", type=click.Choice(["fast", "exact"]), default="fast",
              show_default=True, help="With --workers: the gradient sum timed "
                                      "(train.reduction).")
@click.option("--compare", "frameworks", callback=_frameworks, metavar="NAME,...",
              help="Instead, time inference and the training step against other frameworks "
                   "on the same weights, data and threads: torch, onnxruntime (inference).")
@click.option("--rounds", type=click.IntRange(min=1), default=5, show_default=True,
              help="With --compare: rounds of turns between the frameworks.")
@_spec_param_option
def bench(spec, batch, repeat, backend, workers, reduction, frameworks, rounds, spec_params):
    """Time a training step per layer: forward and backward milliseconds, share of the step,
    achieved GFLOP/s, and the fraction of the GEMM peak measured in the same run.

    \b
    Examples:
      cnngraph bench specs/resnet18-cifar.yaml --batch 64
      cnngraph bench specs/resnet18-cifar.yaml --batch 64 --workers 2
      cnngraph bench specs/resnet18-cifar.yaml --batch 64 --workers 2 --reduction exact
      cnngraph bench specs/resnet18-cifar.yaml --batch 1 --compare torch,onnxruntime
    """
    from cnngraph.tools.profile import profile_step, render
    if workers:
        _bench_workers(spec, batch, repeat, workers, reduction, spec_params)
        return
    if frameworks:
        _bench_compare(spec, frameworks, batch, max(repeat, 7), rounds, spec_params)
        return
    try:
        net = cnngraph.load(spec, params=spec_params)
        model = cnngraph.compile(net, backend=backend)
    except CnngraphError as error:
        _fail(error)
    click.echo(render(profile_step(model, batch, repeat)))


@main.command()
@click.argument("spec", type=SPEC)
@click.option("--epochs", type=click.IntRange(min=1), help="Override train.epochs.")
@click.option("--batch-size", type=click.IntRange(min=1), help="Override train.batch_size.")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), help="Override train.lr.")
@click.option("--set", "overrides", multiple=True, metavar="train.KEY=VALUE",
              help="Override any training setting (repeatable), e.g. --set train.momentum=0.9.")
@click.option("--data", "data_dir", help="Data folder or .npz (default: train.dataset).")
@click.option("--layout", type=click.Choice(["nchw", "nhwc"]),
              help="Axes of .npz image arrays: nhwc (channels last) is transposed [default: "
                   "nchw].")
@click.option("--resize", callback=_hw, metavar="H,W",
              help="Resize every image to H x W (image folders of mixed sizes, other inputs).")
@click.option("--out", type=click.Path(file_okay=False),
              help="Run folder for checkpoints and metrics [default: runs/<spec name>].")
@click.option("--resume", is_flag=True,
              help="Continue the run in --out from its last checkpoint, with its settings "
                   "(a larger --epochs extends it).")
@click.option("--overwrite", is_flag=True, help="Replace the run in --out, starting afresh.")
@click.option("--checkpoint-every", type=click.IntRange(min=1), metavar="STEPS",
              help="Write last.npz every STEPS steps too [default: train.checkpoint_every, "
                   "else every 10 minutes]; a killed run loses at most these.")
@click.option("--seed", type=click.IntRange(min=0), help="Override train.seed.")
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True)
@click.option("--init-from", type=click.Path(exists=True, dir_okay=False),
              help="Start from the weights in a checkpoint, .safetensors, .pt or .onnx file: "
                   "every tensor whose name and shape match is copied, and a report says "
                   "which were not (overrides train.init_from; a fresh run only).")
@click.option("--init-map", "init_map", multiple=True, metavar="OLD=NEW",
              help="Rename the --init-from file's tensors that start with OLD (a dotted "
                   "prefix) to start with NEW; repeatable.")
@click.option("--tensorboard", is_flag=True,
              help="Also write each epoch's metrics as TensorBoard scalars, in the run "
                   "folder's tensorboard/ (needs the tensorboard package).")
@click.option("--workers", type=click.IntRange(min=1),
              help="Train data-parallel on N local processes, started through mpirun (the "
                   "`mpi` extra). Under an MPI launcher (mpirun, srun) every process it "
                   "started is a worker already.")
@click.option("--threads", type=click.IntRange(min=1), metavar="K",
              help="Threads per worker (NUMBA_NUM_THREADS), each worker bound to K cores "
                   "[default: NUMBA_NUM_THREADS, else the cores shared out].")
@click.option("--collective-timeout", type=click.FloatRange(min=0, min_open=True),
              default=300.0, show_default=True, metavar="SECONDS",
              help="Abort a data-parallel run whose workers wait longer than this for each "
                   "other (a worker hung or died).")
@_spec_param_option
def train(spec, epochs, batch_size, lr, overrides, data_dir, layout, resize, out, resume,
          overwrite, checkpoint_every, seed, device, init_from, init_map, tensorboard,
          workers, threads, collective_timeout, spec_params):
    """Train a spec on real data (Fashion-MNIST by default), per its `train:` section.

    Writes <out>/last.npz every epoch (and mid-epoch, see --checkpoint-every), <out>/best.npz
    when validation accuracy improves, and metrics.jsonl / metrics.csv (plus curves.png when
    matplotlib is installed). A folder that already holds a run is refused unless --resume or
    --overwrite is given. Ctrl-C saves last.npz after the step in flight.

    \b
    Examples:
      cnngraph train specs/lenet-bn.yaml
      cnngraph train specs/fmnist-resnet.yaml --epochs 5 --set train.lr=0.05
      cnngraph train specs/lenet.yaml --out runs/lenet --resume
      cnngraph train specs/lenet-bn.yaml --init-from runs/base/best.npz
      cnngraph train specs/resnet18-cifar.yaml --workers 2
      mpirun -n 8 python -m mpi4py -m cnngraph train specs/resnet18-cifar.yaml
    """
    from pathlib import Path

    from cnngraph.train import config as train_config
    from cnngraph.train import parallel
    from cnngraph.train.runner import stored_settings
    from cnngraph.train.runner import train as run_training
    world = _join_workers(workers, threads, collective_timeout)
    out = Path(out) if out else None
    try:
        net = cnngraph.load(spec, params=spec_params)
        _warn(net)
        out = out or Path(f"runs/{net.name}")
        settings = (stored_settings(out) if resume and not overwrite else None) or net.train
        config = train_config.resolve(settings, overrides, epochs=epochs, batch_size=batch_size,
                                      lr=lr, seed=seed, init_from=init_from,
                                      init_map=list(init_map) or None,
                                      tensorboard=tensorboard or None)
        result = run_training(net, Path(spec).read_text(), config, out, data_dir, resume,
                              device=device, overwrite=overwrite,
                              checkpoint_every=checkpoint_every, layout=layout, resize=resize,
                              world=world)
    except CnngraphError as error:
        if world.size > 1:
            parallel.fail_worker(world, error, click.echo)
        _fail(error)
    except KeyboardInterrupt:
        last = (out or Path("-")) / "last.npz"
        click.echo(f"stopped at once; the last checkpoint is {last.resolve()}, `--resume` "
                   "continues from it" if last.exists() else "stopped; nothing was saved yet",
                   err=True)
        sys.exit(130)
    if not world.is_root:
        return
    best = result.best
    metric = "val_acc" if "val_acc" in best else "train_acc"
    click.echo(f"done: {result.epochs} epochs; best {metric} {best.get(metric, 0):.4f} at epoch "
               f"{best.get('epoch')}; checkpoints in {result.out}")


def _bench_compare(spec, frameworks: list[str], batch: int, repeat: int, rounds: int,
                   spec_params) -> None:
    """`bench --compare`: cnngraph against each framework, in turns (tools/compare.py)."""
    from cnngraph.runtime.backend import default_threads
    from cnngraph.tools.compare import compare, missing_extra, render
    try:
        net = cnngraph.load(spec, params=spec_params)
    except CnngraphError as error:
        _fail(error)
    missing = missing_extra(frameworks)
    if missing:
        raise click.ClickException(missing)
    click.echo(f"{net.name}: batch {batch}, {default_threads()} threads, median of {repeat} "
               f"calls or a second's worth, {rounds} rounds taking turns")
    rows, gap = compare(str(spec), frameworks, batch, repeat, rounds, spec_params,
                        progress=lambda line: click.echo(line, err=True))
    click.echo(render(rows, frameworks, batch))
    click.echo(f"(the frameworks' first logits agree within {gap:.1e}; ratios are their time / "
               "cnngraph's, median and range over the rounds)")


def _bench_workers(spec, batch: int, repeat: int, workers: int, reduction: str,
                   spec_params) -> None:
    """`cnngraph bench --workers N` (cnngraph/tools/scaling.py), a worker's model compiled as
    `train` compiles it for each number of workers timed."""
    from cnngraph.tools import scaling
    from cnngraph.train.parallel import DEFAULT_SHARDS, EXACT_CHUNKS, compile_once
    world = _join_workers(workers, None, 300.0)
    try:
        net = cnngraph.load(spec, params=spec_params)
    except CnngraphError as error:
        _fail(error)

    def model_for(n: int):
        if reduction == "exact":
            return cnngraph.compile(net, chunks=EXACT_CHUNKS, shards=DEFAULT_SHARDS // n)
        return cnngraph.compile(net, chunks=max(1, DEFAULT_SHARDS // n))

    compile_once(world, model_for(world.size))
    measured = scaling.measure(model_for, world, batch, repeat)
    if world.is_root:
        grads = 4 * sum(math.prod(shape) for shape in net.param_shapes().values())
        click.echo(scaling.render(f"{spec} ({reduction} reduction)", measured, grads))


def _join_workers(workers: int | None, threads: int | None, timeout: float):
    """This process's world of workers (cnngraph/train/parallel.py). `--workers N` outside an
    MPI launcher starts N processes under mpirun and exits with its status; under one, N must
    be the number it started."""
    from cnngraph.train import parallel
    started = parallel.launched_size()
    if started == 1 and workers and workers > 1:
        try:
            command, environ = parallel.launch_command(workers, threads, sys.argv[1:])
        except CnngraphError as error:
            _fail(error)
        sys.exit(parallel.run_launcher(command, environ, lambda text: click.echo(text,
                                                                                 err=True)))
    if workers and started > 1 and workers != started:
        _fail(parallel.ParallelError(f"--workers {workers}, but the MPI launcher started "
                                     f"{started} processes: leave --workers out under mpirun "
                                     "or srun, or give the same number"))
    if threads and started == 1:
        import numba
        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))  # type: ignore[attr-defined]
    try:
        return parallel.join(timeout)
    except CnngraphError as error:
        _fail(error)


def _output_option(command):
    return click.option("--output", "output", default="main", show_default=True,
                        help="Which output of a network with heads (see `cnngraph summary`).")(
        command)


def _check_output(net, output: str) -> None:
    names = [o.name for o in net.outputs]
    if output not in names:
        raise click.BadParameter(f"the network has no output {output!r} (its outputs: "
                                 f"{', '.join(names)})", param_hint="'--output'")


def _load_model(spec, weights, spec_params):
    """The spec, with the parameters the checkpoint was trained with unless `--param` sets
    them, compiled with the checkpoint's weights."""
    from pathlib import Path

    from cnngraph.train.checkpoint import spec_params_of
    from cnngraph.train.runner import load_for_inference
    net = cnngraph.load(spec, params=spec_params or spec_params_of(Path(weights)))
    model, normalizer, meta = load_for_inference(net, Path(weights))
    return net, model, normalizer, meta


def _test_split(net, weights, meta: dict, data_dir, layout, resize):
    """The test split of `--data`, or of the data the checkpoint's run trained on, read as
    that run read it, and checked against the network."""
    from cnngraph.train.readers import load_dataset
    from cnngraph.train.runner import check_dataset, data_path
    # (recorded since checkpoints carry `data`; before that, the settings' dataset is all there
    # is, and saying so beats a silent default)
    source = data_dir or meta.get("data")
    if source is None:
        source = meta["config"]["dataset"]
        click.echo(f"{weights}: the checkpoint does not record its data; using the settings' "
                   f"dataset {source} (pass --data to choose)", err=True)
    options = meta.get("data_options", {}) if not data_dir else {}
    resize = resize or options.get("resize")
    data = load_dataset(data_path(source), "test", layout or options.get("layout", "nchw"),
                        tuple(resize) if resize else None)
    for note in data.notes:
        click.echo(note, err=True)
    check_dataset(data, net)
    return data


@main.command(name="eval")
@click.argument("spec", type=SPEC)
@click.option("--weights", required=True, type=click.Path(exists=True, dir_okay=False),
              help="A checkpoint written by `cnngraph train`.")
@click.option("--data", "data_dir", help="Data folder or .npz (default: the data the run "
                                         "was trained on); its test split is evaluated.")
@click.option("--layout", type=click.Choice(["nchw", "nhwc"]),
              help="Axes of .npz image arrays [default: the run's].")
@click.option("--resize", callback=_hw, metavar="H,W", help="Resize every image to H x W "
                                                            "[default: the run's].")
@click.option("--batch-size", type=click.IntRange(min=1), default=256, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@_spec_param_option
@_output_option
def evaluate_command(spec, weights, data_dir, layout, resize, batch_size, as_json, spec_params,
                     output):
    """Loss, top-1/top-5 accuracy, per-class accuracy and the confusion matrix on test data.

    \b
    Example:
      cnngraph eval specs/lenet-bn.yaml --weights runs/lenet-bn/best.npz
    """
    from cnngraph.train.progress import Progress
    from cnngraph.train.runner import evaluate
    try:
        net, model, normalizer, meta = _load_model(spec, weights, spec_params)
        _check_output(net, output)
        data = _test_split(net, weights, meta, data_dir, layout, resize)
        result = evaluate(model, data, normalizer, batch_size, output, meta.get("target_peak"),
                          Progress())
    except CnngraphError as error:
        _fail(error)
    if as_json:
        click.echo(json.dumps({"data": data.source, **result}))
        return
    if "psnr" in result:
        click.echo(f"{data.source}: {result['count']:,} images, array targets")
        click.echo(f"loss {result['loss']:.4f}  MSE {result['mse']:.6f}  MAE "
                   f"{result['mae']:.6f}  PSNR {result['psnr']:.2f} dB")
        return
    names = data.classes or [str(i) for i in range(len(result["per_class"]))]
    click.echo(f"{data.source}: {result['count']:,} images" + (
        f", output {output}" if output != "main" else ""))
    click.echo(f"loss {result['loss']:.4f}  top-1 {result['acc']:.4f}  top-5 {result['top5']:.4f}")
    width = max(len(n) for n in names)
    click.echo("per-class accuracy:")
    for name, acc in zip(names, result["per_class"], strict=False):
        click.echo(f"  {name.ljust(width)}  {acc:.4f}")
    click.echo("confusion matrix (rows: true class, columns: predicted):")
    for name, row in zip(names, result["confusion"], strict=False):
        click.echo(f"  {name.ljust(width)}  " + " ".join(f"{v:5d}" for v in row))


@main.command()
@click.argument("spec", type=SPEC)
@click.argument("inputs", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--weights", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--top", type=click.IntRange(min=1), default=3, show_default=True)
@click.option("--json", "as_json", is_flag=True,
              help="Machine-readable output: a list with one entry per input, in order, each a "
                   "list of {input, class, index, prob}, most probable first.")
@click.option("-o", "--out", "out", type=click.Path(),
              help="Write the outputs themselves: an .npz (y, names) or a folder of PNG "
                   "images, one per input (image outputs, e.g. a denoiser's).")
@_spec_param_option
@_output_option
def predict(spec, inputs, weights, top, as_json, spec_params, output, out):
    """Top-k classes with probabilities for image files or the `x` array of .npz files.

    Probabilities are the softmax of an output trained with cross-entropy, a sigmoid per class
    for bce_with_logits (multi-label: they need not sum to one), and the output's values
    themselves for mse and l1.

    Images are decoded with Pillow (the `images` extra; binary PGM/PPM need nothing). Pixel
    values are read as 0-255 for uint8 data and for floats beyond 1, as [0, 1] for floats up to
    1, and brought to the units the network was trained on; what was converted is said on
    stderr.

    A network trained on array targets (regression) prints each output's shape and range;
    -o writes the outputs: an .npz, or a folder with one PNG per input for image outputs of 1
    or 3 channels (values in the targets' range: [0, 1] or 0-255).

    \b
    Examples:
      cnngraph predict specs/lenet-bn.yaml --weights runs/lenet-bn/best.npz shoe.png
      cnngraph predict specs/lenet-bn.yaml --weights runs/lenet-bn/best.npz x.npz --json
      cnngraph predict denoiser.yaml --weights runs/denoiser/best.npz noisy.npz -o clean/
    """
    import numpy as np

    from cnngraph.train.inputs import load_prediction_inputs, save_outputs
    from cnngraph.train.metrics import scores
    try:
        net, model, normalizer, meta = _load_model(spec, weights, spec_params)
        _check_output(net, output)
        names, batch, notes = load_prediction_inputs(list(inputs), net.input_shape,
                                                     normalizer.scale)
        head = net.output_named(output)
        values = _forward_in_batches(model, normalizer, batch, output)
        written = save_outputs(out, names, values, meta.get("target_peak") or 1.0) if out \
            else []
        probs = scores(head.loss, values).reshape(len(values), -1)  # a map: a score each
    except CnngraphError as error:
        _fail(error)
    for note in notes:
        click.echo(note, err=True)
    if out:
        click.echo(f"wrote {len(written)} files to {out}", err=True)
    if meta.get("target_peak") is not None:         # a regression's outputs are arrays
        for name, value in zip(names, values, strict=True):
            click.echo(f"{name}: output {tuple(value.shape)}, values {value.min():.4g} .. "
                       f"{value.max():.4g}, mean {value.mean():.4g}")
        if not out:
            click.echo("(pass -o OUT.npz or -o FOLDER for the outputs themselves)", err=True)
        return
    classes = meta.get("classes") or []
    if len(classes) != probs.shape[1]:     # a head with other units than the data's classes
        classes = [str(i) for i in range(probs.shape[1])]
    ranked = [np.argsort(-p, kind="stable")[:top] for p in probs]
    if as_json:
        click.echo(json.dumps([[{"input": name, "class": classes[k], "index": int(k),
                                 "prob": float(p[k])} for k in best]
                               for name, p, best in zip(names, probs, ranked, strict=True)]))
        return
    for name, p, best in zip(names, probs, ranked, strict=True):
        click.echo(f"{name}: " + ", ".join(f"{classes[k]} {p[k]:.3f}" for k in best))


@main.command()
@click.argument("spec", type=SPEC)
@click.option("--weights", required=True, type=click.Path(exists=True, dir_okay=False),
              help="A checkpoint written by `cnngraph train`.")
@click.option("--data", "data_dir", help="Data folder or .npz (default: the data the run "
                                         "was trained on); its test split is used.")
@click.option("--samples", type=click.IntRange(min=1), default=1000, show_default=True,
              help="The loss is the mean over the first SAMPLES test images.")
@click.option("--grid", type=click.IntRange(min=3), default=25, show_default=True,
              help="Points along each direction (odd: the middle one is the trained weights).")
@click.option("--span", type=click.FloatRange(min=0, min_open=True), default=1.0,
              show_default=True, help="The plane spans [-SPAN, SPAN] along each direction.")
@click.option("--seed", type=int, default=0, show_default=True, help="For the directions.")
@click.option("-o", "--out", "out", type=click.Path(dir_okay=False), default="landscape.png",
              show_default=True, help="The picture; the values go to the .npz beside it.")
@_spec_param_option
def landscape(spec, weights, data_dir, samples, grid, span, seed, out, spec_params):
    """The loss surface around trained weights (Li et al. 2018): contours over two random
    filter-normalised directions, and the 1-D slice along the first.

    Batch norm runs in evaluation mode with the trained statistics, and biases and batch norm
    parameters stay put, as in the paper. The picture needs matplotlib (the `plot` extra);
    the values (alphas, betas, losses) are written to OUT.npz either way.

    \b
    Example:
      cnngraph landscape specs/lenet-bn.yaml --weights runs/lenet-bn/best.npz --grid 31
    """
    from pathlib import Path

    from cnngraph.tools.landscape import mean_loss, plot, surface
    if grid % 2 == 0:
        _fail(CnngraphError(f"--grid {grid}: give an odd number, so that the middle point is "
                            "the trained weights"))
    try:
        net, model, normalizer, meta = _load_model(spec, weights, spec_params)
        data = _test_split(net, weights, meta, data_dir, None, None)
        x, labels = normalizer(data.x[:samples]), data.y[:samples]
        found = surface(model, x, labels, grid, span, seed)
        path = Path(out)
        found.save(path.with_suffix(".npz"))
        middle = grid // 2
        click.echo(f"loss at the trained weights {found.losses[middle, middle]:.4f} (evaluated: "
                   f"{mean_loss(model, x, labels):.4f}), {found.losses.min():.4f} .. "
                   f"{found.losses.max():.4f} over the plane; wrote {path.with_suffix('.npz')}")
        plot(found, path, f"{net.name}: loss around {Path(weights).name}, {len(x):,} test "
                          f"images")
    except CnngraphError as error:
        _fail(error)
    click.echo(f"wrote {path}")


def _forward_in_batches(model, normalizer, images, output: str, size: int = 256):
    """The outputs for many inputs, `size` at a time, with a bar while it works (on a
    terminal, for more than one batch)."""
    import numpy as np

    from cnngraph.train.progress import Progress
    progress, chunks = Progress(), []
    steps = -(-len(images) // size)
    if steps > 1:
        progress.start("predict", steps)
    for step, start in enumerate(range(0, len(images), size), 1):
        chunks.append(model.forward(normalizer(images[start:start + size]), output=output))
        if steps > 1:
            progress.advance(step, [(3, f"{start + len(chunks[-1]):,} inputs")])
    progress.clear()
    return np.concatenate(chunks)


@main.command()
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
@click.option("-o", "--out", "out", type=click.Path(dir_okay=False),
              help="The page [default: RUN_DIR/report.html].")
def report(run_dir, out):
    """One self-contained HTML page about a training run, viewable offline: the network
    diagram and summary, curves, the test set's confusion matrix and misclassified images,
    the first layer's filters, feature maps, and what each stage responds to.

    `train` writes it at the end of every run (train.report: false turns that off).

    \b
    Example:
      cnngraph report runs/lenet-bn
    """
    from cnngraph.train.report import write_report
    try:
        path = write_report(run_dir, out)
    except CnngraphError as error:
        _fail(error)
    click.echo(f"wrote {path}")


@main.command(name="export")
@click.argument("spec", type=SPEC)
@click.option("--weights", type=click.Path(exists=True, dir_okay=False),
              help="A checkpoint written by `cnngraph train` [default: the initial weights, "
                   "seed 0].")
@click.option("-o", "--out", "out", required=True, type=click.Path(dir_okay=False),
              help="The .onnx file to write.")
@click.option("--opset", type=click.IntRange(min=1), default=17, show_default=True,
              help="ONNX opset version, 13 to 21.")
@click.option("--fold-bn", is_flag=True,
              help="Fold each batch norm into the conv before it (the conv's weight and bias "
                   "change; the BatchNormalization node goes).")
@click.option("--with-normalization", is_flag=True,
              help="Prepend the training normaliser as nodes, so the model takes raw pixels "
                   "(needs --weights).")
@click.option("--verify", is_flag=True,
              help="Run the file in onnxruntime on a random batch and compare with cnngraph's "
                   "forward; exit 1 if they differ by more than 1e-4 relative.")
@_spec_param_option
@_output_option
def export_command(spec, weights, out, opset, fold_bn, with_normalization, verify, spec_params,
                   output):
    """Write the network and its weights as an ONNX model (onnxruntime, Netron, browsers).

    The graph takes what `model.forward` takes, with a dynamic batch dimension; nodes are
    named by the layers' dotted names and initializers by cnngraph's parameter and buffer
    names. Dropout is left out, batch norm stays BatchNormalization unless --fold-bn, heads
    other than --output are dropped. The normaliser's mean and std go into the metadata. Needs
    the `onnx` extra: pip install 'cnngraph[onnx]'.

    \b
    Examples:
      cnngraph export specs/lenet-bn.yaml --weights runs/lenet-bn/best.npz -o lenet.onnx
      cnngraph export specs/resnet18.yaml -o resnet18.onnx --opset 13 --verify
    """
    from pathlib import Path

    from cnngraph.interchange import onnx_export
    try:
        if weights:
            from cnngraph.train.checkpoint import spec_params_of
            from cnngraph.train.runner import load_weights
            net = cnngraph.load(spec, params=spec_params or spec_params_of(Path(weights)))
            params, buffers, normalizer, _ = load_weights(net, Path(weights))
        else:
            from cnngraph.passes.init import initial_values
            net = cnngraph.load(spec, params=spec_params)
            params, buffers = initial_values(net, seed=0)
            normalizer = None
            click.echo("no --weights: exporting the initial weights (seed 0)", err=True)
        _check_output(net, output)
        model = onnx_export.export(net, params, buffers, opset=opset, output=output,
                                   fold_bn=fold_bn, normalizer=normalizer,
                                   with_normalization=with_normalization)
        onnx_export.save(model, out)
        size = Path(out).stat().st_size
        click.echo(f"wrote {out}: opset {opset}, {len(model.graph.node)} nodes, "
                   f"{len(model.graph.initializer)} initializers, {size / 2**20:.2f} MiB")
        if verify:
            from cnngraph.train.checkpoint import restore
            compiled = cnngraph.compile(net)
            restore(compiled, params, buffers, Path(weights or spec))
            difference, relative = onnx_export.verify(model, compiled, normalizer,
                                                      with_normalization, output)
            met = relative <= 1e-4
            click.echo(f"verify: onnxruntime against cnngraph on a random batch of 3: max "
                       f"|difference| {difference:.2e} ({relative:.2e} of the largest output)"
                       + ("" if met else ": DIFFERENT"))
            if not met:
                sys.exit(1)
    except CnngraphError as error:
        _fail(error)


@main.command(name="import-weights")
@click.argument("spec", type=SPEC)
@click.argument("source", type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--out", "out", required=True, type=click.Path(dir_okay=False),
              help="The checkpoint (.npz) to write.")
@click.option("--map", "rules", multiple=True, metavar="OLD=NEW",
              help="Rename source tensors whose names start with OLD (a dotted prefix) to "
                   "start with NEW, before matching; repeatable.")
@_spec_param_option
def import_weights_command(spec, source, out, rules, spec_params):
    """Map a state dict (.pt/.pth, .safetensors, .npz) onto a spec's tensors and write them
    as a checkpoint for --weights, eval and predict.

    Tensors are matched by name where the source has all of the spec's; else by order and
    shape, a conv or dense layer together with the batch norm after it. Prints the mapping
    and whatever in the source was left unused; refuses a tensor it cannot match. The
    checkpoint's normaliser is the identity: the network takes its input as the source's
    did. A .pt file is read with torch.load(weights_only=True) (PyTorch needed); a
    .safetensors file needs the `weights` extra.

    \b
    Example:
      cnngraph import-weights specs/resnet18.yaml resnet18.pth -o resnet18.npz
    """
    from pathlib import Path

    from cnngraph.interchange import weights
    from cnngraph.train import checkpoint
    try:
        net = cnngraph.load(spec, params=spec_params)
        tensors = weights.renamed(weights.read_tensors(Path(source)), weights.parse_rules(rules))
        params, buffers, mapping, unused, how = weights.import_weights(net, tensors)
        width = max(len(name) for name in mapping)
        click.echo(f"{len(mapping)} tensors matched by {how}:")
        click.echo(f"  {'spec tensor'.ljust(width)}  <-  source tensor  shape")
        for name, found in mapping.items():
            click.echo(f"  {name.ljust(width)}  <-  {found}  {tuple(tensors[found].shape)}")
        if unused:
            click.echo(f"{len(unused)} source tensors unused: {', '.join(unused)}")
        checkpoint.write(Path(out), params, buffers, {},
                         checkpoint.weights_meta(net, imported_from=Path(source).name))
        click.echo(f"wrote {out}")
    except CnngraphError as error:
        _fail(error)


@main.command(name="import")
@click.argument("model", type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="The folder to write <stem>.yaml and <stem>.npz into.")
@click.option("--flat", is_flag=True,
              help="One layer per node: do not fold repeated units into blocks.")
def import_command(model, out_dir, flat):
    """Read an ONNX model as a spec (OUT/<stem>.yaml) and a checkpoint of its weights
    (OUT/<stem>.npz) for --weights, eval and predict.

    Units that repeat (residual blocks, Inception modules, dense layers) become `blocks:`
    used in `repeat:`s, their differing arguments the blocks' parameters (--flat: one layer
    per node, each named by the graph: its weight's name, else its node's). Output shapes are
    in comments. The checkpoint's normaliser is the identity: `predict` feeds the
    model the input the ONNX model takes. An op or attribute cnngraph cannot take is an error
    naming the node, and nothing is written. Needs the `onnx` extra.

    \b
    Example:
      cnngraph import resnet18.onnx -o imported/
    """
    from pathlib import Path

    from cnngraph.interchange.onnx_import import import_onnx
    try:
        spec_path, weights_path, net, notes = import_onnx(Path(model), Path(out_dir), flat)
    except CnngraphError as error:
        _fail(error)
    for note in notes:
        click.echo(note, err=True)
    params = sum(numel(s) for s in net.param_shapes().values())
    click.echo(f"wrote {spec_path} ({len(net.nodes)} layers, {params:,} parameters) and "
               f"{weights_path}")


@main.command()
@click.argument("spec", type=SPEC)
@click.argument("data")
@click.option("--weights", required=True, type=click.Path(exists=True, dir_okay=False),
              help="A checkpoint written by `cnngraph train` (or `cnngraph import`).")
@click.option("--layer", required=True, help="The layer whose outputs to extract (a name "
                                             "`cnngraph summary` or `expand` shows).")
@click.option("-o", "--out", "out", required=True, type=click.Path(dir_okay=False),
              help="The .npz to write: `features` (N, ...) and, for a dataset, `labels`.")
@click.option("--split", type=click.Choice(["train", "test"]), default="test", show_default=True,
              help="Which split of a dataset DATA to read.")
@click.option("--batch-size", type=click.IntRange(min=1), default=256, show_default=True)
@_spec_param_option
def features(spec, data, weights, layer, out, split, batch_size, spec_params):
    """A layer's outputs (in evaluation mode) for every image of DATA: a dataset that --data
    reads, or an .npz with `x` (as `predict` reads it). For linear probes, t-SNE, retrieval.

    \b
    Example:
      cnngraph features specs/lenet-bn.yaml data/ --weights runs/lenet-bn/best.npz \\
          --layer dense2 -o feats.npz
    """
    from pathlib import Path

    import numpy as np

    from cnngraph.train.checkpoint import restore, spec_params_of
    from cnngraph.train.inputs import load_prediction_inputs
    from cnngraph.train.readers import load_dataset
    from cnngraph.train.runner import data_path, load_weights
    try:
        net = cnngraph.load(spec, params=spec_params or spec_params_of(Path(weights)))
        names = [n.name for n in net.nodes]
        if layer not in names:
            from cnngraph.ops import nearest
            hint = nearest(layer, names)
            raise click.BadParameter(f"the network has no layer {layer!r}" + (
                f"; {hint}" if hint else " (`cnngraph expand` lists them)"),
                param_hint="'--layer'")
        part = net.up_to(layer)
        params, buffers, normalizer, _ = load_weights(net, Path(weights))
        model = cnngraph.compile(part)
        restore(model, params, buffers, Path(weights))
        labels = None
        if data.endswith(".npz") and Path(data).is_file():
            _, x, notes = load_prediction_inputs([data], net.input_shape, normalizer.scale)
        else:
            dataset = load_dataset(data_path(data), split, "nchw", None)
            x, labels, notes = dataset.x, dataset.y, dataset.notes
        for note in notes:
            click.echo(note, err=True)
        values = np.concatenate([model.forward(normalizer(x[i:i + batch_size]))
                                 for i in range(0, len(x), batch_size)])
        arrays = {"features": values, **({"labels": labels} if labels is not None else {})}
        np.savez(out, layer=np.array(layer), **arrays)
    except CnngraphError as error:
        _fail(error)
    click.echo(f"wrote {out}: features {values.shape} of layer {layer}"
               + (f", labels {labels.shape}" if labels is not None else ""))


if __name__ == "__main__":
    main()
