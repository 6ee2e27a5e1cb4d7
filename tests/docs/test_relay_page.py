"""docs/relay.md and examples/relay are code: every TOML block loads, every ``mcastkit
relay`` command line parses (and builds a configuration when it names no files), and the
library example runs (with the interfaces of a test namespace)."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from mcastkit.cli._app import build_parser
from mcastkit.cli.commands.relay import build_config
from mcastkit.relay import load_config
from tests.support.cli import fake_env

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "relay.md").read_text()


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", DOC, flags=re.S)


def _commands() -> list[str]:
    lines = [ln.split("#", 1)[0].strip() for b in _blocks("sh") for ln in b.splitlines()]
    return [ln for ln in lines if ln.startswith("mcastkit relay")]


def test_docs_have_examples() -> None:
    assert len(_blocks("toml")) >= 1 and len(_commands()) >= 8


@pytest.mark.parametrize("text", [*_blocks("toml"),
                                  (ROOT / "examples/relay/relay.toml").read_text()],
                         ids=["docs", "example"])
def test_toml_loads(tmp_path: Path, text: str) -> None:
    p = tmp_path / "relay.toml"
    p.write_text(text)
    cfg = load_config(str(p))
    assert cfg.rules


@pytest.mark.parametrize("line", _commands())
def test_command_lines_parse(line: str) -> None:
    argv = shlex.split(line)[1:]
    ns = build_parser(fake_env()).parse_args(argv)
    if ns.make_key or ns.key_file or ns.config:
        return  # would read or write files that only exist on the reader's machine
    assert build_config(ns).rules


@pytest.mark.kernel
def test_library_example_runs(veth_loop: object) -> None:
    (block,) = re.findall(r"```python\n(.*?)```", DOC, flags=re.S)
    code = (block.replace('"eth1"', '"va"').replace('"eth2"', '"vb"')
            .replace("asyncio.sleep(60)", "asyncio.sleep(0.2)"))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("received 0, relayed 0")
