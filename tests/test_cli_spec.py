"""`cnngraph check` and `summary` on the fuzz findings of issue 17: exit 0 or 1, every problem as
`file:line:col: error: ...` with a hint, warnings on stderr that do not fail, no traceback."""
import os
import subprocess
import sys

import pytest

from helpers import ROOT

INTEGER_FLOATS = ["kernel: 3.0", "kernel: 1e1", "kernel: 3e0", "kernel: [3, 3.0]",
                  "kernel: 3, padding: 1.0", "kernel: 3, padding: [1, 1, 0, 1.0]",
                  "kernel: 3, stride: 1.0", "kernel: 3, dilation: [1.0, 1]"]


def spec(write_spec, conv: str, input_shape="[3, 16, 16]", tail=""):
    return write_spec(f"version: 1\ninput: {input_shape}\nlayers:\n  - conv: {{{conv}}}\n"
                      f"  - flatten\n{tail}")


def assert_located_error(result, path, line, message, hint):
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    head = f"{path}:{line}:"
    lines = result.stderr.splitlines()
    found = [i for i, text in enumerate(lines) if text.startswith(head) and ": error: " in text
             and message in text]
    assert found, result.stderr
    assert any(hint in text for text in lines[found[0]:found[0] + 4] if "hint:" in text), \
        result.stderr


@pytest.mark.parametrize("conv", INTEGER_FLOATS)
@pytest.mark.parametrize("command", ["check", "summary"])
def test_integer_fields_refuse_floats(cli, write_spec, conv, command):
    path = spec(write_spec, "out: 4, " + conv)
    assert_located_error(cli(command, path), path, 4, "invalid value for", "expected an integer")


@pytest.mark.parametrize("command", ["check", "summary"])
def test_out_given_a_float_is_an_error_not_a_fractional_shape(cli, write_spec, command):
    path = spec(write_spec, "out: 7., kernel: 3")
    assert_located_error(cli(command, path), path, 4, "received 7.0", "write `7`")


@pytest.mark.parametrize("command", ["check", "summary"])
@pytest.mark.parametrize("out, message", [
    ("9" * 5000, "at most 19 digits"),
    ("9" * 400, "at most 19 digits"),
    (str(2**40), "expected at most 2,147,483,647 per sample"),
])
def test_huge_sizes_are_errors(cli, write_spec, command, out, message):
    path = spec(write_spec, f"out: {out}, kernel: 1")
    assert_located_error(cli(command, path), path, 4, message, "")


def test_summary_of_a_huge_input_is_an_error(cli, write_spec):
    path = spec(write_spec, "out: 4, kernel: 1", input_shape="[3, 100000, 100000]")
    assert_located_error(cli("summary", path), path, 2, "`input` (3, 100000, 100000)", "sizes")


@pytest.mark.parametrize("command", ["check", "summary"])
def test_control_character_is_a_located_error(cli, write_spec, command):
    path = write_spec('version: 1\ninput: [3, 8, 8]\nname: "x\x07y"\nlayers: [flatten]\n')
    assert_located_error(cli(command, path), path, 3, "control character 0x0007", "escape")


@pytest.mark.parametrize("command", ["check", "summary"])
def test_warnings_print_on_stderr_and_do_not_fail(cli, write_spec, command):
    path = write_spec("version: 1\ninput: [28, 28, 1]\nlayers:\n  - batchnorm: {momentum: 0.99}\n"
                      "  - flatten\n  - dense: {out: 10}\n  - softmax\n")
    result = cli(command, path)
    assert result.exit_code == 0, result.output
    warnings = [w for w in result.stderr.splitlines() if ": warning: " in w]
    assert [w.split(":")[1] for w in warnings] == ["2", "4", "7"]
    assert ": error: " not in result.stderr
    assert "cnngraph's input is [C, H, W]" in result.stderr
    assert "`momentum: 0.01`" in result.stderr
    assert "remove the final `softmax`" in result.stderr


def test_activation_argument_gets_the_layer_hint(cli, write_spec):
    path = spec(write_spec, "out: 8, kernel: 3, activation: relu")
    assert_located_error(cli("check", path), path, 4, "unknown key `activation`",
                         "add `- relu` on the next line")


def _run(*args, timeout=60, limit_memory=False):
    def limit():  # a regression that reads /dev/zero fails with MemoryError, not a dead machine
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))
    return subprocess.run([sys.executable, str(ROOT / "cli.py"), *map(str, args)],
                          capture_output=True, text=True, cwd=ROOT, timeout=timeout,
                          preexec_fn=limit if limit_memory else None)


@pytest.mark.parametrize("command", ["check", "summary"])
def test_device_as_spec_is_refused_unread(command):
    proc = _run(command, "/dev/zero", limit_memory=True)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "/dev/zero: error: expected a YAML file, received a character device" in proc.stderr


def test_fifo_as_spec_is_refused_unopened(tmp_path):
    fifo = tmp_path / "spec.yaml"
    os.mkfifo(fifo)
    proc = _run("check", fifo, timeout=30)
    assert proc.returncode == 1 and "received a named pipe (FIFO)" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_include_of_a_system_file_is_refused_without_echoing_it(cli, write_spec, tmp_path):
    secret = tmp_path / "outside" / "passwd"
    secret.parent.mkdir()
    secret.write_text("root:x:0:0:SECRET:/root:/bin/bash\n")
    path = write_spec("version: 1\ninput: [3, 8, 8]\ninclude: [outside/passwd]\n"
                      "layers: [flatten]\n")
    result = cli("check", path)
    assert result.exit_code == 1 and "SECRET" not in result.output
    assert "expected a .yaml or .yml file" in result.stderr
