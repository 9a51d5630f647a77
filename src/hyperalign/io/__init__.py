"""The file boundary: reading the user's files and writing results. Every fault becomes an InputError that names
the file (and line), and nothing finished is lost:

- inputs must be regular files (a device such as /dev/zero, or a FIFO, would read forever or block) below a size
  limit, valid UTF-8, without NUL bytes;
- JSONL is split on "\\n" only (a raw U+2028 inside a JSON string is legal JSON), every value is checked (nesting
  depth, huge integers, NaN, duplicate keys, lone surrogates), and each line must be a JSON object;
- `JsonlLog` is the one append-only log of finished work for every writer (generate --tasks, run folders, DITTO
  outputs): it opens the file only when the first row is written, tolerates and repairs a line torn by a kill or a
  full disk, and locks against a second writer;
- `write_atomically` replaces a file in one step and never leaves a temporary file behind; `write_or_rescue` keeps
  a result that cannot be written where it was asked to go.

Reading is `read.py`, writing `write.py`; their names are used from here.
"""

from .read import (
    MAX_INPUT_BYTES,
    MAX_JSON_DEPTH,
    MAX_LOG_BYTES,
    check_name,
    check_text,
    decode_text,
    iter_jsonl,
    jsonl_lines,
    parse_json,
    parse_json_object,
    read_bytes,
    read_json_file,
    read_jsonl_models,
    read_text_file,
    validate_row,
)
from .write import JsonlLog, append_whole, check_output_path, lock_path, rescue, write_atomically, write_or_rescue

__all__ = [
    "append_whole",
    "MAX_INPUT_BYTES",
    "MAX_JSON_DEPTH",
    "MAX_LOG_BYTES",
    "JsonlLog",
    "check_name",
    "check_output_path",
    "check_text",
    "decode_text",
    "iter_jsonl",
    "jsonl_lines",
    "lock_path",
    "parse_json",
    "parse_json_object",
    "read_bytes",
    "read_json_file",
    "read_jsonl_models",
    "read_text_file",
    "rescue",
    "validate_row",
    "write_atomically",
    "write_or_rescue",
]
