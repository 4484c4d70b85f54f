import pytest

from cnngraph.errors import SpecError
from cnngraph.spec.yamlload import LDict, LList, load_yaml, parse_yaml


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
