import os
import subprocess
import sys
import threading

import pytest

import cnngraph
from cnngraph.errors import SpecError
from cnngraph.spec.yamlload import LDict, LList, load_yaml, parse_yaml

from helpers import ROOT


def test_values_remember_line_and_column():
    doc = parse_yaml("a: 1\nlayers:\n  - conv: {out: 8, kernel: 3}\n  - relu\n", "x.yaml")
    assert isinstance(doc, LDict) and isinstance(doc["layers"], LList)
    conv = doc["layers"][0]["conv"]
    assert (conv.loc_of("kernel").line, conv.loc_of("kernel").column) == (3, 28)
    assert conv.loc_of("kernel").path == ("layers", 0, "conv", "kernel")
    assert doc["layers"].loc_of(1).line == 4
    assert conv.key_loc("kernel").column == 20


def test_merge_keys_are_resolved():
    doc = parse_yaml("base: &b {out: 8, kernel: 3}\nx: {<<: *b, kernel: 5}\n", "x.yaml")
    assert doc["x"] == {"out": 8, "kernel": 5}


@pytest.mark.parametrize("text, message", [
    ("a: 1\na: 2\n", "duplicate key `a`"),
    ("1: x\n", "expected a string key"),
    ("a: !!python/name:os.system\n", "invalid YAML"),
    ("a: !!set {x, y}\n", "unsupported YAML tag"),
    ("a: &x [*x]\n", "nests deeper"),
    ("a: [\n", "invalid YAML"),
    ("", "the file is empty"),
    ("# only a comment\n", "the file is empty"),
    ("--- 1\n--- 2\n", "invalid YAML"),
])
def test_bad_documents_raise_located_spec_errors(text, message):
    with pytest.raises(SpecError) as info:
        parse_yaml(text, "x.yaml")
    assert message in info.value.render()
    assert info.value.problems[0].loc.file == "x.yaml"


def test_file_problems(tmp_path):
    binary = tmp_path / "b.yaml"
    binary.write_bytes(b"\x00\x01\x02")
    latin = tmp_path / "l.yaml"
    latin.write_bytes("name: caf\xe9\n".encode("latin-1"))
    for path, message in ((binary, "binary file"), (latin, "not UTF-8"),
                          (tmp_path / "missing.yaml", "file not found"),
                          (tmp_path, "received a directory")):
        with pytest.raises(SpecError, match=message):
            load_yaml(path)


def test_oversized_file_is_refused(tmp_path):
    big = tmp_path / "big.yaml"
    big.write_text("a: " + "x" * (5 * 1024 * 1024))
    with pytest.raises(SpecError, match="specs are limited"):
        load_yaml(big)


def test_exponent_floats_without_a_dot_are_numbers():
    doc = parse_yaml("lr: 1e-3\nbig: 2E5\nneg: -1e-9\nplain: 1.5\nint: 3\nword: e5\n", "x.yaml")
    assert doc == {"lr": 0.001, "big": 200000.0, "neg": -1e-9, "plain": 1.5, "int": 3,
                   "word": "e5"}


def test_control_character_is_a_located_error_not_a_reader_traceback():
    with pytest.raises(SpecError) as info:
        parse_yaml('version: 1\nname: "a\x01b"\n', "x.yaml")
    problem = info.value.problems[0]
    assert (problem.loc.line, problem.loc.column) == (2, 9)
    assert "control character 0x0001" in problem.message and "escape" in problem.hint


@pytest.mark.parametrize("digits", [25, 5000])
def test_integers_with_too_many_digits_are_refused(digits):
    with pytest.raises(SpecError, match=f"at most 19 digits, received one of {digits:,}"):
        parse_yaml("out: " + "9" * digits + "\n", "x.yaml")


def test_integers_beyond_64_bits_are_refused():
    with pytest.raises(SpecError, match="between -2\\^63 and 2\\^63 - 1"):
        parse_yaml("out: 99999999999999999999\n", "x.yaml")


def bounded_python(code: str) -> subprocess.CompletedProcess:
    """Run `code` in a child with 4 GiB of address space: a regression that reads /dev/zero
    fails there with MemoryError instead of taking the machine's memory."""
    def limit():
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, timeout=60, preexec_fn=limit)


def test_a_device_is_refused_without_being_read():
    proc = bounded_python("from cnngraph.errors import SpecError\n"
                          "from cnngraph.spec.yamlload import load_yaml\n"
                          "try:\n    load_yaml('/dev/zero')\n"
                          "except SpecError as e:\n    print(e.render())\n")
    assert "received a character device" in proc.stdout, proc.stderr


def test_a_fifo_is_refused_without_being_opened(tmp_path):
    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)
    outcome = []
    # Opening a FIFO with no writer blocks for ever: run in a thread so that a regression fails
    # the test instead of hanging the suite.
    thread = threading.Thread(target=lambda: outcome.append(_error_of(fifo)), daemon=True)
    thread.start()
    thread.join(10)
    assert outcome and "named pipe" in outcome[0]


def _error_of(path) -> str:
    try:
        load_yaml(path)
    except SpecError as error:
        return error.render()
    return ""


@pytest.mark.parametrize("name", ["notes.txt", "passwd", "spec.json"])
def test_only_yaml_files_are_read_and_their_content_never_echoed(tmp_path, name):
    path = tmp_path / name
    path.write_text("root:x:0:0:SECRET:/root:/bin/bash\n")
    with pytest.raises(SpecError) as info:
        load_yaml(path)
    assert "expected a .yaml or .yml file" in info.value.render()
    assert "SECRET" not in info.value.render()


def test_yaml_scalar_file_is_not_echoed_by_the_schema_error(tmp_path):
    path = tmp_path / "notes.yaml"
    path.write_text("root:x:0:0:SECRET:/root:/bin/bash daemon:x:1:1\n")
    with pytest.raises(SpecError) as info:
        cnngraph.load(path)
    assert "received a string" in info.value.render()
    assert "SECRET" not in info.value.render()


def test_layer_name_followed_by_wiring_gets_a_hint():
    with pytest.raises(SpecError) as info:
        parse_yaml("layers:\n  - relu\n    from: [a]\n", "x.yaml")
    assert "write `- relu:` (with a colon)" in info.value.problems[0].hint
