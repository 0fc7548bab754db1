from switchboard.core.dtmf_capture import CaptureResult, DtmfCapture


def test_terminator_ends_capture_and_is_not_part_of_result() -> None:
    capture = DtmfCapture("op", started=0.0, max_length=10, timeout_ms=5000, terminator="#")
    assert capture.receive("1", 0.1) is None
    assert capture.receive("2", 0.2) is None
    assert capture.receive("3", 0.3) is None
    assert capture.receive("#", 0.4) == CaptureResult("123", timeout=False)


def test_max_length_ends_capture() -> None:
    capture = DtmfCapture("op", started=0.0, max_length=2, timeout_ms=5000)
    capture.receive("4", 0.1)
    assert capture.receive("2", 0.2) == CaptureResult("42", timeout=False)


def test_timeouts_overall_and_between_digits() -> None:
    capture = DtmfCapture("op", started=0.0, max_length=5, timeout_ms=5000, digit_timeout_ms=1000)
    assert capture.next_deadline() == 5.0
    capture.receive("7", 1.0)
    assert capture.next_deadline() == 2.0
    assert capture.timeout(1.5) is None
    assert capture.timeout(2.0) == CaptureResult("7", timeout=True)
