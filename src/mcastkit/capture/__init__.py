"""Record multicast streams to pcapng, and replay pcap/pcapng captures, without root.

```python
from mcastkit import capture

stats = capture.record(["239.255.0.1:5000"], "feed.pcapng", interface="lo",
                       duration_s=10)                   # tcpdump/tshark/Wireshark read it
report = capture.replay("feed.pcapng", interface="lo")  # same groups, recorded timing
report = capture.replay("feed.pcapng", interface="lo", speed=2.0,
                        mapping={("239.255.0.1", 5000): ("239.255.9.9", 6000)})

for pkt in capture.packets("anything.pcap"):            # tcpdump's pcap or pcapng
    print(pkt.ts_ns, pkt.source, pkt.group, pkt.dport, len(pkt.payload))
```

Owns: the public names of the capture package. The pieces: ``_pcapng`` / ``_pcap``
(file formats), ``_files`` (safe creation, rotation, full disk), ``_record`` (the record
engine), ``_decode`` (captured frames → UDP datagrams, fragments reassembled) and
``_replay`` (the replay engine).
Must not: print or parse command lines (the CLI verbs ``record`` and ``replay`` do).
"""

from __future__ import annotations

from ._decode import CapturedDatagram, DecodeStats, packets, packets_from
from ._files import CaptureFileError
from ._record import Recorder, RecordStats, record
from ._replay import ReplayReport, parse_mapping, replay
from ._writer import DEFAULT_QUEUE_BYTES

__all__ = [
    "DEFAULT_QUEUE_BYTES",
    "CaptureFileError",
    "CapturedDatagram",
    "DecodeStats",
    "RecordStats",
    "Recorder",
    "ReplayReport",
    "packets",
    "packets_from",
    "parse_mapping",
    "record",
    "replay",
]
