"""`include:` reads regular .yaml files only, refusing devices and other files unread."""
import subprocess
import sys

import pytest

import cnngraph
from cnngraph.errors import SpecError

from helpers import ROOT

HEAD = "version: 1\ninput: [3, 8, 8]\nlayers: [relu]\n"


def bounded_python(code: str) -> subprocess.CompletedProcess:
    """Run `code` in a child with 4 GiB of address space (a regression reading /dev/zero
    fails there with MemoryError instead of taking the machine's memory)."""
    def limit():
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, timeout=60, preexec_fn=limit)


def include_error(write_spec, target: str) -> str:
    with pytest.raises(SpecError) as info:
        cnngraph.load(write_spec(HEAD + f"include: [{target}]\n"))
    return info.value.render()


def test_include_of_a_device_is_refused_unread(write_spec):
    path = write_spec(HEAD + "include: [/dev/zero]\n")
    # in a memory-bounded child: a regression that reads /dev/zero must not take the machine
    proc = bounded_python("import sys, cnngraph\nfrom cnngraph.errors import SpecError\n"
                          f"try:\n    cnngraph.load({str(path)!r})\n"
                          "except SpecError as e:\n    print(e.render())\n")
    assert f"{path}:4:11: error: cannot include `/dev/zero`: expected a YAML file, received a " \
        "character device" in proc.stdout, proc.stderr


def test_include_of_a_non_yaml_file_never_echoes_it(write_spec, tmp_path):
    (tmp_path / "passwd").write_text("root:x:0:0:SECRET:/root:/bin/bash\n")
    text = include_error(write_spec, "passwd")
    assert "expected a .yaml or .yml file" in text and "SECRET" not in text


@pytest.mark.parametrize("content", ["root:x:0:0:SECRET:/root:/bin/bash\n",
                                     "aws_key_SECRET: hunter2\n", "- SECRET\n- hunter2\n"])
def test_include_of_a_yaml_file_that_is_not_a_spec_never_echoes_it(write_spec, content):
    write_spec(content, "lib.yaml")
    text = include_error(write_spec, "lib.yaml")
    assert ":4:11: error: `lib.yaml` is not a cnngraph spec file" in text
    assert "SECRET" not in text and "hunter2" not in text


def test_include_of_a_directory_is_refused(write_spec, tmp_path):
    (tmp_path / "lib.yaml").mkdir()
    assert "received a directory" in include_error(write_spec, "lib.yaml")


@pytest.mark.parametrize("name", ["missing.yaml", "b" + "9" * 5000 + "/blocks/classic.yaml"])
def test_an_include_that_is_not_there_is_a_spec_error(write_spec, name):
    """A name too long for the file system too (found by tests/test_fuzz.py): it made
    `Path.exists` raise, a traceback instead of the error."""
    assert f":4:11: error: included file `{name}` not found" in include_error(write_spec, name)
