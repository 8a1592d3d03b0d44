"""The alert chime the staff page plays (``static/alert.wav``), made here
rather than downloaded: two soft tones, rising, about 0.7 s, 16 kHz mono.

    python -m kiosk.hub.sound   # rewrites kiosk/hub/static/alert.wav
"""

from __future__ import annotations

import io
import math
import struct
import wave
from pathlib import Path

RATE = 16_000
PATH = Path(__file__).parent / "static" / "alert.wav"


def chime() -> bytes:
    """The WAV file's bytes (deterministic)."""
    samples = []
    for freq, length in ((660.0, 0.3), (880.0, 0.4)):
        n = int(RATE * length)
        for i in range(n):
            # Short attack and a long decay: audible across a waiting room,
            # not startling.
            envelope = min(1.0, i / (0.01 * RATE)) * math.exp(-3.0 * i / n)
            tone = math.sin(2 * math.pi * freq * i / RATE) + 0.3 * math.sin(4 * math.pi * freq * i / RATE)
            samples.append(int(max(-1.0, min(1.0, 0.6 * envelope * tone)) * 32767))
    buf = io.BytesIO()
    with wave.open(buf, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(struct.pack(f"<{len(samples)}h", *samples))
    return buf.getvalue()


if __name__ == "__main__":
    PATH.write_bytes(chime())
    print(f"wrote {PATH}")
