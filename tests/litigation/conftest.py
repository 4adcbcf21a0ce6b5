"""The local Time-Stamping Authority (:mod:`tests.litigation.tsa_server`), one per session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.litigation.tsa_server import TsaTestServer, make_tsa_pki


@pytest.fixture(scope="session")
def tsa(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TsaTestServer]:
    with TsaTestServer(make_tsa_pki(tmp_path_factory.mktemp("tsa"))) as server:
        yield server
