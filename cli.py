"""The `cnngraph` command line: a thin front end over the Python API."""
from __future__ import annotations

import json
import sys

import click

import cnngraph
from cnngraph.errors import CnngraphError
from cnngraph.ops.base import numel
from cnngraph.summary import DTYPE_BYTES, OPTIMIZER_SLOTS, POLICIES, analyse, render

SPEC = click.Path(exists=True, dir_okay=False, readable=True)


def _fail(error: CnngraphError) -> None:
    click.echo(error.render(), err=True)
    sys.exit(error.exit_code)


def _input_shape(ctx, param, value):
    if value is None:
        return None
    try:
        shape = tuple(int(v) for v in value.replace("x", ",").split(","))
    except ValueError:
        raise click.BadParameter(f"expected C,H,W such as 3,224,224, received {value!r}") from None
    if len(shape) not in (1, 3) or min(shape) < 1:
        raise click.BadParameter(f"expected C,H,W of positive integers, received {value!r}")
    return shape


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(cnngraph.__version__, prog_name="cnngraph")
def main():
    """cnngraph: compile declarative YAML specs of convolutional networks.

    \b
    cnngraph check specs/resnet18.yaml        validate, report every error
    cnngraph summary specs/resnet18.yaml      shapes, params, MACs, memory, receptive field
    cnngraph expand specs/resnet50.yaml       the spec with blocks and repeats resolved
    """


@main.command()
@click.argument("specs", nargs=-1, required=True, type=SPEC)
def check(specs):
    """Validate specs: schema, blocks, wiring and every shape.

    Prints each problem as file:line:column with the path in the spec and a hint. Exit code 0
    when all are valid, 1 when any is not, 2 for a usage error.

    \b
    Example:
      cnngraph check specs/*.yaml
    """
    failed = False
    for path in specs:
        try:
            net = cnngraph.load(path)
        except CnngraphError as error:
            click.echo(error.render(), err=True)
            failed = True
            continue
        params = sum(numel(s) for s in net.param_shapes().values())
        click.echo(f"{path}: ok ({len(net.nodes)} layers, {params:,} params, output "
                   f"{'x'.join(map(str, net.output_shape))})")
    sys.exit(1 if failed else 0)


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
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output "
                                                     "(format cnngraph-summary/1).")
def summary(spec, depth, batch, policy, dtype, optimizer, input_shape, as_json):
    """Per-layer shapes, params, MACs, memory and receptive field, with totals.

    \b
    Examples:
      cnngraph summary specs/resnet18.yaml --depth 2
      cnngraph summary specs/vgg16.yaml --batch 64 --policy full
      cnngraph summary specs/resnet50.yaml --input 3,160,160 --json
    """
    try:
        net = cnngraph.load(spec, input_shape=input_shape)
    except CnngraphError as error:
        _fail(error)
    data = analyse(net, policy=policy, batch=batch, dtype=dtype, optimizer=optimizer)
    click.echo(json.dumps(data, indent=1) if as_json else render(data, depth))


@main.command()
@click.argument("spec", type=SPEC)
def expand(spec):
    """Print the spec with includes, blocks, repeats and branches resolved.

    The output is a valid spec: `check` accepts it and `summary` counts it identically.

    \b
    Example:
      cnngraph expand specs/resnet50.yaml > resnet50-flat.yaml
    """
    from cnngraph.spec.emit import expanded_yaml
    try:
        net = cnngraph.load(spec)
    except CnngraphError as error:
        _fail(error)
    click.echo(expanded_yaml(net), nl=False)


if __name__ == "__main__":
    main()
