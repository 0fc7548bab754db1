"""In-band DTMF detection (tones in the audio), for peers that do not send RFC 4733 events.

The signal is ITU-T Q.23 (one of four low-group "row" and one of four high-group "column" frequencies per
key) and the receiver follows ITU-T Q.24 practice as in spandsp's `dtmf.c`:

* Goertzel (single-bin DFT) energies at the 8 frequencies over blocks of 12.75 ms (102 samples at 8 kHz,
  612 at 48 kHz), computed at the input rate as one small matrix product per block, so no decimation filter
  is needed. A block's bin width (78 Hz) separates adjacent rows (73 Hz apart) to better than 20 dB.
* A block "hits" a key when: each tone is at least `min_level_dbfs`; twist is within 8 dB normal (row
  stronger) and 4 dB reverse (column stronger); the best row and column each exceed the other frequencies of
  their group by 8 dB; and the two tones hold at least `min_tone_fraction` of the block's energy (this
  rejects speech, music and single tones).
* A key goes down after two consecutive hits (>= 25.5 ms of tone; Q.24 non-operate for <= ~23 ms, operate
  for >= 40 ms) and up after two consecutive blocks without it, so one lost block does not split a press and
  an interdigit pause of 40 ms (Q.24 minimum) is seen.

`duration_ms` is the tone length estimated to a block (±13 ms). Off-frequency rejection (Q.24 ±3.5%) is only
what the 78 Hz bins give: tones 3.5% off are attenuated ~3 dB, not rejected.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

ROWS = (697.0, 770.0, 852.0, 941.0)
COLUMNS = (1209.0, 1336.0, 1477.0, 1633.0)
KEYS = ("123A", "456B", "789C", "*0#D")
"""KEYS[row][column] per ITU-T Q.23."""

BLOCK_MS = 12.75
NORMAL_TWIST_DB = 8.0
REVERSE_TWIST_DB = 4.0
RELATIVE_PEAK_DB = 8.0


def _ratio(db: float) -> float:
    return float(10.0 ** (db / 10.0))


class InbandDtmfDetector:
    """Feed int16 mono PCM in any chunk size; get (digit, duration_ms) once per key press, when it ends."""

    def __init__(
        self,
        sample_rate: int = 48000,
        *,
        min_level_dbfs: float = -36.0,
        min_tone_fraction: float = 0.7,
    ) -> None:
        self.sample_rate = sample_rate
        self._block = round(sample_rate * BLOCK_MS / 1000)
        self._block_ms = self._block * 1000.0 / sample_rate
        n = np.arange(self._block)
        omegas = 2.0 * np.pi * np.array(ROWS + COLUMNS) / sample_rate
        # Rows 0-7: cosine projections, 8-15: sine projections (the Goertzel bin, computed directly).
        self._basis = np.concatenate([np.cos(np.outer(omegas, n)), np.sin(np.outer(omegas, n))])
        self._buffer = np.zeros(self._block, dtype=np.float64)
        self._projection = np.zeros(16, dtype=np.float64)
        self._fill = 0
        # Energies are normalised so that a sine of amplitude A gives A²·N/2 (the block energy of that sine).
        self._scale = 2.0 / self._block
        amplitude = 32768.0 * 10.0 ** (min_level_dbfs / 20.0)
        self._min_energy = amplitude * amplitude * self._block / 2.0
        self._min_fraction = min_tone_fraction
        self._normal_twist = _ratio(NORMAL_TWIST_DB)
        self._reverse_twist = _ratio(REVERSE_TWIST_DB)
        self._relative_peak = _ratio(RELATIVE_PEAK_DB)
        self._last_hit: str | None = None
        self._current: str | None = None
        self._first_block = 0
        self._last_block = 0
        self._blocks = 0

    def feed(self, pcm: npt.NDArray[np.int16]) -> list[tuple[str, int]]:
        """Process samples; returns the key presses that ended within them (usually none)."""
        samples = pcm.reshape(-1)
        result: list[tuple[str, int]] = []
        position = 0
        while position < samples.size:
            take = min(self._block - self._fill, samples.size - position)
            self._buffer[self._fill : self._fill + take] = samples[position : position + take]
            self._fill += take
            position += take
            if self._fill == self._block:
                self._fill = 0
                ended = self._process_block()
                if ended is not None:
                    result.append(ended)
        return result

    def flush(self) -> list[tuple[str, int]]:
        """Report a key still down (e.g. when the capture stops) and reset."""
        ended = self._end_current()
        self._last_hit = None
        self._fill = 0
        return [ended] if ended is not None else []

    def _process_block(self) -> tuple[str, int] | None:
        self._blocks += 1
        hit = self._classify()
        ended: tuple[str, int] | None = None
        if hit is not None and hit == self._current:
            self._last_block = self._blocks
        elif hit == self._last_hit and hit != self._current:
            ended = self._end_current()
            if hit is not None:
                self._current = hit
                self._first_block = self._blocks - 1
                self._last_block = self._blocks
        self._last_hit = hit
        return ended

    def _end_current(self) -> tuple[str, int] | None:
        if self._current is None:
            return None
        digit = self._current
        self._current = None
        # Hit blocks plus one: the partial blocks at either end each hold on average half a block of tone.
        blocks = self._last_block - self._first_block + 2
        return digit, round(blocks * self._block_ms)

    def _classify(self) -> str | None:
        buffer = self._buffer
        total = float(np.dot(buffer, buffer))
        if total < 2.0 * self._min_energy:
            return None
        np.dot(self._basis, buffer, out=self._projection)
        projection = self._projection
        energies = (projection[:8] ** 2 + projection[8:] ** 2) * self._scale
        rows = energies[:4]
        columns = energies[4:]
        row = int(np.argmax(rows))
        column = int(np.argmax(columns))
        row_energy = float(rows[row])
        column_energy = float(columns[column])
        if row_energy < self._min_energy or column_energy < self._min_energy:
            return None
        if column_energy > row_energy * self._reverse_twist:
            return None
        if row_energy > column_energy * self._normal_twist:
            return None
        for index in range(4):
            if index != row and rows[index] * self._relative_peak > row_energy:
                return None
            if index != column and columns[index] * self._relative_peak > column_energy:
                return None
        if row_energy + column_energy < self._min_fraction * total:
            return None
        return KEYS[row][column]
