"""The OpenAPI document is exactly the one on record: a change to the API is made on purpose.

The document's schema names depend on pydantic's minor release (2.14 names a dataclass used in
requests and answers `X-Input`/`X-Output`), so there is one record per minor release. After an
intended change of the API, write the records again (under each pydantic minor you support):

    UPDATE_OPENAPI_SNAPSHOT=1 python -m pytest tests/service/test_openapi_snapshot.py
"""

import json
import os
from pathlib import Path

import pydantic
import pytest

from service.api.openapi import build_document
from service.settings import Settings

RECORDS = Path(__file__).parent / "openapi_snapshots"


def test_the_document_is_the_one_on_record(tmp_path: Path) -> None:
    minor = ".".join(pydantic.VERSION.split(".")[:2])
    record = RECORDS / f"pydantic-{minor}.json"
    # Default settings: the limits written into the document are the documented defaults.
    document = json.dumps(build_document(Settings(data_dir=tmp_path)), indent=1) + "\n"
    if os.environ.get("UPDATE_OPENAPI_SNAPSHOT"):
        record.write_text(document)
    if not record.exists():
        pytest.skip(f"no OpenAPI record for pydantic {minor}: write one with "
                    "UPDATE_OPENAPI_SNAPSHOT=1 (see this module's docstring)")
    assert document == record.read_text(), (
        f"the OpenAPI document differs from {record.name}; if the API change is intended, "
        "write the record again (see this module's docstring)")
