"""listen + send round trips in a fresh namespace (in-process and as subprocesses)."""

from __future__ import annotations

import pytest

from mcastkit.cli import ExitStatus
from tests.support.addrs import asm4, asm6
from tests.support.cli import Background, cli, json_lines, mk, mk_popen, wait_joined

pytestmark = pytest.mark.kernel
G = asm4(40, 1)


def test_listen_json_fields_in_process(netns: object) -> None:
    bg = Background("listen", f"{G}:5000", "-i", "lo", "-c", "2", "--timeout", "10", "--json")
    wait_joined(G)
    assert cli("send", f"{G}:5000", "-i", "lo", "-c", "2", "hello", "world").status == 0
    r = bg.join()
    assert r.status == ExitStatus.OK, r.stderr
    objs = r.json()
    assert len(objs) == 2
    for o in objs:
        assert o["type"] == "datagram"
        assert o["data"] == "hello world" and o["encoding"] == "utf-8"
        assert o["group"] == G and o["interface"] == "lo" and o["ttl"] == 1
        assert o["size"] == 11 and o["truncated"] is False and o["dest_port"] == 5000
        assert {"source", "source_port", "time", "timestamp_ns"} <= o.keys()


def test_listen_text_and_hex(netns: object) -> None:
    bg = Background("listen", f"{G}:5001", "-i", "lo", "-c", "1", "--timeout", "10", "--hex")
    wait_joined(G)
    cli("send", f"{G}:5001", "-i", "lo", "AB")
    r = bg.join()
    assert r.status == 0
    assert r.stdout.strip().endswith(": 41 42")
    assert f"-> {G}:5001 on lo ttl=1 2B" in r.stdout


def test_send_stdin_one_datagram_per_line(netns: object) -> None:
    bg = Background("listen", f"{G}:5002", "-i", "lo", "-c", "3", "--timeout", "10", "--json")
    wait_joined(G)
    r = cli("send", f"{G}:5002", "-i", "lo", stdin="one\ntwo\nthree\n", stdin_isatty=False)
    assert r.status == 0
    got = bg.join()
    assert [o["data"] for o in got.json()] == ["one", "two", "three"]


def test_listen_timeout_exit_3(netns: object) -> None:
    r = cli("listen", f"{G}:5003", "-i", "lo", "--timeout", "0.3")
    assert r.status == ExitStatus.TIMEOUT
    assert "nothing arrived" in r.stderr


def test_listen_count_not_reached_is_timeout(netns: object) -> None:
    bg = Background("listen", f"{G}:5004", "-i", "lo", "-c", "5", "--timeout", "2")
    wait_joined(G)
    cli("send", f"{G}:5004", "-i", "lo", "x")
    r = bg.join()
    assert r.status == ExitStatus.TIMEOUT and "1 of 5" in r.stderr


def test_several_groups_one_port_and_another_port(netns: object) -> None:
    g2, g3 = asm4(40, 2), asm4(40, 3)
    bg = Background("listen", f"{G}:5005", f"{g2}:5005", f"{g3}:5006", "-i", "lo",
                    "-c", "3", "--timeout", "10", "--json")
    for g in (G, g2, g3):
        wait_joined(g)
    cli("send", f"{G}:5005", "-i", "lo", "a")
    cli("send", f"{g2}:5005", "-i", "lo", "b")
    cli("send", f"{g3}:5006", "-i", "lo", "c")
    r = bg.join()
    assert r.status == 0
    assert sorted((o["group"], o["data"]) for o in r.json()) == [(G, "a"), (g2, "b"), (g3, "c")]


def test_listen_ignores_groups_it_did_not_join(netns: object) -> None:
    other = asm4(40, 9)
    bg = Background("listen", f"{G}:5007", "-i", "lo", "-c", "1", "--timeout", "10",
                    "--json", "--reuse")
    bg2 = Background("listen", f"{other}:5007", "-i", "lo", "-c", "1", "--timeout", "10",
                     "--reuse")
    wait_joined(G)
    wait_joined(other)
    cli("send", f"{other}:5007", "-i", "lo", "forbidden")
    cli("send", f"{G}:5007", "-i", "lo", "sentinel")
    assert [o["data"] for o in bg.join().json()] == ["sentinel"]
    assert bg2.join().status == 0


def test_stats_with_sequence_numbers(netns: object) -> None:
    bg = Background("listen", f"{G}:5008", "-i", "lo", "--stats", "--timeout", "3",
                    "--json", "--interval", "0.5")
    wait_joined(G)
    r = cli("send", f"{G}:5008", "-i", "lo", "--size", "64", "-c", "500", "--rate", "2k",
            "--json")
    assert r.status == 0
    assert r.json()[-1]["sent"] == 500
    out = bg.join()
    summary = out.json()[-1]
    assert summary["type"] == "summary"
    assert summary["datagrams"] == 500 and summary["unique"] == 500
    assert summary["lost"] == 0 and summary["duplicates"] == 0
    assert summary["kernel_drops"] == 0 and summary["streams"] == 1
    assert {"pps", "mbps", "reordered", "loss_pct"} <= summary.keys()


def test_stats_text_summary_line(netns: object) -> None:
    bg = Background("listen", f"{G}:5009", "-i", "lo", "--stats", "-c", "50",
                    "--timeout", "10")
    wait_joined(G)
    cli("send", f"{G}:5009", "-i", "lo", "--size", "100", "-c", "50")
    r = bg.join()
    last = r.stdout.strip().splitlines()[-1]
    assert last.startswith("summary: 50 datagrams") and "lost 0/50" in last


def test_send_rate_paces_the_stream(netns: object) -> None:
    r = cli("send", f"{G}:5010", "-i", "lo", "--size", "32", "-c", "20", "--rate", "100",
            "--json")
    s = r.json()[-1]
    assert s["sent"] == 20
    assert s["elapsed_s"] >= 0.18  # 20 datagrams at 100/s take at least 19 intervals


def test_send_without_interface_and_route_is_error_1(netns: object) -> None:
    r = cli("send", f"{G}:5011", "x")
    assert r.status == ExitStatus.ERROR
    assert r.stderr.startswith("mcastkit: error: ") and "no route" in r.stderr
    assert "-i" in r.stderr  # the message names the fix


def test_ipv6_round_trip_on_veth(veth_loop: object) -> None:
    g6 = asm6("40")
    bg = Background("listen", f"[{g6}]:5012", "-i", "vb", "-c", "1", "--timeout", "10",
                    "--json")
    wait_joined(g6, "vb")
    assert cli("send", f"[{g6}]:5012", "-i", "va", "six").status == 0
    o = bg.join().json()[0]
    assert o["data"] == "six" and o["group"] == g6 and o["interface"] == "vb"


def test_subprocess_round_trip(netns: object) -> None:
    p = mk_popen("listen", f"{G}:5013", "-i", "lo", "-c", "3", "--timeout", "20", "--json")
    try:
        wait_joined(G)
        s = mk("send", f"{G}:5013", "-i", "lo", "-c", "3", "via", "subprocess")
        assert s.returncode == 0, s.stderr
        out, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 0, err
    assert [o["data"] for o in json_lines(out)] == ["via subprocess"] * 3


def test_subprocess_stdin_send(netns: object) -> None:
    p = mk_popen("listen", f"{G}:5014", "-i", "lo", "-c", "2", "--timeout", "20")
    try:
        wait_joined(G)
        assert mk("send", f"{G}:5014", "-i", "lo", input="l1\nl2\n").returncode == 0
        out, _ = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
    assert out.splitlines()[0].endswith(": l1") and out.splitlines()[1].endswith(": l2")


def test_subprocess_ctrl_c_exits_130_with_summary(netns: object) -> None:
    import signal

    p = mk_popen("listen", f"{G}:5015", "-i", "lo", "--stats")
    try:
        wait_joined(G)
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 130
    assert "summary:" in out and "Traceback" not in err


def test_send_message_starting_with_a_dash_after_double_dash(netns: object) -> None:
    """``send G:P -i lo -- -hi``: words after ``--`` are MESSAGE words, even with a dash
    (they used to be rejected as "unrecognized arguments: -- -hi")."""
    bg = Background("listen", f"{G}:5009", "-i", "lo", "-c", "1", "--timeout", "10", "--json")
    wait_joined(G)
    r = cli("send", f"{G}:5009", "-i", "lo", "--", "-hi", "there")
    assert r.status == 0, r.stderr
    got = bg.join()
    assert [o["data"] for o in got.json()] == ["-hi there"]


def test_send_unknown_option_is_still_a_usage_error(netns: object) -> None:
    r = cli("send", f"{G}:5009", "-i", "lo", "hi", "--bogus")
    assert r.status == ExitStatus.USAGE
    assert "unrecognized arguments: --bogus" in r.stderr


def test_stats_live_line_on_a_terminal(netns: object, monkeypatch: pytest.MonkeyPatch) -> None:
    """``--stats`` with a terminal on stdout draws the live line through the shared
    Progress helper (rich here) instead of periodic ``stats:`` lines; the summary stays."""
    import io

    from mcastkit.cli import Env, _common, main
    from mcastkit.cli.commands import listen

    drawn: list[_common.Progress] = []
    lines: list[str] = []

    class Recording(_common.Progress):
        def __init__(self, env: Env, enabled: bool) -> None:
            super().__init__(env, enabled)
            drawn.append(self)

        def update(self, line: str) -> None:
            lines.append(line)
            super().update(line)

    monkeypatch.setattr(listen, "Progress", Recording)
    out = io.StringIO()
    env = Env(stdin=io.StringIO(), stdout=out, stderr=io.StringIO(), stdin_isatty=True,
              stdout_isatty=True, environ={})
    res: dict[str, object] = {}

    def listen_run() -> None:
        res["status"] = main(["listen", f"{G}:5016", "-i", "lo", "--stats", "-c", "40",
                              "--timeout", "10", "--interval", "0.05"], env=env)

    import threading

    t = threading.Thread(target=listen_run, daemon=True)
    t.start()
    wait_joined(G)
    assert cli("send", f"{G}:5016", "-i", "lo", "--size", "100", "-c", "40").status == 0
    t.join(20)
    assert not t.is_alive()
    assert res["status"] == ExitStatus.OK
    assert len(drawn) == 1 and drawn[0].renderer == "rich"
    assert lines and all("datagrams" in ln and "kernel drops" in ln for ln in lines)
    text = out.getvalue()
    assert "stats:" not in text  # the live line replaced the periodic lines
    assert "summary: 40 datagrams" in text and "lost 0/40" in text


def test_stats_plain_lines_when_not_a_terminal(netns: object) -> None:
    """Not a terminal: the periodic ``stats:`` lines and the summary, exactly as before."""
    bg = Background("listen", f"{G}:5017", "-i", "lo", "--stats", "-c", "30",
                    "--timeout", "10", "--interval", "0.01")
    wait_joined(G)
    cli("send", f"{G}:5017", "-i", "lo", "--size", "100", "-c", "30", "--rate", "100")
    r = bg.join()
    assert r.status == 0
    rows = r.stdout.strip().splitlines()
    assert "\x1b" not in r.stdout and "\r" not in r.stdout
    assert all(row.startswith("stats: ") for row in rows[:-1]) and len(rows) >= 2
    assert rows[-1].startswith("summary: 30 datagrams") and "lost 0/30" in rows[-1]
    assert "kernel drops 0, streams 1" in rows[-1]
