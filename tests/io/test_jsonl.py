"""metrics.jsonl after a cut (issue 11, item 4): a cut-off last line is dropped with a one-line
warning naming the file, and appends start on a line boundary."""

import json

import pytest

from infodrop.io import DamagedFileError, RecoveredFileWarning, append_jsonl, read_jsonl, write_jsonl

RECORDS = [{"epoch": 1, "loss": 2.25, "note": "é"}, {"epoch": 2, "loss": 1.5, "note": "ü"}]


def _cut(path, keep_bytes_of_last_line: int) -> None:
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:-1]) + lines[-1][:keep_bytes_of_last_line])


@pytest.mark.parametrize("keep", [1, 17, 36])  # 36 cuts 'ü' (2 bytes in UTF-8) in half
def test_a_cut_off_last_line_is_dropped_with_one_warning_naming_the_file(tmp_path, keep):
    path = tmp_path / "metrics.jsonl"
    # Written by another tool, with UTF-8 rather than escapes.
    path.write_text("".join(json.dumps(record, ensure_ascii=False) + "\n" for record in RECORDS), encoding="utf-8")
    _cut(path, keep)
    with pytest.warns(RecoveredFileWarning) as caught:
        assert read_jsonl(path) == RECORDS[:1]
    (message,) = [str(w.message) for w in caught]
    assert message.startswith(f"{path}: dropped its last line 2") and "\n" not in message


def test_a_damaged_line_before_the_last_is_refused_naming_the_file_and_the_line(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"epoch": 1}\n{"epoch": 2, "lo\n{"epoch": 3}\n')
    with pytest.raises(DamagedFileError, match=r"metrics.jsonl line 2 is not valid JSON"):
        read_jsonl(path)
    path.write_text('{"epoch": 1}\n[1, 2]\n')
    with pytest.raises(DamagedFileError, match=r"metrics.jsonl line 2 holds a list, not a JSON object"):
        read_jsonl(path)


def test_an_append_after_a_cut_off_line_starts_on_a_line_boundary_and_drops_the_cut(tmp_path):
    # `test` used to glue its record onto the half line, making the file unreadable.
    path = tmp_path / "metrics.jsonl"
    write_jsonl(path, RECORDS)
    _cut(path, 20)
    with pytest.warns(RecoveredFileWarning, match="metrics.jsonl: dropped its last line 2"):
        append_jsonl(path, {"command": "test", "test_error": 0.1})
    assert [json.loads(line) for line in path.read_text().splitlines()] == [RECORDS[0], {"command": "test", "test_error": 0.1}]


def test_an_append_keeps_a_complete_last_record_that_lacks_its_newline(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"epoch": 1}')
    append_jsonl(path, {"epoch": 2})
    assert path.read_text() == '{"epoch": 1}\n{"epoch": 2}\n'
    assert read_jsonl(path) == [{"epoch": 1}, {"epoch": 2}]


def test_a_missing_file_has_no_records_and_blank_lines_are_skipped(tmp_path):
    assert read_jsonl(tmp_path / "none.jsonl") == []
    (tmp_path / "m.jsonl").write_text('\n{"epoch": 1}\n\n')
    assert read_jsonl(tmp_path / "m.jsonl") == [{"epoch": 1}]
